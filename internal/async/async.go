// Package async runs invocations that nobody waits for: async calls of a
// function URL or of the Lambda Invoke API, cron ticks, and the batches of
// the functions' broker triggers. An accepted event is stored on the bus (a
// JetStream work queue per function) before the caller gets its 202; a
// consumer per function runs it through the invoker, under the function's
// limits, retries what fails with an exponential backoff with jitter, and
// dead-letters what keeps failing.
//
// Every event has a state in the store (queued, running, retrying, then
// ok or dead_lettered) under the ID the caller was given. Attempts are
// counted there, not by the bus's deliveries: each attempt stores
// "running" with its number before it runs, and the outcome is stored
// before the bus message is settled. Every delivery reads the state first,
// so a message whose outcome is stored (a crash came between the two) is
// settled as the outcome says and not run again. A crash while the
// function runs runs it again (at least once).
//
// Package async knows nothing of HTTP.
package async

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hostless/hostless/internal/bus"
	"github.com/hostless/hostless/internal/eventshape"
	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
)

// Invoker runs and looks up functions (the invoker package's Invoker).
type Invoker interface {
	// Lookup returns the version a call would run, running nothing.
	Lookup(ctx context.Context, project, name, alias string, version int) (*function.Version, error)
	InvokeAlias(ctx context.Context, project, name, alias, trigger string, req *function.Request) (*function.Response, *function.Invocation, error)
	InvokeVersion(ctx context.Context, project, name string, version int, trigger string, req *function.Request) (*function.Response, *function.Invocation, error)
}

// Config wires an Engine.
type Config struct {
	Bus     *bus.Bus
	Invoker Invoker
	States  store.Async
	Log     *slog.Logger
	// Concurrency bounds the events of one function run at once when its
	// spec sets no concurrency.max (serve --max-concurrency).
	Concurrency int
	// IdempotencyWindow is how long an Idempotency-Key is remembered.
	// Default DefaultIdempotencyWindow.
	IdempotencyWindow time.Duration
	// Emit, if set, publishes platform events (invocation.failed).
	Emit func(name string, data []byte)
	// Region names the region in Lambda-shaped events (default us-east-1).
	Region string
}

// DefaultIdempotencyWindow is how long an Idempotency-Key is remembered by
// default.
const DefaultIdempotencyWindow = 24 * time.Hour

// MaxIdempotencyKey bounds an Idempotency-Key.
const MaxIdempotencyKey = 256

// headerMeta carries an event's metadata; the message's data is the body.
const headerMeta = "Hostless-Meta"

// ackWait is how long the bus waits for a word on an event before it gives
// it to another consumer: a handler says "in progress"
// while it runs (every keepAliveEvery), so only a dead node's events wait this long.
const (
	ackWait        = 30 * time.Second
	keepAliveEvery = 10 * time.Second
)

// meta is what an event carries besides its body.
type meta struct {
	Project    string      `json:"p"`
	Function   string      `json:"f"`
	Qualifier  string      `json:"q,omitempty"`
	Trigger    string      `json:"t"`
	Accepted   int64       `json:"a"` // Unix nanoseconds
	Method     string      `json:"m"`
	Path       string      `json:"u"`
	RawQuery   string      `json:"r,omitempty"`
	Host       string      `json:"h,omitempty"`
	RemoteAddr string      `json:"ra,omitempty"`
	Header     http.Header `json:"hd,omitempty"`
	Event      bool        `json:"e,omitempty"`
}

// Engine accepts and runs async invocations.
type Engine struct {
	cfg    Config
	log    *slog.Logger
	claims *bus.Claims
	w      *writer

	ctx    context.Context // the consumers' context: cancelled at Close
	cancel context.CancelFunc
	// runCtx is the running events' context: cancelled only when Close
	// runs out of time, so a shutdown lets running events finish.
	runCtx    context.Context
	runCancel context.CancelFunc

	mu       sync.Mutex
	workers  map[string]*worker     // by queue
	tickers  map[string]*ticker     // by queue: functions with a schedule
	triggers map[string]*fnTriggers // by queue: functions with triggers
	closed   bool
	changes  chan change
	applied  chan struct{}  // closed when applyChanges returns
	bg       sync.WaitGroup // retired workers and stopping triggers

	started                                   atomic.Bool
	accepted, succeeded, failed, deadLettered atomic.Int64
}

