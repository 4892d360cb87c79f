package shims

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// maxResponseBytes is Lambda's limit on a synchronous response.
const maxResponseBytes = 6 << 20

// event is one invocation the fake Runtime API hands out.
type event struct {
	ID            string
	Body          string
	Deadline      time.Time
	ARN           string
	TraceID       string
	ClientContext string
	Identity      string
}

// outcome is what an instance posted: a response, an invocation error or an
// init error (ID empty).
type outcome struct {
	Kind        string // "response", "error" or "init"
	ID          string
	Body        []byte
	ErrorType   string // the Lambda-Runtime-Function-Error-Type header
	ContentType string
	At          time.Time
}

// fakeAPI is the Lambda Runtime API (2018-06-01) of one instance, as the
// platform serves it: /next blocks until an event is queued, each event is
// answered once, bodies are bounded.
type fakeAPI struct {
	t        testing.TB
	srv      *httptest.Server
	queue    chan event
	outcomes chan outcome
	marks    chan mark // POST /test/mark: a handler says it got somewhere
	nexts    chan time.Time
	closed   chan struct{}

	closeOnce sync.Once
	mu        sync.Mutex
	inFlight  map[string]event // handed out, not answered
	answered  map[string]bool
	events    int
}

// newFakeAPI starts a fake Runtime API; configure, if given, sees its
// http.Server before it starts.
func newFakeAPI(t testing.TB, configure ...func(*http.Server)) *fakeAPI {
	a := &fakeAPI{
		t:        t,
		queue:    make(chan event, 16),
		outcomes: make(chan outcome, 16),
		marks:    make(chan mark, 16),
		nexts:    make(chan time.Time, 16),
		closed:   make(chan struct{}),
		inFlight: map[string]event{},
		answered: map[string]bool{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", a.next)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", a.post("response"))
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", a.post("error"))
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", a.post("init"))
	mux.HandleFunc("POST /test/mark", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		a.marks <- mark{body: string(b), at: time.Now()}
	})
	a.srv = httptest.NewUnstartedServer(mux)
	for _, f := range configure {
		f(a.srv.Config)
	}
	a.srv.Start()
	t.Cleanup(a.Close)
	return a
}

// Close stops the server; it can be called more than once.
func (a *fakeAPI) Close() {
	a.closeOnce.Do(func() {
		close(a.closed)
		a.srv.Close()
	})
}

// Addr is the value of AWS_LAMBDA_RUNTIME_API.
func (a *fakeAPI) Addr() string { return strings.TrimPrefix(a.srv.URL, "http://") }

// Invoke queues an event with a deadline three seconds away and returns its
// request ID.
func (a *fakeAPI) Invoke(body string) string {
	return a.InvokeEvent(event{Body: body})
}

// InvokeEvent queues an event, filling in what it leaves empty.
func (a *fakeAPI) InvokeEvent(e event) string {
	a.mu.Lock()
	a.events++
	n := a.events
	a.mu.Unlock()
	if e.ID == "" {
		e.ID = fmt.Sprintf("8f5a1c2e-0000-4000-8000-%012d", n)
	}
	if e.Deadline.IsZero() {
		e.Deadline = time.Now().Add(3 * time.Second)
	}
	if e.ARN == "" {
		e.ARN = "arn:aws:lambda:us-east-1:000000000000:function:hello"
	}
	if e.TraceID == "" {
		e.TraceID = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
	}
	a.queue <- e
	return e.ID
}

func (a *fakeAPI) next(w http.ResponseWriter, r *http.Request) {
	select {
	case a.nexts <- time.Now():
	default:
	}
	a.mu.Lock()
	if len(a.inFlight) > 0 {
		a.t.Errorf("GET next while an invocation is unanswered: %v", a.inFlight)
	}
	a.mu.Unlock()
	var e event
	select {
	case e = <-a.queue:
	case <-r.Context().Done():
		return
	case <-a.closed:
		return
	}
	a.mu.Lock()
	a.inFlight[e.ID] = e
	a.mu.Unlock()
	h := w.Header()
	h.Set("Lambda-Runtime-Aws-Request-Id", e.ID)
	h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(e.Deadline.UnixMilli(), 10))
	h.Set("Lambda-Runtime-Invoked-Function-Arn", e.ARN)
	h.Set("Lambda-Runtime-Trace-Id", e.TraceID)
	if e.ClientContext != "" {
		h.Set("Lambda-Runtime-Client-Context", e.ClientContext)
	}
	if e.Identity != "" {
		h.Set("Lambda-Runtime-Cognito-Identity", e.Identity)
	}
	h.Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, e.Body)
}

