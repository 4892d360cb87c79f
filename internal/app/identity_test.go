package app

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/function"
)

// TestFunctionIdentity drives auth modes through a real server: a function
// invoked by a signed-in user receives the verified identity and a token
// that acts as that user on the backend's APIs; forged identity headers
// never reach a function; user, admin and key:SCOPE modes refuse others,
// on function URLs and on routes.
func TestFunctionIdentity(t *testing.T) {
	t.Parallel()
	g := buildGuests(t)
	a := startApp(t, newConfig(t))
	a.deploy("whoami", g.env, function.Spec{Auth: function.AuthUser})
	a.deploy("open", g.env, function.Spec{})
	a.deploy("ops", g.env, function.Spec{Auth: "key:ops:run"})

	// A user signs up.
	resp, body := a.do("POST", "/v1/auth/signup", []byte(`{"email":"ann@example.com","password":"correct horse battery"}`),
		http.Header{"Content-Type": {"application/json"}})
	if resp.StatusCode != 201 {
		t.Fatalf("signup: %d %s", resp.StatusCode, body)
	}
	var tk struct {
		AccessToken string `json:"access_token"`
		User        struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	if err := json.Unmarshal(body, &tk); err != nil {
		t.Fatal(err)
	}
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

	resp, body = a.do("GET", "/fn/whoami/", nil, nil)
	if resp.StatusCode != 401 {
		t.Fatalf("a user function without a token: %d %s", resp.StatusCode, body)
	}
	resp, body = a.do("GET", "/fn/whoami/", nil, bearer("garbage"))
	if resp.StatusCode != 401 || !strings.Contains(string(body), "invalid_token") {
		t.Fatalf("a user function with a bad token: %d %s", resp.StatusCode, body)
	}
	h := bearer(tk.AccessToken)
	h.Set("X-Hostless-User-Id", "forged")
	h.Set("X-Hostless-User-Roles", "admin")
	resp, body = a.do("GET", "/fn/whoami/", nil, h)
	if resp.StatusCode != 200 {
		t.Fatalf("a user function with the user's token: %d %s", resp.StatusCode, body)
	}
	out := string(body)
	for _, want := range []string{"HTTP_X_HOSTLESS_CALLER=user", "HTTP_X_HOSTLESS_USER_ID=" + tk.User.ID, "HTTP_X_HOSTLESS_USER_EMAIL=ann@example.com"} {
		if !strings.Contains(out, want) {
			t.Errorf("the function's request lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "forged") || strings.Contains(out, "HTTP_X_HOSTLESS_USER_ROLES") {
		t.Errorf("a forged identity header reached the function:\n%s", out)
	}
	// The token the function got acts as the user on the backend.
	m := regexp.MustCompile(`HTTP_X_HOSTLESS_TOKEN=(\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no token for the function:\n%s", out)
	}
	if m[1] == tk.AccessToken {
		t.Fatal("the function got the caller's own token, not one of its own")
	}
	resp, body = a.do("GET", "/v1/auth/me", nil, bearer(m[1]))
	if resp.StatusCode != 200 || !strings.Contains(string(body), tk.User.ID) {
		t.Fatalf("the function's token on /v1/auth/me: %d %s", resp.StatusCode, body)
	}
	// ... but it is not the admin's, whatever the caller was.
	resp, _ = a.do("GET", "/v1/users", nil, bearer(m[1]))
	if resp.StatusCode != 403 {
		t.Fatalf("the function's token on an admin API: %d", resp.StatusCode)
	}

	// A wasm function reaches the platform's API through the SDK's
	// transport (http://hostless.internal), with no allowed_hosts, as the
	// user who called it.
	a.deploy("sdkfn", g.sdk, function.Spec{Contract: function.ContractSDK})
	resp, body = a.do("GET", "/fn/sdkfn/platform?path=/v1/auth/me", nil, bearer(tk.AccessToken))
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "200 ") || !strings.Contains(string(body), tk.User.ID) {
		t.Fatalf("a wasm function calling the platform: %d %s", resp.StatusCode, body)
	}
	if resp, body := a.do("GET", "/fn/sdkfn/fetch?url=http://127.0.0.1:1/", nil, nil); !strings.Contains(string(body), "allowed_hosts") {
		t.Fatalf("other hosts stay refused: %d %s", resp.StatusCode, body)
	}

	// A public function: anonymous callers pass, forged headers don't.
	resp, body = a.do("GET", "/fn/open/", nil, http.Header{"X-Hostless-User-Id": {"forged"}, "X-Hostless-Caller": {"admin"}})
	if resp.StatusCode != 200 || strings.Contains(string(body), "forged") || !strings.Contains(string(body), "HTTP_X_HOSTLESS_CALLER=anonymous") {
		t.Fatalf("a public function: %d %s", resp.StatusCode, body)
	}
	// Its token is the function's own: kind function.
	m = regexp.MustCompile(`HTTP_X_HOSTLESS_TOKEN=(\S+)`).FindStringSubmatch(string(body))
	if m == nil {
		t.Fatalf("no token for the public function:\n%s", body)
	}
	if resp, _ := a.do("GET", "/v1/auth/me", nil, bearer(m[1])); resp.StatusCode != 401 {
		t.Fatalf("a function's own token acts as a user: %d", resp.StatusCode)
	}

	// key:SCOPE: a user is refused, the admin key passes.
	if resp, _ := a.do("GET", "/fn/ops/", nil, bearer(tk.AccessToken)); resp.StatusCode != 403 {
		t.Fatalf("a key function called by a user: %d", resp.StatusCode)
	}
	if resp, body := a.do("GET", "/fn/ops/", nil, bearer(testKey)); resp.StatusCode != 200 || !strings.Contains(string(body), "HTTP_X_HOSTLESS_CALLER=admin") {
		t.Fatalf("a key function called by the admin: %d %s", resp.StatusCode, body)
	}

	// A route's own mode: admin over the public function.
	resp, body = a.do("PUT", "/v1/routes", []byte(`{"routes":[{"path":"/admin/{rest...}","function":"open","auth":"admin"},{"path":"/pub","function":"open"}]}`),
		http.Header{"Authorization": {"Bearer " + testKey}, "Content-Type": {"application/json"}})
	if resp.StatusCode != 200 {
		t.Fatalf("put routes: %d %s", resp.StatusCode, body)
	}
	if resp, _ := a.do("GET", "/admin/x", nil, bearer(tk.AccessToken)); resp.StatusCode != 403 {
		t.Fatalf("an admin route called by a user: %d", resp.StatusCode)
	}
	if resp, _ := a.do("GET", "/admin/x", nil, nil); resp.StatusCode != 401 {
		t.Fatalf("an admin route called by no one: %d", resp.StatusCode)
	}
	if resp, _ := a.do("GET", "/pub", nil, nil); resp.StatusCode != 200 {
		t.Fatalf("a public route: %d", resp.StatusCode)
	}
	resp, body = a.do("PUT", "/v1/routes", []byte(`{"routes":[{"path":"/x","function":"open","auth":"root"}]}`),
		http.Header{"Authorization": {"Bearer " + testKey}, "Content-Type": {"application/json"}})
	if resp.StatusCode != 400 || !strings.Contains(string(body), "auth") {
		t.Fatalf("a route with a bad auth mode: %d %s", resp.StatusCode, body)
	}
}

// TestDocumentChangesTriggerFunctions: a function with an events trigger
// on db.todos.created runs when a document is created, with the document.
func TestDocumentChangesTriggerFunctions(t *testing.T) {
	t.Parallel()
	g := buildGuests(t)
	a := startApp(t, newConfig(t))
	a.deploy("ondb", g.cgi, function.Spec{Triggers: []function.Trigger{{Type: function.TriggerEvents, Events: []string{"db.todos.created"}}}})
	admin := http.Header{"Authorization": {"Bearer " + testKey}}
	if resp, body := a.do("PUT", "/v1/collections/todos", []byte(`{}`), admin); resp.StatusCode != 201 {
		t.Fatalf("put collection: %d %s", resp.StatusCode, body)
	}
	// Platform events are at most once, and the trigger subscribes a
	// moment after the deploy: create until one reaches the function.
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; ; i++ {
		if resp, body := a.do("POST", "/v1/db/todos", fmt.Appendf(nil, `{"id":"t%d","title":"milk"}`, i), admin); resp.StatusCode != 201 {
			t.Fatalf("create: %d %s", resp.StatusCode, body)
		}
		var list struct {
			Invocations []json.RawMessage `json:"invocations"`
		}
		a.getJSON("/v1/invocations?function=ondb", &list)
		if len(list.Invocations) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no document event ran the function in 20s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	recs := waitRecords(t, a, "ondb", 1, 10*time.Second)
	if recs[0].Trigger != function.TriggerEvents || recs[0].Status != function.StatusOK {
		t.Fatalf("record %+v", recs[0])
	}
	if logs := logsOf(a, recs[0].ID); !strings.Contains(logs, "cgi POST") {
		t.Errorf("logs: %s", logs)
	}
}

// TestRecursionStops: a function that calls itself through the platform
// for ever is stopped at the call depth limit with a clear error, and
// every level of the chain answers.
func TestRecursionStops(t *testing.T) {
	t.Parallel()
	g := buildGuests(t)
	a := startApp(t, newConfig(t))
	a.deploy("loop", g.sdk, function.Spec{Contract: function.ContractSDK})
	resp, body := a.do("GET", "/fn/loop/recurse?fn=loop", nil, http.Header{"X-Hostless-Call-Depth": {"0"}})
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	out := string(body)
	if !strings.Contains(out, "508") || !strings.Contains(out, "call_depth_exceeded") {
		t.Fatalf("the chain didn't end at the limit: %s", out)
	}
	if n := strings.Count(out, "depth="); n != function.MaxCallDepth+1 {
		t.Fatalf("%d levels ran, want %d (the caller's and %d calls): %s", n, function.MaxCallDepth+1, function.MaxCallDepth, out)
	}
	if !strings.Contains(out, fmt.Sprintf("depth=%d ->", function.MaxCallDepth)) {
		t.Fatalf("no level at depth %d: %s", function.MaxCallDepth, out)
	}
}
