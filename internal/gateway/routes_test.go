package gateway_test

import (
	"context"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/apierror"
	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/gateway"
	"github.com/hostless/hostless/internal/route"
)

// fakeInvoker answers every call with a fixed response and remembers what
// it was asked; its functions have the CORS policies in cors.
type fakeInvoker struct {
	mu    sync.Mutex
	calls []fakeCall
	cors  map[string]*function.CORS // by function name
	resp  *function.Response
	// lookupErr, when set, is every Lookup's error (the store is down).
	lookupErr error
}

type fakeCall struct {
	name, alias string
	version     int
	req         *function.Request
}

func (f *fakeInvoker) record(name, alias string, version int, req *function.Request) (*function.Response, *function.Invocation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.cors[name]; !ok {
		return nil, nil, function.ErrNotFound
	}
	f.calls = append(f.calls, fakeCall{name, alias, version, req})
	return f.resp, &function.Invocation{ID: "inv1"}, nil
}

func (f *fakeInvoker) Invoke(_ context.Context, _, name, _ string, req *function.Request) (*function.Response, *function.Invocation, error) {
	return f.record(name, "", 0, req)
}

func (f *fakeInvoker) InvokeVersion(_ context.Context, _, name string, version int, _ string, req *function.Request) (*function.Response, *function.Invocation, error) {
	return f.record(name, "", version, req)
}

func (f *fakeInvoker) InvokeAlias(_ context.Context, _, name, alias, _ string, req *function.Request) (*function.Response, *function.Invocation, error) {
	return f.record(name, alias, 0, req)
}

func (f *fakeInvoker) Lookup(_ context.Context, _, name, _ string, _ int) (*function.Version, error) {
	if f.lookupErr != nil {
		return nil, f.lookupErr
	}
	c, ok := f.cors[name]
	if !ok {
		return nil, function.ErrNotFound
	}
	return &function.Version{Function: name, Spec: function.Spec{CORS: c}}, nil
}

func (f *fakeInvoker) last() (fakeCall, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		return fakeCall{}, 0
	}
	return f.calls[len(f.calls)-1], len(f.calls)
}

