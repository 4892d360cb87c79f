package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
)

// selectFunction reads a function with its live alias; add a WHERE clause.
const selectFunction = `SELECT f.project, f.name, a.version, COALESCE(a.canary_version, 0), a.canary_weight, f.created_at, f.updated_at
	FROM functions f JOIN aliases a ON a.project = f.project AND a.function = f.name AND a.name = '` + function.LiveAlias + `'`

const selectVersion = `SELECT project, function, version, spec, created_at FROM versions`

// PutFunction deploys spec to serve alone. Locking the function's row
// serializes calls on an existing function; two calls creating the same
// function race on the primary key, and the loser retries (and then finds
// the function).
func (db *DB) PutFunction(ctx context.Context, project, name string, spec function.Spec) (store.PutResult, error) {
	res, err := db.put(ctx, project, name, spec, 0)
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
	res, err := db.put(ctx, project, name, spec, weight)
	if err != nil {
		return store.PutResult{}, fmt.Errorf("put canary of %s: %w", name, err)
	}
	return res, nil
}

func (db *DB) put(ctx context.Context, project, name string, spec function.Spec, weight int) (store.PutResult, error) {
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return store.PutResult{}, err
	}
	for attempt := 1; ; attempt++ {
		var res store.PutResult
		err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
			var err error
			res, err = putFunction(ctx, tx, project, name, spec, specJSON, weight)
			return err
		})
		if isUniqueViolation(err) && attempt < 5 {
			continue
		}
		return res, err
	}
}

func putFunction(ctx context.Context, tx pgx.Tx, project, name string, spec function.Spec, specJSON []byte, weight int) (store.PutResult, error) {
	t := now()
	err := lockFunction(ctx, tx, project, name)
	var fn function.Function
	if err == nil {
		fn, err = scanFunction(tx.QueryRow(ctx, selectFunction+` WHERE f.project = $1 AND f.name = $2`, project, name))
	}
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, pgx.ErrNoRows):
		fn = function.Function{Project: project, Name: name, Version: 1, CreatedAt: t, UpdatedAt: t}
		if _, err := tx.Exec(ctx,
			`INSERT INTO functions (project, name, created_at, updated_at) VALUES ($1, $2, $3, $3)`,
			project, name, t); err != nil {
			return store.PutResult{}, err
		}
		if _, err := tx.Exec(ctx,
			`INSERT INTO versions (project, function, version, spec, created_at) VALUES ($1, $2, 1, $3, $4)`,
			project, name, string(specJSON), t); err != nil {
			return store.PutResult{}, err
		}
		if _, err := tx.Exec(ctx,
			`INSERT INTO aliases (project, function, name, version, canary_version, canary_weight, created_at, updated_at)
			 VALUES ($1, $2, $3, 1, NULL, 0, $4, $4)`,
			project, name, function.LiveAlias, t); err != nil {
			return store.PutResult{}, err
		}
		v := function.Version{Project: project, Function: name, Number: 1, Spec: spec, CreatedAt: t}
		return store.PutResult{Function: fn, Version: v, Action: "created"}, nil
	case err != nil:
		return store.PutResult{}, err
	}

	stable, err := scanVersion(tx.QueryRow(ctx, selectVersion+` WHERE project = $1 AND function = $2 AND version = $3`,
		project, name, fn.Version))
	if err != nil {
		return store.PutResult{}, fmt.Errorf("live version %d: %w", fn.Version, err)
	}
	var canary *function.Version
	var canarySpec *function.Spec
	if fn.CanaryVersion != 0 {
		c, err := scanVersion(tx.QueryRow(ctx, selectVersion+` WHERE project = $1 AND function = $2 AND version = $3`,
			project, name, fn.CanaryVersion))
		if err != nil {
			return store.PutResult{}, fmt.Errorf("live canary version %d: %w", fn.CanaryVersion, err)
		}
		canary, canarySpec = &c, &c.Spec
	}
	var last int
	if err := tx.QueryRow(ctx,
		`SELECT MAX(version) FROM versions WHERE project = $1 AND function = $2`, project, name).Scan(&last); err != nil {
		return store.PutResult{}, err
	}
	live := function.Alias{Project: project, Function: name, Name: function.LiveAlias,
		Version: fn.Version, CanaryVersion: fn.CanaryVersion, CanaryWeight: fn.CanaryWeight}
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
		if _, err := tx.Exec(ctx,
			`INSERT INTO versions (project, function, version, spec, created_at) VALUES ($1, $2, $3, $4, $5)`,
			project, name, n, string(specJSON), t); err != nil {
			return store.PutResult{}, err
		}
	}
	if err := writeAlias(ctx, tx, project, name, after, t); err != nil {
		return store.PutResult{}, err
	}
	fn.Version, fn.CanaryVersion, fn.CanaryWeight, fn.UpdatedAt = after.Version, after.CanaryVersion, after.CanaryWeight, t
	return store.PutResult{Function: fn, Version: v, Action: action}, nil
}

