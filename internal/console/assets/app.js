// The Hostless console: a single page over the control API (/v1), with no
// framework and no build step. Pages are hash routes (#/functions/hello).
//
// Everything the API returns reaches the page as text: elements are built
// with h() and filled with text nodes and attributes, never parsed as HTML,
// so a function name, a log line or a document can't become markup. The
// Content-Security-Policy (script-src 'self', no inline script or style)
// backs that up.

const SESSION_KEY = "hostless.console.session"; // sessionStorage: gone with the tab
const PRICES_KEY = "hostless.console.prices"; // localStorage: a preference, not a secret

// ---------------------------------------------------------------- DOM

// h builds an element: h("a", {href: "#/x", class: "btn"}, "text", child).
// Props named on* that are functions become listeners; value, checked and
// disabled are set as properties; the rest as attributes (false and null
// leave one out).
function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  append(el, children);
  return el;
}

const SVG_NS = "http://www.w3.org/2000/svg";

// s builds an SVG element, as h does.
function s(tag, props, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setProps(el, props);
  append(el, children);
  return el;
}

function setProps(el, props) {
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") {
      el.addEventListener(k.slice(2), v);
    } else if (k === "value" || k === "checked" || k === "disabled") {
      el[k] = v;
    } else {
      el.setAttribute(k, v === true ? "" : String(v));
    }
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

function clear(el) {
  while (el.firstChild) el.firstChild.remove();
}

// ---------------------------------------------------------------- formats

const pad = (n, w = 2) => String(n).padStart(w, "0");

function fmtTime(v) {
  if (!v) return "—";
  const d = new Date(v);
  if (isNaN(d)) return String(v);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function fmtClock(ms, withDate) {
  const d = new Date(ms);
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return withDate ? `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${hm}` : hm;
}

function fmtMs(ms) {
  if (ms === null || ms === undefined || isNaN(ms)) return "—";
  if (ms < 1) return `${ms.toFixed(3)} ms`;
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
}

// fmtStep names a bucket size: "1 minute", "10 minutes", "1 hour".
function fmtStep(ms) {
  const [n, unit] = ms >= 3600e3 ? [ms / 3600e3, "hour"] : [ms / 60e3, "minute"];
  return `${n} ${unit}${n === 1 ? "" : "s"}`;
}

function fmtBytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

const fmtNum = (n) => Number(n).toLocaleString("en-US");

// fmtMoney shows dollars; amounts under a cent keep two significant digits.
function fmtMoney(n) {
  if (n === 0) return "$0";
  if (n < 0.01) return `$${n.toFixed(Math.min(12, 1 - Math.floor(Math.log10(n))))}`;
  return `$${n.toFixed(2)}`;
}

const shortID = (id) => (id && id.length > 12 ? `${id.slice(0, 6)}…${id.slice(-4)}` : id);

// ---------------------------------------------------------------- session and API

// APIError is an error answer: {"error": {"code", "message"}}.
class APIError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// session is the signed-in admin: {kind: "key", token} or {kind: "user",
// token, refresh, expires (ms), email, id}. It is kept in sessionStorage,
// which the tab alone sees and which ends with it.
let session = loadSession();

function loadSession() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION_KEY));
  } catch {
    return null;
  }
}

function saveSession(s) {
  session = s;
  if (s) sessionStorage.setItem(SESSION_KEY, JSON.stringify(s));
  else sessionStorage.removeItem(SESSION_KEY);
}

function userSession(t) {
  return {
    kind: "user",
    token: t.access_token,
    refresh: t.refresh_token,
    expires: Date.now() + t.expires_in * 1000,
    email: t.user.email,
    id: t.user.id,
    roles: t.user.roles || [],
  };
}

async function errorOf(resp) {
  let code = `http_${resp.status}`;
  let message = `${resp.status} ${resp.statusText}`;
  try {
    const body = await resp.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
    }
  } catch {
    // Not the API's JSON: keep the status line.
  }
  return new APIError(resp.status, code, message);
}

// refreshing is the refresh in flight: concurrent calls share it, since a
// refresh token is spent on use and a second use would sign every session
// of the login out.
let refreshing = null;

function refreshSession() {
  if (!refreshing) {
    const s = session;
    refreshing = (async () => {
      const resp = await fetch("/v1/auth/refresh", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: s.refresh }),
      });
      if (!resp.ok) throw await errorOf(resp);
      saveSession(userSession(await resp.json()));
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

// api calls the control API with the session's token and returns the
// decoded JSON (null for 204), or the Response itself with raw. An access
// token near its expiry is refreshed first, and once more on a 401; a
// session that can't be renewed ends, back at the sign-in form.
async function api(path, { method = "GET", body, signal, raw = false, headers = {} } = {}) {
  if (!session) throw new APIError(401, "signed_out", "Sign in first.");
  const send = () => {
    const hs = { ...headers, Authorization: `Bearer ${session.token}` };
    const init = { method, headers: hs, signal };
    if (body !== undefined) {
      hs["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(path, init);
  };
  try {
    if (session.kind === "user" && session.expires - Date.now() < 60_000) await refreshSession();
    let resp = await send();
    if (resp.status === 401 && session.kind === "user") {
      await refreshSession();
      resp = await send();
    }
    if (resp.status === 401) throw await errorOf(resp);
    if (!resp.ok) throw await errorOf(resp);
    if (raw) return resp;
    if (resp.status === 204) return null;
    return await resp.json();
  } catch (err) {
    if (err instanceof APIError && err.status === 401) {
      endSession(`Your session ended (${err.message}). Sign in again.`);
    }
    throw err;
  }
}

function endSession(message) {
  saveSession(null);
  showSignIn(message);
}

async function signOut() {
  const s = session;
  saveSession(null);
  if (s && s.kind === "user") {
    // Ends the login's sessions on the server too; the page signs out
    // whatever the answer.
    try {
      await fetch("/v1/auth/logout", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: s.refresh }),
      });
    } catch {
      // Offline: the refresh token expires on its own.
    }
  }
  showSignIn("You are signed out.");
}

// ---------------------------------------------------------------- shared pieces

function errorBox(err) {
  const code = err instanceof APIError ? err.code : "error";
  return h("div", { class: "error", role: "alert" }, h("strong", {}, code), ": ", err.message || String(err));
}

function notice(root, text) {
  const n = h("div", { class: "notice", role: "status" }, text);
  root.prepend(n);
  setTimeout(() => n.remove(), 6000);
}

// table renders rows under columns [{title, cell(row) -> node|text, cls}];
// rowProps(row) gives each row's attributes.
function table(columns, rows, { empty = "Nothing here yet.", rowProps } = {}) {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { class: c.cls }, c.title)))),
      h(
        "tbody",
        {},
        rows.map((r) => h("tr", rowProps ? rowProps(r) : {}, columns.map((c) => h("td", { class: c.cls }, c.cell(r))))),
      ),
    ),
  );
}

// dl renders [label, value] pairs, leaving out empty values.
function dl(pairs) {
  const items = pairs.filter(([, v]) => v !== undefined && v !== null && v !== "" && !(Array.isArray(v) && !v.length));
  return h("dl", { class: "props" }, items.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function badge(status) {
  return h("span", { class: `badge st-${status}` }, status);
}

function jsonBlock(v) {
  return h("pre", { class: "json" }, JSON.stringify(v, null, 2));
}

function section(title, ...children) {
  return h("section", {}, h("h2", {}, title), children);
}

function button(label, onclick, cls = "") {
  return h("button", { type: "button", class: cls, onclick }, label);
}

// link builds a hash route: link(["functions", name], {a: 1}).
function link(parts, query) {
  let q = "";
  if (query) {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== "" && v !== null && v !== undefined) p.set(k, v);
    if ([...p].length) q = `?${p}`;
  }
  return `#/${parts.map(encodeURIComponent).join("/")}${q}`;
}

function go(parts, query) {
  location.hash = link(parts, query);
}

// confirmAction asks in a modal dialog; it resolves true when confirmed.
function confirmAction(message, action, cls = "primary") {
  return new Promise((resolve) => {
    const dlg = h(
      "dialog",
      { class: "confirm", "aria-label": "Confirm" },
      h("p", {}, message),
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", id: "confirm-cancel", onclick: () => dlg.close("cancel") }, "Cancel"),
        h("button", { type: "button", id: "confirm-ok", class: cls, onclick: () => dlg.close("ok") }, action),
      ),
    );
    dlg.addEventListener("close", () => {
      dlg.remove();
      resolve(dlg.returnValue === "ok");
    });
    document.body.append(dlg);
    dlg.showModal();
  });
}

