package invoker_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/invoker"
	"github.com/hostless/hostless/internal/runtime/wasm"
	"github.com/hostless/hostless/internal/runtime/wasm/runtimetest"
	"github.com/hostless/hostless/internal/scheduler"
	"github.com/hostless/hostless/internal/store"
	"github.com/hostless/hostless/internal/store/sqlite"
	"github.com/hostless/hostless/internal/telemetry"
)

// memoryMB is the one memory limit every function here uses: the runtime
// compiles code once per limit, and a Go guest compiles slowly under -race.
const memoryMB = runtimetest.MemoryMB

type sharedRuntime struct {
	rt     *wasm.Runtime
	sdkRef string
}

func TestMain(m *testing.M) {
	code := m.Run()
	runtimetest.Close()
	os.Exit(code)
}

func runtime(t *testing.T) sharedRuntime {
	t.Helper()
	s := runtimetest.Get(t)
	return sharedRuntime{rt: s.RT, sdkRef: s.SDK}
}

// env is one invoker wired as the app wires it, over a store of its own.
type env struct {
	t     *testing.T
	db    *sqlite.DB
	sched *scheduler.Scheduler
	rec   *telemetry.Recorder
	inv   *invoker.Invoker
	ref   string
}

func newEnv(t *testing.T, cfg scheduler.Config) *env {
	t.Helper()
	sr := runtime(t)
	db, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	sched := scheduler.New(sr.rt, cfg)
	sched.Start()
	rec := telemetry.New(db, log, telemetry.Config{FlushEvery: 10 * time.Millisecond})
	rec.Start()
	e := &env{t: t, db: db, sched: sched, rec: rec, inv: invoker.New(db, sr.rt, sched, rec, log), ref: sr.sdkRef}
	t.Cleanup(func() {
		sched.Close()
		e.closeRecorder()
		_ = db.Close()
	})
	return e
}

// closeRecorder flushes every record to the store.
func (e *env) closeRecorder() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.rec.Close(ctx); err != nil {
		e.t.Errorf("close recorder: %v", err)
	}
}

func (e *env) deploy(name string, timeout time.Duration, vars map[string]string) store.PutResult {
	e.t.Helper()
	spec := function.Spec{Runtime: function.RuntimeWasm, Code: e.ref, MemoryMB: memoryMB,
		Timeout: function.Duration(timeout), Env: vars}
	spec.Normalize()
	res, err := e.db.PutFunction(context.Background(), function.DefaultProject, name, spec)
	if err != nil {
		e.t.Fatalf("deploy %s: %v", name, err)
	}
	return res
}

func (e *env) invoke(name, path, query string) (*function.Response, *function.Invocation, error) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return e.inv.Invoke(ctx, function.DefaultProject, name, "api", &function.Request{
		Method: http.MethodGet, Path: path, RawQuery: query, Host: "fn.test", Header: http.Header{}})
}

func (e *env) stored(id string) function.Invocation {
	e.t.Helper()
	rec, err := e.db.GetInvocation(context.Background(), function.DefaultProject, id)
	if err != nil {
		e.t.Fatalf("stored record %s: %v", id, err)
	}
	return rec
}

