package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
)

// querier is a connection pool or a transaction.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// getAlias reads one alias in one statement, telling a missing function
// (store.ErrNotFound) from a missing alias (function.ErrAliasNotFound).
func getAlias(ctx context.Context, q querier, project, name, alias string) (function.Alias, error) {
	var found sql.NullString
	a := function.Alias{Project: project, Function: name, Name: alias}
	var created, updated int64
	err := q.QueryRowContext(ctx,
		`SELECT a.name, COALESCE(a.version, 0), COALESCE(a.canary_version, 0), COALESCE(a.canary_weight, 0),
		        COALESCE(a.created_at, 0), COALESCE(a.updated_at, 0)
		 FROM functions f LEFT JOIN aliases a ON a.project = f.project AND a.function = f.name AND a.name = ?
		 WHERE f.project = ? AND f.name = ?`,
		alias, project, name).Scan(&found, &a.Version, &a.CanaryVersion, &a.CanaryWeight, &created, &updated)
	if err != nil {
		return function.Alias{}, notFound(err)
	}
	if !found.Valid {
		return function.Alias{}, &function.AliasNotFoundError{Function: name, Alias: alias}
	}
	a.CreatedAt, a.UpdatedAt = fromUnixNano(created), fromUnixNano(updated)
	return a, nil
}

// GetAlias returns one alias of a function.
func (db *DB) GetAlias(ctx context.Context, project, name, alias string) (function.Alias, error) {
	a, err := getAlias(ctx, db.metaR, project, name, alias)
	if err != nil {
		return function.Alias{}, fmt.Errorf("get alias %s of %s: %w", alias, name, err)
	}
	return a, nil
}