// busy disables a button while fn runs.
async function busy(btn, fn) {
  btn.disabled = true;
  try {
    return await fn();
  } finally {
    btn.disabled = false;
  }
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(t);
      resolve();
    });
  });
}

// every runs fn every ms while the page is shown.
function every(ms, signal, fn) {
  const t = setInterval(fn, ms);
  signal.addEventListener("abort", () => clearInterval(t));
}

async function functionNames(signal) {
  const { functions } = await api("/v1/functions", { signal });
  return functions.map((f) => f.name);
}

function functionSelect(names, selected, id = "f-function") {
  return h(
    "select",
    { name: "function", id },
    h("option", { value: "" }, "all functions"),
    names.map((n) => h("option", { value: n, selected: n === selected }, n)),
  );
}

// ---------------------------------------------------------------- sign-in

function showSignIn(message) {
  teardown();
  const app = document.getElementById("app");
  clear(app);
  const status = h("div", { class: "signin-status", role: "alert" });
  const say = (text, isError = true) => {
    clear(status);
    if (text) status.append(h("p", { class: isError ? "error" : "notice" }, text));
  };
  if (message) say(message, !message.startsWith("You are signed out"));

  const email = h("input", { type: "email", id: "login-email", name: "email", autocomplete: "username", required: true });
  const password = h("input", { type: "password", id: "login-password", name: "password", autocomplete: "current-password", required: true });
  const loginForm = h(
    "form",
    { id: "login", class: "stack" },
    h("label", { for: "login-email" }, "Email"),
    email,
    h("label", { for: "login-password" }, "Password"),
    password,
    h("button", { type: "submit", class: "primary", id: "login-submit" }, "Sign in"),
  );
  loginForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const btn = loginForm.querySelector("button");
    await busy(btn, async () => {
      say("");
      try {
        const resp = await fetch("/v1/auth/login", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ email: email.value, password: password.value }),
        });
        if (!resp.ok) throw await errorOf(resp);
        const t = await resp.json();
        if (!(t.user.roles || []).includes("admin")) {
          // Don't keep a login the console can't use.
          fetch("/v1/auth/logout", {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ refresh_token: t.refresh_token }),
          }).catch(() => {});
          say(
            `${t.user.email} signed in, but the console needs the admin role, which this account lacks. ` +
              `An admin can grant it: hostless users roles ${t.user.email} admin`,
          );
          return;
        }
        password.value = "";
        saveSession(userSession(t));
        start();
      } catch (err) {
        say(`${err.message}`);
      }
    });
  });

  const key = h("input", { type: "password", id: "key-input", name: "key", autocomplete: "off", required: true });
  const keyForm = h(
    "form",
    { id: "key-login", class: "stack" },
    h("label", { for: "key-input" }, "Admin key (or an API key with the admin scope)"),
    key,
    h("button", { type: "submit", id: "key-submit" }, "Use the key"),
  );
  keyForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    await busy(keyForm.querySelector("button"), async () => {
      say("");
      const resp = await fetch("/v1/functions", { headers: { Authorization: `Bearer ${key.value.trim()}` } });
      if (!resp.ok) {
        const err = await errorOf(resp);
        say(`That key doesn't open the control API: ${err.message}`);
        return;
      }
      saveSession({ kind: "key", token: key.value.trim() });
      key.value = "";
      start();
    });
  });

  app.append(
    h(
      "main",
      { class: "signin" },
      h("h1", {}, h("img", { src: "/console/favicon.svg", alt: "", width: 28, height: 28 }), " Hostless console"),
      status,
      loginForm,
      h("details", {}, h("summary", {}, "Sign in with the admin key instead"), keyForm),
      h("p", { class: "hint" }, "Admins only: a user with the admin role, the admin key, or an API key with the admin scope."),
    ),
  );
  email.focus();
}

// ---------------------------------------------------------------- layout and routing

const PAGES = [
  ["functions", "Functions"],
  ["invocations", "Invocations"],
  ["logs", "Live logs"],
  ["metrics", "Metrics"],
  ["usage", "Usage"],
  ["db", "Database"],
  ["storage", "Storage"],
  ["users", "Users"],
];

let nav = null; // the AbortController of the page shown: aborting ends its requests, streams and timers

function teardown() {
  if (nav) nav.abort();
  nav = null;
}

function start() {
  const app = document.getElementById("app");
  clear(app);
  const who = session.kind === "user" ? session.email : "admin key";
  app.append(
    h(
      "header",
      { class: "top" },
      h("a", { class: "brand", href: "#/functions" }, h("img", { src: "/console/favicon.svg", alt: "", width: 22, height: 22 }), "Hostless"),
      h("nav", {}, PAGES.map(([p, label]) => h("a", { href: `#/${p}`, "data-page": p }, label))),
      h("span", { class: "who", id: "who" }, who),
      button("Sign out", signOut, "link"),
    ),
    h("main", { id: "view" }),
  );
  route();
}

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "") || "functions";
  const [p, q] = raw.split("?");
  const parts = p.split("/").filter(Boolean).map((x) => {
    try {
      return decodeURIComponent(x);
    } catch {
      return x;
    }
  });
  return { parts, query: new URLSearchParams(q || "") };
}

const ROUTES = {
  functions: (c) => (c.parts.length > 1 ? viewFunction(c) : viewFunctions(c)),
  invocations: (c) => (c.parts.length > 1 ? viewInvocation(c) : viewInvocations(c)),
  logs: (c) => viewLogs(c),
  metrics: (c) => viewMetrics(c),
  usage: (c) => viewUsage(c),
  db: (c) => (c.parts.length > 1 ? viewCollection(c) : viewCollections(c)),
  storage: (c) => (c.parts.length > 1 ? viewBucket(c) : viewBuckets(c)),
  users: (c) => viewUsers(c),
};

async function route() {
  if (!session) return showSignIn();
  const view = document.getElementById("view");
  if (!view) return start();
  teardown();
  nav = new AbortController();
  const { parts, query } = parseHash();
  const page = ROUTES[parts[0]] ? parts[0] : "functions";
  for (const a of document.querySelectorAll("header nav a")) a.classList.toggle("active", a.dataset.page === page);
  clear(view);
  view.append(h("p", { class: "loading" }, "Loading…"));
  const ctx = { parts, query, signal: nav.signal, root: view, reload: () => route() };
  try {
    const root = h("div", { class: `page page-${page}` });
    ctx.root = root;
    await ROUTES[page](ctx);
    if (ctx.signal.aborted) return;
    clear(view);
    view.append(root);
  } catch (err) {
    if (ctx.signal.aborted || err.name === "AbortError") return;
    if (!session) return; // signed out by a 401
    clear(view);
    view.append(errorBox(err));
  }
}

// ---------------------------------------------------------------- functions

async function viewFunctions({ root, signal }) {
  const { functions } = await api("/v1/functions", { signal });
  root.append(
    h("h1", {}, "Functions"),
    table(
      [
        { title: "Name", cell: (f) => h("a", { href: link(["functions", f.name]) }, f.name) },
        { title: "Live version", cell: (f) => `v${f.version}`, cls: "num" },
        { title: "Canary", cell: (f) => (f.canary_version ? `v${f.canary_version} at ${f.canary_weight}%` : "—") },
        { title: "Updated", cell: (f) => fmtTime(f.updated_at) },
        { title: "", cell: (f) => [h("a", { href: link(["invocations"], { function: f.name }) }, "invocations"), " · ", h("a", { href: link(["metrics"], { function: f.name }) }, "metrics")] },
      ],
      functions,
      { empty: "No functions yet: deploy some with `hostless deploy`.", rowProps: (f) => ({ "data-function": f.name }) },
    ),
  );
}

