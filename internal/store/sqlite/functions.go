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

// selectFunction reads a function with its live alias; add a WHERE clause.
const selectFunction = `SELECT f.project, f.name, a.version, COALESCE(a.canary_version, 0), a.canary_weight, f.created_at, f.updated_at
	FROM functions f JOIN aliases a ON a.project = f.project AND a.function = f.name AND a.name = '` + function.LiveAlias + `'`

const selectVersion = `SELECT project, function, version, spec, created_at FROM versions`

// PutFunction deploys spec to serve alone. The one writer connection and
// BEGIN IMMEDIATE serialize concurrent calls, so version numbers never
// collide.
func (db *DB) PutFunction(ctx context.Context, project, name string, spec function.Spec) (store.PutResult, error) {
	res, err := db.putFunction(ctx, project, name, spec, 0)
	if err != nil {
		return store.PutResult{}, fmt.Errorf("put function %s: %w", name, err)
	}
	return res, nil
}

// PutCanary deploys spec as the live alias's canary at weight percent.
func (db *DB) PutCanary(ctx context.Context, project, name string, spec function.Spec, weight int) (store.PutResult, error) {
	if weight < function.MinCanaryWeight || weight > function.MaxCanaryWeight {
		return store.PutResult{}, fmt.Errorf("put canary of %s: %w: weight %d is not %d to %d", name, function.ErrInvalid, weight, function.MinCanaryWeight, function.MaxCanaryWeight)
	}
	res, err := db.putFunction(ctx, project, name, spec, weight)
	if err != nil {
		return store.PutResult{}, fmt.Errorf("put canary of %s: %w", name, err)
	}
	return res, nil
}

func (db *DB) putFunction(ctx context.Context, project, name string, spec function.Spec, weight int) (store.PutResult, error) {
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return store.PutResult{}, err
	}
	tx, err := db.metaW.BeginTx(ctx, nil)
	if err != nil {
		return store.PutResult{}, err
	}
	defer tx.Rollback()

	t := now()
	fn, err := scanFunction(tx.QueryRowContext(ctx, selectFunction+` WHERE f.project = ? AND f.name = ?`, project, name))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		fn = function.Function{Project: project, Name: name, Version: 1, CreatedAt: t, UpdatedAt: t}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO functions (project, name, created_at, updated_at) VALUES (?, ?, ?, ?)`,
			project, name, unixNano(t), unixNano(t)); err != nil {
			return store.PutResult{}, err
		}
		v := function.Version{Project: project, Function: name, Number: 1, Spec: spec, CreatedAt: t}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO versions (project, function, version, spec, created_at) VALUES (?, ?, 1, ?, ?)`,
			project, name, string(specJSON), unixNano(t)); err != nil {
			return store.PutResult{}, err
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO aliases (project, function, name, version, canary_version, canary_weight, created_at, updated_at)
			 VALUES (?, ?, ?, 1, NULL, 0, ?, ?)`,
			project, name, function.LiveAlias, unixNano(t), unixNano(t)); err != nil {
			return store.PutResult{}, err
		}
		if err := tx.Commit(); err != nil {
			return store.PutResult{}, err
		}
		return store.PutResult{Function: fn, Version: v, Action: "created"}, nil
	case err != nil:
		return store.PutResult{}, err
	}

	stable, err := scanVersion(tx.QueryRowContext(ctx, selectVersion+` WHERE project = ? AND function = ? AND version = ?`,
		project, name, fn.Version))
	if err != nil {
		return store.PutResult{}, fmt.Errorf("live version %d: %w", fn.Version, err)
	}
	var canary *function.Version
	if fn.CanaryVersion != 0 {
		c, err := scanVersion(tx.QueryRowContext(ctx, selectVersion+` WHERE project = ? AND function = ? AND version = ?`,
			project, name, fn.CanaryVersion))
		if err != nil {
			return store.PutResult{}, fmt.Errorf("live canary version %d: %w", fn.CanaryVersion, err)
		}
		canary = &c
	}
	var last int
	if err := tx.QueryRowContext(ctx,
		`SELECT MAX(version) FROM versions WHERE project = ? AND function = ?`, project, name).Scan(&last); err != nil {
		return store.PutResult{}, err
	}
	var canarySpec *function.Spec
	if canary != nil {
		canarySpec = &canary.Spec
	}
	live := liveOf(fn)
	after, action, n := store.Deploy(live, &stable.Spec, canarySpec, &spec, weight, last+1)
	var v function.Version
	switch {
	case n == stable.Number:
		v = stable
	case canary != nil && n == canary.Number:
		v = *canary
	default:
		v = function.Version{Project: project, Function: name, Number: n, Spec: spec, CreatedAt: t}
	}
	if action == "unchanged" {
		return store.PutResult{Function: fn, Version: v, Action: action}, nil
	}
	if n == last+1 {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO versions (project, function, version, spec, created_at) VALUES (?, ?, ?, ?, ?)`,
			project, name, n, string(specJSON), unixNano(t)); err != nil {
			return store.PutResult{}, err
		}
	}
	if err := writeAlias(ctx, tx, project, name, after, t); err != nil {
		return store.PutResult{}, err
	}
	if err := tx.Commit(); err != nil {
		return store.PutResult{}, err
	}
	fn.Version, fn.CanaryVersion, fn.CanaryWeight, fn.UpdatedAt = after.Version, after.CanaryVersion, after.CanaryWeight, t
	return store.PutResult{Function: fn, Version: v, Action: action}, nil
}

