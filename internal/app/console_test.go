package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/hostless/hostless/internal/client"
	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/wasmtest"
)

// TestConsole drives the web console in headless Chromium as an admin
// would, against the real app: a user without the admin role is turned
// away; the admin signs in through the form, opens a function, moves its
// canary's weight, sees an invocation made from Go appear, reads its logs,
// sees the chart's count go up and a log line arrive on the live tail, and
// signs out. It fails on any JavaScript exception or CSP violation.
//
// It runs when HOSTLESS_TEST_CHROMIUM names a Chromium binary (CI sets
// /usr/bin/chromium). Screenshots go to $HOSTLESS_TEST_ARTIFACTS/console
// when that is set, else to the test's temporary directory.
func TestConsole(t *testing.T) {
	chromium := os.Getenv("HOSTLESS_TEST_CHROMIUM")
	if chromium == "" {
		t.Skip("HOSTLESS_TEST_CHROMIUM is unset: set it to a Chromium binary (CI uses /usr/bin/chromium) to drive the console in a browser")
	}
	a := startApp(t, newConfig(t))
	bg := context.Background()

	// A function with two versions: live serves v1, v2 takes 10% as a canary.
	spec := function.Spec{Contract: function.ContractSDK}
	res := a.deploy("hello", wasmtest.Build(t, "examples/hello", "./hello", true), spec)
	spec = res.Version.Spec
	spec.Env = map[string]string{"GREETING": "Hi"}
	if _, err := a.c.PutCanary(bg, "hello", spec, 10); err != nil {
		t.Fatal(err)
	}
	invoke := func(name string) function.Invocation {
		t.Helper()
		resp, body := a.do("GET", "/fn/hello?name="+name, nil, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("call hello: %d %s", resp.StatusCode, body)
		}
		return a.record(resp.Header.Get("X-Hostless-Invocation-Id")) // stored: the console can list it
	}
	invoke("first")

	const adminPass, devPass = "console-admin-Pa55-word", "console-dev-Pa55-word"
	if _, err := a.c.CreateUser(bg, "admin@example.com", adminPass, []string{"admin"}); err != nil {
		t.Fatal(err)
	}
	dev, err := a.c.CreateUser(bg, "dev@example.com", devPass, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A document whose text looks like markup, and an object, for the browsers.
	if _, err := a.c.PutCollection(bg, "todos", client.CollectionSpec{Indexes: []string{"owner"}}); err != nil {
		t.Fatal(err)
	}
	const markup = `<img src=x id=injected onerror="document.title='pwned'">`
	body, _ := json.Marshal(map[string]any{"id": "t1", "title": markup, "owner": "u1"})
	if resp, b := a.do("POST", "/v1/db/todos", body, authHeader(testKey)); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create a document: %d %s", resp.StatusCode, b)
	}
	if err := a.c.CreateBucket(bg, "uploads"); err != nil {
		t.Fatal(err)
	}
	h := authHeader(testKey)
	h.Set("Content-Type", "text/plain")
	if resp, b := a.do("PUT", "/v1/storage/uploads/notes/hello.txt", []byte("hello"), h); resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload an object: %d %s", resp.StatusCode, b)
	}

	shots := os.Getenv("HOSTLESS_TEST_ARTIFACTS")
	if shots == "" {
		shots = t.TempDir()
	} else {
		shots = filepath.Join(shots, "console")
		if err := os.MkdirAll(shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshots in %s", shots)

	var (
		mu       sync.Mutex
		problems []string
	)
	ctx := newBrowser(t, chromium, func(ev any) {
		var p string
		switch ev := ev.(type) {
		case *cdpruntime.EventExceptionThrown:
			p = "exception: " + ev.ExceptionDetails.Text
			if ex := ev.ExceptionDetails.Exception; ex != nil {
				p += " " + ex.Description
			}
		case *cdplog.EventEntryAdded:
			// Failed API calls are logged as errors too; those the test
			// causes are expected. A CSP violation never is.
			if strings.Contains(ev.Entry.Text, "Content Security Policy") {
				p = "CSP: " + ev.Entry.Text
			} else if ev.Entry.Level == cdplog.EntryLevelError {
				t.Logf("browser: %s %s", ev.Entry.Text, ev.Entry.URL)
			}
		}
		if p != "" {
			mu.Lock()
			problems = append(problems, p)
			mu.Unlock()
		}
	})
	if err := chromedp.Do(ctx, chromedp.Navigate(a.base+"/console/")); err != nil {
		t.Fatalf("open the console: %v", err)
	}

	shot := func(name string) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Logf("screenshot %s: %v", name, err)
			return
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Error(err)
		}
	}
	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			shot("failed")
			t.Fatalf("%s: %v", what, err)
		}
	}
	eval := func(expr string) string {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		v, err := chromedp.Run(sctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		return v
	}
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	// hasText waits until the element sel holds text.
	hasText := func(sel, text string) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](fmt.Sprintf(`(document.querySelector(%s)?.textContent || "").includes(%s)`, jsString(sel), jsString(text)),
			chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(10*time.Second))
	}

	// A user without the admin role signs in and is told why that isn't enough.
	step("sign in without the admin role",
		chromedp.WaitVisible(css("#login-email")),
		chromedp.SendKeys(css("#login-email"), "dev@example.com"),
		chromedp.SendKeys(css("#login-password"), devPass),
		chromedp.Click(css("#login-submit")),
		hasText(".signin-status", "needs the admin role"),
	)
	shot("01-not-an-admin")
	if got := eval(`String(sessionStorage.length)`); got != "0" {
		t.Errorf("a refused sign-in kept a session: %s items", got)
	}

	// The admin signs in: the token stays in sessionStorage, never in localStorage.
	step("sign in as the admin",
		chromedp.SetValue(css("#login-email"), "admin@example.com"),
		chromedp.SetValue(css("#login-password"), adminPass),
		chromedp.Click(css("#login-submit")),
		chromedp.WaitVisible(css(`tr[data-function="hello"]`)),
		hasText("#who", "admin@example.com"),
	)
	shot("02-functions")
	if got := eval(`JSON.parse(sessionStorage.getItem("hostless.console.session")).kind + " " + String(JSON.stringify(localStorage).includes("eyJ"))`); got != "user false" {
		t.Errorf("session storage: %q, want a user session and no token in localStorage", got)
	}

	// An access token near its expiry is refreshed before the next call,
	// and the spent refresh token is replaced.
	const session = `JSON.parse(sessionStorage.getItem("hostless.console.session"))`
	spent := eval(session + `.refresh`)
	eval(`(() => { const s = ` + session + `; s.expires = Date.now(); sessionStorage.setItem("hostless.console.session", JSON.stringify(s)); return "" })()`)
	step("refresh the access token",
		chromedp.Reload(),
		chromedp.WaitVisible(css(`tr[data-function="hello"]`)),
	)
	if fresh := eval(session + `.refresh`); fresh == spent || eval(session+`.expires > Date.now() + 60000 ? "later" : "now"`) != "later" {
		t.Errorf("the session was not refreshed: refresh token %q (was %q)", fresh, spent)
	}

	// The function's page: its configuration, aliases and versions; the
	// canary's weight moves from 10% to 50% after a confirmation.
	step("open the function",
		chromedp.Click(css(`tr[data-function="hello"] a`)),
		hasText("#function-name", "hello"),
		hasText("main", "Configuration (v1)"),
		hasText(`tr[data-alias="live"]`, "v2 at 10%"),
		chromedp.SetValue(css(`form[data-alias="live"] input[name="weight"]`), "50"),
		chromedp.Click(css(`form[data-alias="live"] button[type="submit"]`)),
		chromedp.WaitVisible(css("#confirm-ok")),
	)
	shot("03-confirm-weight")
	step("confirm the weight",
		chromedp.Click(css("#confirm-ok")),
		hasText(`tr[data-alias="live"]`, "v2 at 50%"),
	)
	shot("04-function")
	if al, err := a.c.GetAlias(bg, "hello", "live"); err != nil || al.CanaryVersion != 2 || al.CanaryWeight != 50 {
		t.Errorf("live after the console's change: %+v, %v; want v2 at 50%%", al, err)
	}
	// Roll back: the canary is dropped and v1 serves alone.
	step("roll back",
		chromedp.Click(css(`.actions button.danger`)),
		chromedp.Click(css("#confirm-ok")),
		hasText(".notice", "Rolled back: live serves v1"),
		hasText(`tr[data-alias="live"]`, "—"),
	)
	if al, err := a.c.GetAlias(bg, "hello", "live"); err != nil || al.Version != 1 || al.CanaryVersion != 0 {
		t.Errorf("live after the console's rollback: %+v, %v; want v1 alone", al, err)
	}

	// The chart's count before a call.
	step("open the metrics",
		chromedp.Click(css(`header nav a[data-page="metrics"]`)),
		chromedp.WaitVisible(css(`figure[data-chart="invocations"]`)),
		chromedp.WaitVisible(css(`figure[data-chart="duration"] polyline, figure[data-chart="duration"] circle`)),
	)
	before, err := strconv.Atoi(eval(`document.querySelector('figure[data-chart="invocations"]').dataset.total`))
	if err != nil || before < 1 {
		t.Fatalf("invocations chart total before the call: %d, %v", before, err)
	}

	// An invocation made from Go appears in the list; its page has its logs.
	step("open the invocations", chromedp.Click(css(`header nav a[data-page="invocations"]`)), chromedp.WaitVisible(css("#inv-filters")))
	rec := invoke("console")
	id, start := rec.ID, "warm"
	if rec.Cold {
		start = "cold"
	}
	step("see the invocation",
		chromedp.Click(css("button.refresh")),
		chromedp.WaitVisible(css(`tr[data-id="`+id+`"]`)),
	)
	shot("05-invocations")
	step("filter the invocations",
		chromedp.SetValue(css(`#inv-filters select[name="status"]`), "error"),
		chromedp.Click(css(`#inv-filters button[type="submit"]`)),
		hasText("#invocations", "No invocations."),
		hasText("main", "of the newest"),
		chromedp.SetValue(css(`#inv-filters select[name="status"]`), "ok"),
		chromedp.SetValue(css(`#inv-filters select[name="start"]`), start),
		chromedp.Click(css(`#inv-filters button[type="submit"]`)),
		chromedp.WaitVisible(css(`tr[data-id="`+id+`"]`)),
	)
	step("read its logs",
		chromedp.Click(css(`tr[data-id="`+id+`"] a.inv-link`)),
		hasText("h1", id),
		hasText("#invocation-logs", "greeting console"),
	)
	shot("06-invocation")

	// The chart counts it.
	step("see the chart change",
		chromedp.Click(css(`header nav a[data-page="metrics"]`)),
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.querySelector('figure[data-chart="invocations"]')?.dataset.total === "%d"`, before+1),
			chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(10*time.Second)),
	)
	shot("07-metrics")

	// The live tail shows a line as it is written.
	step("follow the logs",
		chromedp.Click(css(`header nav a[data-page="logs"]`)),
		hasText("#tail-state", "live"),
		hasText("#tail", "greeting console"), // the newest lines come first
	)
	invoke("tail")
	step("see a new line", hasText("#tail", "greeting tail"))
	shot("08-live-logs")

	// Usage, the database, storage and users.
	step("see the usage",
		chromedp.Click(css(`header nav a[data-page="usage"]`)),
		hasText(`tr[data-function="hello"]`, strconv.Itoa(before+2)),
		hasText(`tr[data-function="Total"]`, "$"),
		hasText(`#usage-report tr[data-cost="here"]`, "$"),
		hasText(`#usage-report tr[data-cost="always-on"]`, "1 server"),
	)
	shot("09-usage")
	step("browse the database",
		chromedp.Click(css(`header nav a[data-page="db"]`)),
		chromedp.Click(css(`a[href="#/db/todos"]`)),
		chromedp.Click(css(`a[href="#/db/todos?doc=t1"]`)),
		hasText("#doc-view", `"title": "<img src=x id=injected onerror=`), // as JSON text
	)
	shot("10-database")
	if got := eval(`String(document.getElementById("injected")) + " " + document.title`); got != "null Hostless console" {
		t.Errorf("a document's text became markup: %s", got)
	}
	step("browse storage",
		chromedp.Click(css(`header nav a[data-page="storage"]`)),
		chromedp.Click(css(`a[href="#/storage/uploads"]`)),
		hasText("main", "notes/hello.txt"),
		hasText("main", "text/plain"),
	)
	shot("11-storage")
	step("disable a user",
		chromedp.Click(css(`header nav a[data-page="users"]`)),
		chromedp.Click(css(`tr[data-user="dev@example.com"] button.danger`)),
		chromedp.Click(css("#confirm-ok")),
		hasText(`tr[data-user="dev@example.com"]`, "disabled"),
	)
	shot("12-users")
	if u, err := a.c.GetUser(bg, dev.ID); err != nil || !u.Disabled {
		t.Errorf("dev after the console disabled them: %+v, %v", u, err)
	}

	step("sign out",
		chromedp.Click(css(`header button.link`)),
		chromedp.WaitVisible(css("#login-email")),
	)
	if got := eval(`String(sessionStorage.length)`); got != "0" {
		t.Errorf("signed out with %s items in sessionStorage", got)
	}

	// The admin key opens the console too; a wrong one doesn't.
	step("sign in with a wrong key",
		chromedp.Click(css("main.signin summary")),
		chromedp.SendKeys(css("#key-input"), "not-the-key"),
		chromedp.Click(css("#key-submit")),
		hasText(".signin-status", "the key is not valid"),
	)
	step("sign in with the admin key",
		chromedp.SetValue(css("#key-input"), testKey),
		chromedp.Click(css("#key-submit")),
		hasText("#who", "admin key"),
		chromedp.WaitVisible(css(`tr[data-user="dev@example.com"]`)), // back where the admin signed out
		chromedp.Click(css(`header nav a[data-page="functions"]`)),
		chromedp.WaitVisible(css(`tr[data-function="hello"]`)),
	)

	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Errorf("browser: %s", p)
	}
}

// newBrowser starts headless Chromium for a test and stops it when the
// test ends. The flags keep it off the network it would otherwise call
// (updates, sync, QUIC probes) and let it run as root. listen sees every
// event of the tab from its start; it must return fast.
func newBrowser(t *testing.T, exec string, listen func(ev any)) context.Context {
	t.Helper()
	profile, err := os.MkdirTemp("", "hostless-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Chromium's helpers may still write for a moment after it exits.
		for range 50 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exec),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithListener(listen))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	return ctx
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