function orDefault(v, def) {
  return v ? v : def;
}

function specView(spec) {
  const c = spec.concurrency || {};
  const rl = spec.rate_limit || {};
  const b = spec.budget || {};
  const l = spec.limits || {};
  const r = spec.retry || {};
  const list = (xs) => (xs && xs.length ? xs.join(", ") : null);
  const kv = (m) => (m && Object.keys(m).length ? Object.entries(m).map(([k, v]) => `${k}: ${v}`).join(", ") : null);
  return dl([
    ["Runtime", spec.runtime + (spec.contract ? ` (contract ${spec.contract})` : "")],
    ["Handler", spec.handler],
    ["Code", h("code", {}, spec.code)],
    ["Memory", `${spec.memory} MB`],
    ["Timeout", spec.timeout],
    ["Concurrency", `max ${orDefault(c.max, "default")}, ${orDefault(c.per_instance, 1)} per instance, queue timeout ${orDefault(c.queue_timeout, "default")}`],
    ["Idle timeout", orDefault(spec.idle_timeout, "default")],
    ["Min instances", spec.min_instances || 0],
    ["Rate limit", rl.rps || rl.per_ip_rps ? `${rl.rps || "∞"} rps (burst ${rl.burst || "auto"}), per IP ${rl.per_ip_rps || "∞"} rps` : "none"],
    ["Budget", b.gb_seconds_per_hour || b.gb_seconds_per_day ? `${b.gb_seconds_per_hour || "∞"} GB-s/hour, ${b.gb_seconds_per_day || "∞"} GB-s/day` : "none"],
    ["Payload limits", l.request || l.response || l.event ? `request ${l.request ? fmtBytes(l.request) : "server max"}, response ${l.response ? fmtBytes(l.response) : "server max"}, event ${l.event ? fmtBytes(l.event) : "default"}` : "server maximums"],
    ["Auth", spec.auth || "public"],
    ["Invoke mode", spec.invoke_mode || "buffered"],
    ["Schedule", spec.schedule ? `${spec.schedule}${spec.timezone ? ` (${spec.timezone})` : " (UTC)"}` : null],
    ["Triggers", spec.triggers && spec.triggers.length ? h("ul", { class: "triggers" }, spec.triggers.map(triggerItem)) : null],
    ["Retry", r.max_attempts !== undefined || r.max_age || r.backoff ? `retries ${r.max_attempts ?? "default"}, max age ${r.max_age || "default"}, backoff ${r.backoff || "default"}` : null],
    ["Env", spec.env ? Object.keys(spec.env).sort().join(", ") : null],
    ["Secrets", list(spec.secrets)],
    ["Buckets", kv(spec.buckets)],
    ["Network", spec.network ? `${spec.network}${spec.network_allow ? ` (+ ${spec.network_allow.join(", ")})` : ""}` : null],
    ["Allowed hosts", list(spec.allowed_hosts)],
    ["CORS", spec.cors ? `origins ${list(spec.cors.origins) || "none"}` : null],
  ]);
}

function triggerItem(t) {
  const where = [t.url, t.subject, t.stream, t.queue, t.topic, t.group].filter(Boolean).join(" ");
  const events = t.events ? t.events.join(", ") : "";
  return h("li", {}, h("strong", {}, t.type), " ", where, events, t.batch_size ? ` (batches of ${t.batch_size})` : "");
}

async function viewFunction({ root, parts, signal, reload }) {
  const name = parts[1];
  const p = encodeURIComponent(name);
  const [fn, { versions }, { aliases }, { invocations }] = await Promise.all([
    api(`/v1/functions/${p}`, { signal }),
    api(`/v1/functions/${p}/versions`, { signal }),
    api(`/v1/functions/${p}/aliases`, { signal }),
    api(`/v1/invocations?function=${p}&limit=10`, { signal }),
  ]);

  const rollback = async (version) => {
    let message;
    if (version) message = `Make version ${version} serve ${name} alone (live moves to it, dropping any canary)?`;
    else if (fn.canary_version) message = `Drop live's canary (v${fn.canary_version}): v${fn.version} serves ${name} alone again?`;
    else message = `Roll ${name} back: live moves from v${fn.version} to the version before it?`;
    if (!(await confirmAction(message, "Roll back", "danger"))) return;
    try {
      const res = await api(`/v1/functions/${p}/rollback`, { method: "POST", body: version ? { version } : {} });
      await reload();
      notice(document.getElementById("view"), `Rolled back: live serves v${res.version}${res.canary_version ? ` with v${res.canary_version} at ${res.canary_weight}%` : ""}.`);
    } catch (err) {
      actions.after(errorBox(err));
    }
  };

  const actions = h(
    "div",
    { class: "actions" },
    button("Roll back", (ev) => busy(ev.currentTarget, () => rollback(0)), "danger"),
    h("a", { class: "btn", href: link(["invocations"], { function: name }) }, "Invocations"),
    h("a", { class: "btn", href: link(["logs"], { function: name }) }, "Live logs"),
    h("a", { class: "btn", href: link(["metrics"], { function: name }) }, "Metrics"),
  );

  root.append(
    h("p", { class: "crumbs" }, h("a", { href: "#/functions" }, "Functions"), " / "),
    h("h1", { id: "function-name" }, name),
    h("p", { class: "sub" }, `live serves v${fn.version}`, fn.canary_version ? `, with v${fn.canary_version} taking ${fn.canary_weight}% as a canary` : " alone", ` · created ${fmtTime(fn.created_at)} · updated ${fmtTime(fn.updated_at)}`),
    actions,
    section(`Configuration (v${fn.version})`, fn.spec ? specView(fn.spec) : h("p", {}, "—"), fn.spec ? h("details", {}, h("summary", {}, "Spec as JSON"), jsonBlock(fn.spec)) : null),
    fn.canary_spec ? section(`Canary configuration (v${fn.canary_version})`, specView(fn.canary_spec)) : null,
    section("Aliases", aliasTable(name, aliases, versions, reload)),
    section(
      "Versions",
      table(
        [
          { title: "Version", cell: (v) => `v${v.version}`, cls: "num" },
          { title: "Created", cell: (v) => fmtTime(v.created_at) },
          { title: "Code", cell: (v) => h("code", { title: v.spec.code }, v.spec.code.slice(0, 19)) },
          { title: "Memory", cell: (v) => `${v.spec.memory} MB`, cls: "num" },
          { title: "Timeout", cell: (v) => v.spec.timeout },
          { title: "Served by", cell: (v) => aliases.filter((a) => a.version === v.version || a.canary_version === v.version).map((a) => (a.canary_version === v.version ? `${a.name} (canary ${a.canary_weight}%)` : a.name)).join(", ") || "—" },
          {
            title: "",
            cell: (v) =>
              v.version === fn.version && !fn.canary_version ? "" : button(`Serve v${v.version} alone`, (ev) => busy(ev.currentTarget, () => rollback(v.version)), "small"),
          },
        ],
        versions,
      ),
    ),
    section(
      "Recent invocations",
      invocationTable(invocations),
      h("p", {}, h("a", { href: link(["invocations"], { function: name }) }, "All invocations of ", name, " →")),
    ),
  );
}

