package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/hostless/hostless/internal/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

var _ store.Secrets = (*DB)(nil)

// secretMigrations build the secrets and the KMS API's keys. Values and
// key material are stored sealed only. Never edit or reorder; only append.
var secretMigrations = []string{
	`CREATE TABLE secrets (
		project text NOT NULL,
		name text NOT NULL,
		version integer NOT NULL,
		wrapped_key bytea NOT NULL,
		ciphertext bytea NOT NULL,
		created_at timestamptz NOT NULL,
		updated_at timestamptz NOT NULL,
		PRIMARY KEY (project, name)
	);
	CREATE TABLE kms_keys (
		project text NOT NULL,
		name text NOT NULL,
		version integer NOT NULL,
		wrapped bytea NOT NULL,
		functions text[] NOT NULL DEFAULT '{}',
		created_at timestamptz NOT NULL,
		PRIMARY KEY (project, name, version)
	)`,
}

// oneRow returns none when tag says no row changed.
func oneRow(tag pgconn.CommandTag, none error) error {
	if tag.RowsAffected() == 0 {
		return none
	}
	return nil
}

// PutSecret stores a secret's next version.
func (db *DB) PutSecret(ctx context.Context, s store.Secret) error {
	var (
		tag pgconn.CommandTag
		err error
	)
	if s.Version == 1 {
		tag, err = db.pool.Exec(ctx, `INSERT INTO secrets (project, name, version, wrapped_key, ciphertext, created_at, updated_at)
			VALUES ($1, $2, 1, $3, $4, $5, $6)`, s.Project, s.Name, s.WrappedKey, s.Ciphertext, s.CreatedAt.UTC(), s.UpdatedAt.UTC())
		if isUniqueViolation(err) {
			err = store.ErrConflict
		}
	} else {
		tag, err = db.pool.Exec(ctx, `UPDATE secrets SET version = $1, wrapped_key = $2, ciphertext = $3, updated_at = $4
			WHERE project = $5 AND name = $6 AND version = $7`, s.Version, s.WrappedKey, s.Ciphertext, s.UpdatedAt.UTC(), s.Project, s.Name, s.Version-1)
	}
	if err == nil {
		err = oneRow(tag, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("put secret: %w", err)
	}
	return nil
}

const secretColumns = `project, name, version, wrapped_key, ciphertext, created_at, updated_at`

func scanSecret(row pgx.Row) (store.Secret, error) {
	var s store.Secret
	if err := row.Scan(&s.Project, &s.Name, &s.Version, &s.WrappedKey, &s.Ciphertext, &s.CreatedAt, &s.UpdatedAt); err != nil {
		return s, err
	}
	s.CreatedAt, s.UpdatedAt = s.CreatedAt.UTC(), s.UpdatedAt.UTC()
	return s, nil
}

// GetSecret returns a secret.
func (db *DB) GetSecret(ctx context.Context, project, name string) (store.Secret, error) {
	s, err := scanSecret(db.pool.QueryRow(ctx, `SELECT `+secretColumns+` FROM secrets WHERE project = $1 AND name = $2`, project, name))
	if err != nil {
		return s, fmt.Errorf("get secret: %w", notFound(err))
	}
	return s, nil
}

// ListSecrets returns a project's secrets.
func (db *DB) ListSecrets(ctx context.Context, project string) ([]store.Secret, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+secretColumns+` FROM secrets WHERE project = $1 ORDER BY name COLLATE "C"`, project)
	if err != nil {
		return nil, fmt.Errorf("list secrets: %w", err)
	}
	defer rows.Close()
	var out []store.Secret
	for rows.Next() {
		s, err := scanSecret(rows)
		if err != nil {
			return nil, fmt.Errorf("list secrets: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list secrets: %w", err)
	}
	return out, nil
}

// DeleteSecret deletes a secret.
func (db *DB) DeleteSecret(ctx context.Context, project, name string) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM secrets WHERE project = $1 AND name = $2`, project, name)
	if err == nil {
		err = oneRow(tag, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("delete secret: %w", err)
	}
	return nil
}

// RewrapSecret replaces a secret version's wrapped data key.
func (db *DB) RewrapSecret(ctx context.Context, project, name string, version int, old, wrapped []byte) error {
	tag, err := db.pool.Exec(ctx, `UPDATE secrets SET wrapped_key = $1 WHERE project = $2 AND name = $3 AND version = $4 AND wrapped_key = $5`,
		wrapped, project, name, version, old)
	if err == nil {
		err = oneRow(tag, store.ErrConflict)
	}
	if errors.Is(err, store.ErrConflict) {
		if _, gerr := db.GetSecret(ctx, project, name); errors.Is(gerr, store.ErrNotFound) {
			err = store.ErrNotFound
		}
	}
	if err != nil {
		return fmt.Errorf("rewrap secret: %w", err)
	}
	return nil
}

// PutKMSKey stores a key's version.
func (db *DB) PutKMSKey(ctx context.Context, k store.KMSKey) error {
	functions := k.Functions
	if functions == nil {
		functions = []string{}
	}
	_, err := db.pool.Exec(ctx, `INSERT INTO kms_keys (project, name, version, wrapped, functions, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, k.Project, k.Name, k.Version, k.Wrapped, functions, k.CreatedAt.UTC())
	if isUniqueViolation(err) {
		err = store.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("put KMS key: %w", err)
	}
	return nil
}