func (a *fakeAPI) post(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxResponseBytes+1))
		if err != nil {
			return
		}
		if len(body) > maxResponseBytes {
			apiError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "response is larger than 6 MB")
			return
		}
		id := r.PathValue("id")
		if kind != "init" {
			a.mu.Lock()
			_, ok := a.inFlight[id]
			done := a.answered[id]
			if ok {
				delete(a.inFlight, id)
				a.answered[id] = true
			}
			a.mu.Unlock()
			switch {
			case done:
				apiError(w, http.StatusBadRequest, "InvalidStateTransition", "invocation "+id+" is already answered")
				a.t.Errorf("%s posted twice for %s", kind, id)
				return
			case !ok:
				apiError(w, http.StatusBadRequest, "InvalidRequestID", "no invocation "+id)
				a.t.Errorf("%s posted for unknown invocation %q", kind, id)
				return
			}
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"status":"OK"}`)
		a.outcomes <- outcome{Kind: kind, ID: id, Body: body, At: time.Now(),
			ErrorType: r.Header.Get("Lambda-Runtime-Function-Error-Type"), ContentType: r.Header.Get("Content-Type")}
	}
}

func apiError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"errorType": typ, "errorMessage": msg})
}

// Outcome waits for the next thing an instance posts.
func (a *fakeAPI) Outcome(inst *instance) outcome {
	a.t.Helper()
	select {
	case o := <-a.outcomes:
		return o
	case <-inst.exited:
		// It may have posted just before exiting.
		select {
		case o := <-a.outcomes:
			return o
		default:
		}
		a.t.Fatalf("instance exited (%v) before posting\n%s", inst.exitErr, inst.logs())
	case <-time.After(10 * time.Second):
		a.t.Fatalf("no response in 10s\n%s", inst.logs())
	}
	return outcome{}
}

// Mark waits for the next POST /test/mark.
// mark is a POST /test/mark and when it arrived.
type mark struct {
	body string
	at   time.Time
}

// Mark waits for a mark and returns its body and when it arrived (taken
// in the handler, before the test reads it: a time taken after the read
// could come after events the mark's reply let happen).
func (a *fakeAPI) Mark(inst *instance) (string, time.Time) {
	a.t.Helper()
	select {
	case m := <-a.marks:
		return m.body, m.at
	case <-time.After(10 * time.Second):
		a.t.Fatalf("no mark in 10s\n%s", inst.logs())
	}
	return "", time.Time{}
}

// syncBuffer collects a process's output.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// instance is a shim running as a process.
type instance struct {
	cmd            *exec.Cmd
	stdout, stderr syncBuffer
	exited         chan struct{}
	exitErr        error
}

func (i *instance) logs() string {
	return "stdout:\n" + i.stdout.String() + "stderr:\n" + i.stderr.String()
}

// Stop kills the process and waits until it has exited and all its output
// is collected: what the logs hold is then complete.
func (i *instance) Stop() {
	_ = i.cmd.Process.Signal(syscall.SIGKILL)
	<-i.exited
}

// Wait waits for the process to exit and returns its exit code.
func (i *instance) Wait(t testing.TB) int {
	t.Helper()
	select {
	case <-i.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("instance still running after 10s\n%s", i.logs())
	}
	var ee *exec.ExitError
	if errors.As(i.exitErr, &ee) {
		return ee.ExitCode()
	}
	if i.exitErr != nil {
		t.Fatalf("wait: %v", i.exitErr)
	}
	return 0
}

// functionEnv is the environment of a function named hello, version 3, of
// 128 MB, as the platform sets it, without the handler and code directory.
var functionEnv = []string{
	"PATH=/usr/local/bin:/usr/bin:/bin",
	"LANG=C.UTF-8",
	"TZ=:UTC",
	"AWS_REGION=us-east-1",
	"AWS_DEFAULT_REGION=us-east-1",
	"AWS_LAMBDA_FUNCTION_NAME=hello",
	"AWS_LAMBDA_FUNCTION_VERSION=3",
	"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128",
	"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/hello",
	"AWS_LAMBDA_LOG_STREAM_NAME=2026/01/01/[3]0123456789abcdef",
}

// withEnv adds variables to an instance's environment.
func withEnv(env ...string) func(*exec.Cmd) {
	return func(cmd *exec.Cmd) { cmd.Env = append(cmd.Env, env...) }
}

// start runs the shim with the code in taskRoot and the handler string;
// each option sees the command before it starts.
func start(t testing.TB, s Shim, shimDir string, api *fakeAPI, taskRoot, handler string, options ...func(*exec.Cmd)) *instance {
	t.Helper()
	argv := s.Argv(shimDir, 128)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = taskRoot
	cmd.Env = append(append([]string{}, functionEnv...),
		"AWS_LAMBDA_RUNTIME_API="+api.Addr(),
		"_HANDLER="+handler,
		"LAMBDA_TASK_ROOT="+taskRoot,
	)
	for _, o := range options {
		o(cmd)
	}
	inst := &instance{cmd: cmd, exited: make(chan struct{})}
	cmd.Stdout = &inst.stdout
	cmd.Stderr = &inst.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", argv, err)
	}
	go func() {
		inst.exitErr = cmd.Wait()
		close(inst.exited)
	}()
	t.Cleanup(func() {
		inst.Stop()
		if t.Failed() {
			t.Logf("instance logs:\n%s", inst.logs())
		}
	})
	return inst
}

// setup finds the runtime's interpreter (skipping the test when there is
// none), writes the shims to a directory and the code to another.
func setup(t testing.TB, runtime string, code map[string]string) (Shim, string, string) {
	t.Helper()
	s, err := Lookup(runtime)
	if errors.Is(err, ErrNoInterpreter) {
		t.Skipf("no %s interpreter on this host: %v", runtime, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	shimDir := t.TempDir()
	if err := WriteTo(shimDir); err != nil {
		t.Fatal(err)
	}
	taskRoot := t.TempDir()
	for name, content := range code {
		p := filepath.Join(taskRoot, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return s, shimDir, taskRoot
}

// jsonEqual reports whether two JSON texts have the same value.
func jsonEqual(t testing.TB, got []byte, want string) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Errorf("response %q is not JSON: %v", got, err)
		return false
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad expected JSON %q: %v", want, err)
	}
	return reflect.DeepEqual(g, w)
}

// lambdaError is an error body, Node's (trace) or Python's (stackTrace).
type lambdaError struct {
	ErrorType    string   `json:"errorType"`
	ErrorMessage string   `json:"errorMessage"`
	Trace        []string `json:"trace"`
	StackTrace   []string `json:"stackTrace"`
	RequestID    *string  `json:"requestId"`
}

func decodeError(t testing.TB, o outcome) lambdaError {
	t.Helper()
	var e lambdaError
	if err := json.Unmarshal(o.Body, &e); err != nil {
		t.Fatalf("%s body %q is not JSON: %v", o.Kind, o.Body, err)
	}
	if o.ErrorType != headerSafe(e.ErrorType) {
		t.Errorf("Lambda-Runtime-Function-Error-Type = %q, body's errorType %q", o.ErrorType, e.ErrorType)
	}
	return e
}

// TestIdleConnectionClosed runs each shim against a Runtime API that closes
// connections idle for 20 ms, while a handler works for 60 ms: a shim must
// not lose its answer on the kept-alive connection the server closed
// meanwhile (Python's http.client only finds out when it sends).
func TestIdleConnectionClosed(t *testing.T) {
	t.Parallel()
	code := map[string]map[string]string{
		NodeJS: {"index.js": `exports.handler = async (e) => { await new Promise(r => setTimeout(r, 60)); return e.n; };`},
		Python: {"index.py": "import time\n\ndef handler(e, c):\n    time.sleep(0.06)\n    return e['n']\n"},
	}
	for _, runtime := range []string{NodeJS, Python} {
		t.Run(runtime, func(t *testing.T) {
			t.Parallel()
			s, shimDir, root := setup(t, runtime, code[runtime])
			api := newFakeAPI(t, func(s *http.Server) { s.IdleTimeout = 20 * time.Millisecond })
			inst := start(t, s, shimDir, api, root, "index.handler")
			for n := 1; n <= 3; n++ {
				api.Invoke(`{"n":` + strconv.Itoa(n) + `}`)
				o := api.Outcome(inst)
				if o.Kind != "response" || string(o.Body) != strconv.Itoa(n) {
					t.Fatalf("invocation %d: %s %s", n, o.Kind, o.Body)
				}
			}
		})
	}
}

// headerSafe is an error type as the shims put it in a header: printable
// ASCII, anything else replaced by "?".
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r > '~' {
			return '?'
		}
		return r
	}, s)
}

// TestLargeBodies sends each shim an event and has it answer with a
// response of a megabyte each: the event arrives chunked (the fake API
// sets no Content-Length), the response with a length.
func TestLargeBodies(t *testing.T) {
	t.Parallel()
	code := map[string]map[string]string{
		NodeJS: {"index.js": `exports.handler = async (e) => ({n: e.data.length, echo: e.data.toUpperCase()});`},
		Python: {"index.py": "def handler(e, c):\n    return {'n': len(e['data']), 'echo': e['data'].upper()}\n"},
	}
	data := strings.Repeat("abcdefgh", 1<<17) // 1 MB
	for _, runtime := range []string{NodeJS, Python} {
		t.Run(runtime, func(t *testing.T) {
			t.Parallel()
			s, shimDir, root := setup(t, runtime, code[runtime])
			api := newFakeAPI(t)
			inst := start(t, s, shimDir, api, root, "index.handler")
			for i := 0; i < 2; i++ { // and the connection still works after
				api.Invoke(`{"data":"` + data + `"}`)
				o := api.Outcome(inst)
				var got struct {
					N    int
					Echo string
				}
				if err := json.Unmarshal(o.Body, &got); err != nil || got.N != len(data) || got.Echo != strings.ToUpper(data) {
					t.Fatalf("%s of %d bytes: n=%d, echo of %d bytes, %v", o.Kind, len(o.Body), got.N, len(got.Echo), err)
				}
			}
		})
	}
}