// aliasTable lists a function's aliases, each with a form to change its
// canary: a version and a weight (0 drops the canary, 100 promotes it).
function aliasTable(name, aliases, versions, reload) {
  const p = encodeURIComponent(name);
  const editor = (a) => {
    const others = versions.filter((v) => v.version !== a.version);
    if (!others.length) return h("span", { class: "hint" }, "one version: no canary possible");
    const canary = h(
      "select",
      { name: "canary_version", "aria-label": "canary version" },
      others.map((v) => h("option", { value: v.version, selected: v.version === (a.canary_version || others[0].version) }, `v${v.version}`)),
    );
    const weight = h("input", { type: "number", name: "weight", min: 0, max: 100, step: 1, value: String(a.canary_weight || 0), "aria-label": "canary weight (%)", class: "weight" });
    const form = h("form", { class: "inline", "data-alias": a.name }, "canary ", canary, " at ", weight, "% ", h("button", { type: "submit" }, "Apply"));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const c = Number(canary.value);
      const w = Number(weight.value);
      if (!Number.isInteger(w) || w < 0 || w > 100) {
        form.append(errorBox(new Error("The weight is a whole percent, 0 to 100.")));
        return;
      }
      let message, call;
      if (w === 0) {
        message = `Alias ${a.name}: v${a.version} serves alone${a.canary_version ? ` (the canary v${a.canary_version} is dropped)` : ""}.`;
        call = () => api(`/v1/functions/${p}/aliases/${encodeURIComponent(a.name)}`, { method: "PUT", body: { version: a.version } });
      } else if (w === 100) {
        message = `Alias ${a.name}: v${c} serves all its calls (promote).`;
        call =
          c === a.canary_version
            ? () => api(`/v1/functions/${p}/aliases/${encodeURIComponent(a.name)}/promote`, { method: "POST" })
            : () => api(`/v1/functions/${p}/aliases/${encodeURIComponent(a.name)}`, { method: "PUT", body: { version: c } });
      } else {
        message = `Alias ${a.name}: v${c} takes ${w}% of the calls, v${a.version} the other ${100 - w}%.`;
        call = () => api(`/v1/functions/${p}/aliases/${encodeURIComponent(a.name)}`, { method: "PUT", body: { version: a.version, canary_version: c, canary_weight: w } });
      }
      if (!(await confirmAction(message, "Change the weights"))) return;
      try {
        await busy(form.querySelector("button"), call);
        await reload();
        notice(document.getElementById("view"), `Alias ${a.name} changed.`);
      } catch (err) {
        form.append(errorBox(err));
      }
    });
    return form;
  };
  return table(
    [
      { title: "Alias", cell: (a) => h("strong", {}, a.name) },
      { title: "Version", cell: (a) => `v${a.version}`, cls: "num" },
      { title: "Canary", cell: (a) => (a.canary_version ? `v${a.canary_version} at ${a.canary_weight}%` : "—") },
      { title: "Updated", cell: (a) => fmtTime(a.updated_at) },
      { title: "Change", cell: editor },
    ],
    aliases,
    { rowProps: (a) => ({ "data-alias": a.name }) },
  );
}

// ---------------------------------------------------------------- invocations

function invocationTable(recs) {
  return table(
    [
      { title: "Started", cell: (r) => h("a", { href: link(["invocations", r.id]), class: "inv-link" }, fmtTime(r.start)) },
      { title: "Function", cell: (r) => h("a", { href: link(["functions", r.function]) }, r.function) },
      { title: "Version", cell: (r) => `v${r.version}`, cls: "num" },
      { title: "Trigger", cell: (r) => r.trigger },
      { title: "Status", cell: (r) => badge(r.status) },
      { title: "Duration", cell: (r) => fmtMs(r.duration_ns / 1e6), cls: "num" },
      { title: "Billed", cell: (r) => `${r.billed_ms} ms`, cls: "num" },
      { title: "Memory", cell: (r) => `${r.memory_mb} MB`, cls: "num" },
      { title: "Start", cell: (r) => (r.cold ? h("span", { class: "cold" }, "cold") : "warm") },
      { title: "HTTP", cell: (r) => r.http_status || "—", cls: "num" },
      { title: "ID", cell: (r) => h("code", { title: r.id }, shortID(r.id)) },
    ],
    recs,
    { empty: "No invocations.", rowProps: (r) => ({ "data-id": r.id, class: r.status === "ok" ? "" : "failed" }) },
  );
}

const STATUSES = ["ok", "error", "timeout", "oom", "throttled"];

// viewInvocations lists records newest first. The API filters by function;
// status and cold/warm are filtered here, over pages the page reads (at
// most scanLimit records per screen), and the page says so.
async function viewInvocations({ root, query, signal, reload }) {
  const fn = query.get("function") || "";
  const status = query.get("status") || "";
  const start = query.get("start") || "";
  const names = await functionNames(signal);
  const clientFilter = (r) => (!status || r.status === status) && (!start || (start === "cold") === r.cold);
  const filtered = Boolean(status || start);
  const want = 50;
  const scanLimit = 2000;

  let before = "";
  let scanned = 0;
  const rows = [];
  // more reads the next screen: one page, or with a filter of the page's
  // own, pages until `want` match or `scanLimit` records were read.
  const more = async () => {
    let found = 0;
    let read = 0;
    do {
      const q = new URLSearchParams({ limit: filtered ? "500" : String(want) });
      if (fn) q.set("function", fn);
      if (before) q.set("before", before);
      const page = await api(`/v1/invocations?${q}`, { signal });
      read += page.invocations.length;
      for (const r of page.invocations) {
        if (!clientFilter(r)) continue;
        rows.push(r);
        found++;
      }
      before = page.next || "";
    } while (filtered && before && found < want && read < scanLimit);
    scanned += read;
  };
  await more();

  const form = h(
    "form",
    { class: "filters", id: "inv-filters" },
    h("label", {}, "Function ", functionSelect(names, fn)),
    h("label", {}, "Status ", h("select", { name: "status" }, h("option", { value: "" }, "any"), STATUSES.map((x) => h("option", { value: x, selected: x === status }, x)))),
    h("label", {}, "Start ", h("select", { name: "start" }, h("option", { value: "" }, "any"), ["cold", "warm"].map((x) => h("option", { value: x, selected: x === start }, x)))),
    h("button", { type: "submit" }, "Filter"),
    button("Refresh", reload, "refresh"),
    h("label", { class: "auto" }, h("input", { type: "checkbox", id: "auto-refresh" }), " every 5 s"),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const d = new FormData(form);
    go(["invocations"], { function: d.get("function"), status: d.get("status"), start: d.get("start") });
  });
  const auto = form.querySelector("#auto-refresh");
  auto.checked = sessionStorage.getItem("hostless.console.auto") === "1";
  auto.addEventListener("change", () => {
    sessionStorage.setItem("hostless.console.auto", auto.checked ? "1" : "0");
  });
  every(5000, signal, () => auto.checked && !document.hidden && reload());

  const list = h("div", { id: "invocations" }, invocationTable(rows));
  const scope = h("p", { class: "hint" });
  const olderBtn = button("Older", async (ev) => {
    await busy(ev.currentTarget, more).catch((err) => list.after(errorBox(err)));
    clear(list);
    list.append(invocationTable(rows));
    update();
  });
  const update = () => {
    clear(scope);
    scope.append(`${rows.length} shown`, filtered ? ` (of the newest ${fmtNum(scanned)} records read: status and start are filtered in the page)` : "");
    olderBtn.hidden = !before;
  };
  update();
  root.append(h("h1", {}, "Invocations"), form, list, h("div", { class: "actions" }, olderBtn), scope);
}

async function viewInvocation({ root, parts, signal }) {
  const id = parts[1];
  const rec = await api(`/v1/invocations/${encodeURIComponent(id)}`, { signal });
  root.append(h("p", { class: "crumbs" }, h("a", { href: "#/invocations" }, "Invocations"), " / "), h("h1", {}, "Invocation ", h("code", {}, rec.id)));
  if (rec.async) {
    root.append(
      dl([
        ["Function", h("a", { href: link(["functions", rec.function]) }, rec.function)],
        ["Qualifier", rec.qualifier],
        ["Kind", "async"],
        ["Trigger", rec.trigger],
        ["Status", badge(rec.status)],
        ["Attempts", rec.attempts],
        ["Accepted", fmtTime(rec.accepted_at)],
        ["Updated", fmtTime(rec.updated_at)],
        ["Last attempt", rec.last_attempt ? h("a", { href: link(["invocations", rec.last_attempt]) }, rec.last_attempt) : null],
        ["Error", rec.error ? h("span", { class: "err-text" }, rec.error) : null],
      ]),
      rec.result ? section("Result", jsonBlock(rec.result)) : null,
    );
    return;
  }
  root.append(
    dl([
      ["Function", h("a", { href: link(["functions", rec.function]) }, rec.function)],
      ["Version", `v${rec.version}`],
      ["Trigger", rec.trigger],
      ["Status", badge(rec.status)],
      ["Started", fmtTime(rec.start)],
      ["Duration", fmtMs(rec.duration_ns / 1e6)],
      ["Billed", `${rec.billed_ms} ms at ${rec.memory_mb} MB`],
      ["Start", rec.cold ? "cold" : "warm"],
      ["HTTP status", rec.http_status],
      ["Error", rec.error ? h("span", { class: "err-text" }, rec.error) : null],
    ]),
    section(`Logs (${rec.logs.length})`, logList(rec.logs, { id: "invocation-logs" })),
    h("p", {}, h("a", { href: link(["logs"], { function: rec.function }) }, "Follow ", rec.function, "'s logs live →")),
  );
}