func TestInvokeDeployedFunction(t *testing.T) {
	t.Parallel()
	e := newEnv(t, scheduler.Config{})
	e.deploy("hello", 5*time.Second, nil)

	var ids []string
	for call, wantCold := range []bool{true, false} {
		resp, rec, err := e.invoke("hello", "/", "")
		if err != nil {
			t.Fatalf("call %d: %v", call+1, err)
		}
		if resp.Status != http.StatusOK || string(resp.Body) != []string{"calls=1", "calls=2"}[call] {
			t.Errorf("call %d: response %d %q", call+1, resp.Status, resp.Body)
		}
		if rec == nil {
			t.Fatalf("call %d: no record", call+1)
		}
		if rec.Status != function.StatusOK || rec.Error != "" {
			t.Errorf("call %d: status %q (%s), want ok", call+1, rec.Status, rec.Error)
		}
		if rec.Cold != wantCold {
			t.Errorf("call %d: cold = %v, want %v", call+1, rec.Cold, wantCold)
		}
		if rec.BilledMS < 1 || rec.BilledMS != function.BilledMillis(rec.Duration) {
			t.Errorf("call %d: billed %d ms for %v", call+1, rec.BilledMS, rec.Duration)
		}
		if rec.MemoryMB != memoryMB || rec.Version != 1 || rec.Function != "hello" ||
			rec.Project != function.DefaultProject || rec.Trigger != "api" || rec.HTTPStatus != http.StatusOK {
			t.Errorf("call %d: record %+v", call+1, rec)
		}
		if len(rec.ID) != 26 {
			t.Errorf("call %d: ID %q is not 26 characters", call+1, rec.ID)
		}
		ids = append(ids, rec.ID)
	}
	if ids[0] == ids[1] {
		t.Error("two invocations share an ID")
	}

	e.closeRecorder()
	for i, id := range ids {
		got := e.stored(id)
		if got.Status != function.StatusOK || got.Cold != (i == 0) || got.Version != 1 || got.BilledMS < 1 {
			t.Errorf("stored record %d = %+v", i+1, got)
		}
	}
}

func TestInvokeRecordsLogs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, scheduler.Config{})
	e.deploy("logger", 5*time.Second, nil)
	resp, rec, err := e.invoke("logger", "/log", "n=3")
	if err != nil {
		t.Fatal(err)
	}
	if string(resp.Body) != "logged" {
		t.Errorf("body = %q", resp.Body)
	}
	want := []struct{ stream, line string }{
		{"stderr", "line 0"}, {"stderr", "line 1"}, {"stderr", "line 2"},
		{"stdout", "to stdout"}, {"stderr", "no newline at end"},
	}
	e.closeRecorder()
	got := e.stored(rec.ID).Logs
	if len(got) != len(want) {
		t.Fatalf("stored logs = %+v, want %d lines", got, len(want))
	}
	for i, w := range want {
		if got[i].Stream != w.stream || got[i].Line != w.line {
			t.Errorf("line %d = %s %q, want %s %q", i, got[i].Stream, got[i].Line, w.stream, w.line)
		}
	}
}

