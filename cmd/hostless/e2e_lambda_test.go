package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hostless/hostless/internal/sandbox"
	"github.com/hostless/hostless/internal/wasmtest"
)

// TestLambdaExample deploys examples/lambda, an aws-lambda-go function,
// with the CLI (which builds it and zips its directory) and calls it as a
// Function URL, in a sandbox.
func TestLambdaExample(t *testing.T) {
	if err := sandbox.Check(); err != nil {
		t.Skip("needs a host that can sandbox (CI runs as root): ", err)
	}
	t.Parallel()
	srv := serve(t, dataDir(t), env("HOSTLESS_ADMIN_KEY="+e2eKey))
	user := env("HOSTLESS_URL="+srv.url, "HOSTLESS_ADMIN_KEY="+e2eKey)
	dir := t.TempDir()
	ex := filepath.Join(wasmtest.Root(t), "examples", "lambda")
	for _, f := range []string{"hostless.yaml", "go.mod", "go.sum", "main.go", "node/index.mjs", "python/app.py"} {
		copyFile(t, filepath.Join(ex, f), filepath.Join(dir, f))
	}
	manifest := filepath.Join(dir, "hostless.yaml")

	out, errOut, code := run(t, user, "deploy", "-f", manifest)
	if code != 0 {
		t.Fatalf("deploy: exit %d: %s %s", code, out, errOut)
	}
	for _, name := range []string{"greet", "greet-node", "greet-python"} {
		if !regexp.MustCompile(`(?m)^` + name + `\s+created\s+version 1$`).MatchString(out) {
			t.Fatalf("deploy output lacks %s created: %s", name, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "dist", "bootstrap")); err != nil {
		t.Fatalf("the build step did not make dist/bootstrap: %v\n%s", err, errOut)
	}
	resp, err := http.Get(srv.url + "/fn/greet?name=lambda")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "Hello, lambda! (from greet, a Lambda function)\n" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	if out := mustRun(t, user, "invoke", "greet"); out != "Hello, world! (from greet, a Lambda function)\n" {
		t.Fatalf("invoke: %q", out)
	}
	eventually(t, user, "greeting lambda", "logs", "greet")
	for name, want := range map[string]string{"greet-node": "Hello, ada! (from greet-node, Node.js v", "greet-python": "Hello, ada! (from greet-python, Python 3"} {
		resp, err := http.Get(srv.url + "/fn/" + name + "?name=ada")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(string(body), want) {
			t.Fatalf("%s: %d %q", name, resp.StatusCode, body)
		}
	}
	// The same directory again: the zip is deterministic, so nothing changed.
	out = mustRun(t, user, "deploy", "-f", manifest)
	if !strings.Contains(out, "unchanged") {
		t.Fatalf("redeploy of the same code: %s", out)
	}
}
