package route

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hostless/hostless/internal/function"
)

func TestMatch(t *testing.T) {
	t.Parallel()
	table, err := Compile([]Route{
		{Method: "GET", Path: "/api/users/{id}", Function: "users"},                             // 0
		{Method: "GET", Path: "/api/users/me", Function: "me"},                                  // 1: more specific than 0
		{Method: "POST", Path: "/api/users", Function: "create"},                                // 2
		{Path: "/api/users/{id}/files/{rest...}", Function: "files@live"},                       // 3: any method
		{Method: "GET", Host: "api.example.com", Path: "/api/users/{id}", Function: "hosted@2"}, // 4: host wins
		{Path: "/static/", Function: "static"},                                                  // 5: a subtree
		{Method: "ANY", Path: "/exact/{$}", Function: "exact"},                                  // 6
		{Method: "DELETE", Path: "/api/users/{id}", Function: "remove"},                         // 7
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, host, target string
		want                       int // route index, -1 for no match
		params                     map[string]string
	}{
		{"param", "GET", "h", "/api/users/42", 0, map[string]string{"id": "42"}},
		{"HEAD matches GET", "HEAD", "h", "/api/users/42", 0, map[string]string{"id": "42"}},
		{"literal beats param", "GET", "h", "/api/users/me", 1, nil},
		{"escaped param is decoded", "GET", "h", "/api/users/a%2Fb", 0, map[string]string{"id": "a/b"}},
		{"method", "POST", "h", "/api/users", 2, nil},
		{"other method", "DELETE", "h", "/api/users/7", 7, map[string]string{"id": "7"}},
		{"no route for the method", "PUT", "h", "/api/users/42", -1, nil},
		{"no route for the method on a literal", "GET", "h", "/api/users", -1, nil},
		{"rest", "PUT", "h", "/api/users/1/files/a/b/c.txt", 3, map[string]string{"id": "1", "rest": "a/b/c.txt"}},
		{"empty rest", "GET", "h", "/api/users/1/files/", 3, map[string]string{"id": "1", "rest": ""}},
		{"host route wins", "GET", "api.example.com", "/api/users/42", 4, map[string]string{"id": "42"}},
		{"host with port", "GET", "api.example.com:8080", "/api/users/42", 4, map[string]string{"id": "42"}},
		{"host in capitals", "GET", "API.Example.com", "/api/users/42", 4, map[string]string{"id": "42"}},
		{"host with a trailing dot", "GET", "api.example.com.:8080", "/api/users/42", 4, map[string]string{"id": "42"}},
		{"host routes are tried first", "GET", "api.example.com", "/api/users/me", 4, map[string]string{"id": "me"}},
		{"subtree", "GET", "h", "/static/css/site.css", 5, nil},
		{"subtree root", "GET", "h", "/static/", 5, nil},
		{"exact", "PATCH", "h", "/exact/", 6, nil},
		{"exact is exact", "GET", "h", "/exact/more", -1, nil},
		{"no route", "GET", "h", "/nothing", -1, nil},
		{"unclean path", "GET", "h", "/api/../api/users/42", -1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(tt.method, "http://"+tt.host+tt.target, nil)
			if strings.Contains(tt.target, "..") {
				r.URL.Path = tt.target // httptest cleans nothing, but be explicit
			}
			rt, params, ok := table.Match(r)
			if tt.want < 0 {
				if ok {
					t.Fatalf("matched %q, want no match", rt.Pattern())
				}
				return
			}
			if !ok {
				t.Fatalf("no match, want routes[%d] %q", tt.want, table.Routes()[tt.want].Pattern())
			}
			if rt != &table.Routes()[tt.want] {
				t.Fatalf("matched %q, want %q", rt.Pattern(), table.Routes()[tt.want].Pattern())
			}
			if !maps.Equal(params, tt.params) {
				t.Fatalf("params %v, want %v", params, tt.params)
			}
			if r.Pattern != "" {
				t.Fatalf("Match changed the caller's request: Pattern %q", r.Pattern)
			}
		})
	}
}