func TestInvokeUnknownFunction(t *testing.T) {
	t.Parallel()
	e := newEnv(t, scheduler.Config{})
	for range 2 { // the second call is answered from the negative cache
		resp, rec, err := e.invoke("nope", "/", "")
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("err = %v, want store.ErrNotFound", err)
		}
		if resp != nil || rec != nil {
			t.Errorf("unknown function gave response %v and record %v, want neither", resp, rec)
		}
	}
	e.closeRecorder()
	recs, err := e.db.ListInvocations(context.Background(), store.InvocationFilter{Project: function.DefaultProject, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 0 {
		t.Errorf("%d records stored for an unknown function, want none", len(recs))
	}
}

// TestInvokeTimeout is not parallel: under -race on a busy machine a cold
// start alone can take the 200ms, and this test is about the guest spinning.
func TestInvokeTimeout(t *testing.T) {
	e := newEnv(t, scheduler.Config{})
	const timeout = 200 * time.Millisecond
	e.deploy("spinner", timeout, nil)

	start := time.Now()
	resp, rec, err := e.invoke("spinner", "/spin", "")
	took := time.Since(start)
	if !errors.Is(err, function.ErrTimeout) {
		t.Fatalf("err = %v, want function.ErrTimeout", err)
	}
	if resp != nil {
		t.Errorf("timed-out call returned a response: %+v", resp)
	}
	if took < timeout || took > timeout+5*time.Second {
		t.Errorf("timed out after %v, want about %v", took, timeout)
	}
	if rec == nil || rec.Status != function.StatusTimeout || rec.Error == "" || rec.Duration < timeout {
		t.Fatalf("record = %+v, want status timeout with an error and a duration of at least %v", rec, timeout)
	}
	e.closeRecorder()
	if got := e.stored(rec.ID); got.Status != function.StatusTimeout {
		t.Errorf("stored status = %q, want timeout", got.Status)
	}
}

// TestInvokeTimeoutDuringColdStart gives a function the smallest timeout, so
// its cold start runs out of time (or, on a fast machine, the guest spins):
// either way the caller sees a timeout, not a function error.
func TestInvokeTimeoutDuringColdStart(t *testing.T) {
	t.Parallel()
	e := newEnv(t, scheduler.Config{})
	e.deploy("hasty", function.MinTimeout, nil)
	_, rec, err := e.invoke("hasty", "/spin", "")
	if !errors.Is(err, function.ErrTimeout) {
		t.Fatalf("err = %v, want function.ErrTimeout", err)
	}
	if rec == nil || rec.Status != function.StatusTimeout {
		t.Errorf("record = %+v, want status timeout", rec)
	}
}

func TestInvokeFunctionError(t *testing.T) {
	t.Parallel()
	e := newEnv(t, scheduler.Config{})
	e.deploy("panicky", 5*time.Second, nil)
	if _, _, err := e.invoke("panicky", "/", ""); err != nil {
		t.Fatal(err)
	}
	_, rec, err := e.invoke("panicky", "/panic", "")
	if !errors.Is(err, function.ErrFunction) {
		t.Fatalf("err = %v, want function.ErrFunction", err)
	}
	if rec == nil || rec.Status != function.StatusError || rec.Error == "" || rec.Cold {
		t.Fatalf("record = %+v, want a warm call with status error", rec)
	}
	// The trapped instance is gone: the next call starts afresh.
	resp, rec, err := e.invoke("panicky", "/", "")
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Cold || string(resp.Body) != "calls=1" {
		t.Errorf("after a trap: cold = %v, body %q; want a new instance", rec.Cold, resp.Body)
	}
}

func TestInvokeThrottled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, scheduler.Config{MaxConcurrency: 1, QueueTimeout: 100 * time.Millisecond})
	e.deploy("busy", 5*time.Second, nil)

	started := make(chan struct{})
	slow := make(chan error, 1)
	go func() {
		close(started)
		_, _, err := e.invoke("busy", "/sleep", "d=1500ms")
		slow <- err
	}()
	<-started
	deadline := time.Now().Add(10 * time.Second)
	for e.sched.Stats().Busy == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the slow call never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	_, rec, err := e.invoke("busy", "/", "")
	if !errors.Is(err, function.ErrThrottled) {
		t.Fatalf("err = %v, want function.ErrThrottled", err)
	}
	if rec == nil || rec.Status != function.StatusThrottled || rec.BilledMS != 0 {
		t.Errorf("record = %+v, want status throttled and nothing billed", rec)
	}
	if err := <-slow; err != nil {
		t.Errorf("slow call: %v", err)
	}
}

func TestRedeployThenChanged(t *testing.T) {
	t.Parallel()
	e := newEnv(t, scheduler.Config{})
	e.deploy("app", 5*time.Second, map[string]string{"GREETING": "one"})
	resp, rec, err := e.invoke("app", "/echo", "")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Version != 1 || resp.Header.Get("X-Env") != "one" {
		t.Fatalf("before redeploy: version %d, X-Env %q", rec.Version, resp.Header.Get("X-Env"))
	}
	if st := e.sched.Stats(); st.Idle != 1 {
		t.Fatalf("stats = %+v, want the version 1 instance idle", st)
	}

	res := e.deploy("app", 5*time.Second, map[string]string{"GREETING": "two"})
	if res.Version.Number != 2 {
		t.Fatalf("redeploy made version %d, want 2", res.Version.Number)
	}
	e.inv.Changed(function.DefaultProject, "app")
	if st := e.sched.Stats(); st.Idle != 0 {
		t.Errorf("stats after Changed = %+v, want the old version's idle instance stopped", st)
	}
	resp, rec, err = e.invoke("app", "/echo", "")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Version != 2 || !rec.Cold || resp.Header.Get("X-Env") != "two" {
		t.Errorf("after redeploy: version %d, cold %v, X-Env %q; want version 2 on a new instance", rec.Version, rec.Cold, resp.Header.Get("X-Env"))
	}
	v, err := e.inv.Resolve(context.Background(), function.DefaultProject, "app")
	if err != nil || v.Number != 2 {
		t.Errorf("Resolve = %v, %v; want version 2", v, err)
	}
}

