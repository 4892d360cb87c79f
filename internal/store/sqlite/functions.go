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

// PutFunction makes spec the serving version of the named function. The one
// writer connection and BEGIN IMMEDIATE serialize concurrent calls, so
// version numbers never collide.
func (db *DB) PutFunction(ctx context.Context, project, name string, spec function.Spec) (store.PutResult, error) {
	res, err := db.putFunction(ctx, project, name, spec)
	if err != nil {
		return store.PutResult{}, fmt.Errorf("put function %s: %w", name, err)
	}
	return res, nil
}

func (db *DB) putFunction(ctx context.Context, project, name string, spec function.Spec) (store.PutResult, error) {
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
	fn, err := scanFunction(tx.QueryRowContext(ctx,
		`SELECT project, name, version, created_at, updated_at FROM functions WHERE project = ? AND name = ?`,
		project, name))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		fn = function.Function{Project: project, Name: name, Version: 1, CreatedAt: t, UpdatedAt: t}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO functions (project, name, version, created_at, updated_at) VALUES (?, ?, 1, ?, ?)`,
			project, name, unixNano(t), unixNano(t)); err != nil {
			return store.PutResult{}, err
		}
		v := function.Version{Project: project, Function: name, Number: 1, Spec: spec, CreatedAt: t}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO versions (project, function, version, spec, created_at) VALUES (?, ?, 1, ?, ?)`,
			project, name, string(specJSON), unixNano(t)); err != nil {
			return store.PutResult{}, err
		}
		if err := tx.Commit(); err != nil {
			return store.PutResult{}, err
		}
		return store.PutResult{Function: fn, Version: v, Action: "created"}, nil
	case err != nil:
		return store.PutResult{}, err
	}

	cur, err := scanVersion(tx.QueryRowContext(ctx,
		`SELECT project, function, version, spec, created_at FROM versions WHERE project = ? AND function = ? AND version = ?`,
		project, name, fn.Version))
	if err != nil {
		return store.PutResult{}, fmt.Errorf("serving version %d: %w", fn.Version, err)
	}
	if spec.Equal(&cur.Spec) {
		return store.PutResult{Function: fn, Version: cur, Action: "unchanged"}, nil
	}

	var n int
	if err := tx.QueryRowContext(ctx,
		`SELECT MAX(version) FROM versions WHERE project = ? AND function = ?`, project, name).Scan(&n); err != nil {
		return store.PutResult{}, err
	}
	n++
	v := function.Version{Project: project, Function: name, Number: n, Spec: spec, CreatedAt: t}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO versions (project, function, version, spec, created_at) VALUES (?, ?, ?, ?, ?)`,
		project, name, n, string(specJSON), unixNano(t)); err != nil {
		return store.PutResult{}, err
	}
	if _, err := tx.ExecContext(ctx,
		`UPDATE functions SET version = ?, updated_at = ? WHERE project = ? AND name = ?`,
		n, unixNano(t), project, name); err != nil {
		return store.PutResult{}, err
	}
	if err := tx.Commit(); err != nil {
		return store.PutResult{}, err
	}
	fn.Version, fn.UpdatedAt = n, t
	return store.PutResult{Function: fn, Version: v, Action: "updated"}, nil
}

// GetFunction returns a function, or store.ErrNotFound.
func (db *DB) GetFunction(ctx context.Context, project, name string) (function.Function, error) {
	fn, err := scanFunction(db.metaR.QueryRowContext(ctx,
		`SELECT project, name, version, created_at, updated_at FROM functions WHERE project = ? AND name = ?`,
		project, name))
	if err != nil {
		return function.Function{}, fmt.Errorf("get function %s: %w", name, notFound(err))
	}
	return fn, nil
}

// ListFunctions returns a project's functions ordered by name.
func (db *DB) ListFunctions(ctx context.Context, project string) ([]function.Function, error) {
	rows, err := db.metaR.QueryContext(ctx,
		`SELECT project, name, version, created_at, updated_at FROM functions WHERE project = ? ORDER BY name`, project)
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

// DeleteFunction deletes a function and its versions (by cascade), or
// returns store.ErrNotFound. Invocation records stay: they are telemetry.
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

// SetServing points the function at one of its versions.
func (db *DB) SetServing(ctx context.Context, project, name string, version int) (function.Function, error) {
	res, err := db.metaW.ExecContext(ctx,
		`UPDATE functions SET version = ?, updated_at = ? WHERE project = ? AND name = ?
		 AND EXISTS (SELECT 1 FROM versions WHERE project = ? AND function = ? AND version = ?)`,
		version, unixNano(now()), project, name, project, name, version)
	if err != nil {
		return function.Function{}, fmt.Errorf("set serving version of %s: %w", name, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return function.Function{}, fmt.Errorf("set serving version of %s: %w", name, err)
	} else if n == 0 {
		return function.Function{}, fmt.Errorf("set serving version of %s to %d: %w", name, version, store.ErrNotFound)
	}
	return db.GetFunction(ctx, project, name)
}

// GetVersion returns one version, or store.ErrNotFound.
func (db *DB) GetVersion(ctx context.Context, project, name string, version int) (function.Version, error) {
	v, err := scanVersion(db.metaR.QueryRowContext(ctx,
		`SELECT project, function, version, spec, created_at FROM versions WHERE project = ? AND function = ? AND version = ?`,
		project, name, version))
	if err != nil {
		return function.Version{}, fmt.Errorf("get version %s/%d: %w", name, version, notFound(err))
	}
	return v, nil
}

// ListVersions returns a function's versions, newest first.
func (db *DB) ListVersions(ctx context.Context, project, name string) ([]function.Version, error) {
	rows, err := db.metaR.QueryContext(ctx,
		`SELECT project, function, version, spec, created_at FROM versions WHERE project = ? AND function = ? ORDER BY version DESC`,
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
	if err := s.Scan(&fn.Project, &fn.Name, &fn.Version, &created, &updated); err != nil {
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
