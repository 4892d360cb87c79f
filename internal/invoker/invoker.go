// Package invoker runs one invocation end to end: it resolves a function's
// alias (live, for /fn/{name}) to a version, picking the alias's canary
// with its weight, takes an instance from the scheduler, runs the request
// under the function's timeout, and leaves a record. It tells the
// scheduler which versions still serve after a change.
//
// It knows nothing of HTTP servers; the gateway and the control API call it.
package invoker

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/metering"
	"github.com/hostless/hostless/internal/requestid"
	"github.com/hostless/hostless/internal/scheduler"
	"github.com/hostless/hostless/internal/store"
	"github.com/hostless/hostless/internal/telemetry"
	"github.com/hostless/hostless/internal/tracing"
)

// negativeTTL is how long an unknown function (or alias) is remembered as
// unknown, so a flood of requests to names that don't exist doesn't reach
// the store.
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
	// budgets, when set, refuses calls past a budget and counts usage.
	budgets *metering.Budgets

	mu       sync.RWMutex
	cache    map[routeKey]entry           // what aliases point at
	pinned   map[pinKey]*function.Version // versions asked for by number: immutable
	gen      uint64                       // bumped by Changed: a resolve that raced a change doesn't cache
	negative int                          // not-found entries in cache

	// changeMu orders Changed's reads of what serves with the drains that
	// follow, so the last change read is the one applied.
	changeMu sync.Mutex

	obs      Observer // may be nil
	tracer   trace.Tracer
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

// WithBudgets counts every billed invocation against budgets and refuses
// calls past them; call it before serving.
func (iv *Invoker) WithBudgets(b *metering.Budgets) *Invoker {
	iv.budgets = b
	return iv
}

// WithTracer traces invocations with t, before serving: a span per
// invocation, with its queue wait, cold start and the function's run as
// children, the function given the trace context (traceparent) of its
// run.
func (iv *Invoker) WithTracer(t trace.Tracer) *Invoker {
	iv.tracer = t
	return iv
}

// WithObserver sets the observer of invocations; call it before serving.
func (iv *Invoker) WithObserver(o Observer) *Invoker {
	iv.obs = o
	return iv
}

// ErrClosed is returned by Invoke once the invoker is shutting down.
var ErrClosed = fmt.Errorf("%w: the platform is shutting down", function.ErrUnavailable)