function logLine(l, withSource) {
  return h(
    "li",
    { class: `log ${l.stream}` },
    h("time", {}, fmtTime(l.time)),
    withSource ? [" ", h("a", { href: link(["invocations", l.invocation_id]), class: "src" }, `${l.function}@${l.version}`)] : null,
    " ",
    h("span", { class: "stream" }, l.stream),
    " ",
    h("span", { class: "line" }, l.line),
  );
}

function logList(lines, { id, withSource = false } = {}) {
  if (!lines.length) return h("p", { class: "empty", id }, "No log lines.");
  return h("ol", { class: "logs", id }, lines.map((l) => logLine(l, withSource)));
}

// ---------------------------------------------------------------- live logs

// followLogs reads GET /v1/logs?follow=true, a Server-Sent Events stream,
// with fetch rather than EventSource, which can't send the Authorization
// header (and the token must not go in a URL). It reconnects with
// Last-Event-ID after a drop, so no line is missed, until signal aborts.
async function followLogs({ fn, signal, onLine, onState, after }) {
  let last = after || "";
  let backoff = 1000;
  while (!signal.aborted) {
    try {
      const q = new URLSearchParams({ follow: "true", limit: "200" });
      if (fn) q.set("function", fn);
      const headers = { Accept: "text/event-stream" };
      if (last) headers["Last-Event-ID"] = last;
      const resp = await api(`/v1/logs?${q}`, { raw: true, signal, headers });
      onState("live");
      backoff = 1000;
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith("id: ")) last = line.slice(4);
            else if (line.startsWith("data: ")) data += line.slice(6);
          }
          if (data) {
            try {
              onLine(JSON.parse(data));
            } catch {
              // A line the console can't read is skipped, not fatal.
            }
          }
        }
      }
      if (!signal.aborted) onState("reconnecting");
    } catch (err) {
      if (signal.aborted) return last;
      if (err instanceof APIError && err.status !== 429 && err.status < 500) {
        onState(`stopped: ${err.message}`);
        return last;
      }
      onState(`reconnecting (${err.message})`);
    }
    await sleep(backoff, signal);
    backoff = Math.min(backoff * 2, 15000);
  }
  return last;
}

async function viewLogs({ root, query, signal }) {
  const fn = query.get("function") || "";
  const names = await functionNames(signal);
  const max = 1000; // lines kept on screen
  const list = h("ol", { class: "logs tail", id: "tail", "aria-live": "polite" });
  const state = h("span", { class: "state", id: "tail-state" }, "connecting…");
  const select = functionSelect(names, fn, "tail-function");
  select.addEventListener("change", () => go(["logs"], { function: select.value }));
  let stream = null;
  let last = "";
  const run = () => {
    stream = new AbortController();
    const both = AbortSignal.any([signal, stream.signal]);
    followLogs({
      fn,
      signal: both,
      after: last,
      onState: (st) => {
        state.textContent = st;
        state.className = `state ${st === "live" ? "live" : ""}`;
      },
      onLine: (l) => {
        last = String(l.seq);
        const stick = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
        list.append(logLine(l, true));
        while (list.childElementCount > max) list.firstElementChild.remove();
        if (stick) list.scrollTop = list.scrollHeight;
      },
    }).then((l) => {
      if (l) last = l;
    });
  };
  const pause = button("Pause", () => {
    if (stream) {
      stream.abort();
      stream = null;
      pause.textContent = "Resume";
      state.textContent = "paused";
      state.className = "state";
    } else {
      pause.textContent = "Pause";
      run(); // resumes after the last line shown
    }
  });
  root.append(
    h("h1", {}, "Live logs"),
    h("div", { class: "filters" }, h("label", {}, "Function ", select), pause, button("Clear", () => clear(list)), state),
    list,
    h("p", { class: "hint" }, `The newest lines first arrive from the store, then new ones as they are written; the last ${max} stay on screen.`),
  );
  run();
}

// ---------------------------------------------------------------- metrics and usage

// WINDOWS are the time windows of the charts: a span and a bucket size.
const WINDOWS = {
  "15m": { span: 15 * 60e3, step: 60e3, label: "15 minutes" },
  "1h": { span: 60 * 60e3, step: 60e3, label: "hour" },
  "6h": { span: 6 * 3600e3, step: 10 * 60e3, label: "6 hours" },
  "24h": { span: 24 * 3600e3, step: 3600e3, label: "24 hours" },
};

// MAX_RECORDS bounds the invocation records one load reads (pages of 1,000).
const MAX_RECORDS = 5000;

