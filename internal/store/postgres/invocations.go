package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
)

// InsertInvocations writes records and their Logs in one transaction: the
// records in one statement, then the log lines of the records actually
// inserted with COPY. A record whose (project, ID) is already stored is
// skipped together with its logs, so redelivering a batch after a lost
// acknowledgement is harmless. The records inserted are added to the
// usage rollups in the same transaction.
//
// Inserts hold an advisory lock until they commit. Sequence values are
// otherwise handed out in one order and made visible in another, and a
// follower reading "lines after seq N" would skip lines committed late with
// a smaller seq.
//
// A batch is first written as if none of its records were stored (the
// usual case): the lock, the records and their usage in one round trip.
// If some were, that transaction is rolled back, and the batch written
// again, its usage from the records inserted alone.
func (db *DB) InsertInvocations(ctx context.Context, recs []function.Invocation) error {
	if len(recs) == 0 {
		return nil
	}
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		return db.insertNew(ctx, tx, recs)
	})
	if errors.Is(err, errStored) {
		err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
			return db.insertInvocations(ctx, tx, recs)
		})
	}
	if err != nil {
		return fmt.Errorf("insert %d invocations: %w", len(recs), err)
	}
	return nil
}

// errStored is insertNew's answer to a batch with records already stored
// (or a record twice).
var errStored = errors.New("some records are stored already")

// insertRecords inserts records, all in one statement with a column array
// each (far cheaper than a statement per record, even pipelined), and
// returns the project and ID of each record inserted.
const insertRecords = `INSERT INTO invocations
	(project, id, function, version, trigger_kind, started_at, duration_ns, billed_ms, memory_mb, cold, status, error, http_status, response_bytes)
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::integer[], $5::text[], $6::timestamptz[],
		$7::bigint[], $8::bigint[], $9::integer[], $10::boolean[], $11::text[], $12::text[], $13::integer[], $14::bigint[])
	ON CONFLICT (project, id) DO NOTHING
	RETURNING project, id`

// recordArgs are insertRecords' arguments.
func recordArgs(recs []function.Invocation) []any {
	n := len(recs)
	var (
		projects, ids, fns, triggers, statuses, errs = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		versions, memories, httpStatuses             = make([]int32, n), make([]int32, n), make([]int32, n)
		starts                                       = make([]time.Time, n)
		durations, billed, responseBytes             = make([]int64, n), make([]int64, n), make([]int64, n)
		colds                                        = make([]bool, n)
	)
	for i := range recs {
		r := &recs[i]
		projects[i], ids[i], fns[i], triggers[i], statuses[i], errs[i] = r.Project, r.ID, r.Function, r.Trigger, r.Status, r.Error
		versions[i], memories[i], httpStatuses[i] = int32(r.Version), int32(r.MemoryMB), int32(r.HTTPStatus)
		starts[i], durations[i], billed[i], colds[i] = r.Start.UTC(), int64(r.Duration), r.BilledMS, r.Cold
		responseBytes[i] = r.ResponseBytes
	}
	return []any{projects, ids, fns, versions, triggers, starts, durations, billed, memories, colds, statuses, errs, httpStatuses, responseBytes}
}

