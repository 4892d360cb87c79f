package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/metering"
	"github.com/hostless/hostless/internal/store"
	"github.com/hostless/hostless/internal/store/storetest"
)

// testURL returns the server the tests use, or skips the test.
func testURL(t testing.TB) string {
	u := os.Getenv("HOSTLESS_TEST_POSTGRES")
	if u == "" {
		t.Skip("HOSTLESS_TEST_POSTGRES is not set (e.g. postgres://root@127.0.0.1:5432/test?sslmode=disable)")
	}
	return u
}

// open opens a store in a new schema of the test server, dropped when the
// test ends.
func open(t testing.TB) *DB {
	t.Helper()
	db, err := Open(context.Background(), newSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// newSchema makes a schema on the test server, dropped when the test ends,
// and returns the URL that uses it.
func newSchema(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	base := testURL(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "hl_test_" + hex.EncodeToString(b[:])
	admin := func(sql string) {
		t.Helper()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	admin(`CREATE SCHEMA ` + schema)
	t.Cleanup(func() { admin(`DROP SCHEMA ` + schema + ` CASCADE`) })

	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func TestStore(t *testing.T) {
	testURL(t)
	storetest.Run(t, func(t *testing.T) store.Store { return open(t) })
}

func TestOpenFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if db, err := Open(ctx, "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=1"); err == nil {
		db.Close()
		t.Fatal("Open of a closed port succeeded")
	}
	if _, err := Open(ctx, "not a url ::"); err == nil {
		t.Fatal("Open of a bad URL succeeded")
	}
	var db DB
	if err := db.Close(); err != nil {
		t.Fatalf("Close of an unopened DB: %v", err)
	}
}

func TestMigrateOnce(t *testing.T) {
	db := open(t)
	ctx := context.Background()
	// Migrating an up-to-date schema applies nothing and fails nothing.
	if err := db.migrate(ctx); err != nil {
		t.Fatal(err)
	}
	var n, maxV int
	if err := db.pool.QueryRow(ctx, `SELECT count(*), max(version) FROM schema_migrations`).Scan(&n, &maxV); err != nil {
		t.Fatal(err)
	}
	if n != len(migrations) || maxV != len(migrations) {
		t.Fatalf("schema_migrations has %d rows up to %d, want %d", n, maxV, len(migrations))
	}
}

func BenchmarkInsertInvocations(b *testing.B) {
	db := open(b)
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
			db := open(b)
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

// TestMigrateToAliases: a schema written before aliases existed opens with
// each function's serving version as its live alias.
func TestMigrateToAliases(t *testing.T) {
	ctx := context.Background()
	url := newSchema(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	const before = 9 // the migrations before the aliases table
	if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		return migrateSet(ctx, tx, migrationSet{"schema_migrations", migrations[:before]})
	}); err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	for _, q := range []string{
		`INSERT INTO functions (project, name, version, created_at, updated_at) VALUES ('p', 'old', 2, $1, $1)`,
		`INSERT INTO versions (project, function, version, spec, created_at) VALUES ('p', 'old', 1, '{"runtime":"wasm"}', $1)`,
		`INSERT INTO versions (project, function, version, spec, created_at) VALUES ('p', 'old', 2, '{"runtime":"wasm"}', $1)`,
	} {
		if _, err := conn.Exec(ctx, q, created); err != nil {
			t.Fatal(err)
		}
	}
	db, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
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
	url := newSchema(t)
	ctx := context.Background()
	db, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { db.Close() }()
	storetest.RunUsageBackfill(t, db, func(t *testing.T) store.Store {
		for _, q := range []string{`DROP TABLE usage_hours`, `DROP TABLE usage_seconds`, `DELETE FROM schema_migrations_usage WHERE version > 1`} {
			if _, err := db.pool.Exec(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		db.Close()
		if db, err = Open(ctx, url); err != nil {
			t.Fatal(err)
		}
		return db
	}, func(t *testing.T, s store.Store) {
		if _, err := s.(*DB).pool.Exec(ctx, `DELETE FROM invocations`); err != nil {
			t.Fatal(err)
		}
	})
}

// BenchmarkUsageYear reads the report of a year of records (storetest.FillYear:
// 1,051,200 of them) by day, as GET /v1/usage?since=366d does: from the
// hourly rows, whatever number of records made them.
func BenchmarkUsageYear(b *testing.B) {
	db := open(b)
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
			if err := db.pool.QueryRow(context.Background(), `SELECT COUNT(*), SUM(billed_ms * memory_mb) FROM invocations WHERE project = $1 AND id >= $2`,
				function.DefaultProject, function.IDFloor(from)).Scan(&n, &mbms); err != nil || n == 0 {
				b.Fatal(n, err)
			}
		}
	})
}

// TestMigrateLogsToChunks: a schema with a row per log line opens with the
// lines in chunks, as if this binary had stored them.
func TestMigrateLogsToChunks(t *testing.T) {
	ctx := context.Background()
	url := newSchema(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	const before = 13 // the migrations before log chunks
	if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		return migrateSet(ctx, tx, migrationSet{"schema_migrations", migrations[:before]})
	}); err != nil {
		t.Fatal(err)
	}
	for _, rec := range storetest.OldLogs() {
		if _, err := conn.Exec(ctx, `INSERT INTO invocations (project, id, function, version, trigger_kind, started_at, duration_ns,
			billed_ms, memory_mb, cold, status, error, http_status) VALUES ($1, $2, $3, $4, 'http', $5, 1, 1, 128, false, $6, '', 200)`,
			rec.Project, rec.ID, rec.Function, rec.Version, rec.Start, rec.Status); err != nil {
			t.Fatal(err)
		}
		for _, l := range rec.Logs {
			if _, err := conn.Exec(ctx, `INSERT INTO logs (project, invocation_id, function, version, logged_at, stream, line)
				VALUES ($1, $2, $3, $4, $5, $6, $7)`, rec.Project, rec.ID, rec.Function, rec.Version, l.Time, l.Stream, l.Line); err != nil {
				t.Fatal(err)
			}
		}
	}
	db, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	storetest.MigratedLogs(t, db)
}