// New wires an invoker.
func New(fns store.Functions, rt function.Runtime, sched *scheduler.Scheduler, rec *telemetry.Recorder, log *slog.Logger) *Invoker {
	return &Invoker{fns: fns, rt: rt, sched: sched, rec: rec, log: log, cache: map[routeKey]entry{}, pinned: map[pinKey]*function.Version{},
		compiles: make(chan struct{}, compileWorkers), stop: make(chan struct{}), tracer: (*tracing.Provider)(nil).Tracer()}
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

// acquire applies the version's rate limits to the caller, then takes an
// instance.
func (iv *Invoker) acquire(ctx context.Context, v *function.Version, req *function.Request) (*scheduler.Lease, error) {
	remote := ""
	if req != nil {
		remote = req.RemoteAddr
	}
	if iv.budgets != nil {
		if err := iv.budgets.Check(v.Function, v.Spec.Budget); err != nil {
			return nil, err
		}
	}
	if err := iv.sched.Allow(v, remote); err != nil {
		return nil, err
	}
	return iv.sched.Acquire(ctx, v)
}

// Invoke runs req on a function through its live alias (what /fn/{name}
// calls). It returns the function's response, or an error matching the
// function package's errors, and always the record it left (nil only when
// nothing was found to run).
func (iv *Invoker) Invoke(ctx context.Context, project, name, trigger string, req *function.Request) (*function.Response, *function.Invocation, error) {
	return iv.invoke(ctx, project, name, function.LiveAlias, 0, trigger, req, nil)
}

// InvokeVersion runs req on one version of a function by number; 0 means
// the live alias, as Invoke.
func (iv *Invoker) InvokeVersion(ctx context.Context, project, name string, version int, trigger string, req *function.Request) (*function.Response, *function.Invocation, error) {
	if version == 0 {
		return iv.invoke(ctx, project, name, function.LiveAlias, 0, trigger, req, nil)
	}
	return iv.invoke(ctx, project, name, "", version, trigger, req, nil)
}

// InvokeAlias runs req on the version an alias of a function picks for it:
// its version, or its canary with the canary's weight. An alias the
// function lacks is an error matching function.ErrAliasNotFound.
func (iv *Invoker) InvokeAlias(ctx context.Context, project, name, alias string, trigger string, req *function.Request) (*function.Response, *function.Invocation, error) {
	return iv.invoke(ctx, project, name, alias, 0, trigger, req, nil)
}

// InvokeVersionStream runs req on one version by number (0: the live
// alias), as InvokeVersion does, writing the response to w as the
// function streams it: through its instance's InvokeStream when the
// runtime streams, else whole once it is done. The record has the status
// and duration, never the body. When it returns an error and w has had
// no WriteHeader, the caller still owns the response.
func (iv *Invoker) InvokeVersionStream(ctx context.Context, project, name string, version int, trigger string, req *function.Request, w function.StreamWriter) (*function.Invocation, error) {
	alias := ""
	if version == 0 {
		alias = function.LiveAlias
	}
	_, rec, err := iv.invoke(ctx, project, name, alias, version, trigger, req, w)
	return rec, err
}

// statusWriter remembers the status a streamed response started with and
// counts the bytes of its body, for its record.
type statusWriter struct {
	function.StreamWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(status int, h http.Header) error {
	w.status = status
	return w.StreamWriter.WriteHeader(status, h)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	n, err := w.StreamWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// stream runs req on inst, writing its response to w.
func stream(ctx context.Context, inst function.Instance, req *function.Request, logs function.Logs, w function.StreamWriter) error {
	if si, ok := inst.(function.StreamInstance); ok {
		return si.InvokeStream(ctx, req, logs, w)
	}
	resp, err := inst.Invoke(ctx, req, logs)
	if err != nil {
		return err
	}
	if err := w.WriteHeader(resp.Status, resp.Header); err != nil {
		return err
	}
	if _, err := w.Write(resp.Body); err != nil {
		return err
	}
	return w.Flush()
}

// invoke runs req on version, when it is not 0, else on what alias picks;
// with w set, the response streams to w, and the one returned is nil.
func (iv *Invoker) invoke(ctx context.Context, project, name, alias string, version int, trigger string, req *function.Request, w function.StreamWriter) (*function.Response, *function.Invocation, error) {
	if function.ValidName(name) != nil || version < 0 {
		return nil, nil, store.ErrNotFound // no such name can exist: don't ask the store
	}
	if !iv.enter() {
		return nil, nil, ErrClosed
	}
	defer iv.leave()
	v, err := iv.version(ctx, project, name, alias, version)
	if err != nil {
		return nil, nil, err
	}
	if limit := v.Spec.Limits.Request; limit > 0 && int64(len(req.Body)) > limit && syncTriggers[trigger] {
		// Every synchronous way in (function URLs and routes check before
		// reading the rest; the control API's invoke, the Lambda API).
		return nil, nil, fmt.Errorf("%w: %d bytes (function %q's limits.request is %s)", function.ErrRequestTooLarge, len(req.Body), name, function.FormatBytes(limit))
	}
	start := time.Now()
	rec := &function.Invocation{
		ID: function.NewID(start), Project: project, Function: name, Version: v.Number,
		Trigger: trigger, Start: start.UTC(), MemoryMB: v.Spec.MemoryMB, RequestID: requestid.From(ctx),
	}
	req.ID = rec.ID
	if req.Header == nil {
		req.Header = http.Header{}
	}
	if !trace.SpanContextFromContext(ctx).IsValid() {
		// An async event or a trigger's message carries the trace context
		// of what sent it in its headers.
		ctx = tracing.Extract(ctx, req.Header)
	}
	ctx, span := iv.tracer.Start(ctx, "invoke "+name, trace.WithSpanKind(trace.SpanKindInternal))
	defer span.End()
	if span.IsRecording() {
		span.SetAttributes(attribute.String("faas.name", name), attribute.Int("hostless.version", v.Number),
			attribute.String("faas.trigger", trigger), attribute.String("faas.invocation_id", rec.ID))
		defer func() { endSpan(span, rec) }()
	}
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
	acquired := time.Now()
	ran := acquired.Add(-lease.Info.Init)
	rec.Cold = lease.Cold
	if lease.Wait > 0 && iv.obs != nil {
		iv.obs.ObserveQueueWait(name, lease.Wait)
	}
	tracing.Phase(ctx, "queue wait", start, start.Add(lease.Wait))
	if lease.Cold {
		tracing.Phase(ctx, "cold start", ran.Add(-lease.Info.Load), acquired,
			attribute.Int64("hostless.load_ms", lease.Info.Load.Milliseconds()), attribute.Int64("hostless.init_ms", lease.Info.Init.Milliseconds()))
	}
	// The function continues the trace from its own span.
	ctx, fspan := iv.tracer.Start(ctx, "function "+name)
	defer fspan.End()
	tracing.Inject(ctx, req.Header)
	tctx, cancel := context.WithTimeout(ctx, time.Duration(v.Spec.Timeout))
	defer cancel()
	logs := telemetry.NewLogs()
	if w != nil {
		sw := &statusWriter{StreamWriter: w}
		err := stream(tctx, lease.Instance, req, logs, sw)
		lease.Release()
		rec.HTTPStatus, rec.ResponseBytes = sw.status, sw.bytes
		return nil, iv.finish(rec, ran, nil, logs, err, true), err
	}
	resp, err := lease.Instance.Invoke(tctx, req, logs)
	lease.Release()
	if limit := v.Spec.Limits.Response; err == nil && resp != nil && limit > 0 && int64(len(resp.Body)) > limit && syncTriggers[trigger] {
		// The runtime holds the server's limit; the function's own, lower,
		// is held here, for synchronous calls: an async event's answer is
		// dropped anyway, and failing it would retry it.
		err = fmt.Errorf("%w: %d bytes (the function's limits.response is %s)", function.ErrResponseTooLarge, len(resp.Body), function.FormatBytes(limit))
		resp = nil
	}
	return resp, iv.finish(rec, ran, resp, logs, err, true), err
}

// endSpan sets an invocation span's outcome from its record.
func endSpan(span trace.Span, rec *function.Invocation) {
	span.SetAttributes(attribute.Bool("faas.coldstart", rec.Cold), attribute.String("hostless.status", rec.Status),
		attribute.Int64("hostless.billed_ms", rec.BilledMS))
	if rec.HTTPStatus != 0 {
		span.SetAttributes(attribute.Int("http.response.status_code", rec.HTTPStatus))
	}
	if rec.Status != function.StatusOK {
		span.SetStatus(codes.Error, rec.Status)
	}
}

// syncTriggers are the triggers of synchronous calls, whose caller reads
// the response: function URLs and routes, the control API's invoke and the
// Lambda Invoke API.
var syncTriggers = map[string]bool{"http": true, "api": true, "lambda-api": true}

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
		rec.HTTPStatus, rec.ResponseBytes = resp.Status, int64(len(resp.Body))
	}
	if logs != nil {
		rec.Logs = logs.Lines
	}
	if iv.obs != nil {
		iv.obs.Observe(rec)
	}
	if billed && iv.budgets != nil {
		iv.budgets.Add(rec.Function, rec.BilledMS, rec.MemoryMB)
	}
	iv.rec.Record(rec)
	return rec
}
