package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/hostless/hostless/internal/function"
	"github.com/jackc/pgx/v5"
)

// PutAsync writes async invocation states in one transaction; a state
// with a lower rank than the stored one is skipped.
func (db *DB) PutAsync(ctx context.Context, states []function.AsyncInvocation) error {
	if len(states) == 0 {
		return nil
	}
	var b pgx.Batch
	for i := range states {
		a := &states[i]
		var (
			status int
			header = []byte("{}")
			body   []byte
		)
		if a.Result != nil {
			status, body = a.Result.Status, a.Result.Body
			if a.Result.Header != nil {
				h, err := json.Marshal(a.Result.Header)
				if err != nil {
					return fmt.Errorf("put async invocation %s: %w", a.ID, err)
				}
				header = h
			}
		}
		b.Queue(`INSERT INTO async_invocations
			(project, id, function, qualifier, trigger_kind, status, attempts, rank, accepted_at, updated_at,
			 last_attempt, result_status, result_header, result_body, error, seq)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
			ON CONFLICT (project, id) DO UPDATE SET
				function = excluded.function, qualifier = excluded.qualifier, trigger_kind = excluded.trigger_kind,
				status = excluded.status, attempts = excluded.attempts, rank = excluded.rank,
				accepted_at = excluded.accepted_at, updated_at = excluded.updated_at,
				last_attempt = excluded.last_attempt, result_status = excluded.result_status,
				result_header = excluded.result_header, result_body = excluded.result_body,
				error = excluded.error, seq = excluded.seq
			WHERE excluded.rank >= async_invocations.rank`,
			a.Project, a.ID, a.Function, a.Qualifier, a.Trigger, a.Status, a.Attempts, a.Rank(),
			a.AcceptedAt.UTC(), a.UpdatedAt.UTC(), a.LastAttempt, status, string(header), body, a.Error, int64(a.Seq))
	}
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		return tx.SendBatch(ctx, &b).Close()
	})
	if err != nil {
		return fmt.Errorf("put %d async invocations: %w", len(states), err)
	}
	return nil
}

// GetAsync returns one async invocation's state, or store.ErrNotFound.
func (db *DB) GetAsync(ctx context.Context, project, id string) (function.AsyncInvocation, error) {
	var (
		a         function.AsyncInvocation
		resStatus int
		resHeader []byte
		resBody   []byte
		seq       int64
	)
	err := db.pool.QueryRow(ctx, `SELECT project, id, function, qualifier, trigger_kind, status, attempts,
		accepted_at, updated_at, last_attempt, result_status, result_header, result_body, error, seq
		FROM async_invocations WHERE project = $1 AND id = $2`, project, id).Scan(
		&a.Project, &a.ID, &a.Function, &a.Qualifier, &a.Trigger, &a.Status, &a.Attempts,
		&a.AcceptedAt, &a.UpdatedAt, &a.LastAttempt, &resStatus, &resHeader, &resBody, &a.Error, &seq)
	if err != nil {
		return a, fmt.Errorf("get async invocation %s: %w", id, notFound(err))
	}
	a.AcceptedAt, a.UpdatedAt, a.Seq = a.AcceptedAt.UTC(), a.UpdatedAt.UTC(), uint64(seq)
	if resStatus != 0 {
		a.Result = &function.AsyncResult{Status: resStatus, Body: resBody}
		if err := json.Unmarshal(resHeader, &a.Result.Header); err != nil {
			return a, fmt.Errorf("get async invocation %s: result header: %w", id, err)
		}
		if len(a.Result.Header) == 0 {
			a.Result.Header = nil
		}
	}
	return a, nil
}
