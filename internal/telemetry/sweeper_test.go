package telemetry_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
	"github.com/hostless/hostless/internal/telemetry"
)

// TestFlush: Flush returns once what was recorded before it is stored,
// without waiting for a batch to fill or for FlushEvery; concurrent
// Flushes and Records are fine.
func TestFlush(t *testing.T) {
	t.Parallel()
	db := openStore(t)
	r := newRecorder(t, db, telemetry.Config{FlushEvery: time.Hour, Batch: 1000})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 50 {
				r.Record(record("flushed", g*100+i, 2))
				if i%10 == 0 {
					if err := r.Flush(context.Background()); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, "flushed"); n != 200 {
		t.Fatalf("%d records stored after Flush, want 200", n)
	}
	// After Close, Flush returns at once.
	closeRecorder(t, r)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := r.Flush(ctx); err != nil {
		t.Fatalf("Flush after Close: %v", err)
	}
}

func TestSweeper(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openStore(t)
	now := time.Now()
	mk := func(age time.Duration, lines int) function.Invocation {
		rec := record("swept", 0, lines)
		rec.Start = now.Add(-age)
		rec.ID = function.NewID(rec.Start)
		for i := range rec.Logs {
			rec.Logs[i].Time = rec.Start
		}
		return *rec
	}
	old, fresh := mk(10*24*time.Hour, 3), mk(time.Hour, 3)
	if err := db.InsertInvocations(ctx, []function.Invocation{old, fresh, mk(30*time.Minute, 40)}); err != nil {
		t.Fatal(err)
	}
	total, err := db.LogBytes(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// Nothing to keep out: a sweep deletes nothing and measures.
	s := telemetry.NewSweeper(db, discard(), telemetry.SweepConfig{})
	if got, err := s.Sweep(ctx); err != nil || got != (store.Trimmed{}) || s.LogBytes() != total {
		t.Fatalf("sweep without limits = %+v, %v; log bytes %d, want %d", got, err, s.LogBytes(), total)
	}

	// By age: the 10-day-old record and its lines go.
	s = telemetry.NewSweeper(db, discard(), telemetry.SweepConfig{MaxAge: 7 * 24 * time.Hour})
	got, err := s.Sweep(ctx)
	if err != nil || got.Records != 1 || got.LogLines != 3 {
		t.Fatalf("sweep by age = %+v, %v", got, err)
	}
	if _, err := db.GetInvocation(ctx, function.DefaultProject, old.ID); err == nil {
		t.Fatal("the old record is still there")
	}
	if _, err := db.GetInvocation(ctx, function.DefaultProject, fresh.ID); err != nil {
		t.Fatalf("the fresh record: %v", err)
	}

	// By size: the 40-line invocation alone fits; the older lines go, the
	// records stay.
	s = telemetry.NewSweeper(db, discard(), telemetry.SweepConfig{MaxLogBytes: total - got.LogBytes - 1})
	if got, err := s.Sweep(ctx); err != nil || got.LogLines != 3 || got.Records != 0 {
		t.Fatalf("sweep by size = %+v, %v", got, err)
	}
	if s.LogBytes() > total {
		t.Fatalf("log bytes %d after the sweep", s.LogBytes())
	}
	if recs, _ := s.Trimmed(); recs != 0 {
		t.Fatalf("records trimmed = %d", recs)
	}
	if rec, err := db.GetInvocation(ctx, function.DefaultProject, fresh.ID); err != nil || len(rec.Logs) != 0 {
		t.Fatalf("the fresh record after the size sweep: %d lines, %v", len(rec.Logs), err)
	}
}

// TestSweeperRuns: started, it sweeps at once and then every Every, and
// Close stops it (also when it never started).
func TestSweeperRuns(t *testing.T) {
	t.Parallel()
	db := openStore(t)
	if err := telemetry.NewSweeper(db, discard(), telemetry.SweepConfig{}).Close(context.Background()); err != nil {
		t.Fatalf("Close without Start: %v", err)
	}
	s := telemetry.NewSweeper(db, discard(), telemetry.SweepConfig{MaxAge: 24 * time.Hour, Every: 10 * time.Millisecond})
	s.Start()
	old := record("swept", 0, 1)
	old.Start = time.Now().Add(-48 * time.Hour)
	old.ID = function.NewID(old.Start)
	old.Logs[0].Time = old.Start
	for range 3 {
		if err := db.InsertInvocations(context.Background(), []function.Invocation{*old}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for count(t, db, "swept") != 0 {
			if time.Now().After(deadline) {
				t.Fatal("the old record was not swept")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
