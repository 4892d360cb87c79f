package wasm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/wasmtest"
)

type fixture struct {
	rt      *Runtime
	mods    *wasmtest.Modules
	sdkRef  string
	cgiRef  string
	tinyRef string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	mods := &wasmtest.Modules{}
	f := &fixture{mods: mods}
	f.sdkRef = mods.Add(wasmtest.ReadFile(t, wasmtest.Build(t, "internal/runtime/wasm/testdata/guests", "./sdk", true)))
	f.cgiRef = mods.Add(wasmtest.ReadFile(t, wasmtest.Build(t, "internal/runtime/wasm/testdata/guests", "./cgi", false)))
	f.tinyRef = mods.Add(wasmtest.Tiny("Content-Type: text/plain\n\ntiny\n"))
	f.rt = New(Config{CacheDir: wasmtest.CompilationCacheDir(t), Artifacts: mods.Get, MaxResponseBytes: 1 << 20})
	if err := f.rt.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.rt.Close(context.Background()) })
	return f
}

func version(name, ref string, memMB int, env map[string]string) *function.Version {
	v := &function.Version{Project: "default", Function: name, Number: 1, Spec: function.Spec{
		Runtime: "wasm", Code: ref, MemoryMB: memMB, Env: env,
	}}
	v.Spec.Normalize()
	return v
}

type logs struct{ lines []string }

func (l *logs) Line(stream string, line []byte) { l.lines = append(l.lines, stream+": "+string(line)) }

func req(method, path, query, body string) *function.Request {
	return &function.Request{Method: method, Path: path, RawQuery: query, Host: "example.test",
		RemoteAddr: "10.0.0.1:1234", Header: http.Header{"X-Test": {"yes"}}, Body: []byte(body)}
}

func invoke(t *testing.T, inst function.Instance, r *function.Request, timeout time.Duration) (*function.Response, *logs, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	l := &logs{}
	resp, err := inst.Invoke(ctx, r, l)
	return resp, l, err
}

