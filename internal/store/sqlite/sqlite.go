// Package sqlite implements store.Store on SQLite, through the pure-Go driver
// modernc.org/sqlite, so the binary still cross-compiles with CGO_ENABLED=0.
//
// A store is a directory of three database files: meta.db holds functions,
// versions and settings; telemetry.db holds invocation records and their log
// lines, so that a flood of telemetry never blocks a deploy; data.db holds
// the backend's application data (users, documents, object metadata...), so
// that an app's write load never blocks the platform's own. Each file has one
// writer connection (transactions begin IMMEDIATE, so writers queue on the Go
// side instead of failing with SQLITE_BUSY) and a separate read-only pool.
// Times are stored as INTEGER Unix nanoseconds in UTC.
//
// Durability: meta.db fsyncs every commit (synchronous FULL). data.db
// fsyncs at checkpoints (synchronous NORMAL in WAL mode): a commit has
// reached the kernel when it is acknowledged, so it survives kill -9 of the
// process, and only a power loss can take the last ones; Options.DataSyncFull
// (serve --data-sync-always) fsyncs every commit there too, at a cost in
// write throughput (see the README's benchmarks). Concurrent document
// writes and object puts commit together either way.
//
// Package sqlite must never import HTTP, runtimes, the scheduler or pgx.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hostless/hostless/internal/store"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

var _ store.Store = (*DB)(nil)

// DB is a store in a directory of SQLite files. It is safe for concurrent use.
type DB struct {
	dir string
	// Each file has one writer connection and a pool of read-only ones.
	metaW, metaR *sql.DB
	telW, telR   *sql.DB
	dataW, dataR *sql.DB
	// writeq groups concurrent writes (documents, objects) into one
	// commit.
	writeq writeQueue
	// stmts are the grouped writes' statements, prepared on dataW;
	// readStmts the hot reads', prepared on dataR; telStmts the telemetry
	// writes', prepared on telW (nil: wanted).
	stmtMu    sync.Mutex
	stmts     map[string]*sql.Stmt
	readStmts map[string]*sql.Stmt
	telStmts  map[string]*sql.Stmt
	opts      Options
	// usagePruneAt is when (Unix seconds) an insert next deletes old busy
	// seconds of usage.
	usagePruneAt atomic.Int64
	// usageSecond and usageHour are the usage upserts, prepared on telW
	// once: preparing them took half an insert of a few records.
	usageSecond, usageHour *sql.Stmt
}

// Open opens (creating if needed) the store in dir and applies any pending
// schema migrations. Close the returned DB when done.
func Open(ctx context.Context, dir string) (*DB, error) {
	return OpenWith(ctx, dir, Options{})
}

// Options tune a store.
type Options struct {
	// DataSyncFull fsyncs every commit of data.db (the backend's data),
	// so that acknowledged writes survive power loss, not only kill -9.
	DataSyncFull bool
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, dir string, opts Options) (*DB, error) {
	db := &DB{dir: dir, opts: opts}
	if err := db.open(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", dir, err)
	}
	return db, nil
}

func (db *DB) open(ctx context.Context) error {
	if err := os.MkdirAll(db.dir, 0o700); err != nil {
		return err
	}
	var err error
	meta := []migrationSet{{"schema_migrations", metaMigrations}}
	if db.metaW, db.metaR, err = openFile(ctx, filepath.Join(db.dir, "meta.db"), meta, "FULL"); err != nil {
		return err
	}
	tel := []migrationSet{{"schema_migrations", telemetryMigrations}, {"schema_migrations_usage", usageMigrations}}
	if db.telW, db.telR, err = openFile(ctx, filepath.Join(db.dir, "telemetry.db"), tel, "NORMAL"); err != nil {
		return err
	}
	if err := db.prepareUsage(ctx); err != nil {
		return err
	}
	dataSync := "NORMAL"
	if db.opts.DataSyncFull {
		dataSync = "FULL"
	}
	if db.dataW, db.dataR, err = openFile(ctx, filepath.Join(db.dir, "data.db"), dataMigrationSets, dataSync); err != nil {
		return err
	}
	return nil
}

