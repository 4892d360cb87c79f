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

// PutFunction makes spec the serving version of the named function.
// SELECT ... FOR UPDATE serializes calls on an existing function; two calls
// creating the same function race on the primary key, and the loser retries
// (and then finds the function).
func (db *DB) PutFunction(ctx context.Context, project, name string, spec function.Spec) (store.PutResult, error) {
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return store.PutResult{}, fmt.Errorf("put function %s: %w", name, err)
	}
	for attempt := 1; ; attempt++ {
		var res store.PutResult
		err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
			var err error
			res, err = putFunction(ctx, tx, project, name, spec, specJSON)
			return err
		})
		if isUniqueViolation(err) && attempt < 5 {
			continue
		}
		if err != nil {
			return store.PutResult{}, fmt.Errorf("put function %s: %w", name, err)
		}
		return res, nil
	}
}

func putFunction(ctx context.Context, tx pgx.Tx, project, name string, spec function.Spec, specJSON []byte) (store.PutResult, error) {
	t := now()
	fn, err := scanFunction(tx.QueryRow(ctx,
		`SELECT project, name, version, created_at, updated_at FROM functions WHERE project = $1 AND name = $2 FOR UPDATE`,
		project, name))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		fn = function.Function{Project: project, Name: name, Version: 1, CreatedAt: t, UpdatedAt: t}
		if _, err := tx.Exec(ctx,
			`INSERT INTO functions (project, name, version, created_at, updated_at) VALUES ($1, $2, 1, $3, $3)`,
			project, name, t); err != nil {
			return store.PutResult{}, err
		}
		if _, err := tx.Exec(ctx,
			`INSERT INTO versions (project, function, version, spec, created_at) VALUES ($1, $2, 1, $3, $4)`,
			project, name, string(specJSON), t); err != nil {
			return store.PutResult{}, err
		}
		v := function.Version{Project: project, Function: name, Number: 1, Spec: spec, CreatedAt: t}
		return store.PutResult{Function: fn, Version: v, Action: "created"}, nil
	case err != nil:
		return store.PutResult{}, err
	}

	cur, err := scanVersion(tx.QueryRow(ctx,
		`SELECT project, function, version, spec, created_at FROM versions WHERE project = $1 AND function = $2 AND version = $3`,
		project, name, fn.Version))
	if err != nil {
		return store.PutResult{}, fmt.Errorf("serving version %d: %w", fn.Version, err)
	}
	if spec.Equal(&cur.Spec) {
		return store.PutResult{Function: fn, Version: cur, Action: "unchanged"}, nil
	}
	var n int
	if err := tx.QueryRow(ctx,
		`SELECT MAX(version) FROM versions WHERE project = $1 AND function = $2`, project, name).Scan(&n); err != nil {
		return store.PutResult{}, err
	}
	n++
	if _, err := tx.Exec(ctx,
		`INSERT INTO versions (project, function, version, spec, created_at) VALUES ($1, $2, $3, $4, $5)`,
		project, name, n, string(specJSON), t); err != nil {
		return store.PutResult{}, err
	}
	if _, err := tx.Exec(ctx,
		`UPDATE functions SET version = $1, updated_at = $2 WHERE project = $3 AND name = $4`,
		n, t, project, name); err != nil {
		return store.PutResult{}, err
	}
	fn.Version, fn.UpdatedAt = n, t
	v := function.Version{Project: project, Function: name, Number: n, Spec: spec, CreatedAt: t}
	return store.PutResult{Function: fn, Version: v, Action: "updated"}, nil
}

// GetFunction returns a function, or store.ErrNotFound.
func (db *DB) GetFunction(ctx context.Context, project, name string) (function.Function, error) {
	fn, err := scanFunction(db.pool.QueryRow(ctx,
		`SELECT project, name, version, created_at, updated_at FROM functions WHERE project = $1 AND name = $2`,
		project, name))
	if err != nil {
		return function.Function{}, fmt.Errorf("get function %s: %w", name, notFound(err))
	}
	return fn, nil
}

// ListFunctions returns a project's functions ordered by name.
func (db *DB) ListFunctions(ctx context.Context, project string) ([]function.Function, error) {
	rows, err := db.pool.Query(ctx,
		`SELECT project, name, version, created_at, updated_at FROM functions WHERE project = $1 ORDER BY name`,
		project)
	if err != nil {
		return nil, fmt.Errorf("list functions: %w", err)
	}
	fns, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (function.Function, error) { return scanFunction(r) })
	if err != nil {
		return nil, fmt.Errorf("list functions: %w", err)
	}
	return fns, nil
}

// DeleteFunction deletes a function and its versions (by cascade), or
// returns store.ErrNotFound. Invocation records stay: they are telemetry.
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

// SetServing points the function at one of its versions.
func (db *DB) SetServing(ctx context.Context, project, name string, version int) (function.Function, error) {
	fn, err := scanFunction(db.pool.QueryRow(ctx,
		`UPDATE functions SET version = $3, updated_at = $4 WHERE project = $1 AND name = $2
		 AND EXISTS (SELECT 1 FROM versions WHERE project = $1 AND function = $2 AND version = $3)
		 RETURNING project, name, version, created_at, updated_at`,
		project, name, version, now()))
	if err != nil {
		return function.Function{}, fmt.Errorf("set serving version of %s to %d: %w", name, version, notFound(err))
	}
	return fn, nil
}

// GetVersion returns one version, or store.ErrNotFound.
func (db *DB) GetVersion(ctx context.Context, project, name string, version int) (function.Version, error) {
	v, err := scanVersion(db.pool.QueryRow(ctx,
		`SELECT project, function, version, spec, created_at FROM versions WHERE project = $1 AND function = $2 AND version = $3`,
		project, name, version))
	if err != nil {
		return function.Version{}, fmt.Errorf("get version %s/%d: %w", name, version, notFound(err))
	}
	return v, nil
}

// ListVersions returns a function's versions, newest first.
func (db *DB) ListVersions(ctx context.Context, project, name string) ([]function.Version, error) {
	rows, err := db.pool.Query(ctx,
		`SELECT project, function, version, spec, created_at FROM versions WHERE project = $1 AND function = $2 ORDER BY version DESC`,
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
	if err := row.Scan(&fn.Project, &fn.Name, &fn.Version, &fn.CreatedAt, &fn.UpdatedAt); err != nil {
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