const kmsKeyColumns = `project, name, version, wrapped, functions, created_at`

func scanKMSKey(row pgx.Row) (store.KMSKey, error) {
	var k store.KMSKey
	if err := row.Scan(&k.Project, &k.Name, &k.Version, &k.Wrapped, &k.Functions, &k.CreatedAt); err != nil {
		return k, err
	}
	if len(k.Functions) == 0 {
		k.Functions = nil
	}
	k.CreatedAt = k.CreatedAt.UTC()
	return k, nil
}

// GetKMSKey returns a key's version, or its newest for version 0.
func (db *DB) GetKMSKey(ctx context.Context, project, name string, version int) (store.KMSKey, error) {
	q, args := `SELECT `+kmsKeyColumns+` FROM kms_keys WHERE project = $1 AND name = $2 AND version = $3`, []any{project, name, version}
	if version == 0 {
		q, args = `SELECT `+kmsKeyColumns+` FROM kms_keys WHERE project = $1 AND name = $2 ORDER BY version DESC LIMIT 1`, args[:2]
	}
	k, err := scanKMSKey(db.pool.QueryRow(ctx, q, args...))
	if err != nil {
		return k, fmt.Errorf("get KMS key: %w", notFound(err))
	}
	return k, nil
}

// ListKMSKeys returns every version of a project's keys.
func (db *DB) ListKMSKeys(ctx context.Context, project string) ([]store.KMSKey, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+kmsKeyColumns+` FROM kms_keys WHERE project = $1 ORDER BY name COLLATE "C", version`, project)
	if err != nil {
		return nil, fmt.Errorf("list KMS keys: %w", err)
	}
	defer rows.Close()
	var out []store.KMSKey
	for rows.Next() {
		k, err := scanKMSKey(rows)
		if err != nil {
			return nil, fmt.Errorf("list KMS keys: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list KMS keys: %w", err)
	}
	return out, nil
}

// RewrapKMSKey replaces a key version's wrapped material.
func (db *DB) RewrapKMSKey(ctx context.Context, project, name string, version int, wrapped []byte) error {
	tag, err := db.pool.Exec(ctx, `UPDATE kms_keys SET wrapped = $1 WHERE project = $2 AND name = $3 AND version = $4`,
		wrapped, project, name, version)
	if err == nil {
		err = oneRow(tag, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("rewrap KMS key: %w", err)
	}
	return nil
}