// worker consumes one function's queue.
type worker struct {
	project, name string
	queue         string
	cfg           bus.ConsumerConfig
	retry         function.Retry
	cancel        context.CancelFunc
	done          chan struct{}
}

// New returns an engine; Start starts it.
func New(cfg Config) (*Engine, error) {
	if cfg.IdempotencyWindow == 0 {
		cfg.IdempotencyWindow = DefaultIdempotencyWindow
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 100
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	claims, err := cfg.Bus.Claims("idempotency", cfg.IdempotencyWindow)
	if err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, log: cfg.Log, claims: claims, w: newWriter(cfg.States, cfg.Log), workers: map[string]*worker{}, tickers: map[string]*ticker{}, triggers: map[string]*fnTriggers{},
		changes: make(chan change, maxPendingChanges), applied: make(chan struct{})}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.runCtx, e.runCancel = context.WithCancel(context.Background())
	return e, nil
}

// Start runs the state writer and a consumer for every queue the bus
// holds, so events accepted before a restart run.
func (e *Engine) Start(ctx context.Context) error {
	e.started.Store(true)
	go e.w.run()
	go e.applyChanges()
	queues, err := e.cfg.Bus.Queues(ctx)
	if err != nil {
		return err
	}
	if e.cfg.Bus.Embedded() {
		// This process is the only consumer there is: what its last run had
		// taken but not settled (a kill -9) runs now, not after AckWait.
		for _, q := range queues {
			if err := e.cfg.Bus.ResetConsumer(ctx, q); err != nil {
				return err
			}
		}
	}
	for _, q := range queues {
		project, name := splitQueue(q)
		if err := e.ensure(ctx, project, name); err != nil {
			return err
		}
	}
	return nil
}

// queueName is the bus queue of a function.
func queueName(project, name string) string {
	if project == function.DefaultProject {
		return name
	}
	return project + "_" + name
}

func splitQueue(q string) (project, name string) {
	if p, n, ok := strings.Cut(q, "_"); ok {
		return p, n
	}
	return function.DefaultProject, q
}

// ParseQualifier splits a qualifier into an alias or a version number:
// "" is the live alias, digits a version, anything else an alias.
func ParseQualifier(q string) (alias string, version int, err error) {
	switch {
	case q == "" || q == function.LiveAlias:
		return function.LiveAlias, 0, nil
	case q[0] >= '0' && q[0] <= '9':
		n, err := strconv.Atoi(q)
		if err != nil || n < 1 {
			return "", 0, fmt.Errorf("%w: version %q: versions are numbered from 1", function.ErrVersionNotFound, q)
		}
		return "", n, nil
	}
	return q, 0, nil
}

// Options are an Enqueue's optional settings.
type Options struct {
	// IdempotencyKey dedupes: another event of the function with the same
	// key within the window gets the first one's ID and queues nothing.
	IdempotencyKey string
	// ID is the event's ID (default: a new one). The bus dedupes on it
	// within its window (bus.DefaultDedupWindow, two minutes), so a cron
	// tick that every node enqueues runs once.
	ID string
}

