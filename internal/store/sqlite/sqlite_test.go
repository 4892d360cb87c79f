package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
	"github.com/hostless/hostless/internal/store/storetest"
)

func open(t testing.TB, dir string) *DB {
	t.Helper()
	db, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return db
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, t.TempDir())
	})
}

func TestFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	open(t, dir)
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("dir mode %o, want 700", perm)
	}
	for _, name := range []string{"meta.db", "telemetry.db"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("missing %s: %v", name, err)
		}
	}
}

func TestReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	spec := function.Spec{Runtime: function.RuntimeWasm, Code: fmt.Sprintf("sha256:%064x", 1), MemoryMB: 128,
		Timeout: function.Duration(time.Second), Env: map[string]string{"K": "v"}}
	if _, err := db.PutFunction(ctx, "p", "hello", spec); err != nil {
		t.Fatal(err)
	}
	start := time.Now().UTC()
	rec := function.Invocation{ID: function.NewID(start), Project: "p", Function: "hello", Version: 1,
		Trigger: "http", Start: start, Status: function.StatusOK,
		Logs: []function.LogLine{{Time: start, Stream: "stdout", Line: "hi"}}}
	if err := db.InsertInvocations(ctx, []function.Invocation{rec}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PutSettingIfAbsent(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopening migrates nothing and finds everything.
	db = open(t, dir)
	v, err := db.GetVersion(ctx, "p", "hello", 1)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Spec.Equal(&spec) {
		t.Errorf("spec after reopen = %+v", v.Spec)
	}
	got, err := db.GetInvocation(ctx, "p", rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Start.Equal(start) || len(got.Logs) != 1 || got.Logs[0].Line != "hi" {
		t.Errorf("invocation after reopen = %+v", got)
	}
	if val, err := db.GetSetting(ctx, "k"); err != nil || val != "v" {
		t.Errorf("setting after reopen = %q, %v", val, err)
	}
	res, err := db.PutFunction(ctx, "p", "hello", spec)
	if err != nil || res.Action != "unchanged" {
		t.Errorf("put after reopen = %q, %v", res.Action, err)
	}
}

func TestOpenFails(t *testing.T) {
	// A file where the directory should be: Open fails and cleans up.
	path := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if db, err := Open(context.Background(), path); err == nil {
		db.Close()
		t.Fatal("Open of a file succeeded")
	}
	var db DB
	if err := db.Close(); err != nil {
		t.Fatalf("Close of an unopened DB: %v", err)
	}
}

func BenchmarkInsertInvocations(b *testing.B) {
	db := open(b, b.TempDir())
	ctx := context.Background()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if err := db.InsertInvocations(ctx, storetest.BenchBatch(&n)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/record")
}
