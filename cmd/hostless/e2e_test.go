package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/wasmtest"
)

// These tests drive the real binary as a user would: serve, deploy,
// invoke, functions, logs, up, and signals.

// bin is the hostless binary TestMain builds.
var bin string

const e2eKey = "e2e-admin-key-0123456789abcdefgh"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hostless-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "hostless")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// env returns the test process's environment without HOSTLESS_* variables,
// plus extra.
func env(extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOSTLESS_") {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}

// dataDir returns a fresh data directory whose wazero cache is the one the
// test packages share, so the Go guests compile once per machine.
func dataDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	if err := os.MkdirAll(filepath.Join(d, "cache"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(wasmtest.CompilationCacheDir(t), filepath.Join(d, "cache", "wazero")); err != nil {
		t.Fatal(err)
	}
	return d
}

// buffer is a bytes.Buffer safe for a process to write while a test reads.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// proc is a long-running hostless process (serve or up).
type proc struct {
	t              *testing.T
	cmd            *exec.Cmd
	url            string
	stdout, stderr *buffer
	done           chan struct{}
	err            error // the exit, after done
}

// startProc runs hostless with args and stops it when the test ends.
func startProc(t *testing.T, addr string, environ []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, url: "http://" + addr, stdout: &buffer{}, stderr: &buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = environ
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s stdout:\n%s\nstderr:\n%s", strings.Join(args, " "), p.stdout, p.stderr)
		}
	})
	return p
}

// serve starts `hostless serve` on a free port and waits until it is ready.
func serve(t *testing.T, data string, environ []string) *proc {
	t.Helper()
	addr := freeAddr(t)
	p := startProc(t, addr, environ, "serve", "--addr", addr, "--data", data)
	p.waitOutput("hostless serving on "+p.url, 20*time.Second)
	p.waitReady()
	return p
}

// waitOutput waits until stdout contains s.
func (p *proc) waitOutput(s string, within time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(p.stdout.String(), s) {
		select {
		case <-p.done:
			p.t.Fatalf("process exited (%v) before printing %q", p.err, s)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("no %q on stdout within %s", s, within)
		}
	}
}