// Enqueue stores an event for a function (qualifier: a version, an alias,
// or "" for live) and returns its ID once the bus has stored it. req's
// body is not kept after Enqueue returns.
func (e *Engine) Enqueue(ctx context.Context, project, name, qualifier, trigger string, req *function.Request, opt Options) (string, error) {
	alias, version, err := ParseQualifier(qualifier)
	if err != nil {
		return "", err
	}
	v, err := e.cfg.Invoker.Lookup(ctx, project, name, alias, version)
	if err != nil {
		return "", err
	}
	if trigger == function.TriggerAsync || trigger == function.TriggerLambda {
		if limit := v.Spec.Limits.EventLimit(); int64(len(req.Body)) > limit {
			return "", &TooLargeError{Size: int64(len(req.Body)), Limit: limit, Function: name}
		}
	}
	now := time.Now()
	id := opt.ID
	if id == "" {
		id = function.NewID(now)
	}
	m := meta{Project: project, Function: name, Qualifier: qualifier, Trigger: trigger, Accepted: now.UnixNano(),
		Method: req.Method, Path: req.Path, RawQuery: req.RawQuery, Host: req.Host, RemoteAddr: req.RemoteAddr,
		Header: req.Header, Event: req.Event}
	mb, err := json.Marshal(&m)
	if err != nil {
		return "", err
	}
	if size, limit := int64(len(req.Body)+len(mb))+1024, e.cfg.Bus.MaxPayload(); size > limit {
		return "", &TooLargeError{Size: size, Limit: limit}
	}
	claimKey := ""
	if opt.IdempotencyKey != "" {
		if len(opt.IdempotencyKey) > MaxIdempotencyKey {
			return "", fmt.Errorf("%w: Idempotency-Key is longer than %d bytes", function.ErrInvalid, MaxIdempotencyKey)
		}
		key := project + "/" + name + "/" + opt.IdempotencyKey
		first, ok, err := e.claims.Claim(ctx, key, id)
		if err != nil {
			return "", err
		}
		if ok {
			claimKey = key // released if the event can't be stored
		} else {
			if _, err := e.cfg.States.GetAsync(ctx, project, first); err == nil {
				return first, nil
			}
			// No state yet: the first call may be storing it right now, or
			// may have died between its claim and its publish. Store the event
			// under the first's ID: the bus keeps one of the two.
			id = first
		}
	}
	if err := e.ensure(ctx, project, name); err != nil {
		e.release(claimKey)
		return "", err
	}
	if err := e.cfg.Bus.Publish(ctx, queueName(project, name), id, req.Body, map[string]string{headerMeta: string(mb)}); err != nil {
		e.release(claimKey)
		if errors.Is(err, bus.ErrQueueFull) {
			return "", &function.ThrottleError{Reason: function.ThrottleQueueFull, RetryAfter: 5 * time.Second,
				Msg: "its async queue is full (the events waiting reach the bus's bound)"}
		}
		return "", err
	}
	e.accepted.Add(1)
	e.w.put(function.AsyncInvocation{ID: id, Project: project, Function: name, Qualifier: qualifier, Trigger: trigger,
		Status: function.StatusQueued, AcceptedAt: now.UTC(), UpdatedAt: now.UTC()})
	return id, nil
}

// TooLargeError is an event bigger than its function's limits.event (when
// Function is set) or than the bus takes (an external NATS's max_payload,
// 1 MiB by default; the embedded server's is 8 MiB).
type TooLargeError struct {
	Size, Limit int64
	Function    string
}

func (e *TooLargeError) Error() string {
	if e.Function != "" {
		return fmt.Sprintf("the event's body (%d bytes) is larger than function %q's limit of %s for async events (limits.event)",
			e.Size, e.Function, function.FormatBytes(e.Limit))
	}
	return fmt.Sprintf("the event (%d bytes with its headers) is larger than the bus takes (%d bytes: NATS's max_payload)", e.Size, e.Limit)
}

// Is makes a TooLargeError match function.ErrInvalid.
func (e *TooLargeError) Is(target error) bool { return target == function.ErrInvalid }

// TooLarge marks the error for callers that answer 413.
func (e *TooLargeError) TooLarge() bool { return true }

// release forgets an idempotency key whose event could not be stored, so
// a retry with it is not answered with an ID that never ran.
func (e *Engine) release(key string) {
	if key == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.claims.Release(ctx, key); err != nil {
		e.log.Warn("release an idempotency key", "err", err)
	}
}

// Get returns an async invocation's state. One accepted a moment ago may
// not be stored yet: the caller retries a not-found shortly after a 202.
func (e *Engine) Get(ctx context.Context, project, id string) (function.AsyncInvocation, error) {
	return e.cfg.States.GetAsync(ctx, project, id)
}