// insertNew writes a batch none of whose records is stored: the lock, the
// records and their usage in one round trip, then the logs. It returns
// errStored if some record was not inserted.
func (db *DB) insertNew(ctx context.Context, tx pgx.Tx, recs []function.Invocation) error {
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock($1)`, lockLogs)
	b.Queue(insertRecords, recordArgs(recs)...)
	usage, args := usageStatement(recs)
	b.Queue(usage, args...)
	br := tx.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		br.Close()
		return fmt.Errorf("lock: %w", err)
	}
	rows, err := br.Query()
	if err != nil {
		br.Close()
		return fmt.Errorf("records: %w", err)
	}
	inserted := 0
	for rows.Next() {
		inserted++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		br.Close()
		return fmt.Errorf("records: %w", err)
	}
	if _, err := br.Exec(); err != nil {
		br.Close()
		return fmt.Errorf("usage: %w", err)
	}
	if err := br.Close(); err != nil {
		return err
	}
	if inserted != len(recs) {
		return errStored
	}
	if err := db.pruneUsage(ctx, tx); err != nil {
		return err
	}
	return copyLogs(ctx, tx, recs)
}

// insertInvocations writes a batch some of whose records may be stored:
// their logs and usage are skipped.
func (db *DB) insertInvocations(ctx context.Context, tx pgx.Tx, recs []function.Invocation) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockLogs); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	rows, err := tx.Query(ctx, insertRecords, recordArgs(recs)...)
	if err != nil {
		return fmt.Errorf("records: %w", err)
	}
	type key struct{ project, id string }
	inserted := make(map[key]bool, len(recs))
	var k key
	_, err = pgx.ForEachRow(rows, []any{&k.project, &k.id}, func() error {
		inserted[k] = true
		return nil
	})
	if err != nil {
		return fmt.Errorf("records: %w", err)
	}
	// added are the records inserted; a batch may repeat a record too.
	added := make([]function.Invocation, 0, len(inserted))
	for i := range recs {
		r := &recs[i]
		if inserted[key{r.Project, r.ID}] {
			delete(inserted, key{r.Project, r.ID})
			added = append(added, *r)
		}
	}
	if len(added) == 0 {
		return nil
	}
	usage, args := usageStatement(added)
	if _, err := tx.Exec(ctx, usage, args...); err != nil {
		return fmt.Errorf("usage: %w", err)
	}
	if err := db.pruneUsage(ctx, tx); err != nil {
		return err
	}
	return copyLogs(ctx, tx, added)
}

// copyLogs inserts the log lines of recs with COPY, which inserts rows in
// order, so seq follows the order of the lines.
func copyLogs(ctx context.Context, tx pgx.Tx, recs []function.Invocation) error {
	var lines [][]any
	for i := range recs {
		r := &recs[i]
		for _, l := range r.Logs {
			lines = append(lines, []any{r.Project, r.ID, r.Function, int32(r.Version), l.Time.UTC(), l.Stream, l.Line})
		}
	}
	if len(lines) == 0 {
		return nil
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"logs"},
		[]string{"project", "invocation_id", "function", "version", "logged_at", "stream", "line"},
		pgx.CopyFromRows(lines))
	if err != nil {
		return fmt.Errorf("logs: %w", err)
	}
	return nil
}

const invocationColumns = `project, id, function, version, trigger_kind, started_at, duration_ns, billed_ms, memory_mb, cold, status, error, http_status, response_bytes`

func scanInvocation(row pgx.Row) (function.Invocation, error) {
	var r function.Invocation
	var dur int64
	if err := row.Scan(&r.Project, &r.ID, &r.Function, &r.Version, &r.Trigger, &r.Start, &dur,
		&r.BilledMS, &r.MemoryMB, &r.Cold, &r.Status, &r.Error, &r.HTTPStatus, &r.ResponseBytes); err != nil {
		return function.Invocation{}, err
	}
	r.Start, r.Duration = r.Start.UTC(), time.Duration(dur)
	return r, nil
}

// query builds a statement with numbered parameters.
type query struct {
	sql  strings.Builder
	args []any
}

// arg appends a parameter and returns its placeholder.
func (q *query) arg(v any) string {
	q.args = append(q.args, v)
	return "$" + strconv.Itoa(len(q.args))
}

// ListInvocations returns records newest first (by ID, which sorts by
// time), without logs.
func (db *DB) ListInvocations(ctx context.Context, f store.InvocationFilter) ([]function.Invocation, error) {
	var q query
	q.sql.WriteString(`SELECT ` + invocationColumns + ` FROM invocations WHERE project = ` + q.arg(f.Project))
	if f.Function != "" {
		q.sql.WriteString(` AND function = ` + q.arg(f.Function))
	}
	if f.Before != "" {
		q.sql.WriteString(` AND id < ` + q.arg(f.Before))
	}
	q.sql.WriteString(` ORDER BY id DESC LIMIT ` + q.arg(store.Limit(f.Limit)))
	rows, err := db.pool.Query(ctx, q.sql.String(), q.args...)
	if err != nil {
		return nil, fmt.Errorf("list invocations: %w", err)
	}
	recs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (function.Invocation, error) { return scanInvocation(r) })
	if err != nil {
		return nil, fmt.Errorf("list invocations: %w", err)
	}
	return recs, nil
}

// GetInvocation returns one record with its log lines in order, or
// store.ErrNotFound.
func (db *DB) GetInvocation(ctx context.Context, project, id string) (function.Invocation, error) {
	r, err := db.getInvocation(ctx, project, id)
	if err != nil {
		return function.Invocation{}, fmt.Errorf("get invocation %s: %w", id, err)
	}
	return r, nil
}

func (db *DB) getInvocation(ctx context.Context, project, id string) (function.Invocation, error) {
	// The record and its lines are committed together, so two reads outside
	// a transaction see both or neither.
	r, err := scanInvocation(db.pool.QueryRow(ctx,
		`SELECT `+invocationColumns+` FROM invocations WHERE project = $1 AND id = $2`, project, id))
	if err != nil {
		return function.Invocation{}, notFound(err)
	}
	rows, err := db.pool.Query(ctx,
		`SELECT seq, logged_at, stream, line FROM logs WHERE project = $1 AND invocation_id = $2 ORDER BY seq`, project, id)
	if err != nil {
		return function.Invocation{}, err
	}
	r.Logs, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (function.LogLine, error) {
		var l function.LogLine
		err := row.Scan(&l.Seq, &l.Time, &l.Stream, &l.Line)
		l.Time = l.Time.UTC()
		return l, err
	})
	if err != nil {
		return function.Invocation{}, err
	}
	if len(r.Logs) == 0 {
		r.Logs = nil
	}
	return r, nil
}

// ListLogs returns log lines oldest first: those after f.AfterSeq, or, when
// it is 0, the newest f.Limit lines.
func (db *DB) ListLogs(ctx context.Context, f store.LogFilter) ([]function.LogLine, error) {
	var q query
	q.sql.WriteString(`SELECT seq, invocation_id, function, version, logged_at, stream, line FROM logs WHERE project = ` + q.arg(f.Project))
	if f.Function != "" {
		q.sql.WriteString(` AND function = ` + q.arg(f.Function))
	}
	tail := f.AfterSeq <= 0
	if tail {
		q.sql.WriteString(` ORDER BY seq DESC`)
	} else {
		q.sql.WriteString(` AND seq > ` + q.arg(f.AfterSeq) + ` ORDER BY seq`)
	}
	q.sql.WriteString(` LIMIT ` + q.arg(store.Limit(f.Limit)))
	rows, err := db.pool.Query(ctx, q.sql.String(), q.args...)
	if err != nil {
		return nil, fmt.Errorf("list logs: %w", err)
	}
	lines, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (function.LogLine, error) {
		var l function.LogLine
		err := row.Scan(&l.Seq, &l.InvocationID, &l.Function, &l.Version, &l.Time, &l.Stream, &l.Line)
		l.Time = l.Time.UTC()
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("list logs: %w", err)
	}
	if tail {
		slices.Reverse(lines)
	}
	return lines, nil
}

// UsageSince sums billed_ms * memory_mb per function over the invocations
// that started at since or later (IDs sort by start time: a range of the
// primary key).
func (db *DB) UsageSince(ctx context.Context, project string, since time.Time) (map[string]int64, error) {
	rows, err := db.pool.Query(ctx,
		`SELECT function, SUM(billed_ms * memory_mb)::bigint FROM invocations WHERE project = $1 AND id >= $2 GROUP BY function`,
		project, function.IDFloor(since))
	if err != nil {
		return nil, fmt.Errorf("usage: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var fn string
		var n int64
		if err := rows.Scan(&fn, &n); err != nil {
			return nil, fmt.Errorf("usage: %w", err)
		}
		out[fn] = n
	}
	return out, rows.Err()
}
