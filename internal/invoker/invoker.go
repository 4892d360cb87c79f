// Package invoker runs one invocation end to end: it resolves a function to
// the version that serves it, takes an instance from the scheduler, runs
// the request under the function's timeout, and leaves a record.
//
// It knows nothing of HTTP servers; the gateway and the control API call it.
package invoker

import (
	"context"
	"errors"
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

// Invoker resolves and runs invocations.
type Invoker struct {
	fns   store.Functions
	sched *scheduler.Scheduler
	rt    function.Runtime
	rec   *telemetry.Recorder
	log   *slog.Logger

	mu    sync.RWMutex
	cache map[fnKey]entry // serving versions
}

type fnKey struct{ project, name string }

type entry struct {
	v       *function.Version // nil: not found
	expires time.Time         // for not-found entries
}

// New wires an invoker.
func New(fns store.Functions, rt function.Runtime, sched *scheduler.Scheduler, rec *telemetry.Recorder, log *slog.Logger) *Invoker {
	return &Invoker{fns: fns, rt: rt, sched: sched, rec: rec, log: log, cache: map[fnKey]entry{}}
}

// Resolve returns the version serving a function, from memory when it can.
func (iv *Invoker) Resolve(ctx context.Context, project, name string) (*function.Version, error) {
	key := fnKey{project, name}
	iv.mu.RLock()
	e, ok := iv.cache[key]
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
		iv.mu.Lock()
		iv.cache[key] = entry{expires: time.Now().Add(negativeTTL)}
		iv.mu.Unlock()
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	v, err := iv.fns.GetVersion(ctx, project, name, fn.Version)
	if err != nil {
		return nil, err
	}
	iv.mu.Lock()
	iv.cache[key] = entry{v: &v}
	iv.mu.Unlock()
	return &v, nil
}

// Changed tells the invoker that a function was deployed or deleted: the
// next call resolves it again, the old version's idle instances stop, and
// the new version compiles in the background.
func (iv *Invoker) Changed(project, name string) {
	key := fnKey{project, name}
	iv.mu.Lock()
	old := iv.cache[key]
	delete(iv.cache, key)
	iv.mu.Unlock()
	if old.v != nil {
		iv.sched.Retire(old.v)
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		v, err := iv.Resolve(ctx, project, name)
		if err != nil {
			return // deleted, or the store is down: the first call will say
		}
		if err := iv.rt.Prepare(ctx, v); err != nil {
			iv.log.Warn("compile function", "function", name, "version", v.Number, "err", err)
		}
	}()
}

// Invoke runs req on the serving version of a function. It returns the
// function's response, or an error matching the function package's
// errors, and always the record it left (nil only when the function does
// not exist).
func (iv *Invoker) Invoke(ctx context.Context, project, name, trigger string, req *function.Request) (*function.Response, *function.Invocation, error) {
	v, err := iv.Resolve(ctx, project, name)
	if err != nil {
		return nil, nil, err
	}
	start := time.Now()
	rec := &function.Invocation{
		ID: function.NewID(start), Project: project, Function: name, Version: v.Number,
		Trigger: trigger, Start: start.UTC(), MemoryMB: v.Spec.MemoryMB,
	}
	lease, err := iv.sched.Acquire(ctx, v)
	if err != nil {
		return nil, iv.finish(rec, start, nil, nil, err), err
	}
	rec.Cold = lease.Cold
	tctx, cancel := context.WithTimeout(ctx, time.Duration(v.Spec.Timeout))
	defer cancel()
	logs := telemetry.NewLogs()
	resp, err := lease.Instance.Invoke(tctx, req, logs)
	lease.Release()
	return resp, iv.finish(rec, start, resp, logs, err), err
}

func (iv *Invoker) finish(rec *function.Invocation, start time.Time, resp *function.Response, logs *telemetry.Logs, err error) *function.Invocation {
	rec.Duration = time.Since(start)
	rec.BilledMS = function.BilledMillis(rec.Duration)
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
	if rec.Status == function.StatusThrottled {
		rec.BilledMS = 0
	}
	iv.rec.Record(rec)
	return rec
}
