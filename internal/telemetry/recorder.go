// Package telemetry takes invocation records and their log lines off the
// hot path: callers hand a record to a Recorder, which writes records in
// batches to the store and tells followers when new lines are stored.
//
// It must never import HTTP servers or runtimes.
package telemetry

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
)

// Defaults of Config.
const (
	DefaultBatch       = 512
	DefaultFlushEvery  = 50 * time.Millisecond
	DefaultQueue       = 16384
	DefaultMaxLogLines = 1000
	DefaultMaxLogBytes = 256 << 10
)

// Config tunes a Recorder. The zero value of each field means its default.
type Config struct {
	Batch      int           // records per write
	FlushEvery time.Duration // longest a record waits
	Queue      int           // records buffered; past it Record drops and counts
}

// Recorder batches invocation records into the store.
type Recorder struct {
	cfg Config
	st  store.Invocations
	log *slog.Logger
	ch  chan *function.Invocation
	// flushes asks the writer to store what is queued; it closes the
	// channel it receives when done.
	flushes chan chan struct{}
	quit    chan struct{}
	done    chan struct{}

	closeMu sync.RWMutex // Record holds it to read, Close to write
	closed  bool

	dropped  atomic.Int64
	lastWarn atomic.Int64 // unix seconds of the last warning about drops
	mu       sync.Mutex
	subs     map[chan struct{}]struct{}
	close    sync.Once
}

// New allocates a recorder; Start begins writing.
func New(st store.Invocations, log *slog.Logger, cfg Config) *Recorder {
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.FlushEvery <= 0 {
		cfg.FlushEvery = DefaultFlushEvery
	}
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultQueue
	}
	return &Recorder{cfg: cfg, st: st, log: log, ch: make(chan *function.Invocation, cfg.Queue),
		flushes: make(chan chan struct{}), quit: make(chan struct{}), done: make(chan struct{}), subs: map[chan struct{}]struct{}{}}
}

// Start runs the writer goroutine.
func (r *Recorder) Start() { go r.run() }

// Record queues a record and never blocks: invocations must not wait on
// telemetry. When the queue is full (the store is down or can't keep up)
// or the recorder is closed, the record is dropped, counted and warned
// about.
func (r *Recorder) Record(rec *function.Invocation) {
	r.closeMu.RLock()
	defer r.closeMu.RUnlock()
	if r.closed {
		r.drop("the recorder is closed")
		return
	}
	select {
	case r.ch <- rec:
	default:
		r.drop("the store is not keeping up")
	}
}

func (r *Recorder) drop(why string) {
	n := r.dropped.Add(1)
	now := time.Now().Unix()
	if last := r.lastWarn.Load(); now-last >= 10 && r.lastWarn.CompareAndSwap(last, now) {
		r.log.Warn("dropping invocation records: "+why, "dropped_total", n)
	}
}

// Dropped counts the records dropped since start.
func (r *Recorder) Dropped() int64 { return r.dropped.Load() }

func (r *Recorder) run() {
	defer close(r.done)
	batch := make([]function.Invocation, 0, r.cfg.Batch)
	t := time.NewTimer(r.cfg.FlushEvery)
	defer t.Stop()
	flush := func() {
		if len(batch) == 0 {
			return
		}
		r.write(batch)
		batch = batch[:0]
	}
	for {
		select {
		case rec := <-r.ch:
			batch = append(batch, *rec)
			if len(batch) >= r.cfg.Batch {
				flush()
			}
		case <-t.C:
			flush()
			t.Reset(r.cfg.FlushEvery)
		case done := <-r.flushes:
			drain(&batch, r.ch, r.cfg.Batch, flush)
			flush()
			close(done)
		case <-r.quit:
			drain(&batch, r.ch, r.cfg.Batch, flush) // write what is queued, then stop
			flush()
			return
		}
	}
}

// drain moves what ch holds now into batch, flushing full batches.
func drain(batch *[]function.Invocation, ch chan *function.Invocation, size int, flush func()) {
	for {
		select {
		case rec := <-ch:
			*batch = append(*batch, *rec)
			if len(*batch) >= size {
				flush()
			}
		default:
			return
		}
	}
}

// Flush stores what was recorded before it was called, and returns when
// it is written (or, after the retries, dropped), when the recorder has
// stopped, or when ctx ends.
func (r *Recorder) Flush(ctx context.Context) error {
	done := make(chan struct{})
	select {
	case r.flushes <- done:
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// write stores a batch, retrying a failed write a few times: records are
// telemetry, and a store that stays down must not stop invocations.
func (r *Recorder) write(batch []function.Invocation) {
	var err error
	for attempt := range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = r.st.InsertInvocations(ctx, batch)
		cancel()
		if err == nil {
			r.notify()
			return
		}
		time.Sleep(time.Duration(attempt+1) * 100 * time.Millisecond)
	}
	r.log.Error("dropping invocation records", "count", len(batch), "err", err)
}

func (r *Recorder) notify() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for c := range r.subs {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// Subscribe returns a channel that receives a signal after records are
// stored, and a function to stop.
func (r *Recorder) Subscribe() (<-chan struct{}, func()) {
	c := make(chan struct{}, 1)
	r.mu.Lock()
	r.subs[c] = struct{}{}
	r.mu.Unlock()
	return c, func() {
		r.mu.Lock()
		delete(r.subs, c)
		r.mu.Unlock()
	}
}

// Close writes what is queued and stops; records that arrive later are
// dropped and counted.
func (r *Recorder) Close(ctx context.Context) error {
	r.close.Do(func() {
		r.closeMu.Lock() // no Record is between its check and its send
		r.closed = true
		close(r.quit)
		r.closeMu.Unlock()
	})
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Logs collects one invocation's log lines, up to a number of lines and
// bytes; past either it keeps a single marker line.
type Logs struct {
	Lines     []function.LogLine
	maxLines  int
	maxBytes  int
	bytes     int
	truncated bool
}

var _ function.Logs = (*Logs)(nil)

// NewLogs returns a collector with the default bounds.
func NewLogs() *Logs { return &Logs{maxLines: DefaultMaxLogLines, maxBytes: DefaultMaxLogBytes} }

// Line implements function.Logs.
func (l *Logs) Line(stream string, line []byte) {
	if l.truncated {
		return
	}
	text := clean(line)
	if len(l.Lines) >= l.maxLines || l.bytes+len(text) > l.maxBytes {
		l.truncated = true
		l.Lines = append(l.Lines, function.LogLine{Time: time.Now().UTC(), Stream: "platform",
			Line: "log output truncated: more than the per-invocation limit"})
		return
	}
	l.bytes += len(text)
	if l.Lines == nil {
		l.Lines = make([]function.LogLine, 0, 16) // a chatty call grows it once or twice, not five times
	}
	l.Lines = append(l.Lines, function.LogLine{Time: time.Now().UTC(), Stream: stream, Line: text})
}

// clean makes a line storable everywhere: valid UTF-8 without NUL bytes
// (PostgreSQL's text accepts neither).
func clean(line []byte) string {
	s := string(line)
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}