func TestMatchCatchAll(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"/", "/{rest...}"} {
		table, err := Compile([]Route{{Method: "GET", Path: "/a", Function: "a"}, {Path: path, Function: "all"}})
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, target := range []string{"/", "/b/c", "/a"} {
			rt, _, ok := table.Match(httptest.NewRequest("POST", target, nil))
			if !ok || rt.Function != "all" {
				t.Errorf("%s: POST %s matched %+v %v, want the catch-all route", path, target, rt, ok)
			}
		}
		if rt, _, ok := table.Match(httptest.NewRequest("GET", "/a", nil)); !ok || rt.Function != "a" {
			t.Errorf("%s: GET /a matched %+v %v", path, rt, ok)
		}
	}
}

func TestMatchEmpty(t *testing.T) {
	t.Parallel()
	var nilTable *Table
	empty, err := Compile(nil)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/x", nil)
	for _, tbl := range []*Table{nilTable, empty} {
		if _, _, ok := tbl.Match(r); ok {
			t.Fatal("an empty table matched")
		}
	}
}

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	ok := Route{Method: "GET", Path: "/ok", Function: "f"}
	tests := []struct {
		name   string
		routes []Route
		index  int
		other  int
		want   []string // fragments of the message
	}{
		{"same pattern twice", []Route{ok, {Method: "GET", Path: "/a/{x}", Function: "f"}, {Method: "GET", Path: "/a/{y}", Function: "g"}},
			2, 1, []string{"routes[2]", `"GET /a/{y}"`, `routes[1] "GET /a/{x}"`, "matches the same requests"}},
		{"neither more specific", []Route{{Path: "/a/{x}/c", Function: "f"}, ok, {Path: "/a/b/{y}", Function: "g"}},
			2, 0, []string{"routes[2]", `"/a/b/{y}"`, `routes[0] "/a/{x}/c"`}},
		{"method vs path", []Route{{Method: "GET", Path: "/a/{x}", Function: "f"}, {Path: "/a/b", Function: "g"}},
			1, 0, []string{`"/a/b" conflicts with routes[0] "GET /a/{x}"`}},
		{"reserved", []Route{ok, {Path: "/v1/things", Function: "f"}}, 1, -1, []string{"routes[1]", "under /v1"}},
		{"reserved fn", []Route{{Path: "/fn", Function: "f"}}, 0, -1, []string{"under /fn"}},
		{"reserved lambda", []Route{{Path: "/2015-03-31/functions/x", Function: "f"}}, 0, -1, []string{"under /2015-03-31"}},
		{"reserved healthz", []Route{{Path: "/healthz", Function: "f"}}, 0, -1, []string{"under /healthz"}},
		{"reserved console", []Route{{Path: "/console/{page...}", Function: "f"}}, 0, -1, []string{"under /console"}},
		{"no path", []Route{{Function: "f"}}, 0, -1, []string{"path is required"}},
		{"relative path", []Route{{Path: "a", Function: "f"}}, 0, -1, []string{"must start with /"}},
		{"long path", []Route{{Path: "/" + strings.Repeat("a", function.MaxPathBytes), Function: "f"}}, 0, -1, []string{"at most 1024"}},
		{"space", []Route{{Path: "/a b", Function: "f"}}, 0, -1, []string{"spaces"}},
		{"bad wildcard", []Route{{Path: "/a/{x-y}", Function: "f"}}, 0, -1, []string{"parameter {x-y} must be a name of ASCII letters"}},
		{"unicode wildcard", []Route{{Path: "/a/{café}", Function: "f"}}, 0, -1, []string{"parameter {café}"}},
		{"wildcards one in CGI", []Route{{Path: "/a/{id}/{ID}", Function: "f"}}, 0, -1, []string{"names the parameter ID twice"}},
		{"escaped reserved path", []Route{{Path: "/%68ealthz", Function: "f"}}, 0, -1, []string{"may not hold spaces, control characters, %"}},
		{"rest not last", []Route{{Path: "/a/{x...}/b", Function: "f"}}, 0, -1, []string{"not a valid pattern"}},
		{"duplicate wildcard", []Route{{Path: "/a/{x}/{x}", Function: "f"}}, 0, -1, []string{"names the parameter x twice"}},
		{"unclean", []Route{{Path: "/a/../b", Function: "f"}}, 0, -1, []string{"clean path"}},
		{"empty segment", []Route{{Path: "/a//b", Function: "f"}}, 0, -1, []string{"clean path"}},
		{"lowercase method", []Route{{Method: "get", Path: "/a", Function: "f"}}, 0, -1, []string{`method "get"`}},
		{"bad host", []Route{{Host: "Api.Example.com", Path: "/a", Function: "f"}}, 0, -1, []string{"host"}},
		{"host with port", []Route{{Host: "a.com:80", Path: "/a", Function: "f"}}, 0, -1, []string{"without a port"}},
		{"no function", []Route{{Path: "/a"}}, 0, -1, []string{"function is required"}},
		{"bad function", []Route{{Path: "/a", Function: "Resize"}}, 0, -1, []string{`function "Resize"`}},
		{"version 0", []Route{{Path: "/a", Function: "f@0"}}, 0, -1, []string{"version number from 1"}},
		{"bad alias", []Route{{Path: "/a", Function: "f@Live"}}, 0, -1, []string{"alias"}},
		{"cors star with credentials", []Route{{Path: "/a", Function: "f", CORS: &function.CORS{Origins: []string{"*"}, Credentials: true}}},
			0, -1, []string{"credentials"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Compile(tt.routes)
			var re *Error
			if !errors.As(err, &re) {
				t.Fatalf("Compile: %v, want a *route.Error", err)
			}
			if !errors.Is(err, function.ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid")
			}
			if re.Index != tt.index || re.Other != tt.other {
				t.Errorf("Index %d Other %d, want %d and %d", re.Index, re.Other, tt.index, tt.other)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "registered at") || strings.Contains(err.Error(), ".go:") {
				t.Errorf("error %q shows the server's source locations", err)
			}
		})
	}
}