// liveOf is the live alias a function row carries (without its times).
func liveOf(fn function.Function) function.Alias {
	return function.Alias{Project: fn.Project, Function: fn.Name, Name: function.LiveAlias,
		Version: fn.Version, CanaryVersion: fn.CanaryVersion, CanaryWeight: fn.CanaryWeight}
}

// GetFunction returns a function, or store.ErrNotFound.
func (db *DB) GetFunction(ctx context.Context, project, name string) (function.Function, error) {
	fn, err := scanFunction(db.metaR.QueryRowContext(ctx, selectFunction+` WHERE f.project = ? AND f.name = ?`, project, name))
	if err != nil {
		return function.Function{}, fmt.Errorf("get function %s: %w", name, notFound(err))
	}
	return fn, nil
}

// ListFunctions returns a project's functions ordered by name.
func (db *DB) ListFunctions(ctx context.Context, project string) ([]function.Function, error) {
	rows, err := db.metaR.QueryContext(ctx, selectFunction+` WHERE f.project = ? ORDER BY f.name`, project)
	if err != nil {
		return nil, fmt.Errorf("list functions: %w", err)
	}
	defer rows.Close()
	var fns []function.Function
	for rows.Next() {
		fn, err := scanFunction(rows)
		if err != nil {
			return nil, fmt.Errorf("list functions: %w", err)
		}
		fns = append(fns, fn)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list functions: %w", err)
	}
	return fns, nil
}

// DeleteFunction deletes a function, its versions and its aliases (by
// cascade), or returns store.ErrNotFound. Invocation records stay: they are
// telemetry.
func (db *DB) DeleteFunction(ctx context.Context, project, name string) error {
	res, err := db.metaW.ExecContext(ctx, `DELETE FROM functions WHERE project = ? AND name = ?`, project, name)
	if err != nil {
		return fmt.Errorf("delete function %s: %w", name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("delete function %s: %w", name, err)
	}
	if n == 0 {
		return fmt.Errorf("delete function %s: %w", name, store.ErrNotFound)
	}
	return nil
}

// SetServing points the live alias at one of the function's versions
// alone.
func (db *DB) SetServing(ctx context.Context, project, name string, version int) (function.Function, error) {
	_, err := db.UpdateAlias(ctx, project, name, function.LiveAlias, func(a *function.Alias) error {
		a.Version, a.CanaryVersion, a.CanaryWeight = version, 0, 0
		return nil
	})
	if errors.Is(err, function.ErrVersionNotFound) || errors.Is(err, function.ErrInvalid) {
		err = fmt.Errorf("%w (%w)", store.ErrNotFound, err)
	}
	if err != nil {
		return function.Function{}, fmt.Errorf("set serving version of %s to %d: %w", name, version, err)
	}
	return db.GetFunction(ctx, project, name)
}

// GetVersion returns one version, or store.ErrNotFound.
func (db *DB) GetVersion(ctx context.Context, project, name string, version int) (function.Version, error) {
	v, err := scanVersion(db.metaR.QueryRowContext(ctx, selectVersion+` WHERE project = ? AND function = ? AND version = ?`,
		project, name, version))
	if err != nil {
		return function.Version{}, fmt.Errorf("get version %s/%d: %w", name, version, notFound(err))
	}
	return v, nil
}

// ListVersions returns a function's versions, newest first.
func (db *DB) ListVersions(ctx context.Context, project, name string) ([]function.Version, error) {
	rows, err := db.metaR.QueryContext(ctx, selectVersion+` WHERE project = ? AND function = ? ORDER BY version DESC`,
		project, name)
	if err != nil {
		return nil, fmt.Errorf("list versions %s: %w", name, err)
	}
	defer rows.Close()
	var vs []function.Version
	for rows.Next() {
		v, err := scanVersion(rows)
		if err != nil {
			return nil, fmt.Errorf("list versions %s: %w", name, err)
		}
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list versions %s: %w", name, err)
	}
	return vs, nil
}

type scanner interface {
	Scan(dest ...any) error
}

func scanFunction(s scanner) (function.Function, error) {
	var fn function.Function
	var created, updated int64
	if err := s.Scan(&fn.Project, &fn.Name, &fn.Version, &fn.CanaryVersion, &fn.CanaryWeight, &created, &updated); err != nil {
		return function.Function{}, err
	}
	fn.CreatedAt, fn.UpdatedAt = fromUnixNano(created), fromUnixNano(updated)
	return fn, nil
}

func scanVersion(s scanner) (function.Version, error) {
	var v function.Version
	var spec string
	var created int64
	if err := s.Scan(&v.Project, &v.Function, &v.Number, &spec, &created); err != nil {
		return function.Version{}, err
	}
	if err := json.Unmarshal([]byte(spec), &v.Spec); err != nil {
		return function.Version{}, fmt.Errorf("decode spec of version %d: %w", v.Number, err)
	}
	v.CreatedAt = fromUnixNano(created)
	return v, nil
}
