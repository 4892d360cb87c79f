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
	"github.com/hostless/hostless/internal/store/logchunk"
)

// InsertInvocations writes records and their Logs in one transaction: the
// records in one statement, then a row (a chunk, see package logchunk) per
// record's lines, of the records actually inserted, with COPY. A record
// whose (project, ID) is already stored is skipped together with its logs,
// so redelivering a batch after a lost acknowledgement is harmless.
//
// Inserts hold an advisory lock until they commit. Sequence values are
// otherwise handed out in one order and made visible in another, and a
// follower reading "lines after seq N" would skip lines committed late with
// a smaller seq; and each chunk's written_at and total_bytes continue the
// previous one's.
func (db *DB) InsertInvocations(ctx context.Context, recs []function.Invocation) error {
	if len(recs) == 0 {
		return nil
	}
	chunks := encodeLogs(recs)
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		return db.insertInvocations(ctx, tx, recs, chunks)
	})
	if err != nil {
		return fmt.Errorf("insert %d invocations: %w", len(recs), err)
	}
	return nil
}

// chunked is a record's lines, encoded before the transaction starts.
type chunked struct {
	chunk logchunk.Chunk
	lines int
}

// encodeLogs encodes each record's lines in chunks of at most
// logchunk.MaxLines.
func encodeLogs(recs []function.Invocation) [][]chunked {
	out := make([][]chunked, len(recs))
	for i := range recs {
		for ls := recs[i].Logs; len(ls) > 0; {
			part := ls[:min(len(ls), logchunk.MaxLines)]
			ls = ls[len(part):]
			out[i] = append(out[i], chunked{logchunk.Encode(part), len(part)})
		}
	}
	return out
}