func TestSDKInstanceServesAndStaysWarm(t *testing.T) {
	f := newFixture(t)
	v := version("echo", f.sdkRef, 64, map[string]string{"GREETING": "hi"})
	inst, info, err := f.rt.Start(context.Background(), v)
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(context.Background())
	if !info.CodeCold {
		t.Error("first start should be code-cold")
	}
	for call := 1; call <= 3; call++ {
		resp, _, err := invoke(t, inst, req("POST", "/echo", "a=1&b=2", "payload"), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != 201 {
			t.Errorf("status = %d, want 201", resp.Status)
		}
		if got, want := string(resp.Body), "POST /echo?a=1&b=2 payload"; got != want {
			t.Errorf("body = %q, want %q", got, want)
		}
		checks := map[string]string{"X-Method": "POST", "X-Env": "hi", "X-Host": "example.test", "X-Header": "yes", "X-Calls": fmt.Sprint(call)}
		for k, want := range checks {
			if got := resp.Header.Get(k); got != want {
				t.Errorf("header %s = %q, want %q", k, got, want)
			}
		}
		if got := resp.Header["X-Multi"]; len(got) != 2 {
			t.Errorf("X-Multi = %q, want two values", got)
		}
		if !inst.Reusable() {
			t.Fatal("healthy instance not reusable")
		}
	}
	_, info2, err := f.rt.Start(context.Background(), v)
	if err != nil {
		t.Fatal(err)
	}
	if info2.CodeCold {
		t.Error("second start of loaded code should not be code-cold")
	}
	f.rt.Evict(context.Background())
	if f.rt.LoadedBytes() != 0 {
		t.Errorf("LoadedBytes after Evict = %d", f.rt.LoadedBytes())
	}
	_, info3, err := f.rt.Start(context.Background(), v)
	if err != nil {
		t.Fatal(err)
	}
	if !info3.CodeCold {
		t.Error("start after Evict should be code-cold")
	}
}

func TestSDKLogs(t *testing.T) {
	f := newFixture(t)
	inst, _, err := f.rt.Start(context.Background(), version("log", f.sdkRef, 64, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(context.Background())
	resp, l, err := invoke(t, inst, req("GET", "/log", "n=3", ""), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if string(resp.Body) != "logged" {
		t.Errorf("body = %q", resp.Body)
	}
	want := []string{"stderr: line 0", "stderr: line 1", "stderr: line 2", "stdout: to stdout", "stderr: no newline at end"}
	if strings.Join(l.lines, "|") != strings.Join(want, "|") {
		t.Errorf("logs = %q, want %q", l.lines, want)
	}
	// The next invocation's logs are its own.
	_, l2, err := invoke(t, inst, req("GET", "/", "", ""), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(l2.lines) != 0 {
		t.Errorf("second invocation logs = %q, want none", l2.lines)
	}
}

func TestFailures(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name    string
		ref     func() string
		memMB   int
		path    string
		query   string
		timeout time.Duration
		want    error
		status  string
	}{
		{"sdk panic", func() string { return f.sdkRef }, 64, "/panic", "", 5 * time.Second, function.ErrFunction, function.StatusError},
		{"sdk exit", func() string { return f.sdkRef }, 64, "/exit", "", 5 * time.Second, function.ErrFunction, function.StatusError},
		{"sdk spin times out", func() string { return f.sdkRef }, 64, "/spin", "", 300 * time.Millisecond, function.ErrTimeout, function.StatusTimeout},
		{"sdk sleep times out", func() string { return f.sdkRef }, 64, "/sleep", "d=10s", 300 * time.Millisecond, function.ErrTimeout, function.StatusTimeout},
		{"sdk out of memory", func() string { return f.sdkRef }, 32, "/alloc", "mb=64", 10 * time.Second, function.ErrOutOfMemory, function.StatusOOM},
		{"sdk response too large", func() string { return f.sdkRef }, 64, "/big", "n=2000000", 5 * time.Second, function.ErrResponseTooLarge, function.StatusError},
		{"sdk header injection", func() string { return f.sdkRef }, 64, "/badheader", "", 5 * time.Second, function.ErrFunction, function.StatusError},
		{"cgi exit status", func() string { return f.cgiRef }, 64, "/exit", "", 5 * time.Second, function.ErrFunction, function.StatusError},
		{"cgi garbage output", func() string { return f.cgiRef }, 64, "/garbage", "", 5 * time.Second, function.ErrFunction, function.StatusError},
		{"cgi spin times out", func() string { return f.cgiRef }, 64, "/spin", "", 300 * time.Millisecond, function.ErrTimeout, function.StatusTimeout},
		{"cgi out of memory", func() string { return f.cgiRef }, 32, "/alloc", "", 10 * time.Second, function.ErrOutOfMemory, function.StatusOOM},
		{"cgi response too large", func() string { return f.cgiRef }, 64, "/big", "2000000", 5 * time.Second, function.ErrResponseTooLarge, function.StatusError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inst, _, err := f.rt.Start(context.Background(), version("fail", tc.ref(), tc.memMB, nil))
			if err != nil {
				t.Fatal(err)
			}
			defer inst.Close(context.Background())
			start := time.Now()
			_, _, err = invoke(t, inst, req("GET", tc.path, tc.query, ""), tc.timeout)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if got := function.StatusOf(err); got != tc.status {
				t.Errorf("status = %s, want %s", got, tc.status)
			}
			if tc.want == function.ErrTimeout && time.Since(start) > tc.timeout+2*time.Second {
				t.Errorf("timeout took %s to cut a %s call", time.Since(start), tc.timeout)
			}
			if tc.want != function.ErrResponseTooLarge && inst.Reusable() {
				t.Error("a failed instance must not be reused")
			}
		})
	}
}

func TestCGI(t *testing.T) {
	f := newFixture(t)
	v := version("cgi", f.cgiRef, 64, map[string]string{"GREETING": "hey", "REQUEST_METHOD": "SPOOFED"})
	for _, tc := range []struct {
		name, method, path, query, body string
		status                          int
		bodyWant                        string
	}{
		{"get", "GET", "/hello", "x=1", "", 200, "GET /fn/cgi /hello q=x=1 body="},
		{"post body on stdin", "POST", "/p", "", "data!", 200, "POST /fn/cgi /p q= body=data!"},
		{"status header", "GET", "/notfound", "", "", 404, "nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inst, info, err := f.rt.Start(context.Background(), v)
			if err != nil {
				t.Fatal(err)
			}
			_ = info
			resp, l, err := invoke(t, inst, req(tc.method, tc.path, tc.query, tc.body), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != tc.status || string(resp.Body) != tc.bodyWant {
				t.Errorf("got %d %q, want %d %q", resp.Status, resp.Body, tc.status, tc.bodyWant)
			}
			if tc.status == 200 && resp.Header.Get("X-Greeting") != "hey" {
				t.Errorf("function env not passed: %v", resp.Header)
			}
			if len(l.lines) != 1 || !strings.HasPrefix(l.lines[0], "stderr: cgi "+tc.method) {
				t.Errorf("logs = %q", l.lines)
			}
			if inst.Reusable() {
				t.Error("a CGI instance serves one request")
			}
		})
	}
}

func TestTinyModule(t *testing.T) {
	f := newFixture(t)
	inst, _, err := f.rt.Start(context.Background(), version("tiny", f.tinyRef, 1, nil))
	if err != nil {
		t.Fatal(err)
	}
	resp, _, err := invoke(t, inst, req("GET", "/", "", ""), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 200 || string(resp.Body) != "tiny\n" || resp.Header.Get("Content-Type") != "text/plain" {
		t.Errorf("got %d %q %v", resp.Status, resp.Body, resp.Header)
	}
}

func TestBadModules(t *testing.T) {
	f := newFixture(t)
	notWasm := f.mods.Add([]byte("\x00asm\x01\x00\x00\x00garbage"))
	for _, tc := range []struct {
		name, ref, contract, want string
	}{
		{"invalid module", notWasm, "", "compile module"},
		{"sdk contract on a command", f.cgiRef, "sdk", "contract sdk needs a reactor"},
		{"cgi contract on a reactor", f.sdkRef, "cgi", "contract cgi needs a command module"},
		{"missing artifact", "sha256:" + strings.Repeat("0", 64), "", "read module"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := version("bad", tc.ref, 64, nil)
			v.Spec.Contract = tc.contract
			err := f.rt.Prepare(context.Background(), v)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestCodeBudgetEvicts(t *testing.T) {
	mods := &wasmtest.Modules{}
	a := mods.Add(wasmtest.Tiny("Content-Type: text/plain\n\na"))
	b := mods.Add(wasmtest.Tiny("Content-Type: text/plain\n\nb"))
	rt := New(Config{Artifacts: mods.Get, CodeBudget: 1})
	if err := rt.Open(); err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	for _, ref := range []string{a, b} {
		if err := rt.Prepare(context.Background(), version("x", ref, 1, nil)); err != nil {
			t.Fatal(err)
		}
	}
	// Only the newest fits: a is code-cold again.
	_, info, err := rt.Start(context.Background(), version("x", a, 1, nil))
	if err != nil {
		t.Fatal(err)
	}
	if !info.CodeCold {
		t.Error("evicted code should start code-cold")
	}
}

func TestConcurrentStartsCompileOnce(t *testing.T) {
	f := newFixture(t)
	v := version("c", f.sdkRef, 64, nil)
	var wg sync.WaitGroup
	colds := make(chan bool, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			inst, info, err := f.rt.Start(context.Background(), v)
			if err != nil {
				t.Error(err)
				return
			}
			colds <- info.CodeCold
			inst.Close(context.Background())
		}()
	}
	wg.Wait()
	close(colds)
	n := 0
	for c := range colds {
		if c {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d of 4 concurrent starts were code-cold, want 1", n)
	}
}

// TestCompileIsNotChargedToTheTimeout: a first call waits for its code to
// compile, however long that takes within LoadTimeout; the function's own
// timeout then bounds the instance start and the call.
func TestCompileIsNotChargedToTheTimeout(t *testing.T) {
	mods := &wasmtest.Modules{}
	ref := mods.Add(wasmtest.ReadFile(t, wasmtest.Build(t, "internal/runtime/wasm/testdata/guests", "./sdk", true)))
	rt := New(Config{Artifacts: mods.Get}) // no disk cache: a full compile, over a second
	if err := rt.Open(); err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	v := version("quick", ref, 64, nil)
	v.Spec.Timeout = function.Duration(time.Second) // a first compile takes longer; _initialize much less
	start := time.Now()
	inst, info, err := rt.Start(context.Background(), v)
	if err != nil {
		t.Fatalf("start after %s: %v", time.Since(start), err)
	}
	defer inst.Close(context.Background())
	if !info.CodeCold || info.Load < time.Second {
		t.Logf("compile was quicker than the timeout (%s); the test proves less", info.Load)
	}
	resp, _, err := invoke(t, inst, req("GET", "/", "", ""), time.Second)
	if err != nil || resp.Status != 200 {
		t.Fatalf("invoke: %v %v", resp, err)
	}
}

func TestOnlyFinalStatuses(t *testing.T) {
	mods := &wasmtest.Modules{}
	rt := New(Config{Artifacts: mods.Get})
	if err := rt.Open(); err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	for _, tc := range []struct {
		name, out string
		ok        bool
	}{
		{"101 would hijack the connection", "Status: 101 Switching Protocols\nUpgrade: evil\n\n", false},
		{"103 early hints", "Status: 103 Early Hints\n\n", false},
		{"600", "Status: 600 Odd\n\n", false},
		{"200", "Status: 200 OK\n\nfine", true},
		{"599", "Status: 599 Edge\n\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inst, _, err := rt.Start(context.Background(), version("st", mods.Add(wasmtest.Tiny(tc.out)), 1, nil))
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = invoke(t, inst, req("GET", "/", "", ""), 5*time.Second)
			if tc.ok != (err == nil) {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if !tc.ok && !errors.Is(err, function.ErrFunction) {
				t.Errorf("err = %v, want a function error", err)
			}
		})
	}
}

// TestEvictionSparesCodeInUse: code evicted from memory while an instance
// holds it keeps working for that instance (a CGI instance compiles into
// a new module at every call), and a new start loads it afresh.
func TestEvictionSparesCodeInUse(t *testing.T) {
	mods := &wasmtest.Modules{}
	rt := New(Config{Artifacts: mods.Get})
	if err := rt.Open(); err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	v := version("held", mods.Add(wasmtest.Tiny("Content-Type: text/plain\n\nheld")), 1, nil)
	inst, _, err := rt.Start(context.Background(), v)
	if err != nil {
		t.Fatal(err)
	}
	rt.Evict(context.Background())
	resp, _, err := invoke(t, inst, req("GET", "/", "", ""), 5*time.Second)
	if err != nil || string(resp.Body) != "held" {
		t.Fatalf("instance of evicted code: %v %v", resp, err)
	}
	inst.Close(context.Background())
	inst2, info, err := rt.Start(context.Background(), v)
	if err != nil || !info.CodeCold {
		t.Fatalf("start after eviction: cold=%v err=%v", info.CodeCold, err)
	}
	inst2.Close(context.Background())
}
