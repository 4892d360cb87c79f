package app

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/api"
	"github.com/hostless/hostless/internal/function"
)

// TestRoutes drives routes and CORS through a real server: a route table is
// PUT whole, requests that match it reach the SDK guest with their path
// parameters (r.PathValue), preflights are answered by the gateway, and a
// bad table changes nothing.
func TestRoutes(t *testing.T) {
	t.Parallel()
	g := buildGuests(t)
	a := startApp(t, newConfig(t))
	const app = "https://app.example.com"
	fnCORS := &function.CORS{Origins: []string{app}, Methods: []string{"GET", "PUT"}, Headers: []string{"Content-Type"},
		ExposeHeaders: []string{"X-Total"}, Credentials: true, MaxAge: function.Duration(10 * time.Minute)}
	a.deploy("users", g.sdk, function.Spec{Contract: function.ContractSDK, CORS: fnCORS})

	table := `{"routes":[
		{"method":"GET","path":"/api/users/{id}","function":"users"},
		{"path":"/api/files/{rest...}","function":"users@live","cors":{"origins":["*"]}},
		{"method":"GET","host":"api.example.com","path":"/api/users/{id}","function":"users@1"}
	]}`
	admin := authHeader(testKey)
	jsonHeader := http.Header{"Authorization": admin["Authorization"], "Content-Type": {"application/json"}}
	preflight := func(origin, method string) http.Header {
		return http.Header{"Origin": {origin}, "Access-Control-Request-Method": {method}}
	}
	notInvoked := func(t *testing.T, resp *http.Response, _ []byte) {
		if id := resp.Header.Get("X-Hostless-Invocation-Id"); id != "" {
			t.Errorf("the gateway invoked the function (%s) for a preflight", id)
		}
	}
	groups := []struct {
		name      string
		scenarios []scenario
	}{
		{"refused tables", []scenario{
			{name: "no key", method: "PUT", path: "/v1/routes", body: []byte(table), status: 401, code: "unauthorized"},
			{name: "wrong key", method: "GET", path: "/v1/routes", headers: authHeader("nope"), status: 403, code: "forbidden"},
			{name: "conflict names both", method: "PUT", path: "/v1/routes", headers: jsonHeader, status: 400, code: "invalid_routes",
				body:     []byte(`{"routes":[{"path":"/a/{x}","function":"users"},{"path":"/ok","function":"users"},{"path":"/a/{y}","function":"users"}]}`),
				contains: []string{`routes[2]: \"/a/{y}\" conflicts with routes[0] \"/a/{x}\"`}},
			{name: "missing function", method: "PUT", path: "/v1/routes", headers: jsonHeader, status: 400, code: "invalid_routes",
				body: []byte(`{"routes":[{"path":"/a","function":"users"},{"path":"/b","function":"ghost"}]}`), contains: []string{`routes[1]: function \"ghost\" does not exist`}},
			{name: "missing alias", method: "PUT", path: "/v1/routes", headers: jsonHeader, status: 400, code: "invalid_routes",
				body: []byte(`{"routes":[{"path":"/a","function":"users@beta"}]}`), contains: []string{`alias \"beta\" of function \"users\" does not exist`}},
			{name: "missing version", method: "PUT", path: "/v1/routes", headers: jsonHeader, status: 400, code: "invalid_routes",
				body: []byte(`{"routes":[{"path":"/a","function":"users@9"}]}`), contains: []string{`version 9 of function \"users\" does not exist`}},
			{name: "reserved prefix", method: "PUT", path: "/v1/routes", headers: jsonHeader, status: 400, code: "invalid_routes",
				body: []byte(`{"routes":[{"path":"/fn/users","function":"users"}]}`), contains: []string{"routes[0]: path", "under /fn"}},
			{name: "star with credentials", method: "PUT", path: "/v1/routes", headers: jsonHeader, status: 400, code: "invalid_routes",
				body:     []byte(`{"routes":[{"path":"/a","function":"users","cors":{"origins":["*"],"credentials":true}}]}`),
				contains: []string{"credentials"}},
			{name: "unknown field", method: "PUT", path: "/v1/routes", headers: jsonHeader, status: 400, body: []byte(`{"routes":[{"path":"/a","function":"users","auth":"x"}]}`)},
			{name: "nothing stored", path: "/v1/routes", headers: admin, status: 200, contains: []string{`{"routes":[]}`}},
			{name: "nothing routed", path: "/api/users/42", status: 404, code: "not_found"},
		}},
		{"a table", []scenario{
			{name: "put", method: "PUT", path: "/v1/routes", headers: jsonHeader, body: []byte(table), status: 200, contains: []string{`"path":"/api/users/{id}"`}},
			{name: "get", path: "/v1/routes", headers: admin, status: 200,
				contains: []string{`"method":"GET","path":"/api/users/{id}","function":"users"`, `"host":"api.example.com"`, `"cors":{"origins":["*"]}`}},
			{name: "param reaches the guest", path: "/api/users/42", status: 200, contains: []string{"path=/api/users/42 id=42 rest="}},
			{name: "rest reaches the guest", method: "DELETE", path: "/api/files/a/b%20c.txt?x=1", status: 200,
				contains: []string{"path=/api/files/a/b c.txt id= rest=a/b c.txt"}},
			{name: "host route", path: "/api/users/7", headers: http.Header{"Host": {"api.example.com"}}, status: 200, contains: []string{"id=7"}},
			{name: "method not routed", method: "POST", path: "/api/users/42", status: 404, code: "not_found"},
			{name: "unrouted path", path: "/elsewhere", status: 404, code: "not_found"},
			{name: "platform paths still win", path: "/healthz", status: 200, contains: []string{"ok"}},
		}},
		{"CORS", []scenario{
			{name: "preflight under the function's policy", method: "OPTIONS", path: "/api/users/42", headers: preflight(app, "GET"), status: 204,
				header: map[string]string{"Access-Control-Allow-Origin": app, "Access-Control-Allow-Credentials": "true",
					"Access-Control-Allow-Methods": "GET, PUT", "Access-Control-Allow-Headers": "Content-Type", "Access-Control-Max-Age": "600"},
				check: notInvoked},
			{name: "preflight for a method no route serves", method: "OPTIONS", path: "/api/users/42", headers: preflight(app, "PUT"),
				status: 404, code: "not_found", check: notInvoked},
			{name: "preflight from another origin", method: "OPTIONS", path: "/api/users/42", headers: preflight("https://evil.example", "GET"),
				status: 403, code: "cors_forbidden", header: map[string]string{"Access-Control-Allow-Origin": ""}, check: notInvoked},
			{name: "preflight under the route's own policy", method: "OPTIONS", path: "/api/files/x", headers: preflight("https://evil.example", "POST"),
				status: 204, header: map[string]string{"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Credentials": ""}, check: notInvoked},
			{name: "preflight on the function URL", method: "OPTIONS", path: "/fn/users/x", headers: preflight(app, "GET"), status: 204,
				header: map[string]string{"Access-Control-Allow-Origin": app}, check: notInvoked},
			{name: "actual request", path: "/api/users/42", headers: http.Header{"Origin": {app}}, status: 200, contains: []string{"id=42"},
				header: map[string]string{"Access-Control-Allow-Origin": app, "Access-Control-Allow-Credentials": "true",
					"Access-Control-Expose-Headers": "X-Total", "Vary": "Origin"}},
			{name: "actual request from another origin", path: "/api/users/42", headers: http.Header{"Origin": {"https://evil.example"}},
				status: 200, header: map[string]string{"Access-Control-Allow-Origin": ""}},
		}},
	}
	for _, grp := range groups {
		t.Run(grp.name, func(t *testing.T) {
			for _, s := range grp.scenarios {
				t.Run(s.name, func(t *testing.T) { s.run(t, a) })
			}
		})
	}

	// A table stored by another node sharing the store is served here
	// within the reload interval.
	ctx := context.Background()
	if err := a.store.PutSetting(ctx, api.RoutesSetting, `{"routes":[{"path":"/api/other/{id}","function":"users"}]}`); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(routesReload + 5*time.Second)
	for {
		resp, body := a.do("GET", "/api/other/9", nil, nil)
		if resp.StatusCode == 200 && strings.Contains(string(body), "id=9") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stored table was not served within %s: %d %s", routesReload, resp.StatusCode, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if resp, _ := a.do("GET", "/api/users/42", nil, nil); resp.StatusCode != 404 {
		t.Fatalf("the old table still serves: %d", resp.StatusCode)
	}

	// An empty table removes every route.
	if _, err := a.c.PutRoutes(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if resp, _ := a.do("GET", "/api/other/9", nil, nil); resp.StatusCode != 404 {
		t.Fatalf("after emptying the table: %d", resp.StatusCode)
	}
	routes, err := a.c.GetRoutes(ctx)
	if err != nil || len(routes) != 0 {
		t.Fatalf("GetRoutes: %v %v", routes, err)
	}
}

// TestPayloadLimits checks a function's own payload limits at their edges:
// a request body over limits.request is refused with 413 before the
// function runs, a response over limits.response with 502, both naming the
// limit; a limit over the server's maximum is refused at deploy.
func TestPayloadLimits(t *testing.T) {
	t.Parallel()
	g := buildGuests(t)
	a := startApp(t, newConfig(t))
	a.deploy("small", g.sdk, function.Spec{Contract: function.ContractSDK, Limits: function.Limits{Request: 1 << 10, Response: 2 << 10}})
	ref, err := a.c.UploadArtifact(context.Background(), g.sdk)
	if err != nil {
		t.Fatal(err)
	}
	echoed := func(t *testing.T, _ *http.Response, body []byte) {
		if !strings.HasSuffix(string(body), strings.Repeat("x", 1024)) {
			t.Errorf("the body at the limit did not reach the function: %.80s", body)
		}
	}
	for _, s := range []scenario{
		{name: "request at the limit", method: "POST", path: "/fn/small/echo", body: []byte(strings.Repeat("x", 1024)), status: 201, check: echoed},
		{name: "request over the limit", method: "POST", path: "/fn/small/echo", body: []byte(strings.Repeat("x", 1025)), status: 413,
			code: "request_too_large", contains: []string{`function \"small\"'s limit of 1 KiB (limits.request)`}},
		{name: "response at the limit", path: "/fn/small/big?n=2048", status: 200},
		{name: "response over the limit", path: "/fn/small/big?n=2049", status: 502, code: "response_too_large",
			contains: []string{"2049 bytes (the function's limits.response is 2 KiB)"}},
		{name: "a limit over the server's", method: "PUT", path: "/v1/functions/big",
			headers: http.Header{"Authorization": {"Bearer " + testKey}, "Content-Type": {"application/json"}},
			body:    []byte(`{"runtime":"wasm","code":"` + ref + `","limits":{"request":104857600}}`), status: 400,
			contains: []string{"limits.request 100 MiB is more than the server's maximum of 6 MiB"}},
	} {
		t.Run(s.name, func(t *testing.T) { s.run(t, a) })
	}
}