// routedServer mounts a gateway as the app does: function URLs, then routes
// in front of the platform's 404.
func routedServer(t *testing.T, inv *fakeInvoker, routes []route.Route) (*gateway.Gateway, *httptest.Server) {
	t.Helper()
	g := gateway.New(inv, slog.New(slog.DiscardHandler), 0)
	table, err := route.Compile(routes)
	if err != nil {
		t.Fatal(err)
	}
	g.SetRoutes(table)
	mux := http.NewServeMux()
	g.Register(mux)
	mux.Handle("/", g.Routed(apierror.Wrap(nil, func(w http.ResponseWriter, r *http.Request) error {
		return apierror.NotFound("not_found", "nothing at %s", r.URL.Path)
	})))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return g, srv
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	inv := &fakeInvoker{cors: map[string]*function.CORS{"users": nil, "files": nil},
		resp: &function.Response{Status: 200, Header: http.Header{"Content-Type": {"text/plain"}}, Body: []byte("ok")}}
	g, srv := routedServer(t, inv, []route.Route{
		{Method: "GET", Path: "/api/users/{id}", Function: "users"},
		{Path: "/files/{rest...}", Function: "files@live"},
		{Method: "POST", Path: "/api/users", Function: "users@3"},
		{Path: "/ghost", Function: "ghost"},
	})
	tests := []struct {
		name, method, target string
		status               int
		fn, alias            string
		version              int
		path, key            string
		params               map[string]string
	}{
		{"params", "GET", "/api/users/42?x=1", 200, "users", "", 0, "/api/users/42", "GET /api/users/{id}", map[string]string{"id": "42"}},
		{"rest and alias", "DELETE", "/files/a/b.txt", 200, "files", "live", 0, "/files/a/b.txt", "ANY /files/{rest...}", map[string]string{"rest": "a/b.txt"}},
		{"version", "POST", "/api/users", 200, "users", "", 3, "/api/users", "POST /api/users", nil},
		{"no route", "GET", "/nothing", 404, "", "", 0, "", "", nil},
		{"wrong method", "PUT", "/api/users/42", 404, "", "", 0, "", "", nil},
		{"function gone", "GET", "/ghost", 404, "", "", 0, "", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Not parallel: each case reads the invoker's last call.
			_, before := inv.last()
			req, _ := http.NewRequest(tt.method, srv.URL+tt.target, nil)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			call, n := inv.last()
			if tt.fn == "" {
				if n != before {
					t.Fatalf("invoked %+v", call)
				}
				return
			}
			if n != before+1 {
				t.Fatal("not invoked")
			}
			if call.name != tt.fn || call.alias != tt.alias || call.version != tt.version {
				t.Errorf("invoked %s alias %q version %d, want %s %q %d", call.name, call.alias, call.version, tt.fn, tt.alias, tt.version)
			}
			if call.req.Path != tt.path || call.req.RouteKey != tt.key || !maps.Equal(call.req.PathParams, tt.params) {
				t.Errorf("request path %q key %q params %v, want %q %q %v", call.req.Path, call.req.RouteKey, call.req.PathParams, tt.path, tt.key, tt.params)
			}
		})
	}

	// A new table replaces the old one whole.
	table, err := route.Compile([]route.Route{{Path: "/new", Function: "users"}})
	if err != nil {
		t.Fatal(err)
	}
	g.SetRoutes(table)
	for target, want := range map[string]int{"/new": 200, "/api/users/42": 404} {
		resp, err := srv.Client().Get(srv.URL + target)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("after the swap, GET %s: %d, want %d", target, resp.StatusCode, want)
		}
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	app := "https://app.example.com"
	strict := &function.CORS{Origins: []string{app}, Methods: []string{"GET", "PUT"}, Headers: []string{"Content-Type", "X-Token"},
		ExposeHeaders: []string{"X-Total"}, Credentials: true, MaxAge: function.Duration(10 * time.Minute)}
	open := &function.CORS{Origins: []string{"*"}, Headers: []string{"*"}}
	inv := &fakeInvoker{cors: map[string]*function.CORS{"strict": strict, "plain": nil, "open": open},
		resp: &function.Response{Status: 200, Header: http.Header{
			"Access-Control-Allow-Origin": {"https://evil.example"}, // the policy wins over the function
			"Vary":                        {"Accept"},
		}, Body: []byte("ok")}}
	_, srv := routedServer(t, inv, []route.Route{
		{Path: "/r/strict", Function: "strict"}, // the function's policy
		{Path: "/r/own", Function: "plain", CORS: open},
		{Path: "/r/none", Function: "plain"},
		{Method: "GET", Path: "/r/get", Function: "strict"},
	})
	preflight := func(origin, method, headers string) http.Header {
		h := http.Header{"Origin": {origin}, "Access-Control-Request-Method": {method}}
		if headers != "" {
			h.Set("Access-Control-Request-Headers", headers)
		}
		return h
	}
	tests := []struct {
		name, method, target string
		header               http.Header
		status               int
		invoked              bool
		want                 map[string]string // "" means absent
	}{
		{"preflight", "OPTIONS", "/r/strict", preflight(app, "PUT", "content-type, x-token"), 204, false, map[string]string{
			"Access-Control-Allow-Origin": app, "Access-Control-Allow-Credentials": "true", "Access-Control-Allow-Methods": "GET, PUT",
			"Access-Control-Allow-Headers": "Content-Type, X-Token", "Access-Control-Max-Age": "600", "Vary": "Origin"}},
		{"preflight for a GET route", "OPTIONS", "/r/get", preflight(app, "GET", ""), 204, false, map[string]string{
			"Access-Control-Allow-Origin": app}},
		{"preflight for a method no route has", "OPTIONS", "/r/get", preflight(app, "PUT", ""), 404, false, nil},
		{"preflight on a function URL", "OPTIONS", "/fn/strict/x", preflight(app, "GET", ""), 204, false, map[string]string{
			"Access-Control-Allow-Origin": app, "Access-Control-Allow-Headers": "Content-Type, X-Token"}},
		{"preflight from another origin", "OPTIONS", "/r/strict", preflight("https://evil.example", "GET", ""), 403, false, map[string]string{
			"Access-Control-Allow-Origin": ""}},
		{"preflight for a method not allowed", "OPTIONS", "/r/strict", preflight(app, "DELETE", ""), 403, false, map[string]string{
			"Access-Control-Allow-Origin": ""}},
		{"preflight for a header not allowed", "OPTIONS", "/r/strict", preflight(app, "GET", "X-Other"), 403, false, nil},
		{"preflight, any origin, any header", "OPTIONS", "/r/own", preflight("https://x.example", "POST", "X-Anything"), 204, false, map[string]string{
			"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "GET, HEAD, POST", "Access-Control-Allow-Headers": "X-Anything",
			"Access-Control-Allow-Credentials": "", "Access-Control-Max-Age": ""}},
		{"route policy wins over none", "OPTIONS", "/r/own", preflight(app, "GET", ""), 204, false, nil},
		{"no policy: OPTIONS reaches the function", "OPTIONS", "/r/none", preflight(app, "GET", ""), 200, true, map[string]string{
			"Access-Control-Allow-Origin": "https://evil.example"}},
		{"actual request", "GET", "/r/strict", http.Header{"Origin": {app}}, 200, true, map[string]string{
			"Access-Control-Allow-Origin": app, "Access-Control-Allow-Credentials": "true", "Access-Control-Expose-Headers": "X-Total"}},
		{"actual request, any origin", "GET", "/r/own", http.Header{"Origin": {"https://x.example"}}, 200, true, map[string]string{
			"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Credentials": ""}},
		{"actual request from another origin", "GET", "/fn/strict", http.Header{"Origin": {"https://evil.example"}}, 200, true, map[string]string{
			"Access-Control-Allow-Origin": "", "Vary": "Accept"}},
		{"OPTIONS without a request method is no preflight", "OPTIONS", "/r/strict", http.Header{"Origin": {app}}, 200, true, map[string]string{
			"Access-Control-Allow-Origin": app}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, before := inv.last()
			req, _ := http.NewRequest(tt.method, srv.URL+tt.target, nil)
			req.Header = tt.header
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if _, n := inv.last(); (n > before) != tt.invoked {
				t.Errorf("invoked: %v, want %v", n > before, tt.invoked)
			}
			for k, want := range tt.want {
				got := strings.Join(resp.Header.Values(k), ", ")
				if k == "Vary" {
					if !strings.Contains(got, want) || (tt.invoked && !strings.Contains(got, "Origin")) {
						t.Errorf("Vary %q, want it to hold %q and Origin", got, want)
					}
					continue
				}
				if got != want {
					t.Errorf("%s: %q, want %q", k, got, want)
				}
			}
		})
	}
}