// ListAliases returns a function's aliases ordered by name.
func (db *DB) ListAliases(ctx context.Context, project, name string) ([]function.Alias, error) {
	rows, err := db.metaR.QueryContext(ctx,
		`SELECT project, function, name, version, COALESCE(canary_version, 0), canary_weight, created_at, updated_at
		 FROM aliases WHERE project = ? AND function = ? ORDER BY name`, project, name)
	if err != nil {
		return nil, fmt.Errorf("list aliases of %s: %w", name, err)
	}
	defer rows.Close()
	var as []function.Alias
	for rows.Next() {
		var a function.Alias
		var created, updated int64
		if err := rows.Scan(&a.Project, &a.Function, &a.Name, &a.Version, &a.CanaryVersion, &a.CanaryWeight, &created, &updated); err != nil {
			return nil, fmt.Errorf("list aliases of %s: %w", name, err)
		}
		a.CreatedAt, a.UpdatedAt = fromUnixNano(created), fromUnixNano(updated)
		as = append(as, a)
	}
	if err := rows.Err(); err != nil {
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
		err := q.QueryRowContext(ctx, `SELECT 1 FROM versions WHERE project = ? AND function = ? AND version = ?`,
			project, name, n).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
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
func nullable(n int) any {
	if n == 0 {
		return nil
	}
	return n
}

// writeAlias updates an existing alias; a change of the live alias is a
// change of its function.
func writeAlias(ctx context.Context, q querier, project, name string, a function.Alias, t time.Time) error {
	if _, err := q.ExecContext(ctx,
		`UPDATE aliases SET version = ?, canary_version = ?, canary_weight = ?, updated_at = ?
		 WHERE project = ? AND function = ? AND name = ?`,
		a.Version, nullable(a.CanaryVersion), a.CanaryWeight, unixNano(t), project, name, a.Name); err != nil {
		return err
	}
	if a.Name == function.LiveAlias {
		if _, err := q.ExecContext(ctx, `UPDATE functions SET updated_at = ? WHERE project = ? AND name = ?`,
			unixNano(t), project, name); err != nil {
			return err
		}
	}
	return nil
}

// PutAlias creates or replaces an alias.
func (db *DB) PutAlias(ctx context.Context, project, name string, a function.Alias) (function.Alias, bool, error) {
	got, created, err := db.putAlias(ctx, project, name, a)
	if err != nil {
		return function.Alias{}, false, fmt.Errorf("put alias %s of %s: %w", a.Name, name, err)
	}
	return got, created, nil
}

func (db *DB) putAlias(ctx context.Context, project, name string, a function.Alias) (function.Alias, bool, error) {
	a = function.Alias{Project: project, Function: name, Name: a.Name,
		Version: a.Version, CanaryVersion: a.CanaryVersion, CanaryWeight: a.CanaryWeight}
	if err := a.Validate(); err != nil {
		return function.Alias{}, false, err
	}
	tx, err := db.metaW.BeginTx(ctx, nil)
	if err != nil {
		return function.Alias{}, false, err
	}
	defer tx.Rollback()
	cur, err := getAlias(ctx, tx, project, name, a.Name)
	created := errors.Is(err, function.ErrAliasNotFound)
	if err != nil && !created {
		return function.Alias{}, false, err
	}
	if err := checkVersions(ctx, tx, project, name, a); err != nil {
		return function.Alias{}, false, err
	}
	t := now()
	a.UpdatedAt = t
	if created {
		a.CreatedAt = t
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO aliases (project, function, name, version, canary_version, canary_weight, created_at, updated_at)
			 VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			project, name, a.Name, a.Version, nullable(a.CanaryVersion), a.CanaryWeight, unixNano(t), unixNano(t)); err != nil {
			return function.Alias{}, false, err
		}
	} else {
		a.CreatedAt = cur.CreatedAt
		if err := writeAlias(ctx, tx, project, name, a, t); err != nil {
			return function.Alias{}, false, err
		}
	}
	if err := tx.Commit(); err != nil {
		return function.Alias{}, false, err
	}
	return a, created, nil
}

// UpdateAlias changes an alias in one transaction.
func (db *DB) UpdateAlias(ctx context.Context, project, name, alias string, change func(*function.Alias) error) (function.Alias, error) {
	a, err := db.updateAlias(ctx, project, name, alias, change)
	if err != nil {
		return function.Alias{}, fmt.Errorf("update alias %s of %s: %w", alias, name, err)
	}
	return a, nil
}

func (db *DB) updateAlias(ctx context.Context, project, name, alias string, change func(*function.Alias) error) (function.Alias, error) {
	tx, err := db.metaW.BeginTx(ctx, nil)
	if err != nil {
		return function.Alias{}, err
	}
	defer tx.Rollback()
	cur, err := getAlias(ctx, tx, project, name, alias)
	if err != nil {
		return function.Alias{}, err
	}
	a, err := store.ChangeAlias(cur, change)
	if err != nil || a == cur {
		return a, err
	}
	if err := checkVersions(ctx, tx, project, name, a); err != nil {
		return function.Alias{}, err
	}
	a.UpdatedAt = now()
	if err := writeAlias(ctx, tx, project, name, a, a.UpdatedAt); err != nil {
		return function.Alias{}, err
	}
	if err := tx.Commit(); err != nil {
		return function.Alias{}, err
	}
	return a, nil
}

// DeleteAlias deletes an alias other than live.
func (db *DB) DeleteAlias(ctx context.Context, project, name, alias string) error {
	if err := db.deleteAlias(ctx, project, name, alias); err != nil {
		return fmt.Errorf("delete alias %s of %s: %w", alias, name, err)
	}
	return nil
}

func (db *DB) deleteAlias(ctx context.Context, project, name, alias string) error {
	if alias == function.LiveAlias {
		return store.ErrDeleteLive
	}
	tx, err := db.metaW.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := getAlias(ctx, tx, project, name, alias); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM aliases WHERE project = ? AND function = ? AND name = ?`,
		project, name, alias); err != nil {
		return err
	}
	return tx.Commit()
}