// insertInvocations writes a batch whose records may be stored already:
// those are skipped with their logs and usage; the records inserted are
// added to the usage rollups in the same transaction.
func (db *DB) insertInvocations(ctx context.Context, tx pgx.Tx, recs []function.Invocation, chunks [][]chunked) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockLogs); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	// One statement for all records, with a column array each: far cheaper
	// than a statement per record, even pipelined.
	n := len(recs)
	var (
		projects, ids, fns, triggers, statuses, errs, reqIDs = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		versions, memories, httpStatuses                     = make([]int32, n), make([]int32, n), make([]int32, n)
		starts                                               = make([]time.Time, n)
		durations, billed, responseBytes                     = make([]int64, n), make([]int64, n), make([]int64, n)
		colds                                                = make([]bool, n)
	)
	for i := range recs {
		r := &recs[i]
		projects[i], ids[i], fns[i], triggers[i], statuses[i], errs[i], reqIDs[i] = r.Project, r.ID, r.Function, r.Trigger, r.Status, r.Error, r.RequestID
		versions[i], memories[i], httpStatuses[i] = int32(r.Version), int32(r.MemoryMB), int32(r.HTTPStatus)
		starts[i], durations[i], billed[i], colds[i], responseBytes[i] = r.Start.UTC(), int64(r.Duration), r.BilledMS, r.Cold, r.ResponseBytes
	}
	rows, err := tx.Query(ctx, `INSERT INTO invocations
		(project, id, function, version, trigger_kind, started_at, duration_ns, billed_ms, memory_mb, cold, status, error, http_status, request_id, response_bytes)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::integer[], $5::text[], $6::timestamptz[],
			$7::bigint[], $8::bigint[], $9::integer[], $10::boolean[], $11::text[], $12::text[], $13::integer[], $14::text[], $15::bigint[])
		ON CONFLICT (project, id) DO NOTHING
		RETURNING project, id`,
		projects, ids, fns, versions, triggers, starts, durations, billed, memories, colds, statuses, errs, httpStatuses, reqIDs, responseBytes)
	if err != nil {
		return fmt.Errorf("records: %w", err)
	}
	type key struct{ project, id string }
	inserted := make(map[key]bool, n)
	var k key
	_, err = pgx.ForEachRow(rows, []any{&k.project, &k.id}, func() error {
		inserted[k] = true
		return nil
	})
	if err != nil {
		return fmt.Errorf("records: %w", err)
	}
	// Usage counts the records inserted now, each once (a batch may
	// repeat a record).
	added := make([]function.Invocation, 0, len(inserted))
	seen := make(map[key]bool, len(inserted))
	for i := range recs {
		if k := (key{recs[i].Project, recs[i].ID}); inserted[k] && !seen[k] {
			seen[k] = true
			added = append(added, recs[i])
		}
	}
	if len(added) > 0 {
		usage, args := usageStatement(added)
		if _, err := tx.Exec(ctx, usage, args...); err != nil {
			return fmt.Errorf("usage: %w", err)
		}
		if err := db.pruneUsage(ctx, tx); err != nil {
			return err
		}
	}

	var (
		rows2           [][]any
		written, totalB int64 // the newest chunk's, which the next ones continue
		read            bool
	)
	for i := range recs {
		r := &recs[i]
		if len(chunks[i]) == 0 || !inserted[key{r.Project, r.ID}] {
			continue // no logs, or a duplicate: its logs are stored already
		}
		delete(inserted, key{r.Project, r.ID}) // a batch may repeat a record too
		if !read {
			// The lock keeps other writers out: what the newest chunk says
			// can't change under this transaction.
			err := tx.QueryRow(ctx, `SELECT written_at, total_bytes FROM log_chunks ORDER BY seq DESC LIMIT 1`).Scan(&written, &totalB)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("logs: %w", err)
			}
			read = true
		}
		for _, c := range chunks[i] {
			// written_at is the latest line time so far: it never decreases
			// with seq, and no line of a chunk is later than its written_at,
			// so the chunks up to the last one written before a time hold
			// only lines older than it (logchunk.Floor).
			written = max(written, c.chunk.Last)
			totalB += c.chunk.Bytes()
			rows2 = append(rows2, []any{r.Project, r.ID, r.Function, int32(r.Version), r.Status, c.chunk.Base, c.chunk.Last,
				written, int32(c.lines), c.chunk.Bytes(), totalB, c.chunk.Meta, c.chunk.Text})
		}
	}
	if len(rows2) == 0 {
		return nil
	}
	// COPY inserts rows in order, so seq follows the order of the chunks.
	_, err = tx.CopyFrom(ctx, pgx.Identifier{"log_chunks"},
		[]string{"project", "invocation_id", "function", "version", "status", "first_at", "last_at", "written_at", "lines", "bytes", "total_bytes", "meta", "text"},
		pgx.CopyFromRows(rows2))
	if err != nil {
		return fmt.Errorf("logs: %w", err)
	}
	return nil
}

const invocationColumns = `project, id, function, version, trigger_kind, started_at, duration_ns, billed_ms, memory_mb, cold, status, error, http_status, request_id, response_bytes`

func scanInvocation(row pgx.Row) (function.Invocation, error) {
	var r function.Invocation
	var dur int64
	if err := row.Scan(&r.Project, &r.ID, &r.Function, &r.Version, &r.Trigger, &r.Start, &dur,
		&r.BilledMS, &r.MemoryMB, &r.Cold, &r.Status, &r.Error, &r.HTTPStatus, &r.RequestID, &r.ResponseBytes); err != nil {
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
		`SELECT seq, first_at, meta, text FROM log_chunks WHERE project = $1 AND invocation_id = $2 ORDER BY seq`, project, id)
	if err != nil {
		return function.Invocation{}, err
	}
	defer rows.Close()
	for rows.Next() {
		var seq, base int64
		var meta, text string
		if err := rows.Scan(&seq, &base, &meta, &text); err != nil {
			return function.Invocation{}, err
		}
		lines, err := logchunk.Decode(base, meta, text)
		if err != nil {
			return function.Invocation{}, fmt.Errorf("chunk %d: %w", seq, err)
		}
		for i := range lines {
			lines[i].Seq = logchunk.Seq(seq, i)
		}
		r.Logs = append(r.Logs, lines...)
	}
	return r, rows.Err()
}

