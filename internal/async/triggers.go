package async

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hostless/hostless/internal/eventshape"
	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/trigger"
)

// A function's triggers run on the live version's spec: a deploy that
// changes them, or the function's retry policy or runtime, stops the old
// ones and starts the new. Each batch runs the function through its live
// alias, shaped as eventshape says; messages that fail every attempt go to
// the function's dead-letter queue as one-message batches, so a redrive
// runs them again as async events.

// fnTriggers are the running triggers of one function.
type fnTriggers struct {
	specs   []function.Trigger
	retry   function.Retry
	runtime string
	running []*runningTrigger
}

type runningTrigger struct {
	index int // in the spec's triggers
	typ   string
	t     *trigger.Trigger
}

// TriggerStatus is one running trigger's state.
type TriggerStatus struct {
	Function string `json:"function"`
	Index    int    `json:"index"`
	Type     string `json:"type"`
	trigger.Status
}

// configs maps a spec's triggers to the trigger package's configs: one
// per entry, and one per event of an "events" entry.
func (e *Engine) configs(project, name string, spec *function.Spec) ([]trigger.Config, []int) {
	var (
		out   []trigger.Config
		index []int
	)
	for i, t := range spec.Triggers {
		c := trigger.Config{Type: t.Type, URL: t.URL, Subject: t.Subject, Stream: t.Stream, Queue: t.Queue,
			Topic: t.Topic, Group: t.Group, QoS: t.QoS, BatchSize: t.BatchSize, BatchWindow: time.Duration(t.BatchWindow),
			Concurrency: t.Concurrency, AckWait: time.Duration(t.AckWait),
			MaxAttempts: min(spec.Retry.Retries()+1, trigger.MaxMaxAttempts), Backoff: spec.Retry.Delay(1),
			Name: project + "/" + name + "/" + strconv.Itoa(i)}
		if t.Type != function.TriggerEvents {
			out, index = append(out, c), append(index, i)
			continue
		}
		for j, ev := range t.Events {
			c := c
			c.Type = function.TriggerNATS
			c.Subject = e.cfg.Bus.Subject(ev)
			if ev == "*" {
				c.Subject = e.cfg.Bus.Subject(">")
			}
			c.Name += "/" + strconv.Itoa(j)
			out, index = append(out, c), append(index, i)
		}
	}
	return out, index
}

// CheckTriggers validates a spec's triggers as the brokers' code reads
// them, so a deploy with a bad one is refused with what to fix. On the
// platform's own bus (nats or jetstream without a url), the platform's
// subjects are not a function's to read: its prefix, $JS, _INBOX, and a
// bare ">".
func (e *Engine) CheckTriggers(spec *function.Spec) error {
	for i, t := range spec.Triggers {
		if (t.Type != function.TriggerNATS && t.Type != function.TriggerJetStream) || t.URL != "" || t.Subject == "" {
			continue
		}
		if t.Subject == ">" || strings.HasPrefix(t.Subject, "$") || strings.HasPrefix(t.Subject, "_INBOX") ||
			strings.HasPrefix(t.Subject, e.cfg.Bus.Prefix()) {
			return fmt.Errorf("triggers[%d].subject: %q is the platform's own on its bus; use another subject (or type events for platform events)", i, t.Subject)
		}
	}
	cs, index := e.configs(function.DefaultProject, "check", spec)
	for k, c := range cs {
		if err := c.Validate(); err != nil {
			return fmt.Errorf("triggers[%d].%v", index[k], err)
		}
	}
	return nil
}