// GetFunction returns a function, or store.ErrNotFound.
func (db *DB) GetFunction(ctx context.Context, project, name string) (function.Function, error) {
	fn, err := scanFunction(db.pool.QueryRow(ctx, selectFunction+` WHERE f.project = $1 AND f.name = $2`, project, name))
	if err != nil {
		return function.Function{}, fmt.Errorf("get function %s: %w", name, notFound(err))
	}
	return fn, nil
}

// ListFunctions returns a project's functions ordered by name.
func (db *DB) ListFunctions(ctx context.Context, project string) ([]function.Function, error) {
	rows, err := db.pool.Query(ctx, selectFunction+` WHERE f.project = $1 ORDER BY f.name`, project)
	if err != nil {
		return nil, fmt.Errorf("list functions: %w", err)
	}
	fns, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (function.Function, error) { return scanFunction(r) })
	if err != nil {
		return nil, fmt.Errorf("list functions: %w", err)
	}
	return fns, nil
}

// DeleteFunction deletes a function, its versions and its aliases (by
// cascade), or returns store.ErrNotFound. Invocation records stay: they are
// telemetry.
func (db *DB) DeleteFunction(ctx context.Context, project, name string) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM functions WHERE project = $1 AND name = $2`, project, name)
	if err != nil {
		return fmt.Errorf("delete function %s: %w", name, err)
	}
	if tag.RowsAffected() == 0 {
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
	v, err := scanVersion(db.pool.QueryRow(ctx, selectVersion+` WHERE project = $1 AND function = $2 AND version = $3`,
		project, name, version))
	if err != nil {
		return function.Version{}, fmt.Errorf("get version %s/%d: %w", name, version, notFound(err))
	}
	return v, nil
}

// ListVersions returns a function's versions, newest first.
func (db *DB) ListVersions(ctx context.Context, project, name string) ([]function.Version, error) {
	rows, err := db.pool.Query(ctx, selectVersion+` WHERE project = $1 AND function = $2 ORDER BY version DESC`,
		project, name)
	if err != nil {
		return nil, fmt.Errorf("list versions %s: %w", name, err)
	}
	vs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (function.Version, error) { return scanVersion(r) })
	if err != nil {
		return nil, fmt.Errorf("list versions %s: %w", name, err)
	}
	return vs, nil
}

func scanFunction(row pgx.Row) (function.Function, error) {
	var fn function.Function
	if err := row.Scan(&fn.Project, &fn.Name, &fn.Version, &fn.CanaryVersion, &fn.CanaryWeight, &fn.CreatedAt, &fn.UpdatedAt); err != nil {
		return function.Function{}, err
	}
	fn.CreatedAt, fn.UpdatedAt = fn.CreatedAt.UTC(), fn.UpdatedAt.UTC()
	return fn, nil
}

func scanVersion(row pgx.Row) (function.Version, error) {
	var v function.Version
	var spec []byte
	if err := row.Scan(&v.Project, &v.Function, &v.Number, &spec, &v.CreatedAt); err != nil {
		return function.Version{}, err
	}
	if err := json.Unmarshal(spec, &v.Spec); err != nil {
		return function.Version{}, fmt.Errorf("decode spec of version %d: %w", v.Number, err)
	}
	v.CreatedAt = v.CreatedAt.UTC()
	return v, nil
}
