package process

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/artifact"
	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/sandbox"
	"github.com/hostless/hostless/internal/wasmtest"
)

func TestMain(m *testing.M) {
	sandbox.MaybeInit()
	os.Exit(m.Run())
}

// artifacts is an in-memory artifact store.
type artifacts struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (a *artifacts) put(b []byte) string {
	sum := sha256.Sum256(b)
	ref := "sha256:" + hex.EncodeToString(sum[:])
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[string][]byte{}
	}
	a.m[ref] = b
	return ref
}

func (a *artifacts) get(_ context.Context, ref string) (io.ReadCloser, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	b, ok := a.m[ref]
	if !ok {
		return nil, function.ErrNotFound
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// lambdaFn returns the code directory of testdata/lambdafn, built.
func lambdaFn(t testing.TB) string { return wasmtest.LambdaFn(t) }

func zipDir(t testing.TB, a *artifacts, dir string) string {
	t.Helper()
	var b bytes.Buffer
	if err := artifact.Zip(dir, &b); err != nil {
		t.Fatal(err)
	}
	return a.put(b.Bytes())
}

type env struct {
	rt *Runtime
	a  *artifacts
	sb *sandbox.Manager
}

func newEnv(t testing.TB, isolation string) *env {
	t.Helper()
	if isolation != sandbox.IsolationNone {
		if err := sandbox.Check(); err != nil {
			t.Skip("needs a host that can sandbox (CI runs as root): ", err)
		}
	}
	dir := t.TempDir()
	sb, err := sandbox.New(sandbox.Config{Dir: filepath.Join(dir, "sandbox"), Isolation: isolation})
	if err != nil {
		t.Fatal(err)
	}
	a := &artifacts{}
	sh, err := Shims(filepath.Join(dir, "runtime"))
	if err != nil {
		t.Fatal(err)
	}
	rt := New(Config{Dir: dir, Sandbox: sb, Artifacts: a.get, Shims: sh})
	t.Cleanup(sb.Close)
	return &env{rt: rt, a: a, sb: sb}
}

func (e *env) version(t testing.TB, code string, mutate func(*function.Spec)) *function.Version {
	s := function.Spec{Runtime: function.RuntimeProcess, Code: code, MemoryMB: 128, Timeout: function.Duration(5 * time.Second),
		Env: map[string]string{"MINE": "mine", "AWS_REGION": "overridden?"}}
	if mutate != nil {
		mutate(&s)
	}
	s.Normalize()
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	return &function.Version{Project: "default", Function: "fn", Number: 3, Spec: s}
}

type logs struct {
	mu    sync.Mutex
	lines []string
}

func (l *logs) Line(stream string, line []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, stream+": "+string(line))
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func start(t testing.TB, e *env, v *function.Version) function.Instance {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	inst, _, err := e.rt.Start(ctx, v)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inst.Close(context.Background()) })
	return inst
}

func invoke(t testing.TB, inst function.Instance, req *function.Request, timeout time.Duration) (*function.Response, *logs, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	l := &logs{}
	resp, err := inst.Invoke(ctx, req, l)
	return resp, l, err
}

func event(action, arg string) *function.Request {
	b, _ := json.Marshal(map[string]string{"action": action, "arg": arg})
	return &function.Request{Event: true, Body: b, Header: http.Header{}}
}