// setTriggers starts, replaces or stops a function's triggers after a
// change: v is its live version, nil when it has none.
func (e *Engine) setTriggers(project, name string, v *function.Version) {
	key := queueName(project, name)
	var want fnTriggers
	if v != nil {
		want = fnTriggers{specs: v.Spec.Triggers, retry: v.Spec.Retry, runtime: v.Spec.Runtime}
	}
	e.mu.Lock()
	old := e.triggers[key]
	if old == nil && len(want.specs) == 0 {
		e.mu.Unlock()
		return
	}
	if old != nil && reflect.DeepEqual(old.specs, want.specs) && old.runtime == want.runtime &&
		old.retry.Retries() == want.retry.Retries() && old.retry.Delay(1) == want.retry.Delay(1) {
		e.mu.Unlock()
		return
	}
	delete(e.triggers, key)
	closed := e.closed
	if old != nil {
		e.stopTriggersBG(context.Background(), old)
	}
	e.mu.Unlock()
	if len(want.specs) == 0 || closed {
		return
	}
	cs, index := e.configs(project, name, &v.Spec)
	for k, c := range cs {
		rt := &runningTrigger{index: index[k], typ: v.Spec.Triggers[index[k]].Type}
		kind := rt.typ
		t, err := trigger.Start(e.ctx, c, func(ctx context.Context, batch []trigger.Message) ([]int, error) {
			return e.runBatch(ctx, project, name, kind, want.runtime, batch)
		}, trigger.Options{NATS: e.cfg.Bus.Conn(), Log: e.log.With("function", name, "trigger", index[k]),
			DeadLetter: func(ctx context.Context, m trigger.Message, reason string) error {
				return e.deadLetterMessage(ctx, project, name, kind, want.runtime, m, reason)
			}})
		if err != nil {
			e.log.Error("a trigger of the live version does not start", "function", name, "trigger", index[k], "err", err)
			continue
		}
		rt.t = t
		want.running = append(want.running, rt)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		e.stopTriggersBG(context.Background(), &want)
		return
	}
	e.triggers[key] = &want
}

// triggerStopWait bounds how long a stopping trigger waits for its running
// batches; what it still holds then goes back to its broker.
const triggerStopWait = 30 * time.Second

// stopTriggersBG stops a function's triggers in the background, all at
// once, each waiting for its running batches until ctx or triggerStopWait
// ends; Close waits for them. e.mu is held.
func (e *Engine) stopTriggersBG(ctx context.Context, ft *fnTriggers) {
	for _, rt := range ft.running {
		e.bg.Add(1)
		go func() {
			defer e.bg.Done()
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), triggerStopWait)
			defer cancel()
			stop := context.AfterFunc(ctx, cancel) // Close's deadline ends the wait too
			defer stop()
			if err := rt.t.Stop(sctx); err != nil {
				e.log.Warn("stop a trigger", "err", err)
			}
		}()
	}
}

// TriggerStatuses returns the state of every running trigger.
func (e *Engine) TriggerStatuses() []TriggerStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []TriggerStatus
	for key, ft := range e.triggers {
		_, name := splitQueue(key)
		for _, rt := range ft.running {
			out = append(out, TriggerStatus{Function: name, Index: rt.index, Type: rt.typ, Status: rt.t.Status()})
		}
	}
	slices.SortFunc(out, func(a, b TriggerStatus) int {
		if a.Function != b.Function {
			if a.Function < b.Function {
				return -1
			}
			return 1
		}
		return a.Index - b.Index
	})
	return out
}

// shape makes the request of a batch: Lambda's Records for Lambda-contract
// functions (S3's own for object storage events, else SQS's), CloudEvents
// for wasm ones.
func (e *Engine) shape(runtime string, batch []trigger.Message) *function.Request {
	msgs := make([]eventshape.Message, len(batch))
	for i, m := range batch {
		msgs[i] = eventshape.Message{ID: m.ID, Source: m.Source, Subject: m.Subject, Data: m.Data,
			Headers: m.Headers, Time: m.Time, Attempt: m.Attempt}
	}
	req := &function.Request{Method: http.MethodPost, Path: "/", Header: http.Header{}}
	if function.IsProcess(runtime) {
		req.Event = true
		var ok bool
		if req.Body, ok = eventshape.S3Records(msgs); !ok {
			req.Body = eventshape.Records(e.cfg.Region, msgs)
		}
	} else {
		req.Header.Set("Content-Type", eventshape.CloudEventBatchType)
		req.Body = eventshape.CloudEvents(msgs)
	}
	return req
}

// errBatch is a batch the function failed as a whole.
var errBatch = errors.New("the function failed the batch")

