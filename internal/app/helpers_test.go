package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/client"
	"github.com/hostless/hostless/internal/config"
	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/wasmtest"
)

// testKey is the admin key of the test apps: 32 characters, and it must
// never appear in any response.
const testKey = "test-admin-key-0123456789abcdefg"

// testApp is a running app with a client for its API.
type testApp struct {
	*App
	t    *testing.T
	cfg  config.Config
	base string
	c    *client.Client
	hc   *http.Client
}

// shareCompilationCache points dir's wazero cache at the one the test
// packages share, so a Go guest is compiled once per machine, not per test.
func shareCompilationCache(t testing.TB, dataDir string) {
	t.Helper()
	cache := filepath.Join(dataDir, "cache")
	if err := os.MkdirAll(cache, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(cache, "wazero")
	if _, err := os.Lstat(link); err == nil {
		return
	}
	if err := os.Symlink(wasmtest.CompilationCacheDir(t), link); err != nil {
		t.Fatal(err)
	}
}

// newConfig returns the configuration of a test app on a random port.
func newConfig(t *testing.T) config.Config {
	t.Helper()
	dir := t.TempDir()
	shareCompilationCache(t, dir)
	return config.Config{Addr: "127.0.0.1:0", DataDir: dir, AdminKey: testKey}
}

// startApp starts an app with cfg and shuts it down when the test ends.
func startApp(t *testing.T, cfg config.Config) *testApp {
	t.Helper()
	a := New(cfg, nil)
	if err := a.Start(context.Background()); err != nil {
		_ = a.Close(context.Background())
		t.Fatalf("start: %v", err)
	}
	ta := &testApp{App: a, t: t, cfg: cfg, base: a.URL(), c: client.New(a.URL(), testKey),
		hc: &http.Client{Timeout: 30 * time.Second}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return ta
}

// Guests are the test modules.
type guests struct {
	sdk, cgi, hello, env string // paths of .wasm files
}

func buildGuests(t *testing.T) guests {
	t.Helper()
	return guests{
		sdk:   wasmtest.Build(t, "internal/runtime/wasm/testdata/guests", "./sdk", true),
		cgi:   wasmtest.Build(t, "internal/runtime/wasm/testdata/guests", "./cgi", false),
		hello: wasmtest.Build(t, "examples/hello", "./hello", true),
		env:   wasmtest.Build(t, "examples/hello", "./env", false),
	}
}

// deploy uploads the module at path and puts a function, as the CLI does.
func (a *testApp) deploy(name, path string, spec function.Spec) client.PutResult {
	a.t.Helper()
	ctx := context.Background()
	ref, err := a.c.UploadArtifact(ctx, path)
	if err != nil {
		a.t.Fatalf("upload %s: %v", path, err)
	}
	if spec.Runtime == "" {
		spec.Runtime = function.RuntimeWasm
	}
	if spec.Timeout == 0 {
		// On a machine with a cold compilation cache a first call waits
		// seconds for its Go guest to compile, under the function's timeout.
		spec.Timeout = function.Duration(time.Minute)
	}
	spec.Code = ref
	res, err := a.c.PutFunction(ctx, name, spec)
	if err != nil {
		a.t.Fatalf("deploy %s: %v", name, err)
	}
	return res
}

// do sends a request and returns the response with its body read.
func (a *testApp) do(method, path string, body []byte, header http.Header) (*http.Response, []byte) {
	a.t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, a.base+path, r)
	if err != nil {
		a.t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, b
}

// get calls a path with the admin key and decodes a 200 JSON answer.
func (a *testApp) getJSON(path string, out any) {
	a.t.Helper()
	resp, b := a.do(http.MethodGet, path, nil, authHeader(testKey))
	if resp.StatusCode != http.StatusOK {
		a.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		a.t.Fatalf("GET %s: %v in %s", path, err, b)
	}
}

func authHeader(key string) http.Header {
	return http.Header{"Authorization": {"Bearer " + key}}
}

// waitFor polls cond until it holds or the deadline passes: records are
// written in batches, so they appear a little after the call.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// record waits for the record of one invocation and returns it with its logs.
func (a *testApp) record(id string) function.Invocation {
	a.t.Helper()
	var rec function.Invocation
	waitFor(a.t, "record "+id, func() bool {
		var err error
		rec, err = a.c.GetInvocation(context.Background(), id)
		if err != nil && !client.IsNotFound(err) {
			a.t.Fatalf("get invocation %s: %v", id, err)
		}
		return err == nil
	})
	return rec
}

// records waits until a function has at least n records and returns them,
// newest first.
func (a *testApp) records(fn string, n int) []function.Invocation {
	a.t.Helper()
	var recs []function.Invocation
	waitFor(a.t, "records of "+fn, func() bool {
		var err error
		recs, _, err = a.c.ListInvocations(context.Background(), fn, 1000, "")
		if err != nil {
			a.t.Fatalf("list invocations: %v", err)
		}
		return len(recs) >= n
	})
	return recs
}

// sha256Ref is the code reference of b.
func sha256Ref(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// randomSuffix returns a few random hex characters for unique names.
func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// scenario is one API call and what its answer must and must not say
// (PocketBase's ApiScenario).
type scenario struct {
	name    string
	method  string
	path    string
	headers http.Header
	body    []byte
	// status is the expected HTTP status.
	status int
	// code, when set, is the expected error code of a JSON error body.
	code string
	// contains must appear in the body; absent must not.
	contains []string
	absent   []string
	// header values that must be present.
	header map[string]string
	// check runs further assertions.
	check func(t *testing.T, resp *http.Response, body []byte)
}

// run runs the scenario against a, with the global rule that neither the
// admin key nor the data directory ever appears in an answer.
func (s scenario) run(t *testing.T, a *testApp) {
	t.Helper()
	method := s.method
	if method == "" {
		method = http.MethodGet
	}
	resp, body := a.do(method, s.path, s.body, s.headers)
	t.Logf("%s %s: %d %s", method, s.path, resp.StatusCode, truncate(body))
	if resp.StatusCode != s.status {
		t.Fatalf("%s %s: status %d, want %d; body %s", method, s.path, resp.StatusCode, s.status, truncate(body))
	}
	for _, f := range s.contains {
		if !bytes.Contains(body, []byte(f)) {
			t.Errorf("%s %s: body lacks %q: %s", method, s.path, f, truncate(body))
		}
	}
	forbidden := append([]string{testKey, a.cfg.DataDir}, s.absent...)
	for _, f := range forbidden {
		if f != "" && bytes.Contains(body, []byte(f)) {
			t.Errorf("%s %s: body contains %q: %s", method, s.path, f, truncate(body))
		}
		for k, vs := range resp.Header {
			for _, v := range vs {
				if f != "" && strings.Contains(v, f) {
					t.Errorf("%s %s: header %s contains %q", method, s.path, k, f)
				}
			}
		}
	}
	for k, want := range s.header {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s %s: header %s = %q, want %q", method, s.path, k, got, want)
		}
	}
	if s.code != "" {
		e := decodeAPIError(t, resp, body)
		if e.Code != s.code {
			t.Errorf("%s %s: error code %q, want %q (message %q)", method, s.path, e.Code, s.code, e.Message)
		}
	}
	if s.check != nil {
		s.check(t, resp, body)
	}
}

// apiError is the body of every error: {"error":{"code":...,"message":...}}.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func decodeAPIError(t *testing.T, resp *http.Response, body []byte) apiError {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type %q, want application/json", ct)
	}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("error body is not JSON: %v: %s", err, truncate(body))
	}
	if len(env) != 1 || env["error"] == nil {
		t.Fatalf("error body is not {\"error\":{...}}: %s", truncate(body))
	}
	var fields map[string]any
	if err := json.Unmarshal(env["error"], &fields); err != nil {
		t.Fatalf("error is not an object: %s", truncate(body))
	}
	var e apiError
	_ = json.Unmarshal(env["error"], &e)
	if e.Code == "" || e.Message == "" || len(fields) != 2 {
		t.Errorf("error must have exactly a code and a message: %s", truncate(body))
	}
	return e
}

func truncate(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "..."
	}
	return string(b)
}