// consumerConfig is how a function's queue is consumed, from its live
// version's spec (the defaults when it has none).
func (e *Engine) consumerConfig(ctx context.Context, project, name string) (bus.ConsumerConfig, function.Retry, *function.Version) {
	// The engine counts attempts and dead-letters itself (see handle).
	cc := bus.ConsumerConfig{MaxAckPending: e.cfg.Concurrency, AckWait: ackWait, MaxDeliver: -1}
	v, err := e.cfg.Invoker.Lookup(ctx, project, name, function.LiveAlias, 0)
	if err != nil {
		return cc, function.Retry{}, nil
	}
	if v.Spec.Concurrency.Max > 0 {
		cc.MaxAckPending = v.Spec.Concurrency.Max
	}
	return cc, v.Spec.Retry, v
}

// ensure starts the consumer of a function's queue, creating the queue,
// unless it runs.
func (e *Engine) ensure(ctx context.Context, project, name string) error {
	q := queueName(project, name)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return fmt.Errorf("%w: the platform is shutting down", function.ErrUnavailable)
	}
	if _, ok := e.workers[q]; ok {
		return nil
	}
	if err := e.cfg.Bus.EnsureQueue(ctx, q); err != nil {
		return err
	}
	cc, retry, _ := e.consumerConfig(ctx, project, name)
	e.startLocked(project, name, q, cc, retry)
	return nil
}

