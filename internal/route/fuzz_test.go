package route

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/hostless/hostless/internal/function"
)

// FuzzTable compiles a table of two routes from arbitrary fields: Compile
// must never panic (ServeMux's panics are its to catch), must refuse with a
// *Error naming a route, and a table it accepts must match a request for a
// literal route's own path.
func FuzzTable(f *testing.F) {
	f.Add("GET", "", "/api/users/{id}", "users", "GET", "", "/api/users/me", "me")
	f.Add("", "api.example.com", "/files/{rest...}", "files@live", "POST", "", "/files/{rest...}", "files@2")
	f.Add("GET", "", "/a/{x}", "f", "GET", "", "/a/{y}", "g")
	f.Add("ANY", "", "/exact/{$}", "f", "", "", "/", "g")
	f.Add("GET", "", "/v1/x", "f", "GET", "", "/{", "g")
	f.Add("GET", "", "/a/{x...}/b", "f", "get", "Host", "a", "F@0")
	f.Fuzz(func(t *testing.T, m1, h1, p1, f1, m2, h2, p2, f2 string) {
		routes := []Route{{Method: m1, Host: h1, Path: p1, Function: f1}, {Method: m2, Host: h2, Path: p2, Function: f2}}
		table, err := Compile(routes)
		if err != nil {
			var re *Error
			if !errors.As(err, &re) || re.Index < 0 || re.Index > 1 || re.Other > 1 {
				t.Fatalf("Compile: %v, want a *Error naming routes 0 or 1", err)
			}
			return
		}
		for i, r := range table.Routes() {
			for _, pre := range function.Reserved {
				if r.Path == pre || strings.HasPrefix(r.Path, pre+"/") {
					t.Fatalf("routes[%d] %q under reserved %s was accepted", i, r.Path, pre)
				}
			}
		}
		r := routes[0]
		if r.Host != "" || (r.Method != "" && r.Method != function.AnyMethod && r.Method != http.MethodGet) || !plain(r.Path) {
			return
		}
		req := &http.Request{Method: http.MethodGet, Host: "h", URL: &url.URL{Path: r.Path}, RequestURI: r.Path}
		if _, _, ok := table.Match(req); !ok {
			t.Fatalf("GET %s matched no route of %+v", r.Path, table.Routes())
		}
	})
}

// plain reports whether a path is literal: no wildcards, no escapes.
func plain(p string) bool {
	for i := 0; i < len(p); i++ {
		if c := p[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '/' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
