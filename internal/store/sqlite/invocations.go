package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
	"github.com/hostless/hostless/internal/store/logchunk"
)

// InsertInvocations writes records and their Logs in one transaction, with
// statements of many rows prepared once per batch: a row per record, and a
// row (a chunk, see package logchunk) per record's lines. A record whose (project, ID) is
// already stored is skipped together with its logs, so redelivering a
// batch after a lost acknowledgement is harmless.
func (db *DB) InsertInvocations(ctx context.Context, recs []function.Invocation) error {
	if len(recs) == 0 {
		return nil
	}
	if err := db.insertInvocations(ctx, recs); err != nil {
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

// insertGroup is how many rows one INSERT statement writes: a statement's
// fixed cost (binding, starting, halting) is much of a small row's.
const insertGroup = 32

// multiInsert is an INSERT of any number of rows in one transaction: the
// statement for each number is prepared on the writer once, between
// transactions (telStmt), and in the meantime in the transaction.
type multiInsert struct {
	db         *DB
	tx         *sql.Tx
	head, tail string // before the rows' VALUES, after them
	row        string // one row's "(?, ?, ...)"
	stmts      map[int]*sql.Stmt
}

func newMultiInsert(db *DB, tx *sql.Tx, head string, cols int, tail string) *multiInsert {
	return &multiInsert{db: db, tx: tx, head: head, tail: tail, row: "(?" + strings.Repeat(", ?", cols-1) + ")", stmts: map[int]*sql.Stmt{}}
}

func (m *multiInsert) stmt(ctx context.Context, n int) (*sql.Stmt, error) {
	if st, ok := m.stmts[n]; ok {
		return st, nil
	}
	q := m.head + " VALUES " + m.row + strings.Repeat(", "+m.row, n-1) + m.tail
	var err error
	st := m.db.telStmt(q)
	if st != nil {
		st = m.tx.StmtContext(ctx, st)
	} else if st, err = m.tx.PrepareContext(ctx, q); err != nil {
		return nil, err
	}
	m.stmts[n] = st
	return st, nil
}

func (m *multiInsert) close() {
	for _, st := range m.stmts {
		st.Close()
	}
}

// telStmt returns query prepared on the telemetry writer, or nil when it
// isn't yet: the writer's one connection is the transaction's, so it
// can't prepare now; prepareTelStmts does before the next transaction.
func (db *DB) telStmt(query string) *sql.Stmt {
	db.stmtMu.Lock()
	defer db.stmtMu.Unlock()
	st, ok := db.telStmts[query]
	if !ok {
		if db.telStmts == nil {
			db.telStmts = map[string]*sql.Stmt{}
		}
		db.telStmts[query] = nil // wanted
	}
	return st
}

// prepareTelStmts prepares the statements transactions wanted.
func (db *DB) prepareTelStmts(ctx context.Context) {
	db.stmtMu.Lock()
	defer db.stmtMu.Unlock()
	for q, st := range db.telStmts {
		if st != nil {
			continue
		}
		if st, err := db.telW.PrepareContext(ctx, q); err == nil {
			db.telStmts[q] = st
		}
	}
}

func (db *DB) insertInvocations(ctx context.Context, recs []function.Invocation) error {
	chunks := encodeLogs(recs)
	db.prepareTelStmts(ctx)
	tx, err := db.telW.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	insRec := newMultiInsert(db, tx, `INSERT INTO invocations
		(project, id, function, version, trigger_kind, started_at, duration_ns, billed_ms, memory_mb, cold, status, error, http_status, request_id, response_bytes)`,
		15, ` ON CONFLICT (project, id) DO NOTHING RETURNING project, id`)
	defer insRec.close()
	type key struct{ project, id string }
	inserted := make(map[key]bool, len(recs))
	args := make([]any, 0, insertGroup*15)
	for start := 0; start < len(recs); start += insertGroup {
		group := recs[start:min(start+insertGroup, len(recs))]
		args = args[:0]
		for i := range group {
			r := &group[i]
			args = append(args, r.Project, r.ID, r.Function, r.Version, r.Trigger, unixNano(r.Start),
				int64(r.Duration), r.BilledMS, r.MemoryMB, r.Cold, r.Status, r.Error, r.HTTPStatus, r.RequestID, r.ResponseBytes)
		}
		st, err := insRec.stmt(ctx, len(group))
		if err != nil {
			return err
		}
		rows, err := st.QueryContext(ctx, args...)
		if err != nil {
			return fmt.Errorf("records: %w", err)
		}
		for rows.Next() {
			var k key
			if err := rows.Scan(&k.project, &k.id); err != nil {
				rows.Close()
				return err
			}
			inserted[k] = true
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return fmt.Errorf("records: %w", err)
		}
	}
	// Usage counts the records inserted now, each once: not those stored
	// before (a retried batch), nor a record the batch repeats.
	counted := recs
	if len(inserted) != len(recs) {
		counted = make([]function.Invocation, 0, len(inserted))
		seen := make(map[key]bool, len(inserted))
		for i := range recs {
			if k := (key{recs[i].Project, recs[i].ID}); inserted[k] && !seen[k] {
				seen[k] = true
				counted = append(counted, recs[i])
			}
		}
	}
	if err := db.addUsage(ctx, tx, counted); err != nil {
		return fmt.Errorf("usage: %w", err)
	}

	var (
		insLog          *multiInsert
		written, totalB int64 // the newest chunk's, which the next ones continue
		n               int   // rows in args
	)
	flush := func() error {
		if n == 0 {
			return nil
		}
		st, err := insLog.stmt(ctx, n)
		if err == nil {
			_, err = st.ExecContext(ctx, args...)
		}
		args, n = args[:0], 0
		if err != nil {
			return fmt.Errorf("logs: %w", err)
		}
		return nil
	}
	args = args[:0]
	for i := range recs {
		r := &recs[i]
		k := key{r.Project, r.ID}
		if len(chunks[i]) == 0 || !inserted[k] {
			continue // no logs, or a duplicate: its logs are stored already
		}
		delete(inserted, k) // a batch may repeat a record too
		if insLog == nil {
			// This transaction is the only writer: what the newest chunk
			// says can't change under it.
			err := tx.QueryRowContext(ctx, `SELECT written_at, total_bytes FROM log_chunks ORDER BY seq DESC LIMIT 1`).Scan(&written, &totalB)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			insLog = newMultiInsert(db, tx, `INSERT INTO log_chunks
				(project, invocation_id, function, version, status, first_at, last_at, written_at, lines, bytes, total_bytes, meta, text)`, 13, ``)
			defer insLog.close()
		}
		for _, c := range chunks[i] {
			// written_at is the latest line time so far: it never decreases
			// with seq, and no line of a chunk is later than its written_at,
			// so the chunks up to the last one written before a time hold
			// only lines older than it (logchunk.Floor).
			written = max(written, c.chunk.Last)
			totalB += c.chunk.Bytes()
			args = append(args, r.Project, r.ID, r.Function, r.Version, r.Status, c.chunk.Base, c.chunk.Last,
				written, c.lines, c.chunk.Bytes(), totalB, c.chunk.Meta, c.chunk.Text)
			if n++; n == insertGroup {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	return tx.Commit()
}

const invocationColumns = `project, id, function, version, trigger_kind, started_at, duration_ns, billed_ms, memory_mb, cold, status, error, http_status, request_id, response_bytes`

func scanInvocation(s scanner) (function.Invocation, error) {
	var r function.Invocation
	var start, dur int64
	if err := s.Scan(&r.Project, &r.ID, &r.Function, &r.Version, &r.Trigger, &start, &dur,
		&r.BilledMS, &r.MemoryMB, &r.Cold, &r.Status, &r.Error, &r.HTTPStatus, &r.RequestID, &r.ResponseBytes); err != nil {
		return function.Invocation{}, err
	}
	r.Start, r.Duration = fromUnixNano(start), time.Duration(dur)
	return r, nil
}

// ListInvocations returns records newest first (by ID, which sorts by
// time), without logs.
func (db *DB) ListInvocations(ctx context.Context, f store.InvocationFilter) ([]function.Invocation, error) {
	var q strings.Builder
	args := []any{f.Project}
	q.WriteString(`SELECT ` + invocationColumns + ` FROM invocations WHERE project = ?`)
	if f.Function != "" {
		q.WriteString(` AND function = ?`)
		args = append(args, f.Function)
	}
	if f.Before != "" {
		q.WriteString(` AND id < ?`)
		args = append(args, f.Before)
	}
	q.WriteString(` ORDER BY id DESC LIMIT ?`)
	args = append(args, store.Limit(f.Limit))

	rows, err := db.telR.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("list invocations: %w", err)
	}
	defer rows.Close()
	var recs []function.Invocation
	for rows.Next() {
		r, err := scanInvocation(rows)
		if err != nil {
			return nil, fmt.Errorf("list invocations: %w", err)
		}
		recs = append(recs, r)
	}
	if err := rows.Err(); err != nil {
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
	r, err := scanInvocation(db.telR.QueryRowContext(ctx,
		`SELECT `+invocationColumns+` FROM invocations WHERE project = ? AND id = ?`, project, id))
	if err != nil {
		return function.Invocation{}, notFound(err)
	}
	rows, err := db.telR.QueryContext(ctx,
		`SELECT seq, first_at, meta, text FROM log_chunks WHERE project = ? AND invocation_id = ? ORDER BY seq`, project, id)
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
	// Two subqueries: SQLite reads MIN or MAX from the end of an index
	// only when it is a query's sole aggregate.
	if err := db.telR.QueryRowContext(ctx,
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
	var q strings.Builder
	args := []any{f.Project}
	q.WriteString(`SELECT seq, invocation_id, function, version, first_at, meta, text FROM log_chunks WHERE project = ?`)
	if f.Function != "" {
		q.WriteString(` AND function = ?`)
		args = append(args, f.Function)
	}
	if len(f.Statuses) > 0 {
		if !slices.Contains(f.Statuses, function.StatusOK) {
			// The term the partial indexes of failed invocations name.
			q.WriteString(` AND status <> 'ok'`)
		}
		q.WriteString(` AND status IN (?` + strings.Repeat(`, ?`, len(f.Statuses)-1) + `)`)
		for _, st := range f.Statuses {
			args = append(args, st)
		}
	}
	if !f.Since.IsZero() {
		q.WriteString(` AND last_at >= ?`)
		args = append(args, f.Since.UnixNano())
	}
	if f.Grep != "" {
		q.WriteString(` AND instr(text, ?) > 0`)
		args = append(args, f.Grep)
	}
	q.WriteString(` AND seq BETWEEN ? AND ? ORDER BY seq`)
	if sc.Desc {
		q.WriteString(` DESC`)
	}
	args = append(args, sc.Lo, sc.Hi)
	rows, err := db.telR.QueryContext(ctx, q.String(), args...)
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
	if err := rows.Err(); err != nil {
		return store.LogPage{}, err
	}
	return sc.Page(), nil
}

// probe returns logchunk.FirstAtLeast's probe of a column (or an
// expression of columns) on the reader pool. column is a constant of this
// package.
func (db *DB) probe(column string) logchunk.Probe {
	q := `SELECT seq, ` + column + ` FROM log_chunks WHERE seq >= ? ORDER BY seq LIMIT 1`
	return func(ctx context.Context, seq int64) (int64, int64, bool, error) {
		var s, v int64
		err := db.telR.QueryRowContext(ctx, q, seq).Scan(&s, &v)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, 0, false, nil
		}
		return s, v, err == nil, err
	}
}

// LogBytes is the size of the stored lines: the newest chunk's running
// total less what was deleted before the oldest.
func (db *DB) LogBytes(ctx context.Context) (int64, error) {
	var n int64
	err := db.telR.QueryRowContext(ctx, `SELECT COALESCE((SELECT total_bytes FROM log_chunks ORDER BY seq DESC LIMIT 1), 0)
		- COALESCE((SELECT total_bytes - bytes FROM log_chunks ORDER BY seq LIMIT 1), 0)`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("log bytes: %w", err)
	}
	return n, nil
}

// trimBatch is how many rows one transaction of TrimTelemetry deletes: the
// writer is shared with new records, which wait for it.
const trimBatch = 2000

// TrimTelemetry deletes, in transactions of at most trimBatch rows: the
// chunks written before r.Before (all their lines are older), the records
// of invocations started before it, then the oldest chunks past
// r.MaxLogBytes.
func (db *DB) TrimTelemetry(ctx context.Context, r store.Retention) (store.Trimmed, error) {
	var t store.Trimmed
	err := db.trim(ctx, r, &t)
	if err != nil {
		return t, fmt.Errorf("trim telemetry: %w", err)
	}
	return t, nil
}

func (db *DB) trim(ctx context.Context, r store.Retention, t *store.Trimmed) error {
	var lo, hi, newest int64
	if err := db.telR.QueryRowContext(ctx, `SELECT COALESCE((SELECT MIN(seq) FROM log_chunks), 0), COALESCE((SELECT MAX(seq) FROM log_chunks), 0),
		COALESCE((SELECT total_bytes FROM log_chunks ORDER BY seq DESC LIMIT 1), 0)`).Scan(&lo, &hi, &newest); err != nil {
		return err
	}
	upTo, err := logchunk.TrimUpTo(ctx, lo, hi, newest, r, db.probe("written_at"), db.probe("total_bytes - bytes"))
	if err != nil {
		return err
	}
	for upTo >= lo && lo > 0 {
		rows, err := db.telW.QueryContext(ctx, `DELETE FROM log_chunks WHERE seq IN
			(SELECT seq FROM log_chunks WHERE seq <= ? ORDER BY seq LIMIT ?) RETURNING lines, bytes`, upTo, trimBatch)
		if err != nil {
			return err
		}
		n := 0
		for rows.Next() {
			var lines, bytes int64
			if err := rows.Scan(&lines, &bytes); err != nil {
				rows.Close()
				return err
			}
			n++
			t.LogLines += lines
			t.LogBytes += bytes
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return err
		}
		if n < trimBatch {
			break
		}
	}
	if r.Before.IsZero() {
		return nil
	}
	projects, err := db.telemetryProjects(ctx)
	if err != nil {
		return err
	}
	floor := function.IDFloor(r.Before)
	for _, p := range projects {
		for {
			res, err := db.telW.ExecContext(ctx, `DELETE FROM invocations WHERE project = ? AND id IN
				(SELECT id FROM invocations WHERE project = ? AND id < ? ORDER BY id LIMIT ?)`, p, p, floor, trimBatch)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			t.Records += n
			if n < trimBatch {
				break
			}
		}
	}
	return nil
}

// telemetryProjects lists the projects that have records, one index probe
// each (a loose index scan: SELECT DISTINCT would read every row).
func (db *DB) telemetryProjects(ctx context.Context) ([]string, error) {
	rows, err := db.telR.QueryContext(ctx, `WITH RECURSIVE p(project) AS (
			SELECT MIN(project) FROM invocations
			UNION ALL
			SELECT (SELECT MIN(project) FROM invocations WHERE project > p.project) FROM p WHERE p.project IS NOT NULL
		) SELECT project FROM p WHERE project IS NOT NULL`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// UsageSince sums billed_ms * memory_mb per function over the invocations
// that started at since or later (IDs sort by start time: a range of the
// primary key).
func (db *DB) UsageSince(ctx context.Context, project string, since time.Time) (map[string]int64, error) {
	rows, err := db.telR.QueryContext(ctx,
		`SELECT function, SUM(billed_ms * memory_mb) FROM invocations WHERE project = ? AND id >= ? GROUP BY function`,
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
