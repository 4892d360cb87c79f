// Package postgres implements store.Store on PostgreSQL through a pgx/v5
// connection pool, for clusters of nodes that share one database.
//
// The schema lives in whatever schema the URL's search_path names
// (postgres://host/db?search_path=hostless); nodes migrate it at Open under
// an advisory lock, so only one of them applies each migration.
//
// Package postgres is the only package that imports pgx. It must never import
// HTTP, runtimes or the scheduler.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hostless/hostless/internal/store"
)

var _ store.Store = (*DB)(nil)

// Advisory lock keys (pg_advisory_xact_lock). They are database-wide, so
// every schema in one database shares them.
const (
	lockMigrate int64 = 0x686f73746c657300 + iota // "hostless\x00"
	lockLogs
	lockDocIndexes
)

// DB is a store in a PostgreSQL database. It is safe for concurrent use.
type DB struct {
	pool *pgxpool.Pool
	// usagePruneAt is when (Unix seconds) an insert next deletes old busy
	// seconds of usage.
	usagePruneAt atomic.Int64
}

// Open connects to the database at url, a postgres:// URL or DSN that pgx
// accepts (pool_* parameters size the pool; search_path picks the schema),
// and applies pending migrations. Close the returned DB when done.
func Open(ctx context.Context, url string) (*DB, error) {
	db := &DB{}
	if err := db.open(ctx, url); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	return db, nil
}

func (db *DB) open(ctx context.Context, url string) error {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return err // pgx redacts the password in its parse errors
	}
	if db.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return err
	}
	if err := db.pool.Ping(ctx); err != nil {
		return err
	}
	return db.migrate(ctx)
}

// migrationSet is one domain's schema history, recorded in its own table,
// so that domains (functions, auth, documents...) grow their schemas
// independently. Version n is migrations[n-1]; never edit or reorder
// released entries, only append.
type migrationSet struct {
	table      string // where applied versions are recorded, e.g. "schema_migrations_auth"
	migrations []string
}

// migrationSets are every domain's schema: the platform's own first, then
// one set per backend domain, each in the file of that domain.
func migrationSets() []migrationSet {
	return []migrationSet{
		{"schema_migrations", migrations},
		{"schema_migrations_auth", authMigrations},
		{"schema_migrations_docdb", docdbMigrations},
		{"schema_migrations_objects", objectMigrations},
		{"schema_migrations_identities", identityMigrations},
		{"schema_migrations_secrets", secretMigrations},
		{"schema_migrations_usage", usageMigrations},
	}
}

// migrate applies, in one transaction and under an advisory lock, the
// migrations not yet recorded in each set's table.
func (db *DB) migrate(ctx context.Context) error {
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockMigrate); err != nil {
			return err
		}
		for _, set := range migrationSets() {
			if err := migrateSet(ctx, tx, set); err != nil {
				return fmt.Errorf("migrate %s: %w", set.table, err)
			}
		}
		return nil
	})
}

