package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
)

// querier is the pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// getAlias reads one alias in one statement, telling a missing function
// (store.ErrNotFound) from a missing alias (function.ErrAliasNotFound).
// With lock, it locks the function's row, so alias changes of one
// function, and its deploys, take turns.
func getAlias(ctx context.Context, q querier, project, name, alias string, lock bool) (function.Alias, error) {
	var found *string
	var created, updated *time.Time
	a := function.Alias{Project: project, Function: name, Name: alias}
	if lock {
		if err := lockFunction(ctx, q, project, name); err != nil {
			return function.Alias{}, err
		}
	}
	err := q.QueryRow(ctx,
		`SELECT a.name, COALESCE(a.version, 0), COALESCE(a.canary_version, 0), COALESCE(a.canary_weight, 0), a.created_at, a.updated_at
		 FROM functions f LEFT JOIN aliases a ON a.project = f.project AND a.function = f.name AND a.name = $3
		 WHERE f.project = $1 AND f.name = $2`,
		project, name, alias).Scan(&found, &a.Version, &a.CanaryVersion, &a.CanaryWeight, &created, &updated)
	if err != nil {
		return function.Alias{}, notFound(err)
	}
	if found == nil {
		return function.Alias{}, &function.AliasNotFoundError{Function: name, Alias: alias}
	}
	a.CreatedAt, a.UpdatedAt = created.UTC(), updated.UTC()
	return a, nil
}

// lockFunction locks a function's row until the transaction ends, or
// returns store.ErrNotFound. It is a statement of its own: under READ
// COMMITTED, a locking read that waited sees the locked row anew but the
// rows it joined as they were before the wait, so what a transaction reads
// after the lock must come from later statements.
func lockFunction(ctx context.Context, q querier, project, name string) error {
	var one int
	err := q.QueryRow(ctx, `SELECT 1 FROM functions WHERE project = $1 AND name = $2 FOR UPDATE`, project, name).Scan(&one)
	return notFound(err)
}

// GetAlias returns one alias of a function.
func (db *DB) GetAlias(ctx context.Context, project, name, alias string) (function.Alias, error) {
	a, err := getAlias(ctx, db.pool, project, name, alias, false)
	if err != nil {
		return function.Alias{}, fmt.Errorf("get alias %s of %s: %w", alias, name, err)
	}
	return a, nil
}

// ListAliases returns a function's aliases ordered by name.
func (db *DB) ListAliases(ctx context.Context, project, name string) ([]function.Alias, error) {
	rows, err := db.pool.Query(ctx,
		`SELECT project, function, name, version, COALESCE(canary_version, 0), canary_weight, created_at, updated_at
		 FROM aliases WHERE project = $1 AND function = $2 ORDER BY name`, project, name)
	if err != nil {
		return nil, fmt.Errorf("list aliases of %s: %w", name, err)
	}
	as, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (function.Alias, error) {
		var a function.Alias
		err := r.Scan(&a.Project, &a.Function, &a.Name, &a.Version, &a.CanaryVersion, &a.CanaryWeight, &a.CreatedAt, &a.UpdatedAt)
		a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("list aliases of %s: %w", name, err)
	}
	if len(as) == 0 { // every function has its live alias
		return nil, fmt.Errorf("list aliases of %s: %w", name, store.ErrNotFound)
	}
	return as, nil
}

// checkVersions makes sure the versions a names exist.
func checkVersions(ctx context.Context, q querier, project, name string, a function.Alias) error {
	for _, n := range []int{a.Version, a.CanaryVersion} {
		if n == 0 {
			continue
		}
		var one int
		err := q.QueryRow(ctx, `SELECT 1 FROM versions WHERE project = $1 AND function = $2 AND version = $3`,
			project, name, n).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return &function.VersionNotFoundError{Function: name, Version: n}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// nullable stores a canary version of 0 (none) as NULL, which the foreign
// key to versions lets through.
func nullable(n int) *int {
	if n == 0 {
		return nil
	}
	return &n
}

// writeAlias updates an existing alias; a change of the live alias is a
// change of its function.
func writeAlias(ctx context.Context, q querier, project, name string, a function.Alias, t time.Time) error {
	if _, err := q.Exec(ctx,
		`UPDATE aliases SET version = $4, canary_version = $5, canary_weight = $6, updated_at = $7
		 WHERE project = $1 AND function = $2 AND name = $3`,
		project, name, a.Name, a.Version, nullable(a.CanaryVersion), a.CanaryWeight, t); err != nil {
		return err
	}
	if a.Name == function.LiveAlias {
		if _, err := q.Exec(ctx, `UPDATE functions SET updated_at = $3 WHERE project = $1 AND name = $2`,
			project, name, t); err != nil {
			return err
		}
	}
	return nil
}

// PutAlias creates or replaces an alias.
func (db *DB) PutAlias(ctx context.Context, project, name string, a function.Alias) (function.Alias, bool, error) {
	a = function.Alias{Project: project, Function: name, Name: a.Name,
		Version: a.Version, CanaryVersion: a.CanaryVersion, CanaryWeight: a.CanaryWeight}
	var created bool
	err := a.Validate()
	if err == nil {
		err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
			cur, err := getAlias(ctx, tx, project, name, a.Name, true)
			created = errors.Is(err, function.ErrAliasNotFound)
			if err != nil && !created {
				return err
			}
			if err := checkVersions(ctx, tx, project, name, a); err != nil {
				return err
			}
			t := now()
			a.UpdatedAt = t
			if !created {
				a.CreatedAt = cur.CreatedAt
				return writeAlias(ctx, tx, project, name, a, t)
			}
			a.CreatedAt = t
			_, err = tx.Exec(ctx,
				`INSERT INTO aliases (project, function, name, version, canary_version, canary_weight, created_at, updated_at)
				 VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`,
				project, name, a.Name, a.Version, nullable(a.CanaryVersion), a.CanaryWeight, t)
			return err
		})
	}
	if err != nil {
		return function.Alias{}, false, fmt.Errorf("put alias %s of %s: %w", a.Name, name, err)
	}
	return a, created, nil
}

// UpdateAlias changes an alias in one transaction.
func (db *DB) UpdateAlias(ctx context.Context, project, name, alias string, change func(*function.Alias) error) (function.Alias, error) {
	var a function.Alias
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		cur, err := getAlias(ctx, tx, project, name, alias, true)
		if err != nil {
			return err
		}
		if a, err = store.ChangeAlias(cur, change); err != nil || a == cur {
			return err
		}
		if err := checkVersions(ctx, tx, project, name, a); err != nil {
			return err
		}
		a.UpdatedAt = now()
		return writeAlias(ctx, tx, project, name, a, a.UpdatedAt)
	})
	if err != nil {
		return function.Alias{}, fmt.Errorf("update alias %s of %s: %w", alias, name, err)
	}
	return a, nil
}

// DeleteAlias deletes an alias other than live.
func (db *DB) DeleteAlias(ctx context.Context, project, name, alias string) error {
	err := store.ErrDeleteLive
	if alias != function.LiveAlias {
		err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
			if _, err := getAlias(ctx, tx, project, name, alias, true); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `DELETE FROM aliases WHERE project = $1 AND function = $2 AND name = $3`, project, name, alias)
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("delete alias %s of %s: %w", alias, name, err)
	}
	return nil
}
