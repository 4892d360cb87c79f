package async

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strconv"
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
			MaxAttempts: spec.Retry.Retries() + 1, Backoff: spec.Retry.Delay(1),
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
// them, so a deploy with a bad one is refused with what to fix.
func (e *Engine) CheckTriggers(spec *function.Spec) error {
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
	e.mu.Unlock()
	if old != nil {
		e.stopTriggers(old)
	}
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
	if e.closed {
		e.mu.Unlock()
		e.stopTriggers(&want)
		return
	}
	e.triggers[key] = &want
	e.mu.Unlock()
}

func (e *Engine) stopTriggers(ft *fnTriggers) {
	for _, rt := range ft.running {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := rt.t.Stop(ctx); err != nil {
			e.log.Warn("stop a trigger", "err", err)
		}
		cancel()
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
// functions, CloudEvents for wasm ones.
func (e *Engine) shape(runtime string, batch []trigger.Message) *function.Request {
	msgs := make([]eventshape.Message, len(batch))
	for i, m := range batch {
		msgs[i] = eventshape.Message{ID: m.ID, Source: m.Source, Subject: m.Subject, Data: m.Data,
			Headers: m.Headers, Time: m.Time, Attempt: m.Attempt}
	}
	req := &function.Request{Method: http.MethodPost, Path: "/", Header: http.Header{}}
	if function.IsProcess(runtime) {
		req.Event = true
		req.Body = eventshape.Records(e.cfg.Region, msgs)
	} else {
		req.Header.Set("Content-Type", eventshape.CloudEventBatchType)
		req.Body = eventshape.CloudEvents(msgs)
	}
	return req
}

// errBatch is a batch the function failed as a whole.
var errBatch = errors.New("the function failed the batch")

// runBatch runs the function on a batch and says which messages failed.
func (e *Engine) runBatch(ctx context.Context, project, name, kind, runtime string, batch []trigger.Message) ([]int, error) {
	resp, _, err := e.cfg.Invoker.InvokeAlias(ctx, project, name, function.LiveAlias, kind, e.shape(runtime, batch))
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
		failed = append(failed, i)
	}
	return failed, nil
}

// deadLetterMessage stores a message that failed every attempt in the
// function's dead-letter queue, as the one-message batch a redrive runs.
func (e *Engine) deadLetterMessage(ctx context.Context, project, name, kind, runtime string, m trigger.Message, reason string) error {
	req := e.shape(runtime, []trigger.Message{m})
	now := time.Now()
	id := function.IDAt(now, "trigger/"+project+"/"+name+"/"+m.Source+"/"+m.ID)
	md := meta{Project: project, Function: name, Trigger: kind, Accepted: m.Time.UnixNano(),
		Method: req.Method, Path: req.Path, Header: req.Header, Event: req.Event}
	if m.Time.IsZero() {
		md.Accepted = now.UnixNano()
	}
	q := queueName(project, name)
	if err := e.ensure(ctx, project, name); err != nil {
		return err
	}
	if err := e.cfg.Bus.DeadLetterNew(ctx, q, id, req.Body, map[string]string{headerMeta: string(marshal(&md))}, m.Attempt, reason); err != nil {
		return err
	}
	e.deadLettered.Add(1)
	e.emitFailed(function.AsyncInvocation{ID: id, Function: name, Trigger: kind, Attempts: m.Attempt, Error: reason})
	return nil
}