func (e *Engine) startLocked(project, name, q string, cc bus.ConsumerConfig, retry function.Retry) {
	wctx, cancel := context.WithCancel(e.ctx)
	w := &worker{project: project, name: name, queue: q, cfg: cc, retry: retry, cancel: cancel, done: make(chan struct{})}
	e.workers[q] = w
	go func() {
		defer close(w.done)
		for wctx.Err() == nil {
			err := e.cfg.Bus.Consume(wctx, q, w.cfg, func(ctx context.Context, m *bus.Message) { e.handle(ctx, w, m) })
			if err == nil || wctx.Err() != nil {
				return
			}
			e.log.Warn("async consumer stopped; restarting", "function", name, "err", err)
			select {
			case <-wctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
}

// Changed applies a function's new spec (a deploy, a rollback, a delete)
// to its schedule, its triggers and its consumer. It returns at once: the
// changes are applied in order by one goroutine, and what they stop (a
// consumer's running events, a trigger's batches) finishes in the
// background, so a deploy never waits for a function's events. The app
// calls it for every function at start, which starts their schedules and
// triggers.
func (e *Engine) Changed(project, name string) {
	select {
	case e.changes <- change{project, name}:
	case <-e.ctx.Done():
	}
}

type change struct{ project, name string }

// maxPendingChanges bounds the changes waiting to be applied; past it a
// deploy waits.
const maxPendingChanges = 4096

func (e *Engine) applyChanges() {
	defer close(e.applied)
	for {
		select {
		case <-e.ctx.Done():
			return
		case c := <-e.changes:
			e.apply(c.project, c.name)
		}
	}
}

func (e *Engine) apply(project, name string) {
	q := queueName(project, name)
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	cc, retry, v := e.consumerConfig(ctx, project, name)
	e.schedule(project, name, v)
	e.setTriggers(project, name, v)
	e.mu.Lock()
	defer e.mu.Unlock()
	w, ok := e.workers[q]
	if !ok || e.closed || (w.cfg.MaxAckPending == cc.MaxAckPending && w.retry.Retries() == retry.Retries() &&
		w.retry.Age() == retry.Age() && w.retry.Delay(1) == retry.Delay(1)) {
		return
	}
	// The new consumer takes over the queue's durable consumer at once; the
	// old one finishes what it runs meanwhile.
	delete(e.workers, q)
	e.retire(w)
	e.startLocked(project, name, q, cc, retry)
}

// retire stops a worker in the background; Close waits for it. e.mu is held.
func (e *Engine) retire(w *worker) {
	w.cancel()
	e.bg.Add(1)
	go func() {
		defer e.bg.Done()
		<-w.done
	}()
}

// Close stops the triggers, the schedules and the consumers, waits until
// ctx ends for the events they run (their outcomes are stored), and
// flushes states. Past ctx, what still runs is cancelled and handed back
// to the bus, which delivers it again after a restart.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	for _, w := range e.workers {
		e.retire(w)
	}
	clear(e.workers)
	ts := make([]*ticker, 0, len(e.tickers))
	for _, t := range e.tickers {
		ts = append(ts, t)
	}
	for _, ft := range e.triggers {
		e.stopTriggersBG(ctx, ft)
	}
	clear(e.triggers)
	e.mu.Unlock()
	e.cancel() // no more deliveries, ticks or changes
	if !e.started.Load() {
		return nil
	}
	<-e.applied
	for _, t := range ts {
		<-t.done
	}
	done := make(chan struct{})
	go func() {
		e.bg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		e.runCancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
	}
	e.runCancel()
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	return errors.Join(err, e.w.close(wctx))
}

// Stats counts events since start.
type Stats struct {
	Accepted, Succeeded, Failed, DeadLettered int64
	// StatesDropped counts states not stored because the store fell behind
	// (queued and running ones only: outcomes are always stored).
	StatesDropped int64
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	return Stats{Accepted: e.accepted.Load(), Succeeded: e.succeeded.Load(), Failed: e.failed.Load(),
		DeadLettered: e.deadLettered.Load(), StatesDropped: e.w.dropped.Load()}
}

// handle runs one delivery of an event. The bus's context ends at Close;
// the event runs under the engine's run context, so a shutdown lets it
// finish.
//
// Attempts are counted in the event's stored state, not by the bus's
// deliveries (which also count messages handed back at a shutdown, and
// start again when an embedded bus's consumer is reset at start): each
// attempt stores "running" with its number before it runs.
func (e *Engine) handle(_ context.Context, w *worker, m *bus.Message) {
	ctx := e.runCtx
	var md meta
	if err := json.Unmarshal([]byte(m.Headers[headerMeta]), &md); err != nil || m.ID == "" {
		_ = m.DeadLetter("the event's metadata is unreadable", 0)
		return
	}
	st := function.AsyncInvocation{ID: m.ID, Project: md.Project, Function: md.Function, Qualifier: md.Qualifier,
		Trigger: md.Trigger, AcceptedAt: time.Unix(0, md.Accepted).UTC(), Seq: m.Seq}
	prev, err := e.cfg.States.GetAsync(ctx, md.Project, m.ID)
	switch {
	case err == nil && prev.Seq == m.Seq && function.Final(prev.Status):
		// This message's outcome is stored: a crash came between storing it
		// and settling the message. Settle it as the outcome says.
		if prev.Status == function.StatusDeadLettered {
			_ = m.DeadLetter(prev.Error, prev.Attempts-m.Prior)
		} else {
			_ = m.Ack()
		}
		return
	case err != nil && !errors.Is(err, store.ErrNotFound):
		e.log.Warn("read an async state; the event waits", "id", m.ID, "err", err)
		_ = m.Release(time.Second)
		return
	}
	// prev.Attempts is 0 when nothing is stored (or only "queued").
	st.Attempts = max(prev.Attempts, m.Prior) + 1
	tried := st.Attempts - m.Prior // attempts since the event was accepted or redriven
	since := st.AcceptedAt
	if m.RedrivenAt.After(since) {
		since = m.RedrivenAt
	}
	if time.Since(since) > w.retry.Age() {
		st.Attempts-- // none made
		e.deadLetter(m, st, tried-1, fmt.Sprintf("the event is older than retry.max_age (%s)", w.retry.Age()))
		return
	}
	st.Status, st.UpdatedAt = function.StatusRunning, time.Now().UTC()
	if err := e.w.putWait(ctx, st); err != nil {
		e.log.Warn("store an async state; the event waits", "id", m.ID, "err", err)
		_ = m.Release(time.Second)
		return
	}

	stop := keepAlive(m)
	defer stop()
	alias, version, _ := ParseQualifier(md.Qualifier)
	req := &function.Request{Method: md.Method, Path: md.Path, RawQuery: md.RawQuery, Host: md.Host,
		RemoteAddr: md.RemoteAddr, Header: md.Header, Body: m.Data, Event: md.Event}
	if req.Header == nil {
		req.Header = http.Header{}
	}
	resp, rec, err := e.run(ctx, w, since, md, alias, version, req)
	if rec != nil {
		st.LastAttempt = rec.ID
	}
	if resp != nil {
		st.Result = &function.AsyncResult{Status: resp.Status, Header: resp.Header, Body: resp.Body}
	}
	st.UpdatedAt = time.Now().UTC()
	switch {
	case ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled) || errors.Is(err, function.ErrUnavailable)):
		// Shut down mid-run: hand it back; it runs again (after a restart,
		// or on another node), and this attempt counts.
		_ = m.Release(0)
		return
	case err == nil && resp != nil && md.Trigger != function.TriggerAsync && md.Trigger != function.TriggerLambda &&
		md.Trigger != function.TriggerCron && batchFailed(resp.Body):
		// A broker message, redriven: its one-message batch was reported failed.
		err = fmt.Errorf("%w: the function reported the message failed (batchItemFailures)", function.ErrFunction)
	}
	if err == nil && (resp == nil || resp.Status < 500) {
		st.Status = function.StatusOK
		if perr := e.w.putWait(ctx, st); perr != nil {
			e.log.Error("store an async outcome; the event will run again", "id", st.ID, "err", perr)
			_ = m.Release(time.Second)
			return
		}
		e.succeeded.Add(1)
		_ = m.Ack()
		return
	}
	why := "the function answered " + strconv.Itoa(statusOf(resp))
	if err != nil {
		why = err.Error()
		if errors.Is(err, function.ErrNotFound) || errors.Is(err, function.ErrVersionNotFound) || errors.Is(err, function.ErrAliasNotFound) {
			e.deadLetter(m, st, tried, why)
			return
		}
	}
	e.failed.Add(1)
	st.Error = why
	if tried > w.retry.Retries() {
		e.deadLetter(m, st, tried, fmt.Sprintf("failed %d times: %s", tried, why))
		return
	}
	st.Status = function.StatusRetrying
	e.w.put(st)
	d := w.retry.Delay(tried)
	d = d/2 + rand.N(d/2+1) // jitter: half fixed, half random
	_ = m.Release(d)
}

