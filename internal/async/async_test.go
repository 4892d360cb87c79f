package async

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/bus"
	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store/sqlite"
)

// fn is a function the engine runs, in place of the invoker: it answers by
// its behave func and counts what runs at once.
type fn struct {
	mu      sync.Mutex
	spec    function.Spec
	behave  func(req *function.Request) (*function.Response, error)
	calls   atomic.Int64
	running atomic.Int64
	maxRun  atomic.Int64
}

func (f *fn) Lookup(_ context.Context, project, name, alias string, version int) (*function.Version, error) {
	if name != "f" {
		return nil, function.ErrNotFound
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return &function.Version{Project: project, Function: name, Number: 1, Spec: f.spec}, nil
}

func (f *fn) invoke(req *function.Request) (*function.Response, *function.Invocation, error) {
	f.calls.Add(1)
	n := f.running.Add(1)
	defer f.running.Add(-1)
	for {
		m := f.maxRun.Load()
		if n <= m || f.maxRun.CompareAndSwap(m, n) {
			break
		}
	}
	resp, err := f.behave(req)
	return resp, &function.Invocation{ID: function.NewID(time.Now())}, err
}

func (f *fn) InvokeAlias(_ context.Context, _, _, _, _ string, req *function.Request) (*function.Response, *function.Invocation, error) {
	return f.invoke(req)
}

func (f *fn) InvokeVersion(_ context.Context, _, _ string, _ int, _ string, req *function.Request) (*function.Response, *function.Invocation, error) {
	return f.invoke(req)
}

func newEngine(t *testing.T, f *fn) (*Engine, *sqlite.DB) {
	t.Helper()
	b, err := bus.Open(t.Context(), bus.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	st, err := sqlite.Open(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e, err := New(Config{Bus: b, Invoker: f, States: st, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return e, st
}

func await(t *testing.T, e *Engine, id string, want string) function.AsyncInvocation {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := e.Get(t.Context(), function.DefaultProject, id)
		if err == nil && st.Status == want {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %+v (%v), want %s", id, st, err, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func req(body string) *function.Request {
	return &function.Request{Method: http.MethodPost, Path: "/", Header: http.Header{}, Body: []byte(body)}
}

// Many events at once: each runs once, never more at once than the
// concurrency, and each outcome is stored.
func TestEngineConcurrentEvents(t *testing.T) {
	f := &fn{spec: function.Spec{Concurrency: function.Concurrency{Max: 3}}, behave: func(r *function.Request) (*function.Response, error) {
		time.Sleep(2 * time.Millisecond)
		return &function.Response{Status: 200, Body: r.Body}, nil
	}}
	e, _ := newEngine(t, f)
	var (
		wg  sync.WaitGroup
		ids = make([]string, 200)
	)
	for i := range ids {
		wg.Go(func() {
			id, err := e.Enqueue(t.Context(), function.DefaultProject, "f", "", function.TriggerAsync, req("x"), Options{})
			if err != nil {
				t.Error(err)
			}
			ids[i] = id
		})
	}
	wg.Wait()
	for _, id := range ids {
		if st := await(t, e, id, function.StatusOK); string(st.Result.Body) != "x" || st.Attempts != 1 {
			t.Fatalf("%+v", st)
		}
	}
	if n := f.calls.Load(); n != 200 {
		t.Errorf("%d runs for 200 events", n)
	}
	if m := f.maxRun.Load(); m > 3 {
		t.Errorf("%d ran at once, want at most concurrency.max 3", m)
	}
	if s := e.Stats(); s.Accepted != 200 || s.Succeeded != 200 {
		t.Errorf("stats %+v", s)
	}
}

// A failing event is tried 1 + retries times, then dead-lettered and
// listed; a redrive runs it again under its ID.
func TestEngineRetriesThenDeadLetter(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	two := 2
	f := &fn{spec: function.Spec{Retry: function.Retry{MaxAttempts: &two, Backoff: function.Duration(10 * time.Millisecond)}},
		behave: func(*function.Request) (*function.Response, error) {
			if fail.Load() {
				return nil, errors.New("boom")
			}
			return &function.Response{Status: 204}, nil
		}}
	e, _ := newEngine(t, f)
	id, err := e.Enqueue(t.Context(), function.DefaultProject, "f", "", function.TriggerAsync, req("p"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := await(t, e, id, function.StatusDeadLettered)
	if st.Attempts != 3 || f.calls.Load() != 3 {
		t.Fatalf("%+v after %d calls, want 3 attempts", st, f.calls.Load())
	}
	ds, err := e.DeadLetters(t.Context(), function.DefaultProject, "f", 10)
	if err != nil || len(ds) != 1 || ds[0].ID != id || ds[0].Attempts != 3 {
		t.Fatalf("dead letters %+v %v", ds, err)
	}
	fail.Store(false)
	if n, err := e.Redrive(t.Context(), function.DefaultProject, "f"); err != nil || n != 1 {
		t.Fatalf("redrive: %d %v", n, err)
	}
	if st := await(t, e, id, function.StatusOK); st.Attempts != 4 {
		t.Errorf("after the redrive: %+v", st)
	}
	if _, err := e.Enqueue(t.Context(), function.DefaultProject, "nope", "", function.TriggerAsync, req(""), Options{}); !errors.Is(err, function.ErrNotFound) {
		t.Errorf("unknown function: %v", err)
	}
}

// Close lets running events finish and store their outcomes.
func TestEngineCloseFinishesRunning(t *testing.T) {
	started := make(chan struct{}, 1)
	f := &fn{behave: func(*function.Request) (*function.Response, error) {
		started <- struct{}{}
		time.Sleep(300 * time.Millisecond)
		return &function.Response{Status: 200}, nil
	}}
	e, st := newEngine(t, f)
	id, err := e.Enqueue(t.Context(), function.DefaultProject, "f", "", function.TriggerAsync, req(""), Options{})
	if err != nil {
		t.Fatal(err)
	}
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := st.GetAsync(t.Context(), function.DefaultProject, id)
	if err != nil || s.Status != function.StatusOK {
		t.Errorf("after Close: %+v %v, want ok", s, err)
	}
}

// BenchmarkEnqueue measures events accepted per second in process (no
// HTTP): each Enqueue returns once JetStream (embedded, default sync
// policy) stored the event. Nothing runs them: the function is paused by a
// concurrency the benchmark holds.
func BenchmarkEnqueue(b *testing.B) {
	release := make(chan struct{})
	f := &fn{spec: function.Spec{Concurrency: function.Concurrency{Max: 1}}, behave: func(*function.Request) (*function.Response, error) {
		<-release
		return &function.Response{Status: 200}, nil
	}}
	bb, err := bus.Open(b.Context(), bus.Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer bb.Close()
	st, err := sqlite.Open(b.Context(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	e, err := New(Config{Bus: bb, Invoker: f, States: st})
	if err != nil {
		b.Fatal(err)
	}
	if err := e.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	defer func() {
		close(release)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = e.Close(ctx)
	}()
	body := []byte(`{"order":42}`)
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := &function.Request{Method: http.MethodPost, Path: "/", Header: http.Header{"Content-Type": {"application/json"}}, Body: body}
			if _, err := e.Enqueue(context.Background(), function.DefaultProject, "f", "", function.TriggerAsync, r, Options{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "accepted/s")
}
