// Package invoker runs one invocation end to end: it resolves a function to
// the version that serves it, takes an instance from the scheduler, runs
// the request under the function's timeout, and leaves a record.
//
// It knows nothing of HTTP servers; the gateway and the control API call it.
package invoker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/scheduler"
	"github.com/hostless/hostless/internal/store"
	"github.com/hostless/hostless/internal/telemetry"
)

// negativeTTL is how long an unknown function is remembered as unknown, so
// a flood of requests to names that don't exist doesn't reach the store.
const negativeTTL = time.Second

// maxNegative bounds the remembered unknown names; past it they are all
// forgotten at once, so a client naming endless functions can't grow it.
const maxNegative = 4096

// compileWorkers bounds the background compiles after deploys.
const compileWorkers = 2

// Invoker resolves and runs invocations.
type Invoker struct {
	fns   store.Functions
	sched *scheduler.Scheduler
	rt    function.Runtime
	rec   *telemetry.Recorder
	log   *slog.Logger

	mu       sync.RWMutex
	cache    map[fnKey]entry              // serving versions
	pinned   map[pinKey]*function.Version // versions asked for by number: immutable
	gen      uint64                       // bumped by Changed: a resolve that raced a change doesn't cache
	negative int                          // not-found entries in cache

	obs      Observer      // may be nil
	compiles chan struct{} // slots for background compiles
	stop     chan struct{} // closed by Wait: no new background compiles

	// In-flight invocations, counted so Wait can await them; after
	// closing, Invoke refuses new ones.
	flightMu sync.Mutex
	inFlight int
	closing  bool
	idle     chan struct{} // closed when inFlight drops to 0 while closing
}

// Observer receives every finished invocation and every wait for a
// concurrency slot (telemetry.Metrics).
type Observer interface {
	Observe(rec *function.Invocation)
	ObserveQueueWait(function string, d time.Duration)
	// ObserveThrottle counts a refused call by reason (function.Throttle*).
	ObserveThrottle(function, reason string)
	// Forget drops what it keeps of a deleted function.
	Forget(function string)
}

// WithObserver sets the observer of invocations; call it before serving.
func (iv *Invoker) WithObserver(o Observer) *Invoker {
	iv.obs = o
	return iv
}

// ErrClosed is returned by Invoke once the invoker is shutting down.
var ErrClosed = fmt.Errorf("%w: the platform is shutting down", function.ErrUnavailable)

type fnKey struct{ project, name string }

type pinKey struct {
	fnKey
	version int
}

type entry struct {
	v       *function.Version // nil: not found
	expires time.Time         // for not-found entries
}

// New wires an invoker.
func New(fns store.Functions, rt function.Runtime, sched *scheduler.Scheduler, rec *telemetry.Recorder, log *slog.Logger) *Invoker {
	return &Invoker{fns: fns, rt: rt, sched: sched, rec: rec, log: log, cache: map[fnKey]entry{}, pinned: map[pinKey]*function.Version{},
		compiles: make(chan struct{}, compileWorkers), stop: make(chan struct{})}
}

// enter counts an invocation in, unless the invoker is closing.
func (iv *Invoker) enter() bool {
	iv.flightMu.Lock()
	defer iv.flightMu.Unlock()
	if iv.closing {
		return false
	}
	iv.inFlight++
	return true
}

func (iv *Invoker) leave() {
	iv.flightMu.Lock()
	defer iv.flightMu.Unlock()
	iv.inFlight--
	if iv.inFlight == 0 && iv.idle != nil {
		close(iv.idle)
		iv.idle = nil
	}
}

