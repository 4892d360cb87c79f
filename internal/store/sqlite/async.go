package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
)

// PutAsync writes async invocation states in one transaction; a state
// with a lower rank than the stored one is skipped.
func (db *DB) PutAsync(ctx context.Context, states []function.AsyncInvocation) error {
	if len(states) == 0 {
		return nil
	}
	if err := db.putAsync(ctx, states); err != nil {
		return fmt.Errorf("put %d async invocations: %w", len(states), err)
	}
	return nil
}

func (db *DB) putAsync(ctx context.Context, states []function.AsyncInvocation) error {
	tx, err := db.telW.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `INSERT INTO async_invocations
		(project, id, function, qualifier, trigger_kind, status, attempts, rank, accepted_at, updated_at,
		 last_attempt, result_status, result_header, result_body, error, seq)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (project, id) DO UPDATE SET
			function = excluded.function, qualifier = excluded.qualifier, trigger_kind = excluded.trigger_kind,
			status = excluded.status, attempts = excluded.attempts, rank = excluded.rank,
			accepted_at = excluded.accepted_at, updated_at = excluded.updated_at,
			last_attempt = excluded.last_attempt, result_status = excluded.result_status,
			result_header = excluded.result_header, result_body = excluded.result_body,
			error = excluded.error, seq = excluded.seq
		WHERE excluded.rank >= async_invocations.rank`)
	if err != nil {
		return err
	}
	defer st.Close()
	for i := range states {
		a := &states[i]
		status, header, body, err := resultColumns(a.Result)
		if err != nil {
			return err
		}
		if _, err := st.ExecContext(ctx, a.Project, a.ID, a.Function, a.Qualifier, a.Trigger, a.Status, a.Attempts,
			a.Rank(), unixNano(a.AcceptedAt), unixNano(a.UpdatedAt), a.LastAttempt, status, header, body,
			a.Error, int64(a.Seq)); err != nil {
			return fmt.Errorf("async invocation %s: %w", a.ID, err)
		}
	}
	return tx.Commit()
}

// resultColumns splits a result into its columns; no result is status 0.
func resultColumns(r *function.AsyncResult) (int, string, []byte, error) {
	if r == nil {
		return 0, "{}", nil, nil
	}
	h, err := json.Marshal(r.Header)
	if err != nil {
		return 0, "", nil, err
	}
	if r.Header == nil {
		h = []byte("{}")
	}
	return r.Status, string(h), r.Body, nil
}

// GetAsync returns one async invocation's state, or store.ErrNotFound.
func (db *DB) GetAsync(ctx context.Context, project, id string) (function.AsyncInvocation, error) {
	var (
		a                 function.AsyncInvocation
		accepted, updated int64
		resStatus         int
		resHeader         string
		resBody           []byte
		seq               int64
	)
	err := db.telR.QueryRowContext(ctx, `SELECT project, id, function, qualifier, trigger_kind, status, attempts,
		accepted_at, updated_at, last_attempt, result_status, result_header, result_body, error, seq
		FROM async_invocations WHERE project = ? AND id = ?`, project, id).Scan(
		&a.Project, &a.ID, &a.Function, &a.Qualifier, &a.Trigger, &a.Status, &a.Attempts,
		&accepted, &updated, &a.LastAttempt, &resStatus, &resHeader, &resBody, &a.Error, &seq)
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("get async invocation %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return a, fmt.Errorf("get async invocation %s: %w", id, err)
	}
	a.AcceptedAt, a.UpdatedAt, a.Seq = fromUnixNano(accepted), fromUnixNano(updated), uint64(seq)
	if resStatus != 0 {
		a.Result = &function.AsyncResult{Status: resStatus, Body: resBody}
		if err := json.Unmarshal([]byte(resHeader), &a.Result.Header); err != nil {
			return a, fmt.Errorf("get async invocation %s: result header: %w", id, err)
		}
		if len(a.Result.Header) == 0 {
			a.Result.Header = nil
		}
	}
	return a, nil
}
