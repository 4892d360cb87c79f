package sqlite

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
)

// InsertInvocations writes records and their Logs in one transaction, with
// statements prepared once per batch. A record whose (project, ID) is already
// stored is skipped together with its logs, so redelivering a batch after a
// lost acknowledgement is harmless.
func (db *DB) InsertInvocations(ctx context.Context, recs []function.Invocation) error {
	if len(recs) == 0 {
		return nil
	}
	if err := db.insertInvocations(ctx, recs); err != nil {
		return fmt.Errorf("insert %d invocations: %w", len(recs), err)
	}
	return nil
}

func (db *DB) insertInvocations(ctx context.Context, recs []function.Invocation) error {
	tx, err := db.telW.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	insRec, err := tx.PrepareContext(ctx, `INSERT INTO invocations
		(project, id, function, version, trigger_kind, started_at, duration_ns, billed_ms, memory_mb, cold, status, error, http_status, response_bytes)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (project, id) DO NOTHING`)
	if err != nil {
		return err
	}
	defer insRec.Close()
	insLog, err := tx.PrepareContext(ctx, `INSERT INTO logs
		(project, invocation_id, function, version, logged_at, stream, line) VALUES (?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer insLog.Close()
	// inserted are the records inserted, for usage: recs, unless some
	// were duplicates.
	var inserted []function.Invocation
	dup := false
	for i := range recs {
		r := &recs[i]
		res, err := insRec.ExecContext(ctx, r.Project, r.ID, r.Function, r.Version, r.Trigger, unixNano(r.Start),
			int64(r.Duration), r.BilledMS, r.MemoryMB, r.Cold, r.Status, r.Error, r.HTTPStatus, r.ResponseBytes)
		if err != nil {
			return fmt.Errorf("invocation %s: %w", r.ID, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			if !dup {
				inserted, dup = slices.Clone(recs[:i]), true
			}
			continue // a duplicate: its logs are stored already, and its usage counted
		}
		if dup {
			inserted = append(inserted, *r)
		}
		for _, l := range r.Logs {
			if _, err := insLog.ExecContext(ctx, r.Project, r.ID, r.Function, r.Version, unixNano(l.Time), l.Stream, l.Line); err != nil {
				return fmt.Errorf("logs of invocation %s: %w", r.ID, err)
			}
		}
	}
	if !dup {
		inserted = recs
	}
	if err := db.addUsage(ctx, tx, inserted); err != nil {
		return fmt.Errorf("usage: %w", err)
	}
	return tx.Commit()
}

const invocationColumns = `project, id, function, version, trigger_kind, started_at, duration_ns, billed_ms, memory_mb, cold, status, error, http_status, response_bytes`

func scanInvocation(s scanner) (function.Invocation, error) {
	var r function.Invocation
	var start, dur int64
	if err := s.Scan(&r.Project, &r.ID, &r.Function, &r.Version, &r.Trigger, &start, &dur,
		&r.BilledMS, &r.MemoryMB, &r.Cold, &r.Status, &r.Error, &r.HTTPStatus, &r.ResponseBytes); err != nil {
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
		`SELECT seq, logged_at, stream, line FROM logs WHERE project = ? AND invocation_id = ? ORDER BY seq`, project, id)
	if err != nil {
		return function.Invocation{}, err
	}
	defer rows.Close()
	for rows.Next() {
		var l function.LogLine
		var at int64
		if err := rows.Scan(&l.Seq, &at, &l.Stream, &l.Line); err != nil {
			return function.Invocation{}, err
		}
		l.Time = fromUnixNano(at)
		r.Logs = append(r.Logs, l)
	}
	return r, rows.Err()
}

// ListLogs returns log lines oldest first: those after f.AfterSeq, or, when
// it is 0, the newest f.Limit lines.
func (db *DB) ListLogs(ctx context.Context, f store.LogFilter) ([]function.LogLine, error) {
	var q strings.Builder
	args := []any{f.Project}
	q.WriteString(`SELECT seq, invocation_id, function, version, logged_at, stream, line FROM logs WHERE project = ?`)
	if f.Function != "" {
		q.WriteString(` AND function = ?`)
		args = append(args, f.Function)
	}
	tail := f.AfterSeq <= 0
	if tail {
		q.WriteString(` ORDER BY seq DESC LIMIT ?`)
	} else {
		q.WriteString(` AND seq > ? ORDER BY seq LIMIT ?`)
		args = append(args, f.AfterSeq)
	}
	args = append(args, store.Limit(f.Limit))

	rows, err := db.telR.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("list logs: %w", err)
	}
	defer rows.Close()
	var lines []function.LogLine
	for rows.Next() {
		var l function.LogLine
		var at int64
		if err := rows.Scan(&l.Seq, &l.InvocationID, &l.Function, &l.Version, &at, &l.Stream, &l.Line); err != nil {
			return nil, fmt.Errorf("list logs: %w", err)
		}
		l.Time = fromUnixNano(at)
		lines = append(lines, l)
	}
	if err := rows.Err(); err != nil {
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