// throttleWait is how long a throttled event waits before it asks again:
// what the limit says (a rate limit's next token), within 100ms-30s, else 1s.
func throttleWait(err error) time.Duration {
	if te, ok := errors.AsType[*function.ThrottleError](err); ok && te.RetryAfter > 0 {
		return min(max(te.RetryAfter, 100*time.Millisecond), 30*time.Second)
	}
	return time.Second
}

// keepAlive tells the bus every keepAliveEvery that m is being handled, until
// the returned function is called.
func keepAlive(m *bus.Message) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(keepAliveEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = m.InProgress()
			}
		}
	}()
	return func() { close(done) }
}

// batchFailed reports whether a batch response names failed messages.
func batchFailed(body []byte) bool {
	ids, ok := eventshape.BatchFailures(body)
	return ok && len(ids) > 0
}

func statusOf(resp *function.Response) int {
	if resp == nil {
		return 0
	}
	return resp.Status
}

// run invokes the event's function, waiting while it is throttled: a
// throttle is not an attempt, the event waits its turn (until max_age).
func (e *Engine) run(ctx context.Context, w *worker, since time.Time, md meta, alias string, version int, req *function.Request) (*function.Response, *function.Invocation, error) {
	for {
		var (
			resp *function.Response
			rec  *function.Invocation
			err  error
		)
		if alias != "" {
			resp, rec, err = e.cfg.Invoker.InvokeAlias(ctx, md.Project, md.Function, alias, md.Trigger, req)
		} else {
			resp, rec, err = e.cfg.Invoker.InvokeVersion(ctx, md.Project, md.Function, version, md.Trigger, req)
		}
		if !errors.Is(err, function.ErrThrottled) || time.Since(since) > w.retry.Age() {
			return resp, rec, err
		}
		select {
		case <-ctx.Done():
			return nil, rec, ctx.Err()
		case <-time.After(throttleWait(err)):
		}
	}
}