// openFile opens the writer and the reader pool of one database file and
// migrates it. On error, it closes what it opened. sync is the
// synchronous pragma: FULL fsyncs every commit (what a deploy acknowledges
// must survive power loss); NORMAL fsyncs at checkpoints (telemetry, whose
// commits survive a crash of the process but not of the machine).
func openFile(ctx context.Context, path string, sets []migrationSet, sync string) (w, r *sql.DB, err error) {
	common := url.Values{}
	common.Add("_pragma", "busy_timeout(5000)")
	common.Add("_pragma", "foreign_keys(1)")
	common.Add("_pragma", "synchronous("+sync+")")

	wq := cloneValues(common)
	wq.Add("_pragma", "journal_mode(WAL)")
	// Savepoints (a group commit's per-call rollback) journal to memory,
	// not to a temporary file: the WAL is what makes a commit durable.
	wq.Add("_pragma", "temp_store(MEMORY)")
	wq.Set("_txlock", "immediate")
	w, err = sql.Open("sqlite", path+"?"+wq.Encode())
	if err != nil {
		return nil, nil, err
	}
	// One writer: SQLite allows one at a time anyway, and queueing in the
	// pool is cheaper and fairer than spinning on SQLITE_BUSY.
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	for _, set := range sets {
		if err := migrate(ctx, w, set); err != nil {
			_ = w.Close()
			return nil, nil, fmt.Errorf("migrate %s (%s): %w", filepath.Base(path), set.table, err)
		}
	}

	rq := cloneValues(common)
	rq.Add("_pragma", "query_only(1)")
	r, err = sql.Open("sqlite", path+"?"+rq.Encode())
	if err != nil {
		_ = w.Close()
		return nil, nil, err
	}
	n := max(4, runtime.NumCPU())
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	if err := r.PingContext(ctx); err != nil {
		_ = w.Close()
		_ = r.Close()
		return nil, nil, err
	}
	return w, r, nil
}

func cloneValues(v url.Values) url.Values {
	c := make(url.Values, len(v))
	for k, vs := range v {
		c[k] = append([]string(nil), vs...)
	}
	return c
}

// migrationSet is one domain's schema history in one file, recorded in its
// own table, so that domains (functions, auth, documents...) grow their
// schemas independently. Version n is migrations[n-1]; never edit or
// reorder released entries, only append.
type migrationSet struct {
	table      string // where applied versions are recorded, e.g. "schema_migrations_auth"
	migrations []string
}

// dataMigrationSets build data.db: one set per backend domain, each in the
// file of that domain (auth.go, docdb.go, ...).
var dataMigrationSets = []migrationSet{
	{"schema_migrations_auth", authMigrations},
	{"schema_migrations_docdb", docdbMigrations},
	{"schema_migrations_objects", objectMigrations},
	{"schema_migrations_identities", identityMigrations},
	{"schema_migrations_secrets", secretMigrations},
}

// migrate applies, in one transaction, the migrations of set not yet
// recorded in its table.
func migrate(ctx context.Context, w *sql.DB, set migrationSet) error {
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// set.table is a constant of this package, never outside input.
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+set.table+` (version INTEGER PRIMARY KEY)`); err != nil {
		return err
	}
	var cur int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM `+set.table).Scan(&cur); err != nil {
		return err
	}
	if cur > len(set.migrations) {
		return fmt.Errorf("schema version %d is newer than this binary knows (%d)", cur, len(set.migrations))
	}
	for i := cur; i < len(set.migrations); i++ {
		if _, err := tx.ExecContext(ctx, set.migrations[i]); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO `+set.table+` (version) VALUES (?)`, i+1); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// metaMigrations build meta.db. Settings carry a project too; platform-wide
