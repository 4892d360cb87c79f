package scheduler_test

import (
	"context"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/runtime/wasm"
	"github.com/hostless/hostless/internal/runtime/wasm/runtimetest"
	"github.com/hostless/hostless/internal/scheduler"
)

type sharedRuntime struct {
	rt     *wasm.Runtime
	sdkRef string
}

// memoryMB is the one memory limit every version here uses: the runtime
// compiles code once per limit.
const memoryMB = runtimetest.MemoryMB

func TestMain(m *testing.M) {
	code := m.Run()
	runtimetest.Close()
	os.Exit(code)
}

// runtime returns the package's shared runtime, built on first use.
func runtime(t testing.TB) sharedRuntime {
	t.Helper()
	s := runtimetest.Get(t)
	return sharedRuntime{rt: s.RT, sdkRef: s.SDK}
}

func version(name, ref string) *function.Version {
	v := &function.Version{Project: function.DefaultProject, Function: name, Number: 1, CreatedAt: time.Now(),
		Spec: function.Spec{Runtime: function.RuntimeWasm, Code: ref, MemoryMB: memoryMB}}
	v.Spec.Normalize()
	return v
}

// newScheduler returns a scheduler over the shared runtime and a version
// of the SDK guest of its own, and closes the scheduler when the test ends.
func newScheduler(t *testing.T, cfg scheduler.Config) (*scheduler.Scheduler, *function.Version) {
	t.Helper()
	sr := runtime(t)
	s := scheduler.New(sr.rt, cfg)
	t.Cleanup(s.Close)
	return s, version(t.Name(), sr.sdkRef)
}

func acquire(t *testing.T, s *scheduler.Scheduler, v *function.Version) *scheduler.Lease {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := s.Acquire(ctx, v)
	if err != nil {
		t.Fatalf("acquire: %v", err)
	}
	return l
}

// call invokes path on a lease's instance and returns the body.
func call(t *testing.T, l *scheduler.Lease, path string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := l.Instance.Invoke(ctx, &function.Request{Method: http.MethodGet, Path: path, Header: http.Header{}}, nil)
	if err != nil {
		return "", err
	}
	return string(resp.Body), nil
}

func mustCall(t *testing.T, l *scheduler.Lease, path string) string {
	t.Helper()
	body, err := call(t, l, path)
	if err != nil {
		t.Fatalf("invoke %s: %v", path, err)
	}
	return body
}

func wantStats(t *testing.T, s *scheduler.Scheduler, want scheduler.Stats) {
	t.Helper()
	if got := s.Stats(); got != want {
		t.Errorf("stats = %+v, want %+v", got, want)
	}
}

func TestWarmReuse(t *testing.T) {
	t.Parallel()
	s, v := newScheduler(t, scheduler.Config{})

	first := acquire(t, s, v)
	if !first.Cold {
		t.Error("first acquire: Cold = false, want a cold start")
	}
	if got := mustCall(t, first, "/"); got != "calls=1" {
		t.Errorf("first call = %q, want calls=1", got)
	}
	wantStats(t, s, scheduler.Stats{Busy: 1})
	first.Release()
	wantStats(t, s, scheduler.Stats{Idle: 1})

	second := acquire(t, s, v)
	defer second.Release()
	if second.Cold {
		t.Error("second acquire: Cold = true, want the warm instance")
	}
	if second.Instance != first.Instance {
		t.Error("second acquire returned a different instance")
	}
	// The guest's globals survived: it is the same running instance.
	if got := mustCall(t, second, "/"); got != "calls=2" {
		t.Errorf("second call = %q, want calls=2", got)
	}
}

func TestSeparateVersionsSeparatePools(t *testing.T) {
	t.Parallel()
	s, v := newScheduler(t, scheduler.Config{})
	v2 := *v
	v2.Number = 2

	l := acquire(t, s, v)
	l.Release()
	l2 := acquire(t, s, &v2)
	defer l2.Release()
	if !l2.Cold {
		t.Error("another version reused an instance of version 1")
	}
	wantStats(t, s, scheduler.Stats{Idle: 1, Busy: 1})
}