func migrateSet(ctx context.Context, tx pgx.Tx, set migrationSet) error {
	// set.table is a constant of this package, never outside input.
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+set.table+` (version integer PRIMARY KEY)`); err != nil {
		return err
	}
	var cur int
	if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM `+set.table).Scan(&cur); err != nil {
		return err
	}
	if cur > len(set.migrations) {
		return fmt.Errorf("schema version %d is newer than this binary knows (%d)", cur, len(set.migrations))
	}
	for i := cur; i < len(set.migrations); i++ {
		if _, err := tx.Exec(ctx, set.migrations[i]); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+set.table+` (version) VALUES ($1)`, i+1); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
	}
	return nil
}

// migrations build the schema. Settings carry a project too; platform-wide
// settings use the empty project. Names and IDs sort by bytes (COLLATE "C"),
// as in SQLite, whatever the database's locale: invocation IDs sort by time
// only in byte order.
var migrations = []string{
	`CREATE TABLE functions (
		project    text        NOT NULL,
		name       text        COLLATE "C" NOT NULL,
		version    integer     NOT NULL,
		created_at timestamptz NOT NULL,
		updated_at timestamptz NOT NULL,
		PRIMARY KEY (project, name)
	)`,
	`CREATE TABLE versions (
		project    text        NOT NULL,
		function   text        COLLATE "C" NOT NULL,
		version    integer     NOT NULL,
		spec       jsonb       NOT NULL,
		created_at timestamptz NOT NULL,
		PRIMARY KEY (project, function, version),
		FOREIGN KEY (project, function) REFERENCES functions (project, name) ON DELETE CASCADE
	)`,
	`CREATE TABLE settings (
		project text NOT NULL,
		key     text NOT NULL,
		value   text NOT NULL,
		PRIMARY KEY (project, key)
	)`,
	`CREATE TABLE invocations (
		project      text        NOT NULL,
		id           text        COLLATE "C" NOT NULL,
		function     text        NOT NULL,
		version      integer     NOT NULL,
		trigger_kind text        NOT NULL,
		started_at   timestamptz NOT NULL,
		duration_ns  bigint      NOT NULL,
		billed_ms    bigint      NOT NULL,
		memory_mb    integer     NOT NULL,
		cold         boolean     NOT NULL,
		status       text        NOT NULL,
		error        text        NOT NULL,
		http_status  integer     NOT NULL,
		PRIMARY KEY (project, id)
	)`,
	`CREATE INDEX invocations_function ON invocations (project, function, id)`,
	`CREATE TABLE logs (
		seq           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		project       text        NOT NULL,
		invocation_id text        NOT NULL,
		function      text        NOT NULL,
		version       integer     NOT NULL,
		logged_at     timestamptz NOT NULL,
		stream        text        NOT NULL,
		line          text        NOT NULL
	)`,
	`CREATE INDEX logs_invocation ON logs (project, invocation_id, seq)`,
	`CREATE INDEX logs_project ON logs (project, seq)`,
	`CREATE INDEX logs_function ON logs (project, function, seq)`,
	// Aliases point at versions; the live alias is what functions.version
	// was. A version an alias names can't be deleted (versions go only
	// with their function, and its aliases with it).
	`CREATE TABLE aliases (
		project        text        NOT NULL,
		function       text        COLLATE "C" NOT NULL,
		name           text        COLLATE "C" NOT NULL,
		version        integer     NOT NULL,
		canary_version integer,
		canary_weight  integer     NOT NULL DEFAULT 0,
		created_at     timestamptz NOT NULL,
		updated_at     timestamptz NOT NULL,
		PRIMARY KEY (project, function, name),
		FOREIGN KEY (project, function) REFERENCES functions (project, name) ON DELETE CASCADE,
		FOREIGN KEY (project, function, version) REFERENCES versions (project, function, version),
		FOREIGN KEY (project, function, canary_version) REFERENCES versions (project, function, version)
	)`,
	`INSERT INTO aliases (project, function, name, version, canary_version, canary_weight, created_at, updated_at)
		SELECT project, name, 'live', version, NULL, 0, created_at, updated_at FROM functions`,
	`ALTER TABLE functions DROP COLUMN version`,
	`CREATE TABLE async_invocations (
		project       text        NOT NULL,
		id            text        COLLATE "C" NOT NULL,
		function      text        NOT NULL,
		qualifier     text        NOT NULL,
		trigger_kind  text        NOT NULL,
		status        text        NOT NULL,
		attempts      integer     NOT NULL,
		rank          bigint      NOT NULL,
		accepted_at   timestamptz NOT NULL,
		updated_at    timestamptz NOT NULL,
		last_attempt  text        NOT NULL,
		result_status integer     NOT NULL,
		result_header jsonb       NOT NULL,
		result_body   bytea,
		error         text        NOT NULL,
		seq           bigint      NOT NULL,
		PRIMARY KEY (project, id)
	)`,
	`ALTER TABLE invocations ADD COLUMN request_id text NOT NULL DEFAULT ''`,
	// Log lines move from a row each to a row per invocation (a chunk, see
	// package logchunk): a row costs the same to insert whatever its size.
	// Times are Unix nanoseconds, as the chunks' own. written_at and
	// total_bytes grow with seq (see invocations.go).
	`CREATE TABLE log_chunks (
		seq           bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		project       text    NOT NULL,
		invocation_id text    COLLATE "C" NOT NULL,
		function      text    NOT NULL,
		version       integer NOT NULL,
		status        text    NOT NULL,
		first_at      bigint  NOT NULL,
		last_at       bigint  NOT NULL,
		written_at    bigint  NOT NULL,
		lines         integer NOT NULL,
		bytes         bigint  NOT NULL,
		total_bytes   bigint  NOT NULL,
		meta          text    NOT NULL,
		text          text    NOT NULL
	)`,
	`INSERT INTO log_chunks (project, invocation_id, function, version, status, first_at, last_at, written_at, lines, bytes, total_bytes, meta, text)
		SELECT c.project, c.invocation_id, c.function, c.version, COALESCE(i.status, 'ok'), c.first_at, c.last_at, c.last_at,
			c.lines, octet_length(c.meta) + octet_length(c.text), 0, c.meta, c.text
		FROM (
			SELECT l.project, l.invocation_id, MIN(l.function) AS function, MIN(l.version) AS version,
				MIN(l.first_ns) AS first_at, MAX(l.ns) AS last_at, COUNT(*) AS lines, MIN(l.seq) AS first_seq,
				string_agg(CASE l.stream WHEN 'stdout' THEN 'o' WHEN 'stderr' THEN 'e' WHEN 'platform' THEN 'p'
					ELSE '(' || replace(replace(replace(l.stream, '%', '%25'), ',', '%2C'), ')', '%29') || ')' END
					|| (l.ns - l.first_ns)::text || '/' || octet_length(l.line)::text, ',' ORDER BY l.seq) AS meta,
				string_agg(l.line, E'\n' ORDER BY l.seq) AS text
			FROM (
				SELECT logs.*, (EXTRACT(EPOCH FROM logged_at) * 1000000000)::bigint AS ns,
					first_value((EXTRACT(EPOCH FROM logged_at) * 1000000000)::bigint) OVER (PARTITION BY project, invocation_id ORDER BY seq) AS first_ns
				FROM logs
			) AS l
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

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping postgres store: %w", err)
	}
	return nil
}