func TestCompileTooMany(t *testing.T) {
	t.Parallel()
	_, err := Compile(make([]Route, MaxRoutes+1))
	if err == nil || !strings.Contains(err.Error(), "at most 1000") {
		t.Fatalf("Compile: %v", err)
	}
}

func TestKeyAndPattern(t *testing.T) {
	t.Parallel()
	tests := []struct {
		r            Route
		key, pattern string
	}{
		{Route{Method: "GET", Path: "/a/{id}"}, "GET /a/{id}", "GET /a/{id}"},
		{Route{Path: "/a"}, "ANY /a", "/a"},
		{Route{Method: "ANY", Host: "x.com", Path: "/a"}, "ANY /a", "x.com/a"},
		{Route{Method: "POST", Host: "x.com", Path: "/a"}, "POST /a", "POST x.com/a"},
	}
	for _, tt := range tests {
		if k, p := tt.r.Key(), tt.r.Pattern(); k != tt.key || p != tt.pattern {
			t.Errorf("%+v: Key %q Pattern %q, want %q %q", tt.r, k, p, tt.key, tt.pattern)
		}
	}
}

// table1000 is a table of 1,000 routes shaped as a real API's are: a few
// hundred resources with parameters, literals and a host.
func table1000(tb testing.TB) *Table {
	tb.Helper()
	var routes []Route
	methods := []string{"GET", "POST", "PUT", "DELETE"}
	for i := 0; len(routes) < MaxRoutes; i++ {
		res := fmt.Sprintf("/api/v2/res%d", i)
		for _, m := range methods {
			if len(routes) < MaxRoutes {
				routes = append(routes, Route{Method: m, Path: res + "/{id}", Function: "f"})
			}
		}
		if len(routes) < MaxRoutes {
			routes = append(routes, Route{Method: "GET", Path: res + "/{id}/items/{rest...}", Host: "api.example.com", Function: "g"})
		}
	}
	t, err := Compile(routes)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

func BenchmarkMatch1000(b *testing.B) {
	table := table1000(b)
	reqs := []*http.Request{
		httptest.NewRequest("GET", "http://h/api/v2/res150/42", nil),
		httptest.NewRequest("DELETE", "http://h/api/v2/res199/42", nil),
		httptest.NewRequest("GET", "http://api.example.com/api/v2/res3/7/items/a/b", nil),
		httptest.NewRequest("GET", "http://h/nothing/here", nil),
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		table.Match(reqs[i%len(reqs)])
	}
}

func TestMatch1000(t *testing.T) {
	t.Parallel()
	table := table1000(t)
	r := httptest.NewRequest("GET", "http://api.example.com/api/v2/res3/7/items/a/b", nil)
	rt, params, ok := table.Match(r)
	if !ok || rt.Function != "g" || params["id"] != "7" || params["rest"] != "a/b" {
		t.Fatalf("Match: %+v %v %v", rt, params, ok)
	}
}