func TestThrottleAfterQueueTimeout(t *testing.T) {
	t.Parallel()
	const queue = 200 * time.Millisecond
	s, v := newScheduler(t, scheduler.Config{MaxConcurrency: 2, QueueTimeout: queue})
	a, b := acquire(t, s, v), acquire(t, s, v)
	defer a.Release()
	defer b.Release()

	start := time.Now()
	l, err := s.Acquire(context.Background(), v)
	waited := time.Since(start)
	if err == nil {
		l.Release()
		t.Fatal("third acquire at the limit of 2 succeeded")
	}
	if !errors.Is(err, function.ErrThrottled) {
		t.Fatalf("err = %v, want function.ErrThrottled", err)
	}
	if waited < queue || waited > queue+2*time.Second {
		t.Errorf("throttled after %v, want about the queue timeout of %v", waited, queue)
	}
	wantStats(t, s, scheduler.Stats{Busy: 2})
}

// A version's own concurrency and queue timeout override the platform's.
func TestVersionLimitsOverrideDefaults(t *testing.T) {
	t.Parallel()
	const queue = 100 * time.Millisecond
	s, v := newScheduler(t, scheduler.Config{MaxConcurrency: 10, QueueTimeout: time.Minute})
	lim := *v
	lim.Spec.Concurrency = function.Concurrency{Max: 1, QueueTimeout: function.Duration(queue)}
	a := acquire(t, s, &lim)
	defer a.Release()

	start := time.Now()
	l, err := s.Acquire(context.Background(), &lim)
	waited := time.Since(start)
	if err == nil {
		l.Release()
		t.Fatal("second acquire at the version's limit of 1 succeeded")
	}
	if !errors.Is(err, function.ErrThrottled) {
		t.Fatalf("err = %v, want function.ErrThrottled", err)
	}
	if waited > 30*time.Second {
		t.Errorf("throttled after %v: the version's queue timeout of %v was not used", waited, queue)
	}
}

