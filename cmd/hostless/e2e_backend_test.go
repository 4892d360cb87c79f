package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/wasmtest"
)

// runStdin runs a client command with stdin and returns its output and
// exit code.
func runStdin(t *testing.T, environ []string, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = environ
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil && cmd.ProcessState == nil {
		t.Fatalf("hostless %s: %v", strings.Join(args, " "), err)
	}
	return o.String(), e.String(), cmd.ProcessState.ExitCode()
}

// TestBackendCLI deploys examples/todos (a collection with rules) twice,
// manages users and API keys with the CLI, reads the documents with a key,
// and finds a signup's verification mail in the outbox.
func TestBackendCLI(t *testing.T) {
	t.Parallel()
	srv := serve(t, dataDir(t), env("HOSTLESS_ADMIN_KEY="+e2eKey))
	user := env("HOSTLESS_URL="+srv.url, "HOSTLESS_ADMIN_KEY="+e2eKey)
	manifest := filepath.Join(t.TempDir(), "hostless.yaml")
	copyFile(t, filepath.Join(wasmtest.Root(t), "examples", "todos", "hostless.yaml"), manifest)
	match := func(what, out string, res ...string) {
		t.Helper()
		for _, re := range res {
			if !regexp.MustCompile(re).MatchString(out) {
				t.Errorf("%s lacks %s:\n%s", what, re, out)
			}
		}
	}

	// Collections: created, then unchanged; a plan says so too.
	out := mustRun(t, user, "deploy", "--dry-run", "-f", manifest)
	match("deploy --dry-run", out, `(?m)^todos\s+create\s+collection$`, `(?m)^Collections: 1 to create, 0 to update, 0 unchanged\.$`)
	match("deploy", mustRun(t, user, "deploy", "-f", manifest), `(?m)^todos\s+created\s+collection$`)
	match("second deploy", mustRun(t, user, "deploy", "-f", manifest), `(?m)^todos\s+unchanged\s+collection$`)
	match("collections ls", mustRun(t, user, "collections", "ls"), `(?m)^todos\s+0\s+owner_id\s+create,delete,get,list,update\s`)
	match("collections get", mustRun(t, user, "collections", "get", "todos"),
		`"list": "auth.id != '' && resource.owner_id == auth.id"`, `"max_document_bytes": 16384`, `"required": \[`)

	// Users: create with a password from stdin, list, disable, enable, roles.
	out, errOut, code := runStdin(t, user, "a-long-and-unusual-passphrase\n", "users", "create", "Ada@Example.com", "--password-stdin", "--role", "admin")
	if code != 0 || !strings.Contains(out, "created ") || !strings.Contains(out, "ada@example.com") {
		t.Fatalf("users create: exit %d\n%s%s", code, out, errOut)
	}
	id := strings.Fields(out)[1]
	match("users ls", mustRun(t, user, "users", "ls"), `(?m)^ID\s+EMAIL\s+VERIFIED\s+ROLES\s+DISABLED$`,
		`(?m)^`+id+`\s+ada@example.com\s+true\s+admin\s+false$`)
	// The password works: ada signs in.
	login := func() int {
		resp, err := http.Post(srv.url+"/v1/auth/login", "application/json",
			strings.NewReader(`{"email":"ada@example.com","password":"a-long-and-unusual-passphrase"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := login(); st != http.StatusOK {
		t.Errorf("login with the password from stdin: %d", st)
	}
	match("users disable", mustRun(t, user, "users", "disable", "ada@example.com"), `^disabled `+id+` ada@example.com\n$`)
	match("users ls after disable", mustRun(t, user, "users", "ls"), `(?m)^`+id+`\s+ada@example.com\s+true\s+admin\s+true$`)
	if st := login(); st == http.StatusOK {
		t.Error("a disabled user signed in")
	}
	mustRun(t, user, "users", "enable", id)
	match("users roles", mustRun(t, user, "users", "roles", id, "editor", "viewer"), `roles: editor,viewer\n$`)
	match("users ls after roles", mustRun(t, user, "users", "ls"), `(?m)^`+id+`\s+ada@example.com\s+true\s+editor,viewer\s+false$`)
	if _, errOut, code := runStdin(t, user, "", "users", "create", "bob@example.com", "--password-stdin"); code == 0 || !strings.Contains(errOut, "stdin has no password") {
		t.Errorf("users create with an empty stdin: exit %d: %s", code, errOut)
	}
	if _, errOut, code := run(t, user, "users", "disable", "nobody@example.com"); code == 0 || !strings.Contains(errOut, `no user with email "nobody@example.com"`) {
		t.Errorf("users disable of an unknown email: exit %d: %s", code, errOut)
	}

	// API keys: the key is printed once and reads documents with db:read.
	out, errOut, code = run(t, user, "keys", "create", "reader", "--scope", "db:read")
	if code != 0 || !strings.Contains(errOut, "shown once") {
		t.Fatalf("keys create: exit %d\n%s%s", code, out, errOut)
	}
	key := regexp.MustCompile(`hlk_\S+`).FindString(out)
	if key == "" {
		t.Fatalf("keys create printed no key:\n%s", out)
	}
	get := func(bearer string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, srv.url+"/v1/db/todos", nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, body := get(key); st != http.StatusOK {
		t.Errorf("GET /v1/db/todos with the key: %d %s", st, body)
	}
	keysOut := mustRun(t, user, "keys", "ls")
	match("keys ls", keysOut, `(?m)^\S+\s+reader\s+db:read\s`)
	if strings.Contains(keysOut, key) {
		t.Error("keys ls shows the secret")
	}
	keyID := strings.Fields(regexp.MustCompile(`(?m)^\S+\s+reader\s`).FindString(keysOut))[0]
	match("keys rm", mustRun(t, user, "keys", "rm", keyID), `revoked `+keyID)
	if st, _ := get(key); st != http.StatusUnauthorized {
		t.Errorf("GET /v1/db/todos with a revoked key: %d, want 401", st)
	}

	// A signup's verification mail is in the outbox, newest first.
	resp, err := http.Post(srv.url+"/v1/auth/signup", "application/json",
		strings.NewReader(`{"email":"grace@example.com","password":"another-long-passphrase"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("signup: %d", resp.StatusCode)
	}
	match("auth outbox", mustRun(t, user, "auth", "outbox"), `^To:\s+grace@example.com\nSubject: Confirm your email address\nDate:\s+\d{4}-`, `POST /v1/auth/verify`)

	// rm refuses a collection with documents without --yes.
	req, _ := http.NewRequest(http.MethodPost, srv.url+"/v1/db/todos", strings.NewReader(`{"title":"milk","owner_id":"x"}`))
	req.Header.Set("Authorization", "Bearer "+e2eKey)
	req.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create a document as the admin: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if _, errOut, code := run(t, user, "collections", "rm", "todos"); code == 0 || !strings.Contains(errOut, "has 1 documents") {
		t.Errorf("collections rm without --yes: exit %d: %s", code, errOut)
	}
	mustRun(t, user, "collections", "rm", "todos", "--yes")
	if _, errOut, code := run(t, user, "collections", "get", "todos"); code == 0 || !strings.Contains(errOut, `no collection named "todos"`) {
		t.Errorf("collections get after rm: exit %d: %s", code, errOut)
	}
}