// A preflight is answered by the policy of the route that serves the asked
// method alone: a route without one never borrows another's.
func TestPreflightOwnRouteOnly(t *testing.T) {
	t.Parallel()
	evil := &function.CORS{Origins: []string{"https://evil.example"}, Methods: []string{"DELETE"}, Credentials: true}
	inv := &fakeInvoker{cors: map[string]*function.CORS{"a": nil, "b": nil},
		resp: &function.Response{Status: 200, Body: []byte("ok")}}
	_, srv := routedServer(t, inv, []route.Route{
		{Method: "DELETE", Path: "/api/x", Function: "a"},
		{Path: "/api/{rest...}", Function: "b", CORS: evil},
	})
	req, _ := http.NewRequest(http.MethodOptions, srv.URL+"/api/x", nil)
	req.Header = http.Header{"Origin": {"https://evil.example"}, "Access-Control-Request-Method": {"DELETE"}}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight for a route without a policy: %d, Allow-Origin %q; want no CORS answer",
			resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	if _, n := inv.last(); n != 0 {
		t.Errorf("a function ran for the preflight")
	}
}

// Requests under the platform's paths never reach a route, whatever their
// method, even a catch-all's.
func TestReservedPathsNeverRouted(t *testing.T) {
	t.Parallel()
	inv := &fakeInvoker{cors: map[string]*function.CORS{"all": nil}, resp: &function.Response{Status: 200, Body: []byte("caught")}}
	_, srv := routedServer(t, inv, []route.Route{{Path: "/{rest...}", Function: "all"}})
	for _, c := range []struct{ method, path string }{
		{"POST", "/healthz"}, {"GET", "/metrics"}, {"POST", "/readyz"}, {"GET", "/2015-03-31/functions/x/invocations"},
		{"GET", "/fn"}, {"GET", "/v1/anything"},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
		req.Header.Set("Authorization", "Bearer admin-key")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("%s %s reached the catch-all route", c.method, c.path)
		}
	}
	if _, n := inv.last(); n != 0 {
		t.Errorf("the catch-all function ran %d times", n)
	}
	// Other paths do reach it.
	resp, err := srv.Client().Get(srv.URL + "/anything/else")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /anything/else: %d, want the catch-all's 200", resp.StatusCode)
	}
}