func TestDeleteThenChanged(t *testing.T) {
	t.Parallel()
	e := newEnv(t, scheduler.Config{})
	e.deploy("gone", 5*time.Second, nil)
	if _, _, err := e.invoke("gone", "/", ""); err != nil {
		t.Fatal(err)
	}
	if err := e.db.DeleteFunction(context.Background(), function.DefaultProject, "gone"); err != nil {
		t.Fatal(err)
	}
	e.inv.Changed(function.DefaultProject, "gone")
	resp, rec, err := e.invoke("gone", "/", "")
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after delete: err = %v, want store.ErrNotFound", err)
	}
	if resp != nil || rec != nil {
		t.Errorf("after delete: response %v, record %v; want neither", resp, rec)
	}
	if st := e.sched.Stats(); st.Idle != 0 {
		t.Errorf("stats after delete = %+v, want no idle instance", st)
	}
}

func TestCreateAfterNotFoundThenChanged(t *testing.T) {
	t.Parallel()
	e := newEnv(t, scheduler.Config{})
	if _, _, err := e.invoke("late", "/", ""); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("before deploy: err = %v, want store.ErrNotFound", err)
	}
	e.deploy("late", 5*time.Second, nil)
	e.inv.Changed(function.DefaultProject, "late")
	resp, rec, err := e.invoke("late", "/", "")
	if err != nil {
		t.Fatalf("after deploy and Changed: %v (the not-found answer outlived Changed)", err)
	}
	if rec.Version != 1 || string(resp.Body) != "calls=1" {
		t.Errorf("after deploy: version %d, body %q", rec.Version, resp.Body)
	}
}

// bodyWriter is a StreamWriter that keeps what a streamed response wrote.
type bodyWriter struct {
	status int
	body   []byte
}

func (w *bodyWriter) WriteHeader(status int, _ http.Header) error { w.status = status; return nil }
func (w *bodyWriter) Write(p []byte) (int, error)                 { w.body = append(w.body, p...); return len(p), nil }
func (w *bodyWriter) Flush() error                                { return nil }

// TestRecordResponseBytes: the record counts the response body the
// function answered (its data out), whole or streamed, and the store keeps it.
func TestRecordResponseBytes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, scheduler.Config{})
	e.deploy("sizes", 5*time.Second, nil)

	resp, whole, err := e.invoke("sizes", "/big", "n=12345")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Body) != 12345 || whole.ResponseBytes != 12345 {
		t.Errorf("whole response: body %d bytes, record says %d; want 12345", len(resp.Body), whole.ResponseBytes)
	}

	w := &bodyWriter{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	streamed, err := e.inv.InvokeVersionStream(ctx, function.DefaultProject, "sizes", 0, "http",
		&function.Request{Method: http.MethodGet, Path: "/stream", RawQuery: "n=3", Host: "fn.test", Header: http.Header{}}, w)
	if err != nil {
		t.Fatal(err)
	}
	if want := "data: 0\n\ndata: 1\n\ndata: 2\n\nend"; string(w.body) != want || streamed.ResponseBytes != int64(len(want)) {
		t.Errorf("streamed response: %q, record says %d bytes; want %q (%d bytes)", w.body, streamed.ResponseBytes, want, len(want))
	}

	_, empty, err := e.invoke("sizes", "/big", "n=0")
	if err != nil {
		t.Fatal(err)
	}
	e.closeRecorder()
	for _, tc := range []struct {
		rec  *function.Invocation
		want int64
	}{{whole, 12345}, {streamed, int64(len(w.body))}, {empty, 0}} {
		if got := e.stored(tc.rec.ID).ResponseBytes; got != tc.want {
			t.Errorf("stored record %s: response_bytes %d, want %d", tc.rec.ID, got, tc.want)
		}
	}
}
