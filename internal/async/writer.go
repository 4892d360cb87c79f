package async

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
)

// Bounds of the state writer.
const (
	writerQueue = 16384 // states waiting; past it, queued and running states are dropped
	writerBatch = 512   // states per transaction
)

// writer stores states in batches: whatever is waiting when a write ends
// goes in the next transaction (group commit), so a write waits at most
// for one transaction before its own.
type writer struct {
	st      store.Async
	log     *slog.Logger
	ch      chan item
	quit    chan struct{}
	done    chan struct{}
	once    sync.Once
	closeMu sync.RWMutex
	closed  bool
	dropped atomic.Int64
}

type item struct {
	s    function.AsyncInvocation
	done chan error // nil: nobody waits
}

func newWriter(st store.Async, log *slog.Logger) *writer {
	return &writer{st: st, log: log, ch: make(chan item, writerQueue), quit: make(chan struct{}), done: make(chan struct{})}
}

var errWriterClosed = errors.New("async: the state writer is closed")

// put queues a state that nothing waits for (queued, running, retrying):
// it never blocks, and drops the state when the store falls behind.
func (w *writer) put(s function.AsyncInvocation) {
	w.closeMu.RLock()
	defer w.closeMu.RUnlock()
	if w.closed {
		w.dropped.Add(1)
		return
	}
	select {
	case w.ch <- item{s: s}:
	default:
		w.dropped.Add(1)
	}
}

// putWait stores a state and returns once it is committed.
func (w *writer) putWait(ctx context.Context, s function.AsyncInvocation) error {
	done := make(chan error, 1)
	w.closeMu.RLock()
	if w.closed {
		w.closeMu.RUnlock()
		return errWriterClosed
	}
	select {
	case w.ch <- item{s: s, done: done}:
		w.closeMu.RUnlock()
	case <-ctx.Done():
		w.closeMu.RUnlock()
		return ctx.Err()
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *writer) run() {
	defer close(w.done)
	batch := make([]item, 0, writerBatch)
	for {
		select {
		case it := <-w.ch:
			batch = append(batch[:0], it)
		case <-w.quit:
			for { // write what is queued, then stop
				batch = batch[:0]
				for len(batch) < writerBatch {
					select {
					case it := <-w.ch:
						batch = append(batch, it)
						continue
					default:
					}
					break
				}
				if len(batch) == 0 {
					return
				}
				w.write(batch)
			}
		}
	more:
		for len(batch) < writerBatch {
			select {
			case it := <-w.ch:
				batch = append(batch, it)
			default:
				break more
			}
		}
		w.write(batch)
	}
}

func (w *writer) write(batch []item) {
	states := make([]function.AsyncInvocation, len(batch))
	for i, it := range batch {
		states[i] = it.s
	}
	var err error
	for attempt := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = w.st.PutAsync(ctx, states)
		cancel()
		if err == nil {
			break
		}
		time.Sleep(time.Duration(attempt+1) * 100 * time.Millisecond)
	}
	if err != nil {
		w.log.Error("store async invocation states", "count", len(states), "err", err)
	}
	for _, it := range batch {
		if it.done != nil {
			it.done <- err
		} else if err != nil {
			w.dropped.Add(1)
		}
	}
}

// close writes what is queued and stops.
func (w *writer) close(ctx context.Context) error {
	w.once.Do(func() {
		w.closeMu.Lock()
		w.closed = true
		close(w.quit)
		w.closeMu.Unlock()
	})
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
