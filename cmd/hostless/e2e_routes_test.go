package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRoutesCLI deploys a manifest with routes, lists them, calls one, and
// checks that a manifest whose routes conflict fails before it deploys
// anything, naming both routes.
func TestRoutesCLI(t *testing.T) {
	t.Parallel()
	srv := serve(t, dataDir(t), env("HOSTLESS_ADMIN_KEY="+e2eKey))
	user := env("HOSTLESS_URL="+srv.url, "HOSTLESS_ADMIN_KEY="+e2eKey)
	dir := exampleDir(t, false)
	manifest := filepath.Join(dir, "hostless.yaml")
	base, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	write := func(routes string) {
		t.Helper()
		if err := os.WriteFile(manifest, append(append([]byte{}, base...), routes...), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	write("routes:\n  - {method: GET, path: \"/users/{id}\", function: env}\n  - {path: \"/files/{rest...}\", function: env@1, cors: {origins: [\"*\"]}}\n")
	out := mustRun(t, user, "deploy", "-f", manifest)
	if !strings.Contains(out, "routes: 2") {
		t.Errorf("deploy output lacks the routes:\n%s", out)
	}
	out = mustRun(t, user, "routes")
	for _, want := range []string{"GET /users/{id}", "ANY /files/{rest...}", "env@1", "[*]"} {
		if !strings.Contains(out, want) {
			t.Errorf("hostless routes lacks %q:\n%s", want, out)
		}
	}
	warm(t, srv.url+"/users/42")
	resp, err := http.Get(srv.url + "/users/42?x=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"HOSTLESS_PATH_ID=42", "PATH_INFO=/users/42", "QUERY_STRING=x=1"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("GET /users/42 lacks %q:\n%s", want, body)
		}
	}

	// Conflicting routes: the deploy fails before it changes anything.
	write("routes:\n  - {path: \"/a/{x}\", function: env}\n  - {path: \"/a/{y}\", function: hello}\n")
	_, errOut, code := run(t, user, "deploy", "-f", manifest)
	if code == 0 || !strings.Contains(errOut, `routes[1]: "/a/{y}" conflicts with routes[0] "/a/{x}"`) {
		t.Fatalf("a conflicting table: exit %d: %s", code, errOut)
	}
	if out := mustRun(t, user, "routes"); !strings.Contains(out, "GET /users/{id}") {
		t.Errorf("the refused table changed the served one:\n%s", out)
	}

	// Without a routes key the table stays; "routes: []" empties it.
	write("")
	mustRun(t, user, "deploy", "-f", manifest)
	if out := mustRun(t, user, "routes"); !strings.Contains(out, "GET /users/{id}") {
		t.Errorf("a manifest without routes changed the table:\n%s", out)
	}
	write("routes: []\n")
	mustRun(t, user, "deploy", "-f", manifest)
	if out := mustRun(t, user, "routes"); strings.Contains(out, "/users/") {
		t.Errorf("routes: [] left routes:\n%s", out)
	}
}