// Wait refuses new invocations and background compiles, then waits for
// the invocations in flight to end, or for ctx. Compiles already running
// are not awaited: wazero can't cancel one, and their result is discarded.
func (iv *Invoker) Wait(ctx context.Context) error {
	iv.flightMu.Lock()
	if !iv.closing {
		iv.closing = true
		close(iv.stop)
	}
	done := make(chan struct{})
	if iv.inFlight == 0 {
		close(done)
	} else {
		if iv.idle == nil {
			iv.idle = make(chan struct{})
		}
		done = iv.idle
	}
	iv.flightMu.Unlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Resolve returns the version serving a function, from memory when it can.
func (iv *Invoker) Resolve(ctx context.Context, project, name string) (*function.Version, error) {
	key := fnKey{project, name}
	iv.mu.RLock()
	e, ok := iv.cache[key]
	gen := iv.gen
	iv.mu.RUnlock()
	if ok {
		if e.v != nil {
			return e.v, nil
		}
		if time.Now().Before(e.expires) {
			return nil, store.ErrNotFound
		}
	}
	fn, err := iv.fns.GetFunction(ctx, project, name)
	if errors.Is(err, store.ErrNotFound) {
		iv.remember(key, gen, entry{expires: time.Now().Add(negativeTTL)})
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	v, err := iv.fns.GetVersion(ctx, project, name, fn.Version)
	if errors.Is(err, store.ErrNotFound) {
		return nil, err // deleted between the two reads
	}
	if err != nil {
		return nil, err
	}
	iv.remember(key, gen, entry{v: &v})
	return &v, nil
}

// remember caches what a resolve found, unless a function changed since
// the resolve began: then what it read may be stale. (One generation for
// all functions: a deploy makes concurrent resolves of other functions
// skip caching once, which costs a store read, never a wrong answer.)
func (iv *Invoker) remember(key fnKey, gen uint64, e entry) {
	iv.mu.Lock()
	defer iv.mu.Unlock()
	if iv.gen != gen {
		return
	}
	if e.v == nil {
		if iv.negative >= maxNegative {
			for k, old := range iv.cache {
				if old.v == nil {
					delete(iv.cache, k)
				}
			}
			iv.negative = 0
		}
		if old, ok := iv.cache[key]; !ok || old.v != nil {
			iv.negative++
		}
	} else if old, ok := iv.cache[key]; ok && old.v == nil {
		iv.negative--
	}
	iv.cache[key] = e
}

// Changed tells the invoker that a function was deployed or deleted: the
// next call resolves it again, the old version's idle instances stop, and
// the new version compiles in the background.
func (iv *Invoker) Changed(project, name string) {
	key := fnKey{project, name}
	iv.mu.Lock()
	old, had := iv.cache[key]
	if had && old.v == nil {
		iv.negative--
	}
	delete(iv.cache, key)
	for k := range iv.pinned {
		if k.fnKey == key { // deleted versions must not serve
			delete(iv.pinned, k)
		}
	}
	iv.gen++
	iv.mu.Unlock()
	if old.v != nil {
		iv.sched.Retire(old.v)
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		v, err := iv.Resolve(ctx, project, name)
		if errors.Is(err, store.ErrNotFound) {
			// Deleted: every version's instances stop, and its metrics go,
			// without waiting behind compiles.
			iv.sched.RetireFunction(project, name)
			if iv.obs != nil {
				iv.obs.Forget(name)
			}
			return
		}
		if err != nil {
			return // the store is down: the first call will say
		}
		select {
		case iv.compiles <- struct{}{}:
			defer func() { <-iv.compiles }()
		case <-iv.stop:
			return
		}
		select { // stopped while waiting for a slot
		case <-iv.stop:
			return
		default:
		}
		if err := iv.rt.Prepare(ctx, v); err != nil {
			iv.log.Warn("compile function", "function", name, "version", v.Number, "err", err)
			return
		}
		iv.warm(ctx, v)
	}()
}

// warm starts the min_instances of a version that serves. A deploy that
// came meanwhile may have replaced it: then its pool, made here after that
// deploy retired the old one, is retired again.
func (iv *Invoker) warm(ctx context.Context, v *function.Version) {
	if v.Spec.MinInstances == 0 {
		return
	}
	if err := iv.sched.Warm(ctx, v); err != nil {
		iv.log.Warn("start min instances", "function", v.Function, "version", v.Number, "err", err)
	}
	now, err := iv.Resolve(ctx, v.Project, v.Function)
	if err != nil || now.Number != v.Number || !now.CreatedAt.Equal(v.CreatedAt) {
		iv.sched.Retire(v)
	}
}

// WarmAll starts, in the background as a deploy does, the min_instances of
// every serving version of a project that has them: at server start.
func (iv *Invoker) WarmAll(ctx context.Context, project string) error {
	fns, err := iv.fns.ListFunctions(ctx, project)
	if err != nil {
		return err
	}
	for _, f := range fns {
		v, err := iv.fns.GetVersion(ctx, project, f.Name, f.Version)
		if err != nil {
			return err
		}
		if v.Spec.MinInstances > 0 {
			iv.Changed(project, f.Name)
		}
	}
	return nil
}

// acquire applies the version's rate limits to the caller, then takes an
// instance.
func (iv *Invoker) acquire(ctx context.Context, v *function.Version, req *function.Request) (*scheduler.Lease, error) {
	remote := ""
	if req != nil {
		remote = req.RemoteAddr
	}
	if err := iv.sched.Allow(v, remote); err != nil {
		return nil, err
	}
	return iv.sched.Acquire(ctx, v)
}

// maxPinned bounds the versions cached by number.
const maxPinned = 4096

// resolvePinned returns a version asked for by number. The function is
// resolved first, through the cache that keeps floods of unknown names
// away from the store; a version it lacks is function.ErrVersionNotFound.
func (iv *Invoker) resolvePinned(ctx context.Context, project, name string, version int) (*function.Version, error) {
	serving, err := iv.Resolve(ctx, project, name)
	if err != nil {
		return nil, err
	}
	if serving.Number == version {
		return serving, nil
	}
	key := pinKey{fnKey{project, name}, version}
	iv.mu.RLock()
	v, ok := iv.pinned[key]
	gen := iv.gen
	iv.mu.RUnlock()
	if ok {
		if v == nil {
			return nil, fmt.Errorf("%w: function %q has no version %d", function.ErrVersionNotFound, name, version)
		}
		return v, nil
	}
	got, err := iv.fns.GetVersion(ctx, project, name, version)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	var found *function.Version
	if err == nil {
		found = &got
	}
	iv.mu.Lock()
	if iv.gen == gen { // not changed meanwhile
		if len(iv.pinned) >= maxPinned {
			clear(iv.pinned)
		}
		iv.pinned[key] = found // nil remembers a missing version until the next change
	}
	iv.mu.Unlock()
	if found == nil {
		return nil, fmt.Errorf("%w: function %q has no version %d", function.ErrVersionNotFound, name, version)
	}
	return found, nil
}

// InvokeVersion runs req on one version of a function by number; 0 means
// the serving version, as Invoke.
func (iv *Invoker) InvokeVersion(ctx context.Context, project, name string, version int, trigger string, req *function.Request) (*function.Response, *function.Invocation, error) {
	return iv.invoke(ctx, project, name, version, trigger, req)
}

// Invoke runs req on the serving version of a function. It returns the
// function's response, or an error matching the function package's
// errors, and always the record it left (nil only when the function does
// not exist).
func (iv *Invoker) Invoke(ctx context.Context, project, name, trigger string, req *function.Request) (*function.Response, *function.Invocation, error) {
	return iv.invoke(ctx, project, name, 0, trigger, req)
}

func (iv *Invoker) invoke(ctx context.Context, project, name string, version int, trigger string, req *function.Request) (*function.Response, *function.Invocation, error) {
	if function.ValidName(name) != nil || version < 0 {
		return nil, nil, store.ErrNotFound // no such name can exist: don't ask the store
	}
	if !iv.enter() {
		return nil, nil, ErrClosed
	}
	defer iv.leave()
	var v *function.Version
	var err error
	if version == 0 {
		v, err = iv.Resolve(ctx, project, name)
	} else {
		v, err = iv.resolvePinned(ctx, project, name, version)
	}
	if err != nil {
		return nil, nil, err
	}
	start := time.Now()
	rec := &function.Invocation{
		ID: function.NewID(start), Project: project, Function: name, Version: v.Number,
		Trigger: trigger, Start: start.UTC(), MemoryMB: v.Spec.MemoryMB,
	}
	req.ID = rec.ID
	lease, err := iv.acquire(ctx, v, req)
	if err != nil {
		if reason := function.ThrottleReason(err); reason != "" && iv.obs != nil {
			iv.obs.ObserveThrottle(name, reason)
			iv.obs.ObserveQueueWait(name, time.Since(start)) // how long it waited to be refused
		}
		// Throttled, or no instance could start: nothing ran to bill.
		return nil, iv.finish(rec, start, nil, nil, err, false), err
	}
	// What the function is billed for starts with its instance: waiting for
	// a concurrency slot or for its code to compile is the platform's time.
	ran := time.Now().Add(-lease.Info.Init)
	rec.Cold = lease.Cold
	if lease.Wait > 0 && iv.obs != nil {
		iv.obs.ObserveQueueWait(name, lease.Wait)
	}
	tctx, cancel := context.WithTimeout(ctx, time.Duration(v.Spec.Timeout))
	defer cancel()
	logs := telemetry.NewLogs()
	resp, err := lease.Instance.Invoke(tctx, req, logs)
	lease.Release()
	return resp, iv.finish(rec, ran, resp, logs, err, true), err
}

// finish completes a record: its duration runs from ran (the instance's
// start on a cold call, the call itself on a warm one) to now, billed
// when billed is set.
func (iv *Invoker) finish(rec *function.Invocation, ran time.Time, resp *function.Response, logs *telemetry.Logs, err error, billed bool) *function.Invocation {
	rec.Duration = time.Since(ran)
	if billed {
		rec.BilledMS = function.BilledMillis(rec.Duration)
	}
	rec.Status = function.StatusOf(err)
	if err != nil {
		rec.Error = err.Error()
	}
	if resp != nil {
		rec.HTTPStatus = resp.Status
	}
	if logs != nil {
		rec.Logs = logs.Lines
	}
	if iv.obs != nil {
		iv.obs.Observe(rec)
	}
	iv.rec.Record(rec)
	return rec
}
