package async

import (
	"context"
	"net/http"
	"time"

	"github.com/hostless/hostless/internal/eventshape"
	"github.com/hostless/hostless/internal/function"
)

// A cron tick is an async event like any other, enqueued by every node at
// the tick's time under an ID made of the tick and the function: the bus
// stores the first and drops the others as duplicates, so a tick runs
// once across the nodes that share a NATS (their clocks must agree within
// the bus's dedup window, two minutes by default). Ticks are computed from
// the clock after each one, so ticks missed while no node ran are not
// fired in a burst at start.

// ticker runs one function's schedule.
type ticker struct {
	expr, tz string
	runtime  string // the shape of its events follows the runtime
	cancel   context.CancelFunc
	done     chan struct{}
}

// schedule starts, replaces or stops the cron of a function after a
// change: v is its live version, nil when it has none.
func (e *Engine) schedule(project, name string, v *function.Version) {
	key := queueName(project, name)
	var expr, tz, runtime string
	if v != nil {
		expr, tz, runtime = v.Spec.Schedule, v.Spec.Timezone, v.Spec.Runtime
	}
	e.mu.Lock()
	old := e.tickers[key]
	if old != nil && old.expr == expr && old.tz == tz && old.runtime == runtime {
		e.mu.Unlock()
		return
	}
	delete(e.tickers, key)
	var sched *function.Schedule
	if expr != "" && !e.closed {
		s, err := function.ParseSchedule(expr, tz)
		if err != nil {
			e.log.Warn("a stored schedule does not parse; the function runs on no schedule", "function", name, "err", err)
		} else {
			sched = s
		}
	}
	var t *ticker
	if sched != nil {
		ctx, cancel := context.WithCancel(e.ctx)
		t = &ticker{expr: expr, tz: tz, runtime: runtime, cancel: cancel, done: make(chan struct{})}
		e.tickers[key] = t
		go e.tick(ctx, t, project, name, sched, v.Spec.Runtime)
	}
	e.mu.Unlock()
	if old != nil {
		old.cancel()
		<-old.done
	}
}

func (e *Engine) tick(ctx context.Context, t *ticker, project, name string, s *function.Schedule, runtime string) {
	defer close(t.done)
	for {
		next := s.Next(time.Now())
		timer := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		id := function.IDAt(next, "cron/"+project+"/"+name)
		req := &function.Request{Method: http.MethodPost, Path: "/", Header: http.Header{}}
		if function.IsProcess(runtime) {
			req.Event = true
			req.Body = eventshape.ScheduledEvent(id, e.cfg.Region, name, next)
		} else {
			req.Header.Set("Content-Type", eventshape.CloudEventType)
			ev := eventshape.NewCloudEvent(id, "hostless/cron/"+name, "dev.hostless.cron.tick", name, next,
				[]byte(`{"schedule":`+quote(t.expr)+`}`))
			req.Body = marshal(ev)
		}
		ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := e.Enqueue(ectx, project, name, "", function.TriggerCron, req, Options{ID: id})
		cancel()
		if err != nil && ctx.Err() == nil {
			e.log.Warn("enqueue a cron tick", "function", name, "tick", next, "err", err)
		}
	}
}