function percentile(sorted, p) {
  if (!sorted.length) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

// loadSeries returns the time series of the Metrics and Usage pages for a
// window ending now: buckets of `step` ms, each with count, errors
// (error, timeout, oom), throttled, cold, duration percentiles (ms) and
// billed GB-seconds; totals per function; and where they came from.
//
// It computes them from the invocation records (GET /v1/invocations, newest
// first, paged, at most MAX_RECORDS), so a busy window is cut short and
// says so. This is the one seam for /v1/usage: when the server keeps hourly
// rollups, windows with a step of an hour or more read their buckets (and
// totals) from there, and nothing else in the console changes.
async function loadSeries({ fn, win, signal }) {
  const { span, step } = WINDOWS[win];
  const now = Date.now();
  const first = Math.floor((now - span) / step) * step + step;
  const n = Math.round((now - first) / step) + 1;
  const buckets = Array.from({ length: n }, (_, i) => ({ t: first + i * step, count: 0, errors: 0, throttled: 0, cold: 0, durations: [], gbs: 0 }));
  const perFunction = new Map();
  let before = "";
  let scanned = 0;
  let truncated = false;
  let oldest = now;
  outer: for (;;) {
    const q = new URLSearchParams({ limit: "1000" });
    if (fn) q.set("function", fn);
    if (before) q.set("before", before);
    const page = await api(`/v1/invocations?${q}`, { signal });
    for (const r of page.invocations) {
      const t = Date.parse(r.start);
      if (t < first) break outer;
      scanned++;
      oldest = t;
      const b = buckets[Math.min(n - 1, Math.floor((t - first) / step))];
      const gbs = (r.billed_ms / 1000) * (r.memory_mb / 1024);
      b.count++;
      b.gbs += gbs;
      if (r.status === "throttled") b.throttled++;
      else if (r.status !== "ok") b.errors++;
      if (r.cold) b.cold++;
      if (r.status !== "throttled") b.durations.push(r.duration_ns / 1e6);
      const f = perFunction.get(r.function) || { name: r.function, count: 0, errors: 0, throttled: 0, billedMs: 0, gbs: 0, cold: 0 };
      f.count++;
      if (r.status === "throttled") f.throttled++;
      else if (r.status !== "ok") f.errors++;
      if (r.cold) f.cold++;
      f.billedMs += r.billed_ms;
      f.gbs += gbs;
      perFunction.set(r.function, f);
    }
    before = page.next || "";
    if (!before) break;
    if (scanned >= MAX_RECORDS) {
      truncated = true;
      break;
    }
  }
  const all = [];
  for (const b of buckets) {
    b.durations.sort((x, y) => x - y);
    all.push(...b.durations);
    b.p50 = percentile(b.durations, 50);
    b.p95 = percentile(b.durations, 95);
    b.p99 = percentile(b.durations, 99);
  }
  all.sort((x, y) => x - y);
  return {
    buckets,
    step,
    perFunction: [...perFunction.values()].sort((a, b) => b.gbs - a.gbs || a.name.localeCompare(b.name)),
    totals: {
      count: buckets.reduce((a, b) => a + b.count, 0),
      errors: buckets.reduce((a, b) => a + b.errors, 0),
      throttled: buckets.reduce((a, b) => a + b.throttled, 0),
      cold: buckets.reduce((a, b) => a + b.cold, 0),
      gbs: buckets.reduce((a, b) => a + b.gbs, 0),
      p50: percentile(all, 50),
      p95: percentile(all, 95),
      p99: percentile(all, 99),
    },
    source: truncated ? `the newest ${fmtNum(scanned)} invocation records, back to ${fmtTime(oldest)}: older ones in the window are not counted` : `${fmtNum(scanned)} invocation records`,
    truncated,
  };
}

// niceMax rounds a chart's top up to 1, 2 or 5 times a power of ten.
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

// chart draws series over buckets as inline SVG: bars (stacked) or lines.
// series: [{key, name, cls, value(bucket) -> number|null}].
function chart({ id, title, buckets, step, series, kind = "bar", unit = "", fmt = (v) => fmtNum(Math.round(v * 100) / 100), total }) {
  const W = 640, H = 200, L = 52, R = 10, T = 12, B = 26;
  const pw = W - L - R, ph = H - T - B;
  const n = buckets.length;
  const vals = (srs) => buckets.map((b) => srs.value(b));
  let top = 0;
  if (kind === "bar") for (const b of buckets) top = Math.max(top, series.reduce((a, srs) => a + (srs.value(b) || 0), 0));
  else for (const srs of series) for (const v of vals(srs)) if (v !== null) top = Math.max(top, v);
  const max = niceMax(top);
  const y = (v) => T + ph - (v / max) * ph;
  const bw = pw / n;
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": title });
  for (const f of [0, 0.5, 1]) {
    const v = max * f;
    svg.append(s("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }), s("text", { x: L - 6, y: y(v) + 4, class: "tick", "text-anchor": "end" }, fmt(v) + unit));
  }
  const withDate = n * step > 12 * 3600e3;
  for (const [i, anchor] of [[0, "start"], [Math.floor((n - 1) / 2), "middle"], [n - 1, "end"]]) {
    const x = anchor === "start" ? L + i * bw : anchor === "end" ? L + (i + 1) * bw : L + i * bw + bw / 2;
    svg.append(s("text", { x, y: H - 8, class: "tick", "text-anchor": anchor }, fmtClock(buckets[i].t, withDate)));
  }
  if (kind === "bar") {
    buckets.forEach((b, i) => {
      let acc = 0;
      for (const srs of series) {
        const v = srs.value(b) || 0;
        if (!v) continue;
        const y0 = y(acc), y1 = y(acc + v);
        acc += v;
        svg.append(
          s("rect", { x: L + i * bw + bw * 0.12, y: y1, width: Math.max(1, bw * 0.76), height: Math.max(0.5, y0 - y1), class: `bar ${srs.cls}` }, s("title", {}, `${fmtClock(b.t, withDate)}: ${fmt(v)}${unit} ${srs.name}`)),
        );
      }
    });
  } else {
    for (const srs of series) {
      let pts = [];
      const flush = () => {
        if (pts.length === 1) svg.append(s("circle", { cx: pts[0][0], cy: pts[0][1], r: 2.5, class: `dot ${srs.cls}` }));
        else if (pts.length) svg.append(s("polyline", { points: pts.map((p) => p.join(",")).join(" "), class: `line ${srs.cls}` }));
        pts = [];
      };
      buckets.forEach((b, i) => {
        const v = srs.value(b);
        if (v === null || v === undefined) return flush();
        pts.push([L + i * bw + bw / 2, y(v)]);
      });
      flush();
    }
    buckets.forEach((b, i) => {
      const parts = series.map((srs) => (srs.value(b) === null ? null : `${srs.name} ${fmt(srs.value(b))}${unit}`)).filter(Boolean);
      if (parts.length) svg.append(s("rect", { x: L + i * bw, y: T, width: bw, height: ph, class: "hover" }, s("title", {}, `${fmtClock(b.t, withDate)}: ${parts.join(", ")}`)));
    });
  }
  const legend = series.length > 1 ? h("ul", { class: "legend" }, series.map((srs) => h("li", { class: srs.cls }, srs.name))) : null;
  return h("figure", { class: "chart-box", "data-chart": id, "data-total": total ?? "" }, h("figcaption", {}, h("span", {}, title), total !== undefined ? h("strong", { class: "total" }, fmt(total) + unit) : null), svg, legend);
}

function windowSelect(win) {
  return h(
    "select",
    { name: "window", id: "f-window" },
    Object.entries(WINDOWS).map(([k, w]) => h("option", { value: k, selected: k === win }, `last ${w.label}`)),
  );
}

async function viewMetrics({ root, query, signal, reload }) {
  const fn = query.get("function") || "";
  const win = WINDOWS[query.get("window")] ? query.get("window") : "1h";
  const [names, data] = await Promise.all([functionNames(signal), loadSeries({ fn, win, signal })]);
  const { buckets, step, totals } = data;
  const form = h("form", { class: "filters", id: "metrics-filters" }, h("label", {}, "Function ", functionSelect(names, fn)), h("label", {}, "Window ", windowSelect(win)), button("Refresh", reload, "refresh"));
  form.addEventListener("change", () => {
    const d = new FormData(form);
    go(["metrics"], { function: d.get("function"), window: d.get("window") });
  });
  const ran = totals.count - totals.throttled;
  const stat = (label, value, id) => h("div", { class: "stat", id }, h("span", {}, label), h("strong", {}, value));
  root.append(
    h("h1", {}, "Metrics", fn ? `: ${fn}` : ""),
    form,
    h(
      "div",
      { class: "stats" },
      stat("Invocations", fmtNum(totals.count), "stat-count"),
      stat("Errors", `${fmtNum(totals.errors)}${ran ? ` (${((totals.errors / ran) * 100).toFixed(1)}%)` : ""}`, "stat-errors"),
      stat("Throttled", fmtNum(totals.throttled), "stat-throttled"),
      stat("Cold starts", `${fmtNum(totals.cold)}${ran ? ` (${((totals.cold / ran) * 100).toFixed(1)}%)` : ""}`, "stat-cold"),
      stat("p50 / p95 / p99", `${fmtMs(totals.p50)} / ${fmtMs(totals.p95)} / ${fmtMs(totals.p99)}`, "stat-latency"),
    ),
    h(
      "div",
      { class: "charts" },
      chart({ id: "invocations", title: "Invocations", buckets, step, total: totals.count, series: [{ name: "invocations", cls: "s-count", value: (b) => b.count }] }),
      chart({
        id: "errors",
        title: "Errors and throttles",
        buckets,
        step,
        total: totals.errors + totals.throttled,
        series: [
          { name: "errors", cls: "s-errors", value: (b) => b.errors },
          { name: "throttled", cls: "s-throttled", value: (b) => b.throttled },
        ],
      }),
      chart({
        id: "duration",
        title: "Duration",
        buckets,
        step,
        kind: "line",
        unit: " ms",
        fmt: (v) => (v >= 100 ? fmtNum(Math.round(v)) : String(Math.round(v * 100) / 100)),
        series: [
          { name: "p50", cls: "s-p50", value: (b) => b.p50 },
          { name: "p95", cls: "s-p95", value: (b) => b.p95 },
          { name: "p99", cls: "s-p99", value: (b) => b.p99 },
        ],
      }),
      chart({ id: "cold", title: "Cold starts", buckets, step, total: totals.cold, series: [{ name: "cold starts", cls: "s-cold", value: (b) => b.cold }] }),
    ),
    h("p", { class: data.truncated ? "hint warn" : "hint" }, `From ${data.source}, in buckets of ${fmtStep(step)}. Errors are error, timeout and oom; throttled calls ran no code and have no duration.`),
  );
}

// Prices default to AWS Lambda's x86 list prices, for comparison; the
// operator sets their own.
const DEFAULT_PRICES = { gbs: 0.0000166667, million: 0.2 };

function loadPrices() {
  try {
    return { ...DEFAULT_PRICES, ...JSON.parse(localStorage.getItem(PRICES_KEY)) };
  } catch {
    return { ...DEFAULT_PRICES };
  }
}

async function viewUsage({ root, query, signal, reload }) {
  const win = query.get("window") === "1h" ? "1h" : "24h";
  const [data, month] = await Promise.all([
    loadSeries({ fn: "", win, signal }),
    api("/v1/usage?since=30d&period=day", { signal }).catch((err) => err),
  ]);
  const prices = loadPrices();
  const gbsPrice = h("input", { type: "number", id: "price-gbs", min: 0, step: "any", value: String(prices.gbs) });
  const reqPrice = h("input", { type: "number", id: "price-req", min: 0, step: "any", value: String(prices.million) });
  const out = h("div", {});
  const render = () => {
    const p = { gbs: Number(gbsPrice.value) || 0, million: Number(reqPrice.value) || 0 };
    localStorage.setItem(PRICES_KEY, JSON.stringify(p));
    const cost = (f) => f.gbs * p.gbs + ((f.count - f.throttled) / 1e6) * p.million;
    const rows = data.perFunction;
    const total = rows.reduce((a, f) => ({ name: "Total", count: a.count + f.count, errors: a.errors + f.errors, throttled: a.throttled + f.throttled, billedMs: a.billedMs + f.billedMs, gbs: a.gbs + f.gbs }), { count: 0, errors: 0, throttled: 0, billedMs: 0, gbs: 0 });
    clear(out);
    out.append(
      table(
        [
          { title: "Function", cell: (f) => (f.name === "Total" ? h("strong", {}, "Total") : h("a", { href: link(["metrics"], { function: f.name, window: win }) }, f.name)) },
          { title: "Invocations", cell: (f) => fmtNum(f.count), cls: "num" },
          { title: "Errors", cell: (f) => fmtNum(f.errors), cls: "num" },
          { title: "Throttled", cell: (f) => fmtNum(f.throttled), cls: "num" },
          { title: "Billed time", cell: (f) => fmtMs(f.billedMs), cls: "num" },
          { title: "GB-seconds", cell: (f) => f.gbs.toFixed(3), cls: "num" },
          { title: "Estimated cost", cell: (f) => fmtMoney(cost(f)), cls: "num" },
        ],
        rows.length ? [...rows, total] : [],
        { empty: "No invocations in this window.", rowProps: (f) => ({ "data-function": f.name }) },
      ),
    );
  };
  gbsPrice.addEventListener("input", render);
  reqPrice.addEventListener("input", render);
  render();
  const form = h("form", { class: "filters" }, h("label", {}, "Window ", h("select", { name: "window" }, ["1h", "24h"].map((k) => h("option", { value: k, selected: k === win }, `last ${WINDOWS[k].label}`)))), button("Refresh", reload, "refresh"));
  form.addEventListener("change", (ev) => {
    if (ev.target.name === "window") go(["usage"], { window: ev.target.value });
  });
  root.append(
    h("h1", {}, "Usage and cost"),
    form,
    h(
      "div",
      { class: "charts" },
      chart({ id: "gbs", title: "GB-seconds", buckets: data.buckets, step: data.step, total: data.totals.gbs, fmt: (v) => v.toFixed(v < 10 ? 3 : 1), series: [{ name: "GB-seconds", cls: "s-count", value: (b) => b.gbs }] }),
      chart({ id: "requests", title: "Invocations", buckets: data.buckets, step: data.step, total: data.totals.count, series: [{ name: "invocations", cls: "s-count", value: (b) => b.count }] }),
    ),
    out,
    h("div", { class: "filters prices" }, h("label", {}, "$ per GB-second ", gbsPrice), h("label", {}, "$ per million requests ", reqPrice)),
    monthReport(month),
    h(
      "p",
      { class: data.truncated ? "hint warn" : "hint" },
      `From ${data.source}. A GB-second is a second of billed time at 1 GB of memory (billed milliseconds × memory); throttled calls cost nothing. The prices are yours to set (the defaults are AWS Lambda's x86 list prices, for comparison).`,
    ),
  );
}

// monthReport shows the server's report of the last 30 days (GET
// /v1/usage: hourly rollups, the server's price table): what the workload
// cost here, against an always-on server sized for its peak.
function monthReport(r) {
  if (r instanceof Error) return section("Last 30 days", errorBox(r));
  const t = r.total;
  const c = r.cost;
  const row = (label, value) => h("tr", {}, h("th", {}, label), h("td", { class: "num" }, value));
  return h(
    "section",
    { id: "usage-report" },
    h("h2", {}, "Last 30 days"),
    h(
      "table",
      { class: "kv" },
      h(
        "tbody",
        {},
        row("Invocations", fmtNum(t.invocations)),
        row("Errors", fmtNum(t.errors)),
        row("Cold starts", fmtNum(t.cold_starts)),
        row("GB-seconds", t.gb_seconds.toFixed(3)),
        row("Data out", fmtBytes(t.data_out_bytes)),
        row("Peak concurrency", String(t.peak_concurrency)),
        h("tr", { "data-cost": "here" }, h("th", {}, "Cost here"), h("td", { class: "num" }, fmtMoney(c.total))),
        h(
          "tr",
          { "data-cost": "always-on" },
          h("th", {}, `Always-on: ${c.always_on.servers} server${c.always_on.servers === 1 ? "" : "s"} × ${Math.round(c.always_on.hours)} h`),
          h("td", { class: "num" }, fmtMoney(c.always_on.total)),
        ),
      ),
    ),
    h("p", { class: "hint" }, "From the server's hourly rollups and its price table (serve --price-*): compute, requests and data out here, against servers sized for the peak memory in use, running the whole time."),
  );
}

// ---------------------------------------------------------------- database

async function viewCollections({ root, signal }) {
  const { collections } = await api("/v1/collections", { signal });
  root.append(
    h("h1", {}, "Database"),
    table(
      [
        { title: "Collection", cell: (c) => h("a", { href: link(["db", c.name]) }, c.name) },
        { title: "Documents", cell: (c) => fmtNum(c.documents), cls: "num" },
        { title: "Indexes", cell: (c) => (c.spec.indexes || []).join(", ") || "—" },
        { title: "Rules", cell: (c) => Object.keys(c.spec.rules || {}).join(", ") || "admins only" },
        { title: "Updated", cell: (c) => fmtTime(c.updated_at) },
      ],
      collections,
      { empty: "No collections: declare them in hostless.yaml (collections:) or with PUT /v1/collections/{name}." },
    ),
  );
}

async function viewCollection({ root, parts, query, signal }) {
  const name = parts[1];
  const p = encodeURIComponent(name);
  const filter = query.get("filter") || "";
  const sort = query.get("sort") || "";
  const cursor = query.get("cursor") || "";
  const docID = query.get("doc") || "";
  const q = new URLSearchParams({ limit: "50" });
  if (filter) q.set("filter", filter);
  if (sort) q.set("sort", sort);
  if (cursor) q.set("cursor", cursor);
  const [coll, page, doc] = await Promise.all([
    api(`/v1/collections/${p}`, { signal }),
    api(`/v1/db/${p}?${q}`, { signal }),
    docID ? api(`/v1/db/${p}/${encodeURIComponent(docID)}`, { signal }).catch((err) => err) : null,
  ]);
  const here = { filter, sort, cursor };
  const form = h(
    "form",
    { class: "filters wide", id: "db-filters" },
    h("label", {}, "Filter ", h("input", { name: "filter", value: filter, placeholder: 'status == "open" && priority > 2', size: 40 })),
    h("label", {}, "Sort ", h("input", { name: "sort", value: sort, placeholder: "-created_at", size: 14 })),
    h("button", { type: "submit" }, "Apply"),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const d = new FormData(form);
    go(["db", name], { filter: d.get("filter"), sort: d.get("sort") });
  });
  const preview = (d) => {
    const { id, version, created_at, updated_at, ...fields } = d;
    const text = JSON.stringify(fields);
    return text.length > 120 ? `${text.slice(0, 119)}…` : text;
  };
  let docView = null;
  if (doc instanceof Error) docView = section(`Document ${docID}`, errorBox(doc));
  else if (doc) docView = h("section", { class: "doc", id: "doc-view" }, h("h2", {}, "Document ", h("code", {}, doc.id), ` (version ${doc.version})`), jsonBlock(doc), h("a", { href: link(["db", name], here) }, "Close"));
  root.append(
    h("p", { class: "crumbs" }, h("a", { href: "#/db" }, "Database"), " / "),
    h("h1", {}, name),
    h("p", { class: "sub" }, `${fmtNum(coll.documents)} documents`),
    h("details", {}, h("summary", {}, "Schema, indexes and rules"), jsonBlock(coll.spec)),
    form,
    docView,
    table(
      [
        { title: "ID", cell: (d) => h("a", { href: link(["db", name], { ...here, doc: d.id }) }, d.id) },
        { title: "Version", cell: (d) => d.version, cls: "num" },
        { title: "Updated", cell: (d) => fmtTime(d.updated_at) },
        { title: "Fields", cell: (d) => h("code", { class: "preview" }, preview(d)) },
      ],
      page.documents,
      { empty: filter ? "No document matches." : "No documents." },
    ),
    h(
      "div",
      { class: "actions" },
      cursor ? h("a", { class: "btn", href: link(["db", name], { filter, sort }) }, "First page") : null,
      page.next_cursor ? h("a", { class: "btn", href: link(["db", name], { filter, sort, cursor: page.next_cursor }) }, "Next page") : null,
    ),
  );
}

// ---------------------------------------------------------------- storage

async function viewBuckets({ root, signal }) {
  const { buckets } = await api("/v1/storage", { signal });
  root.append(
    h("h1", {}, "Storage"),
    table(
      [
        { title: "Bucket", cell: (b) => h("a", { href: link(["storage", b.name]) }, b.name) },
        { title: "Created", cell: (b) => fmtTime(b.created_at) },
      ],
      buckets,
      { empty: "No buckets: name them in hostless.yaml (buckets:) or create one with PUT /v1/storage/{bucket}." },
    ),
  );
}

async function download(bucket, o) {
  const resp = await api(`/v1/storage/${encodeURIComponent(bucket)}/${o.key.split("/").map(encodeURIComponent).join("/")}`, { raw: true });
  const url = URL.createObjectURL(await resp.blob());
  const a = h("a", { href: url, download: o.key.split("/").pop() || "object" });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

async function viewBucket({ root, parts, query, signal }) {
  const bucket = parts[1];
  const p = encodeURIComponent(bucket);
  const prefix = query.get("prefix") || "";
  const cursor = query.get("cursor") || "";
  const q = new URLSearchParams({ limit: "100" });
  if (prefix) q.set("prefix", prefix);
  if (cursor) q.set("cursor", cursor);
  const [page, rules] = await Promise.all([api(`/v1/storage/${p}?${q}`, { signal }), api(`/v1/storage/${p}/_rules`, { signal }).catch((err) => err)]);
  const form = h("form", { class: "filters" }, h("label", {}, "Prefix ", h("input", { name: "prefix", value: prefix, placeholder: "users/", size: 30 })), h("button", { type: "submit" }, "List"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    go(["storage", bucket], { prefix: new FormData(form).get("prefix") });
  });
  root.append(
    h("p", { class: "crumbs" }, h("a", { href: "#/storage" }, "Storage"), " / "),
    h("h1", {}, bucket),
    rules instanceof Error ? errorBox(rules) : dl([["Read rule", h("code", {}, rules.read || "none: admins only")], ["Write rule", h("code", {}, rules.write || "none: admins only")]]),
    form,
    table(
      [
        { title: "Key", cell: (o) => o.key },
        { title: "Size", cell: (o) => fmtBytes(o.size), cls: "num" },
        { title: "Type", cell: (o) => o.content_type || "—" },
        { title: "Modified", cell: (o) => fmtTime(o.last_modified) },
        {
          title: "",
          cell: (o) =>
            button(
              "Download",
              (ev) => {
                const btn = ev.currentTarget;
                busy(btn, () => download(bucket, o)).catch((err) => btn.after(errorBox(err)));
              },
              "small",
            ),
        },
      ],
      page.objects,
      { empty: prefix ? "No object has this prefix." : "The bucket is empty." },
    ),
    h(
      "div",
      { class: "actions" },
      cursor ? h("a", { class: "btn", href: link(["storage", bucket], { prefix }) }, "First page") : null,
      page.cursor ? h("a", { class: "btn", href: link(["storage", bucket], { prefix, cursor: page.cursor }) }, "Next page") : null,
    ),
  );
}

// ---------------------------------------------------------------- users

async function viewUsers({ root, query, signal, reload }) {
  const after = query.get("after") || "";
  const limit = 50;
  const q = new URLSearchParams({ limit: String(limit) });
  if (after) q.set("after", after);
  const { users } = await api(`/v1/users?${q}`, { signal });
  const me = session.kind === "user" ? session.id : "";
  const change = async (u, body, message, btn) => {
    if (!(await confirmAction(message, "Apply", body.disabled ? "danger" : "primary"))) return;
    try {
      await busy(btn, () => api(`/v1/users/${encodeURIComponent(u.id)}`, { method: "PATCH", body }));
      if (u.id === me && (body.disabled || (body.roles && !body.roles.includes("admin")))) {
        endSession("You changed your own account and no longer have the admin role here. Sign in again.");
        return;
      }
      await reload();
      notice(document.getElementById("view"), `${u.email} changed.`);
    } catch (err) {
      btn.after(errorBox(err));
    }
  };
  const rolesEditor = (u) => {
    const input = h("input", { name: "roles", value: u.roles.join(", "), size: 18, "aria-label": `roles of ${u.email}` });
    const form = h("form", { class: "inline" }, input, h("button", { type: "submit", class: "small" }, "Set roles"));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const roles = input.value.split(",").map((r) => r.trim()).filter(Boolean);
      const self = u.id === me && !roles.includes("admin") ? " You are removing your own admin role: you will be signed out." : "";
      change(u, { roles }, `Set the roles of ${u.email} to ${roles.length ? roles.join(", ") : "none"}? Tokens issued before stop working.${self}`, form.querySelector("button"));
    });
    return form;
  };
  root.append(
    h("h1", {}, "Users"),
    table(
      [
        { title: "Email", cell: (u) => [u.email, u.id === me ? h("span", { class: "hint" }, " (you)") : null] },
        { title: "Verified", cell: (u) => (u.email_verified ? "yes" : "no") },
        { title: "Roles", cell: rolesEditor },
        { title: "Status", cell: (u) => (u.disabled ? h("span", { class: "badge st-error" }, "disabled") : h("span", { class: "badge st-ok" }, "active")) },
        { title: "Created", cell: (u) => fmtTime(u.created_at) },
        {
          title: "",
          cell: (u) =>
            u.disabled
              ? button("Enable", (ev) => change(u, { disabled: false }, `Enable ${u.email}? They can sign in again.`, ev.currentTarget), "small")
              : button("Disable", (ev) => change(u, { disabled: true }, `Disable ${u.email}? Their sessions end at once.${u.id === me ? " That is you: you will be signed out." : ""}`, ev.currentTarget), "small danger"),
        },
      ],
      users,
      { empty: after ? "No more users." : "No users yet.", rowProps: (u) => ({ "data-user": u.email }) },
    ),
    h(
      "div",
      { class: "actions" },
      after ? h("a", { class: "btn", href: "#/users" }, "First page") : null,
      users.length === limit ? h("a", { class: "btn", href: link(["users"], { after: users[users.length - 1].email }) }, "Next page") : null,
    ),
  );
}

// ---------------------------------------------------------------- start

window.addEventListener("hashchange", route);
if (session) start();
else showSignIn();