// Close closes the pool; it works after a failed Open.
func (db *DB) Close() error {
	if db.pool != nil {
		db.pool.Close()
	}
	return nil
}

// now is the time stamped on writes, at timestamptz's microsecond precision,
// so what PutFunction returns equals what a later read returns.
func now() time.Time {
	return time.Now().UTC().Truncate(time.Microsecond)
}

func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// CreateSchema creates schema (if missing) in the database at url: a
// platform (or a test, or a benchmark) opens it with search_path=schema.
// The name must be a plain identifier.
func CreateSchema(ctx context.Context, url, schema string) error {
	return schemaDDL(ctx, url, schema, `CREATE SCHEMA IF NOT EXISTS `)
}

// DropSchema drops schema and everything in it.
func DropSchema(ctx context.Context, url, schema string) error {
	return schemaDDL(ctx, url, schema, `DROP SCHEMA IF EXISTS `)
}

func schemaDDL(ctx context.Context, url, schema, ddl string) error {
	for i, c := range schema {
		if !(c >= 'a' && c <= 'z' || c == '_' || i > 0 && c >= '0' && c <= '9') || i >= 63 {
			return fmt.Errorf("schema %q: use lower-case letters, digits and _", schema)
		}
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	suffix := ""
	if strings.HasPrefix(ddl, "DROP") {
		suffix = " CASCADE"
	}
	_, err = conn.Exec(ctx, ddl+schema+suffix) // schema checked above
	return err
}
