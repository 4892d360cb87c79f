package app

import (
	"net/http"
	"strings"
	"testing"

	"github.com/hostless/hostless/internal/function"
)

// TestVersionsAndRollback: /fn/{name}@{version} reaches one version,
// rollback moves the serving version back, and the records say which ran.
func TestVersionsAndRollback(t *testing.T) {
	t.Parallel()
	g := buildGuests(t)
	a := startApp(t, newConfig(t))
	spec := func(greeting string) function.Spec {
		return function.Spec{Contract: function.ContractSDK, MemoryMB: 64, Env: map[string]string{"GREETING": greeting}}
	}
	a.deploy("ver", g.sdk, spec("one"))
	a.deploy("ver", g.sdk, spec("two"))
	key := authHeader(testKey)
	greets := func(path string) (int, string, int) {
		t.Helper()
		resp, _ := a.do("GET", path, nil, nil)
		rec := 0
		if id := resp.Header.Get("X-Hostless-Invocation-Id"); id != "" && resp.StatusCode < 300 {
			rec = a.record(id).Version
		}
		return resp.StatusCode, resp.Header.Get("X-Env"), rec
	}
	for _, tc := range []struct {
		path     string
		status   int
		greeting string
		version  int
	}{
		{"/fn/ver/echo", 201, "two", 2},
		{"/fn/ver@live/echo", 201, "two", 2},
		{"/fn/ver@1/echo", 201, "one", 1},
		{"/fn/ver@2/echo", 201, "two", 2},
	} {
		status, greeting, version := greets(tc.path)
		if status != tc.status || greeting != tc.greeting || version != tc.version {
			t.Errorf("%s: %d %q version %d, want %d %q version %d", tc.path, status, greeting, version, tc.status, tc.greeting, tc.version)
		}
	}
	for _, tc := range []struct{ path, code string }{
		{"/fn/ver@9/echo", "version_not_found"},
		{"/fn/ver@beta/echo", "alias_not_found"},
		{"/fn/ver@Bad_Alias/echo", "alias_not_found"},
		{"/fn/ver@0/echo", "version_not_found"},
		{"/fn/ver@-1/echo", "version_not_found"},
		{"/fn/nope@1/echo", "function_not_found"},
		{"/fn/Bad_Name@1/echo", "function_not_found"},
	} {
		resp, body := a.do("GET", tc.path, nil, nil)
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), tc.code) {
			t.Errorf("%s: %d %s, want 404 %s", tc.path, resp.StatusCode, body, tc.code)
		}
	}

	if _, body := a.do("GET", "/fn/ver@9/echo", nil, nil); !strings.Contains(string(body), `function \"ver\" has no version 9`) {
		t.Errorf("/fn/ver@9: %s, want a message naming the function and the version", body)
	}

	rollback := func(body string) (int, string) {
		t.Helper()
		var b []byte
		if body != "" {
			b = []byte(body)
		}
		resp, out := a.do("POST", "/v1/functions/ver/rollback", b, key)
		return resp.StatusCode, string(out)
	}
	if status, out := rollback(""); status != 200 || !strings.Contains(out, `"version":1`) {
		t.Fatalf("rollback: %d %s", status, out)
	}
	if status, greeting, version := greets("/fn/ver/echo"); status != 201 || greeting != "one" || version != 1 {
		t.Errorf("after rollback: %d %q version %d, want version 1", status, greeting, version)
	}
	if status, out := rollback(""); status != http.StatusConflict || !strings.Contains(out, "no_earlier_version") {
		t.Errorf("rollback from the oldest: %d %s, want 409", status, out)
	}
	if status, out := rollback(`{"version":2}`); status != 200 || !strings.Contains(out, `"version":2`) {
		t.Errorf("rollback to 2: %d %s", status, out)
	}
	if _, greeting, _ := greets("/fn/ver/echo"); greeting != "two" {
		t.Errorf("after rolling forward: %q, want two", greeting)
	}
	if status, out := rollback(`{"version":7}`); status != http.StatusNotFound || !strings.Contains(out, "version_not_found") {
		t.Errorf("rollback to a missing version: %d %s", status, out)
	}
	for _, bad := range []string{`{"version":-3}`, `{"version":0}`, `{"version":"2"}`} {
		if status, out := rollback(bad); status != http.StatusBadRequest {
			t.Errorf("rollback %s: %d %s, want 400", bad, status, out)
		}
	}
	if resp, _ := a.do("POST", "/v1/functions/nope/rollback", nil, key); resp.StatusCode != http.StatusNotFound {
		t.Errorf("rollback of a missing function: %d", resp.StatusCode)
	}
	if resp, _ := a.do("POST", "/v1/functions/ver/rollback", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("rollback without the key: %d", resp.StatusCode)
	}
	// A deleted function's versions stop serving, pinned or not; their
	// instances stop and their metrics go.
	if status, _, _ := greets("/fn/ver@1/echo"); status != 201 { // a warm pool of a version that doesn't serve
		t.Fatalf("@1: %d", status)
	}
	if a.sched.Stats().Idle < 2 {
		t.Fatalf("want warm instances of both versions before the delete: %+v", a.sched.Stats())
	}
	if resp, _ := a.do("DELETE", "/v1/functions/ver", nil, key); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	for _, path := range []string{"/fn/ver/echo", "/fn/ver@1/echo"} {
		if resp, _ := a.do("GET", path, nil, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s after delete: %d, want 404", path, resp.StatusCode)
		}
	}
	waitFor(t, "the deleted function's instances to stop", func() bool { return a.sched.Stats().Idle == 0 })
	waitFor(t, "the deleted function's metrics to go", func() bool {
		_, b := a.do("GET", "/metrics", nil, key)
		return !strings.Contains(string(b), `function="ver"`)
	})
}
