package manifest

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/function"
)

func TestParseRoutes(t *testing.T) {
	t.Parallel()
	m, err := Parse([]byte(`functions:
  users:
    runtime: wasm
    code: users.wasm
    cors:
      origins: ["https://app.example.com"]
      methods: [GET, PUT]
      headers: [Content-Type]
      expose_headers: [X-Total]
      credentials: true
      max_age: 10m
routes:
  - method: GET
    path: /api/users/{id}
    function: users
  - path: /files/{rest...}
    host: api.example.com
    function: users@live
    cors: {origins: ["*"]}
  - {method: ANY, path: /v2/, function: users@3}
`), dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []function.Route{
		{Method: "GET", Path: "/api/users/{id}", Function: "users"},
		{Path: "/files/{rest...}", Host: "api.example.com", Function: "users@live", CORS: &function.CORS{Origins: []string{"*"}}},
		{Method: "ANY", Path: "/v2/", Function: "users@3"},
	}
	if !m.HasRoutes || !reflect.DeepEqual(m.Routes, want) {
		t.Errorf("routes %+v (HasRoutes %v), want %+v", m.Routes, m.HasRoutes, want)
	}
	cors := &function.CORS{Origins: []string{"https://app.example.com"}, Methods: []string{"GET", "PUT"}, Headers: []string{"Content-Type"},
		ExposeHeaders: []string{"X-Total"}, Credentials: true, MaxAge: function.Duration(10 * time.Minute)}
	if got := m.Functions["users"].Spec(placeholderCode).CORS; !reflect.DeepEqual(got, cors) {
		t.Errorf("function cors %+v, want %+v", got, cors)
	}

	// No routes key: the server's table is left alone; an empty one empties it.
	m, err = Parse([]byte("functions:\n  a: {runtime: wasm, code: a.wasm}\n"), dir)
	if err != nil || m.HasRoutes {
		t.Fatalf("no routes key: HasRoutes %v, err %v", m != nil && m.HasRoutes, err)
	}
	m, err = Parse([]byte("functions:\n  a: {runtime: wasm, code: a.wasm}\nroutes:\n"), dir)
	if err != nil || !m.HasRoutes || m.Routes == nil || len(m.Routes) != 0 {
		t.Fatalf("empty routes: %+v, err %v", m, err)
	}
}

func TestParseRouteErrors(t *testing.T) {
	t.Parallel()
	const fns = "functions:\n  a: {runtime: wasm, code: a.wasm}\n"
	tests := []parseErrorCase{
		{"not a list", fns + "routes: {path: /a}\n", []string{"routes must be a list", "(line 3)"}},
		{"unknown field", fns + "routes:\n  - {path: /a, function: a, authz: user}\n", []string{"unknown field routes[0].authz", "(line 4)"}},
		{"bad auth", fns + "routes:\n  - {path: /a, function: a, auth: root}\n", []string{"routes[0].auth \"root\"", "(line 4)"}},
		{"no path", fns + "routes:\n  - {path: /a, function: a}\n  - {function: a}\n", []string{"routes[1].path is required", "(line 5)"}},
		{"reserved", fns + "routes:\n  - function: a\n    path: /v1/x\n", []string{"routes[0].path \"/v1/x\" is under /v1", "(line 5)"}},
		{"bad method", fns + "routes:\n  - {method: get, path: /a, function: a}\n", []string{"routes[0].method \"get\"", "(line 4)"}},
		{"bad function", fns + "routes:\n  - {path: /a, function: A}\n", []string{"routes[0].function \"A\""}},
		{"bad host", fns + "routes:\n  - {path: /a, function: a, host: \"x.com:80\"}\n", []string{"routes[0].host"}},
		{"path too long", fns + "routes:\n  - {path: /" + strings.Repeat("a", 1100) + ", function: a}\n", []string{"routes[0].path is 1101 bytes (at most 1024)"}},
		{"path a list", fns + "routes:\n  - {path: [/a], function: a}\n", []string{"routes[0].path must be a single value"}},
		{"entry not a mapping", fns + "routes:\n  - /a\n", []string{"routes[0] must be a mapping (method, path, host, function, cors, auth)", "(line 4)"}},
		{"empty entry", fns + "routes:\n  -\n", []string{"routes[0] must be a mapping with a path and a function"}},
		{"twice", fns + "routes: []\nroutes: []\n", []string{`field "routes" appears twice`}},
		{"route cors star with credentials", fns + "routes:\n  - path: /a\n    function: a\n    cors: {origins: ['*'], credentials: true}\n",
			[]string{"routes[0].cors.origins \"*\" can't go with cors.credentials: true", "(line 6)"}},
		{"route cors credentials not a bool", fns + "routes:\n  - path: /a\n    function: a\n    cors: {origins: ['*'], credentials: yes please}\n",
			[]string{"routes[0].cors.credentials \"yes please\" must be true or false"}},
		{"route cors unknown", fns + "routes:\n  - {path: /a, function: a, cors: {origin: x}}\n", []string{"unknown field routes[0].cors.origin"}},
		{"function cors star with credentials", "functions:\n  a:\n    runtime: wasm\n    code: a.wasm\n    cors:\n      origins: ['*']\n      credentials: true\n",
			[]string{`function "a": cors.origins "*" can't go with cors.credentials: true`, "(line 6)"}},
		{"function cors bad max_age", "functions:\n  a:\n    runtime: wasm\n    code: a.wasm\n    cors: {origins: ['*'], max_age: forever}\n",
			[]string{`cors.max_age "forever" is not a duration`}},
	}
	checkParseErrors(t, tests)
}

func TestParseLimits(t *testing.T) {
	t.Parallel()
	m, err := Parse([]byte("functions:\n  a:\n    runtime: wasm\n    code: a.wasm\n    limits: {request: 256KB, response: 6MB}\n"), dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Functions["a"].Spec(placeholderCode).Limits; got != (function.Limits{Request: 256 << 10, Response: 6 << 20}) {
		t.Errorf("limits %+v", got)
	}
	for yaml, want := range map[string]string{
		"limits: {request: lots}": `limits.request "lots" is not a size such as 6MB`,
		"limits: {response: 2GB}": "limits.response 2147483648 bytes is out of range",
		"limits: {requests: 1MB}": "unknown field limits.requests",
		"limits: 6MB":             "limits must be a mapping",
	} {
		_, err := Parse([]byte("functions:\n  a:\n    runtime: wasm\n    code: a.wasm\n    "+yaml+"\n"), dir)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "(line 5)") {
			t.Errorf("%s: %v, want %q on line 5", yaml, err, want)
		}
	}
}

func TestParseTooManyRoutes(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("functions:\n  a: {runtime: wasm, code: a.wasm}\nroutes:\n")
	for range function.MaxRoutes + 1 {
		b.WriteString("  - {path: /a, function: a}\n")
	}
	_, err := Parse([]byte(b.String()), dir)
	if err == nil || !strings.Contains(err.Error(), "routes has 1001 entries (at most 1000)") {
		t.Fatalf("Parse: %v", err)
	}
}

func TestParseAuth(t *testing.T) {
	m, err := Parse([]byte("functions:\n  a:\n    runtime: wasm\n    code: a.wasm\n    auth: user\nroutes:\n  - {path: /ops, function: a, auth: \"key:ops:run\"}\n"), "/app")
	if err != nil {
		t.Fatal(err)
	}
	if f := m.Functions["a"]; f == nil || f.Auth != "user" || f.Spec("sha256:x").Auth != "user" {
		t.Fatalf("function auth = %+v", f)
	}
	if m.Routes[0].Auth != "key:ops:run" {
		t.Fatalf("route auth = %q", m.Routes[0].Auth)
	}
	_, err = Parse([]byte("functions:\n  a:\n    runtime: wasm\n    code: a.wasm\n    auth: everyone\n"), "/app")
	if err == nil || !strings.Contains(err.Error(), `auth: auth "everyone"`) || !strings.Contains(err.Error(), "line 5") {
		t.Fatalf("a bad function auth: %v", err)
	}
}