// ListLogs returns a page of log lines (see store.LogFilter): it reads
// chunks in a range of seq that logchunk.Scan plans, filtered in SQL as far
// as SQL can (project, function, status, Since on a chunk's latest line,
// Grep on its text), and the lines of those chunks in Go.
func (db *DB) ListLogs(ctx context.Context, f store.LogFilter) (store.LogPage, error) {
	p, err := db.listLogs(ctx, f)
	if err != nil {
		return store.LogPage{}, fmt.Errorf("list logs: %w", err)
	}
	return p, nil
}

func (db *DB) listLogs(ctx context.Context, f store.LogFilter) (store.LogPage, error) {
	var b logchunk.Bounds
	if err := db.pool.QueryRow(ctx,
		`SELECT COALESCE((SELECT MIN(seq) FROM log_chunks), 0), COALESCE((SELECT MAX(seq) FROM log_chunks), 0)`).Scan(&b.Min, &b.Max); err != nil {
		return store.LogPage{}, err
	}
	if !f.Since.IsZero() && b.Max > 0 {
		var err error
		if b.Floor, err = logchunk.Floor(ctx, b.Min, b.Max, f.Since, db.probe("written_at")); err != nil {
			return store.LogPage{}, err
		}
	}
	sc := logchunk.NewScan(f, b)
	if sc.Empty() {
		return sc.Page(), nil
	}
	var q query
	q.sql.WriteString(`SELECT seq, invocation_id, function, version, first_at, meta, text FROM log_chunks WHERE project = ` + q.arg(f.Project))
	if f.Function != "" {
		q.sql.WriteString(` AND function = ` + q.arg(f.Function))
	}
	if len(f.Statuses) > 0 {
		if !slices.Contains(f.Statuses, function.StatusOK) {
			// The term the partial indexes of failed invocations name.
			q.sql.WriteString(` AND status <> 'ok'`)
		}
		q.sql.WriteString(` AND status = ANY(` + q.arg(f.Statuses) + `)`)
	}
	if !f.Since.IsZero() {
		q.sql.WriteString(` AND last_at >= ` + q.arg(f.Since.UnixNano()))
	}
	if f.Grep != "" {
		q.sql.WriteString(` AND strpos(text, ` + q.arg(f.Grep) + `) > 0`)
	}
	q.sql.WriteString(` AND seq BETWEEN ` + q.arg(sc.Lo) + ` AND ` + q.arg(sc.Hi) + ` ORDER BY seq`)
	if sc.Desc {
		q.sql.WriteString(` DESC`)
	}
	rows, err := db.pool.Query(ctx, q.sql.String(), q.args...)
	if err != nil {
		return store.LogPage{}, err
	}
	defer rows.Close()
	for rows.Next() {
		var r logchunk.Row
		if err := rows.Scan(&r.Seq, &r.InvocationID, &r.Function, &r.Version, &r.Base, &r.Meta, &r.Text); err != nil {
			return store.LogPage{}, err
		}
		more, err := sc.Add(r)
		if err != nil {
			return store.LogPage{}, fmt.Errorf("chunk %d: %w", r.Seq, err)
		}
		if !more {
			break
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return store.LogPage{}, err
	}
	return sc.Page(), nil
}

// probe returns logchunk.FirstAtLeast's probe of a column (or an
// expression of columns). column is a constant of this package.
func (db *DB) probe(column string) logchunk.Probe {
	q := `SELECT seq, ` + column + ` FROM log_chunks WHERE seq >= $1 ORDER BY seq LIMIT 1`
	return func(ctx context.Context, seq int64) (int64, int64, bool, error) {
		var s, v int64
		err := db.pool.QueryRow(ctx, q, seq).Scan(&s, &v)
		if errors.Is(err, pgx.ErrNoRows) {
			return 0, 0, false, nil
		}
		return s, v, err == nil, err
	}
}

// LogBytes is the size of the stored lines: the newest chunk's running
// total less what was deleted before the oldest.
func (db *DB) LogBytes(ctx context.Context) (int64, error) {
	var n int64
	err := db.pool.QueryRow(ctx, `SELECT COALESCE((SELECT total_bytes FROM log_chunks ORDER BY seq DESC LIMIT 1), 0)
		- COALESCE((SELECT total_bytes - bytes FROM log_chunks ORDER BY seq LIMIT 1), 0)`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("log bytes: %w", err)
	}
	return n, nil
}

// trimBatch is how many rows one transaction of TrimTelemetry deletes.
const trimBatch = 5000

// TrimTelemetry deletes, in transactions of at most trimBatch rows: the
// chunks written before r.Before (all their lines are older), the records
// of invocations started before it, then the oldest chunks past
// r.MaxLogBytes. Nodes that trim at once delete each row once.
func (db *DB) TrimTelemetry(ctx context.Context, r store.Retention) (store.Trimmed, error) {
	var t store.Trimmed
	if err := db.trim(ctx, r, &t); err != nil {
		return t, fmt.Errorf("trim telemetry: %w", err)
	}
	return t, nil
}

func (db *DB) trim(ctx context.Context, r store.Retention, t *store.Trimmed) error {
	var lo, hi, newest int64
	if err := db.pool.QueryRow(ctx, `SELECT COALESCE((SELECT MIN(seq) FROM log_chunks), 0), COALESCE((SELECT MAX(seq) FROM log_chunks), 0),
		COALESCE((SELECT total_bytes FROM log_chunks ORDER BY seq DESC LIMIT 1), 0)`).Scan(&lo, &hi, &newest); err != nil {
		return err
	}
	upTo, err := logchunk.TrimUpTo(ctx, lo, hi, newest, r, db.probe("written_at"), db.probe("total_bytes - bytes"))
	if err != nil {
		return err
	}
	for upTo >= lo && lo > 0 {
		rows, err := db.pool.Query(ctx, `DELETE FROM log_chunks WHERE seq IN
			(SELECT seq FROM log_chunks WHERE seq <= $1 ORDER BY seq LIMIT $2) RETURNING lines, bytes`, upTo, trimBatch)
		if err != nil {
			return err
		}
		n := 0
		var lines int32
		var bytes int64
		_, err = pgx.ForEachRow(rows, []any{&lines, &bytes}, func() error {
			n++
			t.LogLines += int64(lines)
			t.LogBytes += bytes
			return nil
		})
		if err != nil {
			return err
		}
		if n < trimBatch {
			break
		}
	}
	if r.Before.IsZero() {
		return nil
	}
	rows, err := db.pool.Query(ctx, `WITH RECURSIVE p(project) AS (
			SELECT MIN(project) FROM invocations
			UNION ALL
			SELECT (SELECT MIN(project) FROM invocations WHERE project > p.project) FROM p WHERE p.project IS NOT NULL
		) SELECT project FROM p WHERE project IS NOT NULL`)
	if err != nil {
		return err
	}
	projects, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	floor := function.IDFloor(r.Before)
	for _, p := range projects {
		for {
			tag, err := db.pool.Exec(ctx, `DELETE FROM invocations WHERE project = $1 AND id IN
				(SELECT id FROM invocations WHERE project = $1 AND id < $2 ORDER BY id LIMIT $3)`, p, floor, trimBatch)
			if err != nil {
				return err
			}
			t.Records += tag.RowsAffected()
			if tag.RowsAffected() < trimBatch {
				break
			}
		}
	}
	return nil
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