// settings use the empty project.
var metaMigrations = []string{
	`CREATE TABLE functions (
		project    TEXT    NOT NULL,
		name       TEXT    NOT NULL,
		version    INTEGER NOT NULL,
		created_at INTEGER NOT NULL,
		updated_at INTEGER NOT NULL,
		PRIMARY KEY (project, name)
	) WITHOUT ROWID`,
	`CREATE TABLE versions (
		project    TEXT    NOT NULL,
		function   TEXT    NOT NULL,
		version    INTEGER NOT NULL,
		spec       TEXT    NOT NULL,
		created_at INTEGER NOT NULL,
		PRIMARY KEY (project, function, version),
		FOREIGN KEY (project, function) REFERENCES functions (project, name) ON DELETE CASCADE
	) WITHOUT ROWID`,
	`CREATE TABLE settings (
		project TEXT NOT NULL,
		key     TEXT NOT NULL,
		value   TEXT NOT NULL,
		PRIMARY KEY (project, key)
	) WITHOUT ROWID`,
	// Aliases point at versions; the live alias is what functions.version
	// was. A version an alias names can't be deleted (versions go only
	// with their function, and its aliases with it).
	`CREATE TABLE aliases (
		project        TEXT    NOT NULL,
		function       TEXT    NOT NULL,
		name           TEXT    NOT NULL,
		version        INTEGER NOT NULL,
		canary_version INTEGER,
		canary_weight  INTEGER NOT NULL DEFAULT 0,
		created_at     INTEGER NOT NULL,
		updated_at     INTEGER NOT NULL,
		PRIMARY KEY (project, function, name),
		FOREIGN KEY (project, function) REFERENCES functions (project, name) ON DELETE CASCADE,
		FOREIGN KEY (project, function, version) REFERENCES versions (project, function, version),
		FOREIGN KEY (project, function, canary_version) REFERENCES versions (project, function, version)
	) WITHOUT ROWID`,
	`INSERT INTO aliases (project, function, name, version, canary_version, canary_weight, created_at, updated_at)
		SELECT project, name, 'live', version, NULL, 0, created_at, updated_at FROM functions`,
	`ALTER TABLE functions DROP COLUMN version`,
}

// telemetryMigrations build telemetry.db.
var telemetryMigrations = []string{
	`CREATE TABLE invocations (
		project      TEXT    NOT NULL,
		id           TEXT    NOT NULL,
		function     TEXT    NOT NULL,
		version      INTEGER NOT NULL,
		trigger_kind TEXT    NOT NULL,
		started_at   INTEGER NOT NULL,
		duration_ns  INTEGER NOT NULL,
		billed_ms    INTEGER NOT NULL,
		memory_mb    INTEGER NOT NULL,
		cold         INTEGER NOT NULL,
		status       TEXT    NOT NULL,
		error        TEXT    NOT NULL,
		http_status  INTEGER NOT NULL,
		PRIMARY KEY (project, id)
	) WITHOUT ROWID`,
	`CREATE INDEX invocations_function ON invocations (project, function, id)`,
	`CREATE TABLE logs (
		seq           INTEGER PRIMARY KEY AUTOINCREMENT,
		project       TEXT    NOT NULL,
		invocation_id TEXT    NOT NULL,
		function      TEXT    NOT NULL,
		version       INTEGER NOT NULL,
		logged_at     INTEGER NOT NULL,
		stream        TEXT    NOT NULL,
		line          TEXT    NOT NULL
	)`,
	`CREATE INDEX logs_invocation ON logs (project, invocation_id, seq)`,
	`CREATE INDEX logs_project ON logs (project, seq)`,
	`CREATE INDEX logs_function ON logs (project, function, seq)`,
	`CREATE TABLE async_invocations (
		project       TEXT    NOT NULL,
		id            TEXT    NOT NULL,
		function      TEXT    NOT NULL,
		qualifier     TEXT    NOT NULL,
		trigger_kind  TEXT    NOT NULL,
		status        TEXT    NOT NULL,
		attempts      INTEGER NOT NULL,
		rank          INTEGER NOT NULL,
		accepted_at   INTEGER NOT NULL,
		updated_at    INTEGER NOT NULL,
		last_attempt  TEXT    NOT NULL,
		result_status INTEGER NOT NULL,
		result_header TEXT    NOT NULL,
		result_body   BLOB,
		error         TEXT    NOT NULL,
		seq           INTEGER NOT NULL,
		PRIMARY KEY (project, id)
	)`,
	`ALTER TABLE invocations ADD COLUMN request_id TEXT NOT NULL DEFAULT ''`,
	// Log lines move from a row each to a row per invocation (a chunk, see
	// package logchunk): a row costs the same to insert whatever its size.
	// written_at and total_bytes grow with seq (see invocations.go).
	`CREATE TABLE log_chunks (
		seq           INTEGER PRIMARY KEY AUTOINCREMENT,
		project       TEXT    NOT NULL,
		invocation_id TEXT    NOT NULL,
		function      TEXT    NOT NULL,
		version       INTEGER NOT NULL,
		status        TEXT    NOT NULL,
		first_at      INTEGER NOT NULL,
		last_at       INTEGER NOT NULL,
		written_at    INTEGER NOT NULL,
		lines         INTEGER NOT NULL,
		bytes         INTEGER NOT NULL,
		total_bytes   INTEGER NOT NULL,
		meta          TEXT    NOT NULL,
		text          TEXT    NOT NULL
	)`,
	`INSERT INTO log_chunks (project, invocation_id, function, version, status, first_at, last_at, written_at, lines, bytes, total_bytes, meta, text)
		SELECT c.project, c.invocation_id, c.function, c.version, COALESCE(i.status, 'ok'), c.first_at, c.last_at, c.last_at,
			c.lines, length(CAST(c.meta AS BLOB)) + length(CAST(c.text AS BLOB)), 0, c.meta, c.text
		FROM (
			SELECT l.project, l.invocation_id, MIN(l.function) AS function, MIN(l.version) AS version,
				MIN(l.first_at) AS first_at, MAX(l.logged_at) AS last_at, COUNT(*) AS lines, MIN(l.seq) AS first_seq,
				group_concat(CASE l.stream WHEN 'stdout' THEN 'o' WHEN 'stderr' THEN 'e' WHEN 'platform' THEN 'p'
					ELSE '(' || replace(replace(replace(l.stream, '%', '%25'), ',', '%2C'), ')', '%29') || ')' END
					|| (l.logged_at - l.first_at) || '/' || length(CAST(l.line AS BLOB)), ',' ORDER BY l.seq) AS meta,
				group_concat(l.line, char(10) ORDER BY l.seq) AS text
			FROM (SELECT logs.*, first_value(logged_at) OVER (PARTITION BY project, invocation_id ORDER BY seq) AS first_at FROM logs) AS l
			GROUP BY l.project, l.invocation_id
		) AS c LEFT JOIN invocations AS i ON i.project = c.project AND i.id = c.invocation_id
		ORDER BY c.first_seq`,
	`UPDATE log_chunks SET written_at = w.written_at, total_bytes = w.total_bytes
		FROM (SELECT seq, MAX(last_at) OVER (ORDER BY seq) AS written_at, SUM(bytes) OVER (ORDER BY seq) AS total_bytes FROM log_chunks) AS w
		WHERE log_chunks.seq = w.seq`,
	`DROP TABLE logs`,
	`CREATE INDEX log_chunks_project ON log_chunks (project, seq)`,
	`CREATE INDEX log_chunks_function ON log_chunks (project, function, seq)`,
	`CREATE INDEX log_chunks_invocation ON log_chunks (project, invocation_id)`,
	// Failed invocations are few: --status error reads them alone.
	`CREATE INDEX log_chunks_failed ON log_chunks (project, seq) WHERE status <> 'ok'`,
	`CREATE INDEX log_chunks_function_failed ON log_chunks (project, function, seq) WHERE status <> 'ok'`,
}