// deadLetter stores the event's final state, then moves it to the
// function's dead-letter queue, recording tried attempts for a redrive.
func (e *Engine) deadLetter(m *bus.Message, st function.AsyncInvocation, tried int, reason string) {
	st.Status, st.Error, st.UpdatedAt = function.StatusDeadLettered, reason, time.Now().UTC()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.w.putWait(ctx, st); err != nil {
		e.log.Error("store an async outcome; the event will run again", "id", st.ID, "err", err)
		_ = m.Release(time.Second)
		return
	}
	if err := m.DeadLetter(reason, max(tried, 0)); err != nil {
		e.log.Error("dead-letter an event", "id", st.ID, "err", err)
		return
	}
	e.deadLettered.Add(1)
	e.emitFailed(st)
}

// emitFailed publishes the platform event invocation.failed.
func (e *Engine) emitFailed(st function.AsyncInvocation) {
	if e.cfg.Emit == nil {
		return
	}
	b, err := json.Marshal(map[string]any{"id": st.ID, "function": st.Function, "trigger": st.Trigger,
		"attempts": st.Attempts, "error": st.Error, "dead_lettered": true})
	if err == nil {
		e.cfg.Emit("invocation.failed", b)
	}
}

// DeadLetter is a failed event in a function's dead-letter queue.
type DeadLetter struct {
	ID         string    `json:"id"`
	Function   string    `json:"function"`
	Trigger    string    `json:"trigger"`
	AcceptedAt time.Time `json:"accepted_at"`
	FailedAt   time.Time `json:"failed_at"`
	Attempts   int       `json:"attempts"`
	Reason     string    `json:"reason"`
	Bytes      int       `json:"bytes"`
}

// DeadLetters lists up to limit of a function's dead letters, oldest first.
func (e *Engine) DeadLetters(ctx context.Context, project, name string, limit int) ([]DeadLetter, error) {
	ds, err := e.cfg.Bus.DeadLetters(ctx, queueName(project, name), limit)
	if err != nil {
		return nil, err
	}
	out := make([]DeadLetter, 0, len(ds))
	for _, d := range ds {
		var md meta
		_ = json.Unmarshal([]byte(d.Headers[headerMeta]), &md)
		prior, _ := strconv.Atoi(d.Headers[bus.HeaderPriorDeliveries])
		out = append(out, DeadLetter{ID: d.ID, Function: name, Trigger: md.Trigger, AcceptedAt: time.Unix(0, md.Accepted).UTC(),
			FailedAt: d.FailedAt, Attempts: prior + d.Deliveries, Reason: d.Reason, Bytes: len(d.Data)})
	}
	return out, nil
}

// Redrive queues every dead letter of a function again, under its ID, with
// a fresh allowance of attempts; it returns how many.
func (e *Engine) Redrive(ctx context.Context, project, name string) (int, error) {
	if err := e.ensure(ctx, project, name); err != nil {
		return 0, err
	}
	return e.cfg.Bus.Redrive(ctx, queueName(project, name))
}

// EnqueueRef is Enqueue for a reference as function URLs name it: "name",
// "name@{version}" or "name@{alias}".
func (e *Engine) EnqueueRef(ctx context.Context, project, ref, trigger string, req *function.Request, idempotencyKey string) (string, error) {
	name, qualifier, _ := strings.Cut(ref, "@")
	return e.Enqueue(ctx, project, name, qualifier, trigger, req, Options{IdempotencyKey: idempotencyKey})
}

func quote(s string) string { return string(marshal(s)) }

func marshal(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