// runBatch runs the function on a batch and says which messages failed.
//
// A throttled call is not an attempt: the batch waits its turn (the
// trigger keeps holding its messages). A function's own invocation.failed
// events are not given to it (each failure would trigger the next).
func (e *Engine) runBatch(ctx context.Context, project, name, kind, runtime string, batch []trigger.Message) ([]int, error) {
	given := batch
	keep := make([]int, 0, len(batch)) // index in given of each message run
	for i, m := range given {
		if kind == function.TriggerEvents && strings.HasSuffix(m.Subject, "invocation.failed") && ownEvent(m.Data, name) {
			continue
		}
		keep = append(keep, i)
	}
	if len(keep) < len(given) {
		batch = make([]trigger.Message, len(keep))
		for j, i := range keep {
			batch[j] = given[i]
		}
		if len(batch) == 0 {
			return nil, nil
		}
	}
	req := e.shape(runtime, batch)
	var (
		resp *function.Response
		err  error
	)
	for {
		resp, _, err = e.cfg.Invoker.InvokeAlias(ctx, project, name, function.LiveAlias, kind, req)
		if !errors.Is(err, function.ErrThrottled) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(throttleWait(err)):
		}
	}
	if err != nil {
		return nil, err
	}
	if resp.Status >= 500 {
		return nil, fmt.Errorf("%w: it answered %d", errBatch, resp.Status)
	}
	ids, ok := eventshape.BatchFailures(resp.Body)
	if !ok {
		return nil, nil
	}
	var failed []int
	for _, id := range ids {
		i := slices.IndexFunc(batch, func(m trigger.Message) bool { return m.ID == id })
		if i < 0 {
			// As Lambda: a failure naming no message fails the batch.
			return nil, fmt.Errorf("%w: batchItemFailures names %q, no message of the batch", errBatch, id)
		}
		failed = append(failed, keep[i]) // an index into the batch as given
	}
	return failed, nil
}

// deadLetterMessage stores a message that failed every attempt in the
// function's dead-letter queue, as the one-message batch a redrive runs.
func (e *Engine) deadLetterMessage(ctx context.Context, project, name, kind, runtime string, m trigger.Message, reason string) error {
	req := e.shape(runtime, []trigger.Message{m})
	now := time.Now()
	at := m.Time
	if at.IsZero() {
		at = now
	}
	// The same message dead-lettered twice (a retry after a lost ack) gets
	// the same ID, and the bus keeps one.
	id := function.IDAt(at, "trigger/"+project+"/"+name+"/"+m.Source+"/"+m.Subject+"/"+m.ID)
	md := meta{Project: project, Function: name, Trigger: kind, Accepted: m.Time.UnixNano(),
		Method: req.Method, Path: req.Path, Header: req.Header, Event: req.Event}
	if m.Time.IsZero() {
		md.Accepted = now.UnixNano()
	}
	q := queueName(project, name)
	if err := e.ensure(ctx, project, name); err != nil {
		return err
	}
	// Its state first: GET /v1/invocations/{id} answers for the ID that
	// invocation.failed and the dead-letter listing give.
	st := function.AsyncInvocation{ID: id, Project: project, Function: name, Trigger: kind, Status: function.StatusDeadLettered,
		Attempts: m.Attempt, AcceptedAt: time.Unix(0, md.Accepted).UTC(), UpdatedAt: now.UTC(), Error: reason}
	if err := e.w.putWait(ctx, st); err != nil {
		return err
	}
	if err := e.cfg.Bus.DeadLetterNew(ctx, q, id, req.Body, map[string]string{headerMeta: string(marshal(&md))}, m.Attempt, reason); err != nil {
		return err
	}
	e.deadLettered.Add(1)
	e.emitFailed(function.AsyncInvocation{ID: id, Function: name, Trigger: kind, Attempts: m.Attempt, Error: reason})
	return nil
}

// ownEvent reports whether a platform event's data names the function.
func ownEvent(data []byte, name string) bool {
	var ev struct {
		Function string `json:"function"`
	}
	return json.Unmarshal(data, &ev) == nil && ev.Function == name
}
