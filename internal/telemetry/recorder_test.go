package telemetry_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
	"github.com/hostless/hostless/internal/store/sqlite"
	"github.com/hostless/hostless/internal/telemetry"
)

func openStore(t *testing.T) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// newRecorder starts a recorder over st and closes it when the test ends.
func newRecorder(t *testing.T, st store.Invocations, cfg telemetry.Config) *telemetry.Recorder {
	t.Helper()
	r := telemetry.New(st, discard(), cfg)
	r.Start()
	t.Cleanup(func() { closeRecorder(t, r) })
	return r
}

func closeRecorder(t *testing.T, r *telemetry.Recorder) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		t.Errorf("close recorder: %v", err)
	}
}

var clock = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// record returns the i-th test record: IDs increase with i.
func record(fn string, i, lines int) *function.Invocation {
	start := clock.Add(time.Duration(i) * time.Millisecond)
	rec := &function.Invocation{
		ID: function.NewID(start), Project: function.DefaultProject, Function: fn, Version: 1,
		Trigger: "api", Start: start, Duration: 1500 * time.Microsecond, BilledMS: 2, MemoryMB: 128,
		Cold: i%2 == 0, Status: function.StatusOK, HTTPStatus: 200,
	}
	for j := range lines {
		rec.Logs = append(rec.Logs, function.LogLine{Time: start, Stream: "stdout", Line: fmt.Sprintf("record %d line %d", i, j)})
	}
	return rec
}

