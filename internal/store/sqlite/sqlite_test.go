package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/metering"
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

// BenchmarkInsertInvocationsMixed writes batches as a busy platform's
// recorder does (storetest.BenchBatchMixed), and single records as a quiet
// one's: what the usage rollups add to the insert shows here.
func BenchmarkInsertInvocationsMixed(b *testing.B) {
	for _, size := range []int{256, 16, 1} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			db := open(b, b.TempDir())
			ctx := context.Background()
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				if err := db.InsertInvocations(ctx, storetest.BenchBatchMixed(&n, size)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/record")
		})
	}
}

// TestMigrateToAliases: a store written before aliases existed opens with
// each function's serving version as its live alias.
func TestMigrateToAliases(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	const before = 3 // meta.db's migrations before aliases
	w, r, err := openFile(ctx, filepath.Join(dir, "meta.db"), []migrationSet{{"schema_migrations", metaMigrations[:before]}}, "FULL")
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	for _, q := range []string{
		`INSERT INTO functions (project, name, version, created_at, updated_at) VALUES ('p', 'old', 2, ?, ?)`,
		`INSERT INTO versions (project, function, version, spec, created_at) VALUES ('p', 'old', 1, '{"runtime":"wasm"}', ?)`,
		`INSERT INTO versions (project, function, version, spec, created_at) VALUES ('p', 'old', 2, '{"runtime":"wasm"}', ?)`,
	} {
		args := []any{created.UnixNano(), created.UnixNano()}[:strings.Count(q, "?")]
		if _, err := w.ExecContext(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	r.Close()

	db := open(t, dir)
	fn, err := db.GetFunction(ctx, "p", "old")
	if err != nil {
		t.Fatal(err)
	}
	if fn.Version != 2 || fn.CanaryVersion != 0 || !fn.CreatedAt.Equal(created) {
		t.Fatalf("migrated function = %+v, want version 2 created %v", fn, created)
	}
	as, err := db.ListAliases(ctx, "p", "old")
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 1 || as[0].Name != function.LiveAlias || as[0].Version != 2 || !as[0].CreatedAt.Equal(created) {
		t.Fatalf("migrated aliases = %+v, want live at version 2", as)
	}
	if _, err := db.SetServing(ctx, "p", "old", 1); err != nil {
		t.Fatalf("rollback after the migration: %v", err)
	}
}

// TestUsageBackfill: a store made before the usage rollups gets them
// from its records at the upgrade, and they outlive the records.
func TestUsageBackfill(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { db.Close() }()
	storetest.RunUsageBackfill(t, db, func(t *testing.T) store.Store {
		for _, q := range []string{`DROP TABLE usage_hours`, `DROP TABLE usage_seconds`, `DELETE FROM schema_migrations_usage WHERE version > 1`} {
			if _, err := db.telW.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if db, err = Open(context.Background(), dir); err != nil {
			t.Fatal(err)
		}
		return db
	}, func(t *testing.T, s store.Store) {
		if _, err := s.(*DB).telW.Exec(`DELETE FROM invocations`); err != nil {
			t.Fatal(err)
		}
	})
}

// BenchmarkUsageYear reads the report of a year of records (storetest.FillYear:
// 1,051,200 of them) by day, as GET /v1/usage?since=366d does: from the
// hourly rows, whatever number of records made them.
func BenchmarkUsageYear(b *testing.B) {
	db := open(b, b.TempDir())
	from, to := storetest.FillYear(b, db)
	prices := metering.Prices{GBSecond: 0.0000166667, MillionRequests: 0.2, GBOut: 0.09, ServerHour: 0.0208, ServerMemoryMB: 2048}
	for _, tc := range []struct{ name, function string }{{"all", ""}, {"one-function", "fn3"}} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				rep := metering.NewReport(from, to, metering.PeriodDay, tc.function, prices)
				if err := db.ReadUsage(context.Background(), rep.Filter(function.DefaultProject), rep.Add); err != nil {
					b.Fatal(err)
				}
				if r := rep.Report(); r.Total.Invocations == 0 {
					b.Fatal("empty report")
				}
			}
		})
	}
	b.Run("raw-records-sum", func(b *testing.B) {
		// What summing the records themselves costs, for comparison: one
		// pass over a year of them, without percentiles or peaks.
		for b.Loop() {
			var n, mbms int64
			if err := db.telR.QueryRowContext(context.Background(), `SELECT COUNT(*), SUM(billed_ms * memory_mb) FROM invocations WHERE project = ? AND id >= ?`,
				function.DefaultProject, function.IDFloor(from)).Scan(&n, &mbms); err != nil || n == 0 {
				b.Fatal(n, err)
			}
		}
	})
}

// TestMigrateLogsToChunks: a telemetry file written with a row per log
// line opens with the lines in chunks, as if this binary had stored them.
func TestMigrateLogsToChunks(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	const before = 7 // telemetry.db's migrations before log chunks
	w, r, err := openFile(ctx, filepath.Join(dir, "telemetry.db"), []migrationSet{{"schema_migrations", telemetryMigrations[:before]}}, "NORMAL")
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range storetest.OldLogs() {
		if _, err := w.ExecContext(ctx, `INSERT INTO invocations (project, id, function, version, trigger_kind, started_at, duration_ns,
			billed_ms, memory_mb, cold, status, error, http_status) VALUES (?, ?, ?, ?, 'http', ?, 1, 1, 128, 0, ?, '', 200)`,
			rec.Project, rec.ID, rec.Function, rec.Version, rec.Start.UnixNano(), rec.Status); err != nil {
			t.Fatal(err)
		}
		for _, l := range rec.Logs {
			if _, err := w.ExecContext(ctx, `INSERT INTO logs (project, invocation_id, function, version, logged_at, stream, line)
				VALUES (?, ?, ?, ?, ?, ?, ?)`, rec.Project, rec.ID, rec.Function, rec.Version, l.Time.UnixNano(), l.Stream, l.Line); err != nil {
				t.Fatal(err)
			}
		}
	}
	w.Close()
	r.Close()
	storetest.MigratedLogs(t, open(t, dir))
}