// A version's idle timeout, shorter than the platform's, scales it to zero.
func TestVersionIdleTimeout(t *testing.T) {
	t.Parallel()
	s, v := newScheduler(t, scheduler.Config{IdleTimeout: time.Hour})
	s.Start()
	short := *v
	short.Spec.IdleTimeout = function.Duration(function.MinIdleTimeout)

	l := acquire(t, s, &short)
	mustCall(t, l, "/")
	l.Release()
	wantStats(t, s, scheduler.Stats{Idle: 1})
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().Idle != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("instance of a version with idle_timeout 1s not reaped after 10s: %+v", s.Stats())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestQueuedCallerGetsReleasedSlot(t *testing.T) {
	t.Parallel()
	s, v := newScheduler(t, scheduler.Config{MaxConcurrency: 2, QueueTimeout: 10 * time.Second})
	a, b := acquire(t, s, v), acquire(t, s, v)
	defer b.Release()

	type result struct {
		l   *scheduler.Lease
		err error
	}
	got := make(chan result, 1)
	go func() {
		l, err := s.Acquire(context.Background(), v)
		got <- result{l, err}
	}()
	select {
	case r := <-got:
		if r.err == nil {
			r.l.Release()
		}
		t.Fatalf("acquire at the limit returned at once (err %v), want it to wait", r.err)
	case <-time.After(100 * time.Millisecond):
	}

	released := time.Now()
	a.Release()
	select {
	case r := <-got:
		if r.err != nil {
			t.Fatalf("queued acquire: %v", r.err)
		}
		defer r.l.Release()
		if d := time.Since(released); d > 2*time.Second {
			t.Errorf("queued caller went through %v after the release", d)
		}
		if r.l.Cold || r.l.Instance != a.Instance {
			t.Error("queued caller did not get the instance just released")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("queued acquire still waiting 5s after a slot was released")
	}
}

func TestConcurrencyNeverExceedsLimit(t *testing.T) {
	t.Parallel()
	const limit, callers = 3, 12
	s, v := newScheduler(t, scheduler.Config{MaxConcurrency: limit, QueueTimeout: 30 * time.Second})

	var running, peak atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			l, err := s.Acquire(context.Background(), v)
			if err != nil {
				errs <- err
				return
			}
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			_, err = call(t, l, "/sleep?d=20ms")
			running.Add(-1)
			l.Release()
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if p := peak.Load(); p > limit {
		t.Errorf("%d invocations ran at once, limit %d", p, limit)
	}
	st := s.Stats()
	if st.Busy != 0 || st.Idle < 1 || st.Idle > limit {
		t.Errorf("stats after all released = %+v, want Busy 0 and 1 to %d idle", st, limit)
	}
}

func TestFailedInstanceIsNotReused(t *testing.T) {
	t.Parallel()
	s, v := newScheduler(t, scheduler.Config{})
	l := acquire(t, s, v)
	if _, err := call(t, l, "/panic"); !errors.Is(err, function.ErrFunction) {
		t.Fatalf("/panic: err = %v, want function.ErrFunction", err)
	}
	if l.Instance.Reusable() {
		t.Fatal("instance still reusable after a trap")
	}
	l.Release()
	wantStats(t, s, scheduler.Stats{})

	next := acquire(t, s, v)
	defer next.Release()
	if !next.Cold {
		t.Error("acquire after a failure: Cold = false, want a new instance")
	}
	if next.Instance == l.Instance {
		t.Error("the failed instance was handed out again")
	}
	if got := mustCall(t, next, "/"); got != "calls=1" {
		t.Errorf("new instance answered %q, want calls=1", got)
	}
}

func TestStartFailureFreesTheSlot(t *testing.T) {
	t.Parallel()
	s, _ := newScheduler(t, scheduler.Config{MaxConcurrency: 1, QueueTimeout: 5 * time.Second})
	missing := version("missing", "sha256:"+hex.EncodeToString(make([]byte, 32)))
	for i := range 3 {
		start := time.Now()
		_, err := s.Acquire(context.Background(), missing)
		if !errors.Is(err, function.ErrNotFound) {
			t.Fatalf("acquire %d: err = %v, want the runtime's not-found error", i, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("acquire %d took %v: a failed start kept its slot", i, d)
		}
	}
	wantStats(t, s, scheduler.Stats{})
}

func TestIdleInstancesAreReaped(t *testing.T) {
	t.Parallel()
	s, v := newScheduler(t, scheduler.Config{IdleTimeout: 100 * time.Millisecond})
	s.Start()

	l := acquire(t, s, v)
	mustCall(t, l, "/")
	l.Release()
	wantStats(t, s, scheduler.Stats{Idle: 1})

	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().Idle != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("idle instance not reaped after 5s: %+v", s.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// (The reaper closes the instance on its own goroutine, so the test
	// doesn't touch the old instance again.)

	next := acquire(t, s, v)
	defer next.Release()
	if !next.Cold {
		t.Error("acquire after scale to zero: Cold = false, want a cold start")
	}
	if got := mustCall(t, next, "/"); got != "calls=1" {
		t.Errorf("new instance answered %q, want calls=1", got)
	}
}

func TestBusyInstancesAreNotReaped(t *testing.T) {
	t.Parallel()
	s, v := newScheduler(t, scheduler.Config{IdleTimeout: 50 * time.Millisecond})
	s.Start()
	l := acquire(t, s, v)
	time.Sleep(200 * time.Millisecond) // several reaper rounds
	if !l.Instance.Reusable() {
		t.Fatal("the reaper closed an instance in use")
	}
	if got := mustCall(t, l, "/"); got != "calls=1" {
		t.Errorf("busy instance answered %q, want calls=1", got)
	}
	l.Release()
}

func TestRetire(t *testing.T) {
	t.Parallel()
	s, v := newScheduler(t, scheduler.Config{})
	idle, busy := acquire(t, s, v), acquire(t, s, v)
	idle.Release()
	wantStats(t, s, scheduler.Stats{Idle: 1, Busy: 1})

	s.Retire(v)
	if idle.Instance.Reusable() {
		t.Error("Retire did not close the idle instance")
	}
	if !busy.Instance.Reusable() {
		t.Error("Retire closed an instance in use")
	}
	if got := mustCall(t, busy, "/"); got != "calls=1" {
		t.Errorf("busy instance after Retire answered %q, want calls=1", got)
	}
	busy.Release()
	if busy.Instance.Reusable() {
		t.Error("a lease released after Retire was not closed")
	}
	wantStats(t, s, scheduler.Stats{})

	next := acquire(t, s, v)
	defer next.Release()
	if !next.Cold || next.Instance == busy.Instance || next.Instance == idle.Instance {
		t.Error("acquire after Retire reused a retired instance")
	}
}

func TestClose(t *testing.T) {
	t.Parallel()
	sr := runtime(t)
	s := scheduler.New(sr.rt, scheduler.Config{IdleTimeout: time.Hour})
	s.Start()
	v := version(t.Name(), sr.sdkRef)
	idle, busy := acquire(t, s, v), acquire(t, s, v)
	idle.Release()

	s.Close()
	if idle.Instance.Reusable() {
		t.Error("Close did not close the idle instance")
	}
	wantStats(t, s, scheduler.Stats{})
	if _, err := s.Acquire(context.Background(), v); !errors.Is(err, scheduler.ErrClosed) {
		t.Errorf("acquire after Close: err = %v, want ErrClosed", err)
	}
	busy.Release()
	if busy.Instance.Reusable() {
		t.Error("a lease released after Close was not closed")
	}
	s.Close() // a second Close is harmless
	s.Retire(v)
}

func TestCloseWithoutStart(t *testing.T) {
	t.Parallel()
	s := scheduler.New(runtime(t).rt, scheduler.Config{})
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close of a scheduler never started did not return")
	}
}

func TestCancelWhileQueued(t *testing.T) {
	t.Parallel()
	s, v := newScheduler(t, scheduler.Config{MaxConcurrency: 1, QueueTimeout: time.Minute})
	held := acquire(t, s, v)
	defer held.Release()

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	l, err := s.Acquire(ctx, v)
	if err == nil {
		l.Release()
		t.Fatal("acquire succeeded at the limit")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if errors.Is(err, function.ErrThrottled) {
		t.Error("a cancelled caller was reported as throttled")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("cancelled acquire returned after %v, want promptly", d)
	}
	wantStats(t, s, scheduler.Stats{Busy: 1})
}

// min_instances: Warm starts them before any call, idle time never reaps
// them, calls find them warm, and a failed one is replaced.
func TestMinInstances(t *testing.T) {
	t.Parallel()
	s, v := newScheduler(t, scheduler.Config{IdleTimeout: 50 * time.Millisecond})
	v.Spec.MinInstances = 2
	s.Start()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Warm(ctx, v); err != nil {
		t.Fatalf("warm: %v", err)
	}
	wantStats(t, s, scheduler.Stats{Idle: 2})
	time.Sleep(500 * time.Millisecond) // ten idle timeouts
	wantStats(t, s, scheduler.Stats{Idle: 2})

	a, b := acquire(t, s, v), acquire(t, s, v)
	if a.Cold || b.Cold {
		t.Errorf("calls within min_instances started cold: %v, %v", a.Cold, b.Cold)
	}
	if _, err := call(t, a, "/panic"); !errors.Is(err, function.ErrFunction) {
		t.Fatalf("/panic: err = %v, want function.ErrFunction", err)
	}
	a.Release() // closed: it failed
	b.Release()
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().Idle != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the failed instance was not replaced: %+v", s.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A third, beyond the minimum, still scales down.
	c1, c2, c3 := acquire(t, s, v), acquire(t, s, v), acquire(t, s, v)
	if !c3.Cold {
		t.Error("a third concurrent call found a warm instance beyond min_instances")
	}
	c1.Release()
	c2.Release()
	c3.Release()
	deadline = time.Now().Add(10 * time.Second)
	for s.Stats().Idle != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("idle instances above min_instances not reaped: %+v", s.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Retiring a version stops its min instances: nothing keeps them.
func TestWarmRetired(t *testing.T) {
	t.Parallel()
	s, v := newScheduler(t, scheduler.Config{})
	v.Spec.MinInstances = 1
	ctx := context.Background()
	if err := s.Warm(ctx, v); err != nil {
		t.Fatal(err)
	}
	s.Retire(v)
	wantStats(t, s, scheduler.Stats{})
}

// The platform-wide cap on concurrency holds across versions.
func TestPlatformConcurrencyCap(t *testing.T) {
	t.Parallel()
	s, v := newScheduler(t, scheduler.Config{MaxTotalConcurrency: 2, QueueTimeout: 100 * time.Millisecond})
	other := version(t.Name()+"-other", v.Spec.Code)
	a, b := acquire(t, s, v), acquire(t, s, other)
	_, err := s.Acquire(context.Background(), v)
	if got := function.ThrottleReason(err); got != function.ThrottlePlatformConcurrency {
		t.Fatalf("third call with 2 running platform-wide: err %v (reason %q), want platform_concurrency", err, got)
	}
	a.Release()
	c := acquire(t, s, other) // room again
	c.Release()
	b.Release()
}

// The platform-wide memory cap: a cold start stops the least recently used
// idle instance of another version to make room, and is throttled when
// only busy instances hold the memory.
func TestPlatformMemoryCap(t *testing.T) {
	t.Parallel()
	s, v := newScheduler(t, scheduler.Config{MaxMemoryMB: 2 * memoryMB})
	b := version(t.Name()+"-b", v.Spec.Code)
	c := version(t.Name()+"-c", v.Spec.Code)
	la, lb := acquire(t, s, v), acquire(t, s, b)
	if got := s.MemoryMB(); got != 2*memoryMB {
		t.Errorf("memory of 2 instances = %d MB, want %d", got, 2*memoryMB)
	}
	_, err := s.Acquire(context.Background(), c)
	if got := function.ThrottleReason(err); got != function.ThrottlePlatformMemory {
		t.Fatalf("a third instance beyond the memory cap: err %v (reason %q), want platform_memory", err, got)
	}
	la.Release() // idle now: it may be stopped for c
	lc := acquire(t, s, c)
	if !lc.Cold {
		t.Error("c started warm?")
	}
	wantStats(t, s, scheduler.Stats{Busy: 2})
	if got := s.MemoryMB(); got != 2*memoryMB {
		t.Errorf("memory after the eviction = %d MB, want %d", got, 2*memoryMB)
	}
	lb.Release()
	lc.Release()
	s.Retire(b)
	s.Retire(c)
	if got := s.MemoryMB(); got != 0 {
		t.Errorf("memory with no instance = %d MB, want 0", got)
	}
}

// rate_limit: a token bucket for the version and one per client.
func TestRateLimit(t *testing.T) {
	t.Parallel()
	s, v := newScheduler(t, scheduler.Config{})
	v.Spec.RateLimit = function.RateLimit{RPS: 0.001, Burst: 3, PerIPRPS: 0.001, PerIPBurst: 2}
	for i, client := range []string{"10.0.0.1", "10.0.0.1", "10.0.0.2"} {
		if err := s.Allow(v, client); err != nil {
			t.Fatalf("call %d from %s within the bursts: %v", i+1, client, err)
		}
	}
	if got := function.ThrottleReason(s.Allow(v, "10.0.0.3")); got != function.ThrottleRate {
		t.Errorf("fourth call past the version's burst of 3: reason %q, want rate", got)
	}

	w := version(t.Name()+"-ip", v.Spec.Code)
	w.Spec.RateLimit = function.RateLimit{PerIPRPS: 0.001, PerIPBurst: 1}
	if err := s.Allow(w, "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if got := function.ThrottleReason(s.Allow(w, "10.0.0.1")); got != function.ThrottleRateIP {
		t.Errorf("second call of one client past its burst of 1: reason %q, want rate_ip", got)
	}
	if err := s.Allow(w, "10.0.0.2"); err != nil {
		t.Errorf("another client was limited by the first one's bucket: %v", err)
	}
}

// waitStats waits for the scheduler's counts to become want.
func waitStats(t *testing.T, s *scheduler.Scheduler, want scheduler.Stats, pools int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats() != want || s.Pools() != pools {
		if time.Now().After(deadline) {
			t.Fatalf("stats = %+v with %d pools, want %+v with %d", s.Stats(), s.Pools(), want, pools)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Drain: a version no alias serves stops its idle instances at once; a busy
// one finishes and stays warm for calls by number until the idle timeout,
// and then the pool goes. Versions still served are untouched.
func TestDrain(t *testing.T) {
	t.Parallel()
	// Long enough that the idle instance outlives the set-up under the race
	// detector on two busy cores (200 ms did not, in CI).
	s, v := newScheduler(t, scheduler.Config{IdleTimeout: 2 * time.Second})
	s.Start()
	served := *v
	served.Number = 2
	idle, busy := acquire(t, s, v), acquire(t, s, v)
	idle.Release()
	kept := acquire(t, s, &served)
	kept.Release()
	wantStats(t, s, scheduler.Stats{Idle: 2, Busy: 1})

	s.Drain(v.Project, v.Function, []*function.Version{&served})
	if idle.Instance.Reusable() {
		t.Error("Drain did not stop the idle instance")
	}
	if !kept.Instance.Reusable() {
		t.Error("Drain stopped an instance of a served version")
	}
	if got := mustCall(t, busy, "/"); got != "calls=1" {
		t.Errorf("busy instance after Drain answered %q, want calls=1", got)
	}
	busy.Release()
	if !busy.Instance.Reusable() {
		t.Error("Drain closed a busy instance when it was released")
	}
	again := acquire(t, s, v)
	if again.Cold || again.Instance != busy.Instance {
		t.Error("a call by number after Drain did not find the instance that finished warm")
	}
	again.Release()
	// The idle timeout stops the drained version's instance (the served
	// version's too: it keeps no minimum), and the drained pool goes.
	waitStats(t, s, scheduler.Stats{}, 1)
	next := acquire(t, s, v)
	defer next.Release()
	if !next.Cold {
		t.Error("a call after the pool went found a warm instance")
	}
}

// min_instances belong to versions that serve: Drain stops keeping them,
// and a pool that only calls by number made keeps none.
func TestDrainStopsMinInstances(t *testing.T) {
	t.Parallel()
	s, v := newScheduler(t, scheduler.Config{IdleTimeout: 100 * time.Millisecond})
	v.Spec.MinInstances = 1
	s.Start()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Warm(ctx, v); err != nil {
		t.Fatal(err)
	}
	wantStats(t, s, scheduler.Stats{Idle: 1})
	s.Drain(v.Project, v.Function, nil)
	wantStats(t, s, scheduler.Stats{})
	time.Sleep(300 * time.Millisecond) // the reaper would have topped it up by now
	waitStats(t, s, scheduler.Stats{}, 0)

	// Called by number, the version starts and is reaped like any other.
	l := acquire(t, s, v)
	l.Release()
	waitStats(t, s, scheduler.Stats{}, 1)
	// Serving again (a rollback), it keeps its minimum.
	if err := s.Warm(ctx, v); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	wantStats(t, s, scheduler.Stats{Idle: 1})
}