func TestLambdaGoFunction(t *testing.T) {
	for _, iso := range []string{sandbox.IsolationSandbox, sandbox.IsolationNone} {
		t.Run(iso, func(t *testing.T) {
			e := newEnv(t, iso)
			v := e.version(t, zipDir(t, e.a, lambdaFn(t)), nil)
			inst := start(t, e, v)

			// An HTTP request arrives as a payload 2.0 event; the shaped
			// result is the HTTP response.
			req := &function.Request{ID: "req-1", Method: "GET", Path: "/hello", RawQuery: "name=ada", Host: "example.test",
				RemoteAddr: "10.1.2.3:4567", Header: http.Header{"User-Agent": {"t"}}}
			resp, l, err := invoke(t, inst, req, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != 201 || string(resp.Body) != "hello ada" || resp.Header.Get("X-Fn") != "lambdafn" ||
				resp.Header.Get("Set-Cookie") != "a=1; Path=/" {
				t.Fatalf("response %d %v %q", resp.Status, resp.Header, resp.Body)
			}
			if !strings.Contains(l.String(), "stdout: hello log line") || !strings.Contains(l.String(), "stderr: hello on stderr") {
				t.Fatalf("logs: %q", l.String())
			}

			// Warm reuse: globals survive between invocations.
			for want := 1; want <= 3; want++ {
				resp, _, err := invoke(t, inst, event("count", ""), 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				if got := string(resp.Body); got != `{"count":`+string(rune('0'+want))+`}` {
					t.Fatalf("count %d: %s", want, got)
				}
			}

			// The context and the environment are Lambda's.
			resp, _, err = invoke(t, inst, &function.Request{ID: "req-ctx", Event: true, Body: []byte(`{"action":"context"}`)}, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			var c map[string]any
			if err := json.Unmarshal(resp.Body, &c); err != nil {
				t.Fatal(err)
			}
			if c["request_id"] != "req-ctx" || c["arn"] != "arn:aws:lambda:us-east-1:000000000000:function:fn" ||
				c["function"] != "fn" || c["version"] != "3" || c["memory"] != 128.0 || c["mine"] != "mine" || c["env_region"] != "us-east-1" {
				t.Fatalf("context: %v", c)
			}
			if ms := c["remaining_ms"].(float64); ms <= 0 || ms > 5000 {
				t.Fatalf("remaining time %v ms of a 5 s timeout", ms)
			}
			if iso == sandbox.IsolationSandbox && (c["task_root"] != "/var/task" || c["uid"] == 0.0) {
				t.Fatalf("sandboxed context: %v", c)
			}

			// A handler error is the function's error, with Lambda's payload for raw events.
			resp, _, err = invoke(t, inst, event("fail", ""), 5*time.Second)
			if !errors.Is(err, function.ErrFunction) || !strings.Contains(err.Error(), "it failed on purpose") {
				t.Fatalf("want the function's error, got %v", err)
			}
			if resp == nil || resp.Header.Get("X-Amz-Function-Error") != "Unhandled" || !strings.Contains(string(resp.Body), `"errorMessage":"it failed on purpose"`) {
				t.Fatalf("error response %+v", resp)
			}
			if !inst.Reusable() {
				t.Fatal("a handled error broke the instance")
			}

			// A result that is not the HTTP shape is returned as JSON with 200.
			resp, _, err = invoke(t, inst, &function.Request{Method: "GET", Path: "/count"}, 5*time.Second)
			if err != nil || resp.Status != 200 || resp.Header.Get("Content-Type") != "application/json" || !strings.Contains(string(resp.Body), `"count":4`) {
				t.Fatalf("plain result: %v %+v", err, resp)
			}
		})
	}
}

func TestLambdaTimeoutKillsInstance(t *testing.T) {
	e := newEnv(t, sandbox.IsolationSandbox)
	inst := start(t, e, e.version(t, zipDir(t, e.a, lambdaFn(t)), nil))
	_, _, err := invoke(t, inst, event("sleep", "10s"), 300*time.Millisecond)
	if !errors.Is(err, function.ErrTimeout) {
		t.Fatalf("want a timeout, got %v", err)
	}
	if inst.Reusable() {
		t.Fatal("a timed-out instance is still offered for reuse")
	}
}

func TestLambdaOutOfMemory(t *testing.T) {
	e := newEnv(t, sandbox.IsolationSandbox)
	inst := start(t, e, e.version(t, zipDir(t, e.a, lambdaFn(t)), func(s *function.Spec) { s.MemoryMB = 64 }))
	_, _, err := invoke(t, inst, event("alloc", ""), 10*time.Second)
	if !errors.Is(err, function.ErrOutOfMemory) || function.StatusOf(err) != function.StatusOOM {
		t.Fatalf("want status oom, got %v", err)
	}
}

func TestLambdaExitAndLimits(t *testing.T) {
	e := newEnv(t, sandbox.IsolationSandbox)
	inst := start(t, e, e.version(t, zipDir(t, e.a, lambdaFn(t)), nil))
	_, _, err := invoke(t, inst, event("big", ""), 10*time.Second)
	if !errors.Is(err, function.ErrResponseTooLarge) {
		t.Fatalf("a 7 MB result: want ErrResponseTooLarge, got %v", err)
	}
	inst = start(t, e, e.version(t, zipDir(t, e.a, lambdaFn(t)), nil))
	_, _, err = invoke(t, inst, event("exit", ""), 5*time.Second)
	if !errors.Is(err, function.ErrFunction) || !strings.Contains(err.Error(), "exited with status 3") {
		t.Fatalf("want the exit reported, got %v", err)
	}
	if inst.Reusable() {
		t.Fatal("an exited instance is offered for reuse")
	}
}

func TestBootstrapShellScript(t *testing.T) {
	e := newEnv(t, sandbox.IsolationSandbox)
	dir := t.TempDir()
	// A custom runtime as AWS documents it: a loop of curl calls.
	script := `#!/bin/sh
set -eu
echo "init from $_HANDLER"
while true; do
  HEADERS=$(mktemp)
  EVENT=$(curl -sS -LD "$HEADERS" "http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/next")
  ID=$(grep -Fi Lambda-Runtime-Aws-Request-Id "$HEADERS" | tr -d '[:space:]' | cut -d: -f2)
  echo "got $EVENT"
  curl -sS -X POST "http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/$ID/response" -d "{\"echo\":$EVENT}" >/dev/null
done
`
	if err := os.WriteFile(filepath.Join(dir, "bootstrap"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	inst := start(t, e, e.version(t, zipDir(t, e.a, dir), func(s *function.Spec) { s.Handler = "function.handler" }))
	for i := 0; i < 2; i++ {
		resp, l, err := invoke(t, inst, &function.Request{Event: true, Body: []byte(`{"n":1}`)}, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if string(resp.Body) != `{"echo":{"n":1}}` {
			t.Fatalf("response %q", resp.Body)
		}
		if i == 0 && !strings.Contains(l.String(), "init from function.handler") {
			t.Fatalf("init logs are not in the first invocation's logs: %q", l.String())
		}
		if !strings.Contains(l.String(), `got {"n":1}`) {
			t.Fatalf("logs %q", l.String())
		}
	}
}

func TestInitErrorAndMissingBootstrap(t *testing.T) {
	e := newEnv(t, sandbox.IsolationSandbox)
	dir := t.TempDir()
	script := `#!/bin/sh
curl -sS -X POST "http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/init/error" -H "Lambda-Runtime-Function-Error-Type: Runtime.NoSuchHandler" -d '{"errorMessage":"no handler here","errorType":"Runtime.NoSuchHandler"}'
exit 1
`
	if err := os.WriteFile(filepath.Join(dir, "bootstrap"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	_, _, err := e.rt.Start(context.Background(), e.version(t, zipDir(t, e.a, dir), nil))
	if !errors.Is(err, function.ErrFunction) || !strings.Contains(err.Error(), "no handler here") {
		t.Fatalf("want the init error, got %v", err)
	}
	empty := t.TempDir()
	os.WriteFile(filepath.Join(empty, "README"), []byte("no code"), 0o644)
	_, _, err = e.rt.Start(context.Background(), e.version(t, zipDir(t, e.a, empty), nil))
	if err == nil || !strings.Contains(err.Error(), "bootstrap") {
		t.Fatalf("want a missing bootstrap named, got %v", err)
	}
}

func TestNodeAndPythonFunctions(t *testing.T) {
	code := map[string]map[string]string{
		function.RuntimeNodeJS: {"src/index.js": `
let calls = 0; // survives between warm invocations
exports.handler = async (event, context) => {
  calls++;
  console.log("node saw " + event.rawPath);
  return {
    statusCode: 200,
    headers: {"content-type": "application/json"},
    body: JSON.stringify({calls, path: event.rawPath, name: event.queryStringParameters.name,
      fn: context.functionName, id: context.awsRequestId, left: context.getRemainingTimeInMillis(),
      task: process.env.LAMBDA_TASK_ROOT, uid: process.getuid()}),
  };
};
`},
		function.RuntimePython: {"app.py": `
import json, os
calls = 0  # survives between warm invocations
def lambda_handler(event, context):
    global calls
    calls += 1
    print("python saw " + event["rawPath"])
    return {"statusCode": 200, "headers": {"content-type": "application/json"},
            "body": json.dumps({"calls": calls, "path": event["rawPath"], "name": event["queryStringParameters"]["name"],
                                "fn": context.function_name, "id": context.aws_request_id,
                                "left": context.get_remaining_time_in_millis(),
                                "task": os.environ["LAMBDA_TASK_ROOT"], "uid": os.getuid()})}
`},
	}
	handlers := map[string]string{function.RuntimeNodeJS: "src/index.handler", function.RuntimePython: "app.lambda_handler"}
	for _, runtime := range []string{function.RuntimeNodeJS, function.RuntimePython} {
		t.Run(runtime, func(t *testing.T) {
			e := newEnv(t, sandbox.IsolationSandbox)
			dir := t.TempDir()
			for name, body := range code[runtime] {
				p := filepath.Join(dir, name)
				os.MkdirAll(filepath.Dir(p), 0o755)
				if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			v := e.version(t, zipDir(t, e.a, dir), func(s *function.Spec) {
				s.Runtime, s.Handler, s.Network = runtime, handlers[runtime], function.NetworkNone
			})
			inst := start(t, e, v)
			for call := 1; call <= 2; call++ {
				req := &function.Request{ID: "req-" + runtime, Method: "GET", Path: "/items/7", RawQuery: "name=ada", Header: http.Header{}}
				resp, l, err := invoke(t, inst, req, 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				var got struct {
					Calls          int
					Path, Name, Fn string
					ID, Task       string
					Left           float64
					UID            int
				}
				if err := json.Unmarshal(resp.Body, &got); err != nil {
					t.Fatalf("%d %s: %v", resp.Status, resp.Body, err)
				}
				if resp.Status != 200 || got.Calls != call || got.Path != "/items/7" || got.Name != "ada" || got.Fn != "fn" ||
					got.ID != "req-"+runtime || got.Task != "/var/task" || got.Left <= 0 || got.Left > 5000 || got.UID == 0 {
					t.Fatalf("call %d: %d %+v", call, resp.Status, got)
				}
				if !strings.Contains(l.String(), "saw /items/7") {
					t.Fatalf("logs: %q", l.String())
				}
			}
		})
	}
}

func TestSweepUnpackedCode(t *testing.T) {
	e := newEnv(t, sandbox.IsolationNone)
	ctx := context.Background()
	refs := map[string]string{}
	for _, name := range []string{"kept", "gone", "loaded"} {
		d := t.TempDir()
		os.WriteFile(filepath.Join(d, "bootstrap"), []byte("#!/bin/sh\necho "+name+"\n"), 0o755)
		refs[name] = zipDir(t, e.a, d)
		if name != "loaded" {
			// Unpacked by an earlier run of the server: on disk, not loaded.
			c, err := e.rt.unpack(ctx, refs[name])
			if err != nil || c == "" {
				t.Fatal(err)
			}
		} else if err := e.rt.Prepare(ctx, e.version(t, refs[name], nil)); err != nil {
			t.Fatal(err)
		}
	}
	n, err := e.rt.Sweep(map[string]bool{refs["kept"]: true})
	if err != nil || n != 1 {
		t.Fatalf("swept %d, %v; want 1", n, err)
	}
	for name, want := range map[string]bool{"kept": true, "gone": false, "loaded": true} {
		_, err := os.Stat(filepath.Join(e.rt.cfg.Dir, "code", strings.TrimPrefix(refs[name], "sha256:")))
		if (err == nil) != want {
			t.Errorf("%s: exists=%v, want %v", name, err == nil, want)
		}
	}
}

// An instance can't spend the platform's descriptors through its endpoint.
func TestRuntimeAPIConnectionLimit(t *testing.T) {
	e := newEnv(t, sandbox.IsolationSandbox)
	inst := start(t, e, e.version(t, zipDir(t, e.a, lambdaFn(t)), nil))
	fds := func() int { ents, _ := os.ReadDir("/proc/self/fd"); return len(ents) }
	before := fds()
	peak := before
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 40; i++ {
			peak = max(peak, fds())
			time.Sleep(10 * time.Millisecond)
		}
	}()
	resp, _, err := invoke(t, inst, event("conns", ""), 5*time.Second)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if string(resp.Body) != "200" {
		t.Fatalf("the function opened %s connections (the kernel's backlog takes them all)", resp.Body)
	}
	if peak-before > 32 {
		t.Fatalf("200 connections of one instance took %d of the platform's descriptors", peak-before)
	}
}

// The largest environment a spec allows reaches the function whole.
func TestLargeEnvironment(t *testing.T) {
	e := newEnv(t, sandbox.IsolationSandbox)
	big := strings.Repeat("x", function.MaxEnvBytes-1024)
	inst := start(t, e, e.version(t, zipDir(t, e.a, lambdaFn(t)), func(s *function.Spec) { s.Env = map[string]string{"MINE": big} }))
	resp, _, err := invoke(t, inst, event("context", ""), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(resp.Body, &c); err != nil || c["mine"] != big {
		t.Fatalf("the big variable did not arrive whole (%v, %d bytes)", err, len(fmt.Sprint(c["mine"])))
	}
}