// Ping checks that every file answers.
func (db *DB) Ping(ctx context.Context) error {
	for _, d := range []*sql.DB{db.metaW, db.metaR, db.telW, db.telR, db.dataW, db.dataR} {
		if err := d.PingContext(ctx); err != nil {
			return fmt.Errorf("ping sqlite store: %w", err)
		}
	}
	return nil
}

// Close closes every handle that Open opened; it works after a failed Open.
func (db *DB) Close() error {
	db.writeq.mu.Lock()
	db.writeq.closed = true
	db.writeq.mu.Unlock()
	db.writeq.wg.Wait() // a group being committed
	var errs []error
	db.stmtMu.Lock()
	defer db.stmtMu.Unlock()
	for _, m := range []map[string]*sql.Stmt{db.stmts, db.readStmts} {
		for _, st := range m {
			if st != nil {
				errs = append(errs, st.Close())
			}
		}
	}
	for _, st := range db.telStmts {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	for _, st := range []*sql.Stmt{db.usageSecond, db.usageHour} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	for _, d := range []*sql.DB{db.metaR, db.telR, db.dataR, db.metaW, db.telW, db.dataW} {
		if d != nil {
			errs = append(errs, d.Close())
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close sqlite store: %w", err)
	}
	return nil
}

// unixNano and fromUnixNano map times to stored integers; the zero time is 0.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// now is the time stamped on writes, at the microsecond precision every
// store keeps.
func now() time.Time {
	return time.Now().UTC().Truncate(time.Microsecond)
}

func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}