// waitReady waits for /readyz to answer 200.
func (p *proc) waitReady() {
	p.t.Helper()
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := hc.Get(p.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s/readyz not ready within 20s: %v", p.url, err)
		}
		select {
		case <-p.done:
			p.t.Fatalf("process exited: %v", p.err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop sends sig and returns the exit code.
func (p *proc) stop(sig os.Signal) int {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.t.Fatalf("still running 15s after %v", sig)
	}
	return p.cmd.ProcessState.ExitCode()
}

// run runs a client command and returns its output and exit code.
func run(t *testing.T, environ []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = environ
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("hostless %s: timed out", strings.Join(args, " "))
	}
	if err != nil && cmd.ProcessState == nil {
		t.Fatalf("hostless %s: %v", strings.Join(args, " "), err)
	}
	return o.String(), e.String(), cmd.ProcessState.ExitCode()
}

// mustRun runs a client command that must succeed.
func mustRun(t *testing.T, environ []string, args ...string) string {
	t.Helper()
	out, errOut, code := run(t, environ, args...)
	if code != 0 {
		t.Fatalf("hostless %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// eventually reruns a client command until its output contains want:
// records and logs are written in batches.
func eventually(t *testing.T, environ []string, want string, args ...string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		out := mustRun(t, environ, args...)
		if strings.Contains(out, want) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("hostless %s: no %q within 5s in:\n%s", strings.Join(args, " "), want, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// warm calls a function URL until it answers 200: a fresh server compiles
// a Go guest in a few seconds first.
func warm(t *testing.T, url string) {
	t.Helper()
	hc := &http.Client{Timeout: 30 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for tries := 1; ; tries++ {
		resp, err := hc.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				if tries > 1 {
					t.Logf("%s answered after %d tries", url, tries)
				}
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no 200 within 60s (last: %v)", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// exampleDir copies examples/hello into a temp directory with prebuilt
// modules newer than every source, so no build step runs. With sources
// set, the Go sources come along too.
func exampleDir(t *testing.T, sources bool) string {
	t.Helper()
	root := wasmtest.Root(t)
	ex := filepath.Join(root, "examples", "hello")
	dir := t.TempDir()
	files := []string{"hostless.yaml"}
	if sources {
		files = append(files, "go.mod", "hello/main.go", "env/main.go")
	}
	past := time.Now().Add(-time.Hour)
	for _, f := range files {
		copyFile(t, filepath.Join(ex, f), filepath.Join(dir, f))
		if err := os.Chtimes(filepath.Join(dir, f), past, past); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, wasmtest.Build(t, "examples/hello", "./hello", true), filepath.Join(dir, "hello.wasm"))
	copyFile(t, wasmtest.Build(t, "examples/hello", "./env", false), filepath.Join(dir, "env.wasm"))
	return dir
}

// TestCLI deploys the hello example with the CLI and uses it, then checks
// that broken manifests fail with a message and store nothing.
func TestCLI(t *testing.T) {
	t.Parallel()
	srv := serve(t, dataDir(t), env("HOSTLESS_ADMIN_KEY="+e2eKey))
	user := env("HOSTLESS_URL="+srv.url, "HOSTLESS_ADMIN_KEY="+e2eKey)
	dir := exampleDir(t, false)
	manifest := filepath.Join(dir, "hostless.yaml")

	t.Run("deploy creates", func(t *testing.T) {
		out, errOut, code := run(t, user, "deploy", "-f", manifest)
		if code != 0 {
			t.Fatalf("deploy: exit %d: %s %s", code, out, errOut)
		}
		for _, name := range []string{"hello", "env"} {
			if !regexp.MustCompile(`(?m)^` + name + `\s+created\s+version 1$`).MatchString(out) {
				t.Errorf("deploy output lacks %s created:\n%s", name, out)
			}
		}
		if strings.Contains(errOut, "building") {
			t.Errorf("deploy ran a build although the modules are up to date:\n%s", errOut)
		}
	})
	t.Run("deploy again is unchanged", func(t *testing.T) {
		out := mustRun(t, user, "deploy", "-f", manifest)
		for _, name := range []string{"hello", "env"} {
			if !regexp.MustCompile(`(?m)^` + name + `\s+unchanged\s+version 1$`).MatchString(out) {
				t.Errorf("deploy output lacks %s unchanged:\n%s", name, out)
			}
		}
	})
	t.Run("invoke", func(t *testing.T) {
		warm(t, srv.url+"/fn/hello?name=warm")
		warm(t, srv.url+"/fn/env")
		if out := mustRun(t, user, "invoke", "hello"); out != "Hello, world!\n" {
			t.Errorf("invoke hello: %q", out)
		}
		out := mustRun(t, user, "invoke", "env", "-d", "some text")
		if !strings.Contains(out, "REQUEST_METHOD=POST") || !strings.Contains(out, "body: some text") {
			t.Errorf("invoke env: %q", out)
		}
		_, errOut, code := run(t, user, "invoke", "nope")
		if code == 0 || !strings.Contains(errOut, `no function named \"nope\"`) && !strings.Contains(errOut, `no function named "nope"`) {
			t.Errorf("invoke nope: exit %d: %s", code, errOut)
		}
	})
	t.Run("functions ls and get", func(t *testing.T) {
		out := mustRun(t, user, "functions", "ls")
		for _, want := range []string{"NAME", "hello", "env"} {
			if !strings.Contains(out, want) {
				t.Errorf("functions ls lacks %q:\n%s", want, out)
			}
		}
		out = mustRun(t, user, "functions", "get", "hello")
		for _, want := range []string{`"name": "hello"`, `"GREETING": "Hello"`, `"memory": 64`, `"timeout": "5s"`} {
			if !strings.Contains(out, want) {
				t.Errorf("functions get hello lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("logs", func(t *testing.T) {
		eventually(t, user, "greeting world", "logs", "hello")
		out := eventually(t, user, "hello", "invocations", "ls", "hello")
		if !strings.Contains(out, " ok") {
			t.Errorf("invocations ls hello:\n%s", out)
		}
		out = mustRun(t, user, "logs", "hello", "--grep", "world", "--since", "1h", "--status", "ok", "-n", "1")
		if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "hello@1") || !strings.Contains(lines[0], "greeting world") {
			t.Errorf("logs hello --grep world -n 1:\n%s", out)
		}
		if out := mustRun(t, user, "logs", "hello", "--status", "error"); out != "" {
			t.Errorf("logs hello --status error:\n%s", out)
		}
		if _, errOut, code := run(t, user, "logs", "hello", "--since", "yesterday"); code == 0 || !strings.Contains(errOut, "since=") {
			t.Errorf("logs --since yesterday: exit %d: %s", code, errOut)
		}
	})
	t.Run("functions rm", func(t *testing.T) {
		if out := mustRun(t, user, "functions", "rm", "env"); !strings.Contains(out, "deleted env") {
			t.Errorf("rm: %q", out)
		}
		out := mustRun(t, user, "functions", "ls")
		if strings.Contains(out, "env") || !strings.Contains(out, "hello") {
			t.Errorf("functions ls after rm env:\n%s", out)
		}
		if _, errOut, code := run(t, user, "functions", "get", "env"); code == 0 || !strings.Contains(errOut, "no function named") {
			t.Errorf("get env after rm: exit %d: %s", code, errOut)
		}
	})

	t.Run("broken manifests", func(t *testing.T) {
		helloWasm := filepath.Join(dir, "hello.wasm")
		tests := []struct {
			name     string
			manifest string            // with a valid function "partner" beside the broken one
			files    map[string]string // written beside the manifest
			environ  []string
			want     string // in stderr
			missing  []string
		}{
			{
				name:     "code path does not exist",
				manifest: "functions:\n  ghost:\n    runtime: wasm\n    code: missing.wasm\n",
				want:     "missing.wasm",
				missing:  []string{"ghost"},
			},
			{
				name:     "code is not wasm",
				manifest: "functions:\n  textfn:\n    runtime: wasm\n    code: notes.wasm\n",
				files:    map[string]string{"notes.wasm": "just some text, not a module\n"},
				want:     "not a WebAssembly module",
				missing:  []string{"textfn"},
			},
			{
				name:     "name is not a DNS label",
				manifest: "functions:\n  Bad_Name:\n    runtime: wasm\n    code: hello.wasm\n",
				want:     "not a DNS label",
				missing:  []string{"Bad_Name"},
			},
			{
				name:     "unknown runtime",
				manifest: "functions:\n  snake:\n    runtime: python\n    code: hello.wasm\n",
				want:     "python",
				missing:  []string{"snake"},
			},
			{
				name:     "wrong admin key",
				manifest: "functions:\n  locked:\n    runtime: wasm\n    code: hello.wasm\n",
				environ:  env("HOSTLESS_URL="+srv.url, "HOSTLESS_ADMIN_KEY=wrong-key-0123456789abcdef"),
				// The upload's HEAD has no error body to show (reported).
				want:    "HTTP 403",
				missing: []string{"locked"},
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				d := t.TempDir()
				copyFile(t, helloWasm, filepath.Join(d, "hello.wasm"))
				for name, content := range tt.files {
					if err := os.WriteFile(filepath.Join(d, name), []byte(content), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				m := tt.manifest + "  partner:\n    runtime: wasm\n    code: hello.wasm\n"
				if err := os.WriteFile(filepath.Join(d, "hostless.yaml"), []byte(m), 0o644); err != nil {
					t.Fatal(err)
				}
				environ := tt.environ
				if environ == nil {
					environ = user
				}
				out, errOut, code := run(t, environ, "deploy", "-f", filepath.Join(d, "hostless.yaml"))
				if code == 0 {
					t.Fatalf("deploy succeeded:\n%s", out)
				}
				if !strings.Contains(errOut, tt.want) {
					t.Errorf("stderr lacks %q:\n%s", tt.want, errOut)
				}
				if strings.Contains(out+errOut, e2eKey) {
					t.Errorf("output shows the admin key")
				}
				for _, name := range append(tt.missing, "partner") {
					if _, errOut, code := run(t, user, "functions", "get", name); code == 0 {
						t.Errorf("functions get %s succeeded after a failed deploy", name)
					} else if !strings.Contains(errOut, "no function named") {
						t.Errorf("functions get %s: %s", name, errOut)
					}
				}
			})
		}
	})

	t.Run("SIGTERM drains and exits 0", func(t *testing.T) {
		// A function that sleeps is mid-call when the signal arrives.
		d := t.TempDir()
		copyFile(t, wasmtest.Build(t, "internal/runtime/wasm/testdata/guests", "./sdk", true), filepath.Join(d, "sleeper.wasm"))
		m := "functions:\n  sleeper:\n    runtime: wasm\n    code: sleeper.wasm\n    timeout: 1m\n"
		if err := os.WriteFile(filepath.Join(d, "hostless.yaml"), []byte(m), 0o644); err != nil {
			t.Fatal(err)
		}
		mustRun(t, user, "deploy", "-f", filepath.Join(d, "hostless.yaml"))
		warm(t, srv.url+"/fn/sleeper/")
		type result struct {
			status int
			body   string
			err    error
		}
		done := make(chan result, 1)
		go func() {
			resp, err := http.Get(srv.url + "/fn/sleeper/sleep?d=1500ms")
			if err != nil {
				done <- result{err: err}
				return
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			done <- result{resp.StatusCode, string(b), err}
		}()
		time.Sleep(300 * time.Millisecond) // the warm call is under way by then
		if code := srv.stop(syscall.SIGTERM); code != 0 {
			t.Errorf("exit code %d after SIGTERM", code)
		}
		if !strings.Contains(srv.stderr.String(), "draining") {
			t.Errorf("stderr does not say it drains:\n%s", srv.stderr)
		}
		select {
		case r := <-done:
			if r.err != nil || r.status != 200 || r.body != "slept" {
				t.Errorf("in-flight call across SIGTERM: %d %q %v", r.status, r.body, r.err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("in-flight call did not finish")
		}
	})
}

var generatedKey = regexp.MustCompile(`HOSTLESS_ADMIN_KEY=(hl_[A-Za-z0-9_-]{20,})`)

// TestGeneratedKey starts serve without an admin key: it prints a new key
// once, the key works, and a restart on the same data prints none.
func TestGeneratedKey(t *testing.T) {
	t.Parallel()
	data := t.TempDir() // a really fresh data directory
	srv := serve(t, data, env())
	m := generatedKey.FindStringSubmatch(srv.stderr.String())
	if m == nil {
		t.Fatalf("stderr shows no generated key:\n%s", srv.stderr)
	}
	key := m[1]
	if strings.Contains(srv.stdout.String(), key) {
		t.Errorf("the key went to stdout")
	}
	if out := mustRun(t, env("HOSTLESS_URL="+srv.url, "HOSTLESS_ADMIN_KEY="+key), "functions", "ls"); !strings.Contains(out, "NAME") {
		t.Errorf("functions ls: %q", out)
	}
	if out := mustRun(t, env("HOSTLESS_URL="+srv.url), "functions", "ls", "--key", key); !strings.Contains(out, "NAME") {
		t.Errorf("functions ls --key: %q", out)
	}
	if _, errOut, code := run(t, env("HOSTLESS_URL="+srv.url), "functions", "ls"); code == 0 || !strings.Contains(errOut, "Authorization") {
		t.Errorf("functions ls without a key: exit %d: %s", code, errOut)
	}
	if code := srv.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}

	again := serve(t, data, env())
	if strings.Contains(again.stderr.String(), "HOSTLESS_ADMIN_KEY=") || strings.Contains(again.stderr.String(), "Generated") {
		t.Errorf("restart printed a key again:\n%s", again.stderr)
	}
	if _, errOut, code := run(t, env("HOSTLESS_URL="+again.url, "HOSTLESS_ADMIN_KEY="+key), "functions", "ls"); code != 0 {
		t.Errorf("the generated key after a restart: %s", errOut)
	}
	if code := again.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}
}

// TestUp runs `hostless up` on a copy of the example whose modules are up
// to date: it deploys them without building, prints the URLs and serves.
func TestUp(t *testing.T) {
	t.Parallel()
	dir := exampleDir(t, true)
	addr := freeAddr(t)
	p := startProc(t, addr, env(), "up", dir, "--addr", addr, "--data", dataDir(t))
	p.waitOutput("Press Ctrl-C to stop.", 30*time.Second)
	out := p.stdout.String()
	for _, want := range []string{
		"hostless is up on " + p.url,
		p.url + "/fn/hello\n",
		p.url + "/fn/env\n",
		"curl '" + p.url + "/fn/hello?name=Ada'",
		p.url + "/console/ (the web console",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("up output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "building") {
		t.Errorf("up built modules that are up to date:\n%s", out)
	}
	warm(t, p.url+"/fn/hello?name=warm")
	warm(t, p.url+"/fn/env")
	resp, err := http.Get(p.url + "/fn/hello?name=Ada")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "Hello, Ada!\n" {
		t.Errorf("curl /fn/hello?name=Ada: %d %q", resp.StatusCode, body)
	}
	resp, err = http.Get(p.url + "/console/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "<title>Hostless console</title>") {
		t.Errorf("GET /console/: %d %.200q", resp.StatusCode, body)
	}
	resp, err = http.Get(p.url + "/fn/env/path")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "PATH_INFO=/path") {
		t.Errorf("/fn/env/path: %d %q", resp.StatusCode, body)
	}
	if code := p.stop(os.Interrupt); code != 0 {
		t.Errorf("exit %d after SIGINT", code)
	}
}

// TestKill9KeepsWhatWasAcknowledged: after `kill -9`, a restarted server
// still has every deploy it acknowledged and the records it had stored.
func TestKill9KeepsWhatWasAcknowledged(t *testing.T) {
	t.Parallel()
	data := dataDir(t)
	srv := serve(t, data, env("HOSTLESS_ADMIN_KEY="+e2eKey))
	user := env("HOSTLESS_URL="+srv.url, "HOSTLESS_ADMIN_KEY="+e2eKey)
	mustRun(t, user, "deploy", "-f", filepath.Join(exampleDir(t, false), "hostless.yaml"))
	warm(t, srv.url+"/fn/hello")
	mustRun(t, user, "invoke", "hello", "--data", "{}")
	listed := eventually(t, user, "hello", "invocations", "ls", "hello")
	srv.stop(syscall.SIGKILL)

	again := serve(t, data, env("HOSTLESS_ADMIN_KEY="+e2eKey))
	user = env("HOSTLESS_URL="+again.url, "HOSTLESS_ADMIN_KEY="+e2eKey)
	fns := mustRun(t, user, "functions", "ls")
	for _, name := range []string{"hello", "env"} {
		if !strings.Contains(fns, name) {
			t.Errorf("after kill -9, functions ls lacks %s:\n%s", name, fns)
		}
	}
	// Every record listed before the kill is still there.
	after := mustRun(t, user, "invocations", "ls", "hello")
	for _, line := range strings.Split(strings.TrimSpace(listed), "\n")[1:] {
		if id := strings.Fields(line)[0]; !strings.Contains(after, id) {
			t.Errorf("record %s, listed before kill -9, is gone:\n%s", id, after)
		}
	}
	if out := mustRun(t, user, "invoke", "hello"); out != "Hello, world!\n" {
		t.Errorf("invoke after restart = %q", out)
	}
}

// TestVersionsAndRollbackCLI: a changed deploy makes version 2; `versions`
// marks the serving one, `rollback` moves back to 1 and calls see it.
func TestVersionsAndRollbackCLI(t *testing.T) {
	t.Parallel()
	srv := serve(t, dataDir(t), env("HOSTLESS_ADMIN_KEY="+e2eKey))
	user := env("HOSTLESS_URL="+srv.url, "HOSTLESS_ADMIN_KEY="+e2eKey)
	dir := exampleDir(t, false)
	manifest := filepath.Join(dir, "hostless.yaml")
	mustRun(t, user, "deploy", "-f", manifest)
	b, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(b), "GREETING: Hello", "GREETING: Howdy", 1)
	if changed == string(b) {
		t.Fatal("the example manifest no longer sets GREETING: Hello")
	}
	if err := os.WriteFile(manifest, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := mustRun(t, user, "deploy", "-f", manifest); !regexp.MustCompile(`(?m)^hello\s+updated\s+version 2$`).MatchString(out) {
		t.Fatalf("second deploy:\n%s", out)
	}
	warm(t, srv.url+"/fn/hello")
	if out := mustRun(t, user, "invoke", "hello"); out != "Howdy, world!\n" {
		t.Errorf("version 2 answers %q", out)
	}
	out := mustRun(t, user, "versions", "hello")
	if !regexp.MustCompile(`(?m)^\*2\s`).MatchString(out) || !regexp.MustCompile(`(?m)^ 1\s`).MatchString(out) {
		t.Errorf("versions should list *2 then 1:\n%s", out)
	}
	if out := mustRun(t, user, "rollback", "hello"); !strings.Contains(out, "hello now serves version 1") {
		t.Errorf("rollback: %q", out)
	}
	if out := mustRun(t, user, "invoke", "hello"); out != "Hello, world!\n" {
		t.Errorf("after rollback: %q", out)
	}
	if _, errOut, code := run(t, user, "rollback", "hello"); code == 0 || !strings.Contains(errOut, "nothing to roll back to") {
		t.Errorf("rollback from the oldest: exit %d: %s", code, errOut)
	}
}

// TestDeployPlanAndPrune checks deploy --dry-run (a plan that changes
// nothing) and --prune (functions gone from the manifest are deleted).
func TestDeployPlanAndPrune(t *testing.T) {
	t.Parallel()
	srv := serve(t, dataDir(t), env("HOSTLESS_ADMIN_KEY="+e2eKey))
	user := env("HOSTLESS_URL="+srv.url, "HOSTLESS_ADMIN_KEY="+e2eKey)
	dir := exampleDir(t, false)
	write := func(name, yaml string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	first := write("first.yaml", "functions:\n"+
		"  hello: {runtime: wasm, code: hello.wasm}\n"+
		"  env: {runtime: wasm, code: env.wasm}\n")
	second := write("second.yaml", "functions:\n"+
		"  hello: {runtime: wasm, code: hello.wasm, env: {GREETING: Howdy}}\n"+
		"  extra: {runtime: wasm, code: env.wasm, concurrency: {max: 2}}\n")

	if out := mustRun(t, user, "deploy", "--dry-run", "-f", first); !strings.Contains(out, "Plan: 2 to create, 0 to update, 0 to delete, 0 unchanged.") {
		t.Errorf("plan on an empty server:\n%s", out)
	}
	if out := mustRun(t, user, "functions", "ls"); regexp.MustCompile(`(?m)^(hello|env)\s`).MatchString(out) {
		t.Fatalf("a dry run deployed functions:\n%s", out)
	}
	mustRun(t, user, "deploy", "-f", first)

	out := mustRun(t, user, "deploy", "--dry-run", "--prune", "-f", second)
	for _, want := range []string{
		`(?m)^hello\s+update\s+version 1 -> a new version$`,
		`(?m)^extra\s+create\s*$`,
		`(?m)^env\s+delete\s+version 1$`,
		`(?m)^Plan: 1 to create, 1 to update, 1 to delete, 0 unchanged\.$`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("plan with --prune lacks %s:\n%s", want, out)
		}
	}
	if out := mustRun(t, user, "deploy", "--dry-run", "-f", second); !strings.Contains(out, "Plan: 1 to create, 1 to update, 0 to delete, 0 unchanged.") {
		t.Errorf("plan without --prune deletes:\n%s", out)
	}
	ls := mustRun(t, user, "functions", "ls")
	if !regexp.MustCompile(`(?m)^env\s`).MatchString(ls) || regexp.MustCompile(`(?m)^extra\s`).MatchString(ls) {
		t.Fatalf("dry runs changed the server:\n%s", ls)
	}
	if out := mustRun(t, user, "versions", "hello"); regexp.MustCompile(`(?m)^\*?2\s`).MatchString(out) {
		t.Fatalf("a dry run made version 2 of hello:\n%s", out)
	}

	out = mustRun(t, user, "deploy", "--prune", "-f", second)
	for _, want := range []string{`(?m)^hello\s+updated\s+version 2$`, `(?m)^extra\s+created\s+version 1$`, `(?m)^env\s+deleted\s+version 1$`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("deploy --prune lacks %s:\n%s", want, out)
		}
	}
	ls = mustRun(t, user, "functions", "ls")
	if regexp.MustCompile(`(?m)^env\s`).MatchString(ls) || !regexp.MustCompile(`(?m)^extra\s`).MatchString(ls) {
		t.Errorf("after --prune, functions are:\n%s", ls)
	}
	if out := mustRun(t, user, "deploy", "--dry-run", "--prune", "-f", second); !strings.Contains(out, "Plan: 0 to create, 0 to update, 0 to delete, 2 unchanged.") {
		t.Errorf("plan after the deploy:\n%s", out)
	}
}

// TestCanaryAndAliasesCLI: deploy --canary splits live between two
// versions; aliases, versions, functions ls and the plan show it; alias
// set/rm make and remove other aliases; promote ends the canary (and says
// so when there is none); rollback drops one.
func TestCanaryAndAliasesCLI(t *testing.T) {
	t.Parallel()
	srv := serve(t, dataDir(t), env("HOSTLESS_ADMIN_KEY="+e2eKey))
	user := env("HOSTLESS_URL="+srv.url, "HOSTLESS_ADMIN_KEY="+e2eKey)
	dir := exampleDir(t, false)
	manifest := filepath.Join(dir, "hostless.yaml")
	mustRun(t, user, "deploy", "-f", manifest)
	greet := func(greeting string) {
		t.Helper()
		b, err := os.ReadFile(manifest)
		if err != nil {
			t.Fatal(err)
		}
		changed := regexp.MustCompile(`GREETING: \w+`).ReplaceAllString(string(b), "GREETING: "+greeting)
		if err := os.WriteFile(manifest, []byte(changed), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := func(what, out string, patterns ...string) {
		t.Helper()
		for _, p := range patterns {
			if !regexp.MustCompile(p).MatchString(out) {
				t.Errorf("%s lacks %s:\n%s", what, p, out)
			}
		}
	}
	fails := func(message string, args ...string) {
		t.Helper()
		if out, errOut, code := run(t, user, args...); code == 0 || !strings.Contains(errOut, message) {
			t.Errorf("hostless %s: exit %d, stdout %q, stderr %q; want a failure saying %q", strings.Join(args, " "), code, out, errOut, message)
		}
	}
	greetings := func(path string, n int) map[string]int {
		t.Helper()
		warm(t, srv.url+path)
		got := map[string]int{}
		for range n {
			resp, err := http.Get(srv.url + path)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got[strings.TrimSpace(string(b))]++
		}
		return got
	}

	greet("Howdy")
	fails("--canary 0", "deploy", "--canary", "0", "-f", manifest)
	out := mustRun(t, user, "deploy", "--canary", "30", "-f", manifest)
	want("deploy --canary", out,
		`(?m)^hello\s+updated\s+version 2 as live's canary \(30%\); version 1 serves the rest$`,
		`(?m)^env\s+unchanged\s+version 1$`)
	got := greetings("/fn/hello", 100)
	if got["Hello, world!"] == 0 || got["Howdy, world!"] == 0 || len(got) != 2 {
		t.Errorf("100 calls with a canary at 30%%: %v, want both greetings", got)
	}
	want("aliases", mustRun(t, user, "aliases", "hello"), `(?m)^live\s+1\s+2 \(30%\)\s`)
	want("functions ls", mustRun(t, user, "functions", "ls"), `(?m)^hello\s+1\s+2 \(30%\)\s`, `(?m)^env\s+1\s+-\s`)
	want("versions", mustRun(t, user, "versions", "hello"), `(?m)^\*2\s.*live \(canary, 30%\)$`, `(?m)^\*1\s.*live \(70%\)$`)
	want("a plain plan", mustRun(t, user, "deploy", "--dry-run", "-f", manifest),
		`(?m)^hello\s+update\s+version 1 \(70%\) and canary version 2 \(30%\) -> version 2 alone \(the canary's spec: promoted\)$`)
	want("a canary plan", mustRun(t, user, "deploy", "--dry-run", "--canary", "30", "-f", manifest),
		`(?m)^hello\s+unchanged\s+version 1 \(70%\) and canary version 2 \(30%\)$`)

	out = mustRun(t, user, "alias", "set", "hello", "beta", "--version", "1")
	want("alias set", out, `(?m)^hello@beta serves version 1$`)
	if got := greetings("/fn/hello@beta", 5); got["Hello, world!"] != 5 {
		t.Errorf("@beta: %v, want version 1", got)
	}
	if out := mustRun(t, user, "invoke", "hello@beta"); out != "Hello, world!\n" {
		t.Errorf("invoke hello@beta = %q", out)
	}
	fails("--canary and --weight go together", "alias", "set", "hello", "beta", "--version", "1", "--canary", "2")
	fails("--weight 100", "alias", "set", "hello", "beta", "--version", "1", "--canary", "2", "--weight", "100")
	fails("required flag(s) \"version\" not set", "alias", "set", "hello", "beta")
	fails(`function "hello" has no version 9`, "alias", "set", "hello", "beta", "--version", "9")
	fails("version number", "alias", "set", "hello", "42", "--version", "1")
	want("alias set with a canary", mustRun(t, user, "alias", "set", "hello", "beta", "--version", "1", "--canary", "2", "--weight", "5"),
		`(?m)^hello@beta serves version 1 \(95%\) and canary version 2 \(5%\)$`)
	want("aliases", mustRun(t, user, "aliases", "hello"), `(?m)^beta\s+1\s+2 \(5%\)\s`, `(?m)^live\s+1\s+2 \(30%\)\s`)
	want("alias rm", mustRun(t, user, "alias", "rm", "hello", "beta"), `(?m)^deleted alias beta of hello$`)
	resp, err := http.Get(srv.url + "/fn/hello@beta")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), `function \"hello\" has no alias \"beta\"`) {
		t.Errorf("@beta after alias rm: %d %s, want 404 naming the alias", resp.StatusCode, body)
	}
	fails("can't be deleted", "alias", "rm", "hello", "live")

	want("promote", mustRun(t, user, "promote", "hello"), `(?m)^hello@live now serves version 2$`)
	if got := greetings("/fn/hello", 20); got["Howdy, world!"] != 20 {
		t.Errorf("after promote: %v, want version 2 only", got)
	}
	fails("has no canary to promote", "promote", "hello")
	fails(`function "hello" has no alias "beta"`, "promote", "hello", "--alias", "beta")

	// A canary again, then rollback drops it: version 2 serves alone.
	greet("Hi")
	mustRun(t, user, "deploy", "--canary", "50", "-f", manifest)
	want("rollback", mustRun(t, user, "rollback", "hello"), `(?m)^hello now serves version 2$`)
	if got := greetings("/fn/hello", 20); got["Howdy, world!"] != 20 {
		t.Errorf("after rollback: %v, want version 2 only", got)
	}
	want("aliases after rollback", mustRun(t, user, "aliases", "hello"), `(?m)^live\s+2\s+-\s`)
}