func count(t *testing.T, st store.Invocations, fn string) int {
	t.Helper()
	recs, err := st.ListInvocations(context.Background(), store.InvocationFilter{Project: function.DefaultProject, Function: fn, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(recs)
}

// waitFor polls until n records of fn are stored or the deadline passes.
func waitFor(t *testing.T, st store.Invocations, fn string, n int, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got := count(t, st, fn)
		if got == n {
			return time.Since(start)
		}
		if got > n || time.Since(start) > within {
			t.Fatalf("%d records of %s stored after %v, want %d", got, fn, time.Since(start), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCloseFlushesEverything(t *testing.T) {
	t.Parallel()
	db := openStore(t)
	r := telemetry.New(db, discard(), telemetry.Config{FlushEvery: time.Hour, Batch: 300})
	r.Start()
	const n = 1000
	want := map[string]*function.Invocation{}
	for i := range n {
		rec := record("flush", i, 3)
		want[rec.ID] = rec
		r.Record(rec)
	}
	closeRecorder(t, r)

	ctx := context.Background()
	recs, err := db.ListInvocations(ctx, store.InvocationFilter{Project: function.DefaultProject, Limit: n})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != n {
		t.Fatalf("%d records stored after Close, want %d", len(recs), n)
	}
	for i, got := range recs {
		if i > 0 && got.ID >= recs[i-1].ID {
			t.Fatalf("records not newest first at %d", i)
		}
		w := want[got.ID]
		if w == nil {
			t.Fatalf("unexpected record %s", got.ID)
		}
		full, err := db.GetInvocation(ctx, function.DefaultProject, got.ID)
		if err != nil {
			t.Fatal(err)
		}
		if full.Function != w.Function || full.Status != w.Status || full.Cold != w.Cold ||
			full.BilledMS != w.BilledMS || full.Duration != w.Duration || !full.Start.Equal(w.Start) {
			t.Fatalf("record %s = %+v, want %+v", got.ID, full, w)
		}
		if len(full.Logs) != len(w.Logs) {
			t.Fatalf("record %s has %d log lines, want %d", got.ID, len(full.Logs), len(w.Logs))
		}
		for j, l := range full.Logs {
			if l.Line != w.Logs[j].Line || l.Stream != w.Logs[j].Stream {
				t.Fatalf("record %s line %d = %q, want %q", got.ID, j, l.Line, w.Logs[j].Line)
			}
		}
	}
	// A second Close is harmless.
	closeRecorder(t, r)
}

func TestFlushWithoutClose(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		cfg   telemetry.Config
		count int
	}{
		{name: "within FlushEvery", cfg: telemetry.Config{FlushEvery: 20 * time.Millisecond, Batch: 1000}, count: 3},
		{name: "when a batch fills", cfg: telemetry.Config{FlushEvery: time.Hour, Batch: 5}, count: 5},
		{name: "defaults", cfg: telemetry.Config{}, count: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := openStore(t)
			r := newRecorder(t, db, tt.cfg)
			for i := range tt.count {
				r.Record(record("f", i, 1))
			}
			waitFor(t, db, "f", tt.count, 5*time.Second)
		})
	}
}

func TestPartialBatchWaitsForTimerOrClose(t *testing.T) {
	t.Parallel()
	db := openStore(t)
	r := telemetry.New(db, discard(), telemetry.Config{FlushEvery: time.Hour, Batch: 2})
	r.Start()
	for i := range 3 {
		r.Record(record("p", i, 0))
	}
	waitFor(t, db, "p", 2, 5*time.Second)
	time.Sleep(200 * time.Millisecond)
	if n := count(t, db, "p"); n != 2 {
		t.Fatalf("%d records stored with a FlushEvery of an hour, want the full batch of 2", n)
	}
	closeRecorder(t, r)
	if n := count(t, db, "p"); n != 3 {
		t.Fatalf("%d records stored after Close, want 3", n)
	}
}

func TestSubscribe(t *testing.T) {
	t.Parallel()
	db := openStore(t)
	r := newRecorder(t, db, telemetry.Config{FlushEvery: 10 * time.Millisecond})
	first, stopFirst := r.Subscribe()
	second, stopSecond := r.Subscribe()
	defer stopSecond()

	rec := record("sub", 1, 2)
	r.Record(rec)
	for _, c := range []<-chan struct{}{first, second} {
		select {
		case <-c:
		case <-time.After(5 * time.Second):
			t.Fatal("no signal 5s after a record was queued")
		}
	}
	// The signal comes after the write: the record is readable now.
	got, err := db.GetInvocation(context.Background(), function.DefaultProject, rec.ID)
	if err != nil {
		t.Fatalf("record not readable after the signal: %v", err)
	}
	if len(got.Logs) != 2 {
		t.Errorf("record has %d log lines, want 2", len(got.Logs))
	}

	stopFirst()
	r.Record(record("sub", 2, 0))
	select {
	case <-second:
	case <-time.After(5 * time.Second):
		t.Fatal("no signal for the second flush")
	}
	select {
	case <-first:
		t.Error("a stopped subscription still got a signal")
	default:
	}
}

// failing is a store whose writes fail.
type failing struct{ store.Invocations }

func (failing) InsertInvocations(context.Context, []function.Invocation) error {
	return fmt.Errorf("disk on fire")
}

func TestStoreDownDropsAndLogs(t *testing.T) {
	t.Parallel()
	var logged bytes.Buffer
	// One batch, written at Close, so the log names all three records.
	r := telemetry.New(failing{}, slog.New(slog.NewTextHandler(&logged, nil)), telemetry.Config{FlushEvery: time.Hour})
	r.Start()
	done := make(chan struct{})
	go func() {
		for i := range 3 {
			r.Record(record("down", i, 0))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("Record blocked while the store was failing")
	}
	closeRecorder(t, r) // retries for about 1.5s, then drops; Close waits for the writer
	out := logged.String()
	if !strings.Contains(out, "dropping invocation records") || !strings.Contains(out, "count=3") || !strings.Contains(out, "disk on fire") {
		t.Errorf("log = %q, want the dropped count and the cause", out)
	}
}

func TestLogsBounds(t *testing.T) {
	t.Parallel()
	const marker = "log output truncated: more than the per-invocation limit"
	kib := strings.Repeat("x", 1024)
	tests := []struct {
		name      string
		lines     int
		line      string
		wantKept  int
		truncated bool
	}{
		{name: "under both limits", lines: 10, line: "hello", wantKept: 10},
		{name: "exactly the line limit", lines: telemetry.DefaultMaxLogLines, line: "l", wantKept: telemetry.DefaultMaxLogLines},
		{name: "one past the line limit", lines: telemetry.DefaultMaxLogLines + 1, line: "l", wantKept: telemetry.DefaultMaxLogLines, truncated: true},
		{name: "far past the line limit", lines: 5000, line: "l", wantKept: telemetry.DefaultMaxLogLines, truncated: true},
		{name: "exactly the byte limit", lines: telemetry.DefaultMaxLogBytes / 1024, line: kib, wantKept: telemetry.DefaultMaxLogBytes / 1024},
		{name: "one line past the byte limit", lines: telemetry.DefaultMaxLogBytes/1024 + 1, line: kib, wantKept: telemetry.DefaultMaxLogBytes / 1024, truncated: true},
		{name: "one huge line", lines: 3, line: strings.Repeat("y", telemetry.DefaultMaxLogBytes+1), wantKept: 0, truncated: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := telemetry.NewLogs()
			for range tt.lines {
				l.Line("stderr", []byte(tt.line))
			}
			want := tt.wantKept
			if tt.truncated {
				want++
			}
			if len(l.Lines) != want {
				t.Fatalf("%d lines kept, want %d", len(l.Lines), want)
			}
			bytes := 0
			for i, ln := range l.Lines[:tt.wantKept] {
				if ln.Stream != "stderr" || ln.Line != tt.line {
					t.Fatalf("line %d = %s %.20q, want stderr %.20q", i, ln.Stream, ln.Line, tt.line)
				}
				if ln.Time.IsZero() {
					t.Fatalf("line %d has no time", i)
				}
				bytes += len(ln.Line)
			}
			if bytes > telemetry.DefaultMaxLogBytes {
				t.Errorf("kept %d bytes, limit %d", bytes, telemetry.DefaultMaxLogBytes)
			}
			last := l.Lines[len(l.Lines)-1]
			if isMarker := last.Stream == "platform" && last.Line == marker; isMarker != tt.truncated {
				t.Errorf("last line = %s %.40q; truncation marker present = %v, want %v", last.Stream, last.Line, isMarker, tt.truncated)
			}
			markers := 0
			for _, ln := range l.Lines {
				if ln.Stream == "platform" {
					markers++
				}
			}
			if markers > 1 {
				t.Errorf("%d truncation markers, want at most one", markers)
			}
		})
	}
}

func TestLogsCleanLines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "ascii", in: "plain line", want: "plain line"},
		{name: "valid utf-8", in: "héllo, 世界 ✓", want: "héllo, 世界 ✓"},
		{name: "empty", in: "", want: ""},
		{name: "invalid byte", in: "a\xffb", want: "a\uFFFDb"},
		{name: "run of invalid bytes", in: "a\xff\xfe\xfdb", want: "a\uFFFDb"},
		{name: "truncated rune", in: "caf\xc3", want: "caf\uFFFD"},
		{name: "NUL", in: "a\x00b", want: "a\uFFFDb"},
		{name: "NUL and invalid", in: "\x00\xff", want: "\uFFFD\uFFFD"},
		{name: "valid replacement char kept", in: "x\uFFFDy", want: "x\uFFFDy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := telemetry.NewLogs()
			l.Line("stdout", []byte(tt.in))
			if len(l.Lines) != 1 {
				t.Fatalf("%d lines, want 1", len(l.Lines))
			}
			if got := l.Lines[0].Line; got != tt.want {
				t.Errorf("line = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCleanedLinesAreStorable(t *testing.T) {
	t.Parallel()
	db := openStore(t)
	r := telemetry.New(db, discard(), telemetry.Config{})
	r.Start()
	l := telemetry.NewLogs()
	l.Line("stdout", []byte("bad \xff\x00 bytes"))
	rec := record("clean", 0, 0)
	rec.Logs = l.Lines
	r.Record(rec)
	closeRecorder(t, r)
	got, err := db.GetInvocation(context.Background(), function.DefaultProject, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Logs) != 1 || got.Logs[0].Line != "bad \uFFFD\uFFFD bytes" {
		t.Errorf("stored logs = %+v, want the cleaned line", got.Logs)
	}
}

func TestRecordNeverBlocksAndCountsDrops(t *testing.T) {
	db := openStore(t)
	r := telemetry.New(db, slog.New(slog.NewTextHandler(io.Discard, nil)), telemetry.Config{Queue: 2})
	// Not started: nothing drains the queue, as when the store hangs.
	done := make(chan struct{})
	go func() {
		for i := range 5 {
			r.Record(record("full", i, 0))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Record blocked on a full queue")
	}
	if got := r.Dropped(); got != 3 {
		t.Errorf("Dropped = %d, want 3 (queue of 2, 5 records)", got)
	}
	r.Start()
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.Record(record("late", 0, 0)) // after Close: dropped, no panic
	if got := r.Dropped(); got != 4 {
		t.Errorf("Dropped after a late record = %d, want 4", got)
	}
	recs, err := db.ListInvocations(context.Background(), store.InvocationFilter{Project: "default", Function: "full"})
	if err != nil || len(recs) != 2 {
		t.Errorf("stored %d records (%v), want the 2 queued ones flushed on Close", len(recs), err)
	}
}
