package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/hostless/hostless/internal/store"
)

var _ store.Secrets = (*DB)(nil)

// secretMigrations build the secrets and the KMS API's keys in data.db.
// Values and key material are stored sealed only. Never edit or reorder;
// only append.
var secretMigrations = []string{
	`CREATE TABLE secrets (
		project TEXT NOT NULL,
		name TEXT NOT NULL,
		version INTEGER NOT NULL,
		wrapped_key BLOB NOT NULL,
		ciphertext BLOB NOT NULL,
		created_at INTEGER NOT NULL,
		updated_at INTEGER NOT NULL,
		PRIMARY KEY (project, name)
	);
	CREATE TABLE kms_keys (
		project TEXT NOT NULL,
		name TEXT NOT NULL,
		version INTEGER NOT NULL,
		wrapped BLOB NOT NULL,
		functions TEXT NOT NULL DEFAULT '[]',
		created_at INTEGER NOT NULL,
		PRIMARY KEY (project, name, version)
	)`,
}

// PutSecret stores a secret's next version.
func (db *DB) PutSecret(ctx context.Context, s store.Secret) error {
	var (
		res sql.Result
		err error
	)
	if s.Version == 1 {
		res, err = db.dataW.ExecContext(ctx, `INSERT INTO secrets (project, name, version, wrapped_key, ciphertext, created_at, updated_at)
			VALUES (?, ?, 1, ?, ?, ?, ?)`, s.Project, s.Name, s.WrappedKey, s.Ciphertext, unixNano(s.CreatedAt), unixNano(s.UpdatedAt))
		if isConstraint(err) {
			err = store.ErrConflict
		}
	} else {
		res, err = db.dataW.ExecContext(ctx, `UPDATE secrets SET version = ?, wrapped_key = ?, ciphertext = ?, updated_at = ?
			WHERE project = ? AND name = ? AND version = ?`, s.Version, s.WrappedKey, s.Ciphertext, unixNano(s.UpdatedAt), s.Project, s.Name, s.Version-1)
	}
	if err == nil {
		err = oneRow(res, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("put secret: %w", err)
	}
	return nil
}

// oneRow returns none when res changed no row.
func oneRow(res sql.Result, none error) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return none
	}
	return nil
}

const secretColumns = `project, name, version, wrapped_key, ciphertext, created_at, updated_at`

func scanSecret(row scanner) (store.Secret, error) {
	var (
		s                store.Secret
		created, updated int64
	)
	if err := row.Scan(&s.Project, &s.Name, &s.Version, &s.WrappedKey, &s.Ciphertext, &created, &updated); err != nil {
		return s, err
	}
	s.CreatedAt, s.UpdatedAt = fromUnixNano(created), fromUnixNano(updated)
	return s, nil
}

// GetSecret returns a secret.
func (db *DB) GetSecret(ctx context.Context, project, name string) (store.Secret, error) {
	s, err := scanSecret(db.dataR.QueryRowContext(ctx, `SELECT `+secretColumns+` FROM secrets WHERE project = ? AND name = ?`, project, name))
	if err != nil {
		return s, fmt.Errorf("get secret: %w", notFound(err))
	}
	return s, nil
}

// ListSecrets returns a project's secrets.
func (db *DB) ListSecrets(ctx context.Context, project string) ([]store.Secret, error) {
	rows, err := db.dataR.QueryContext(ctx, `SELECT `+secretColumns+` FROM secrets WHERE project = ? ORDER BY name`, project)
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
	res, err := db.dataW.ExecContext(ctx, `DELETE FROM secrets WHERE project = ? AND name = ?`, project, name)
	if err == nil {
		err = oneRow(res, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("delete secret: %w", err)
	}
	return nil
}

// RewrapSecret replaces a secret version's wrapped data key.
func (db *DB) RewrapSecret(ctx context.Context, project, name string, version int, old, wrapped []byte) error {
	res, err := db.dataW.ExecContext(ctx, `UPDATE secrets SET wrapped_key = ? WHERE project = ? AND name = ? AND version = ? AND wrapped_key = ?`,
		wrapped, project, name, version, old)
	if err == nil {
		err = oneRow(res, store.ErrConflict)
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
	_, err := db.dataW.ExecContext(ctx, `INSERT INTO kms_keys (project, name, version, wrapped, functions, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`, k.Project, k.Name, k.Version, k.Wrapped, jsonList(k.Functions), unixNano(k.CreatedAt))
	if isConstraint(err) {
		err = store.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("put KMS key: %w", err)
	}
	return nil
}

const kmsKeyColumns = `project, name, version, wrapped, functions, created_at`

func scanKMSKey(row scanner) (store.KMSKey, error) {
	var (
		k         store.KMSKey
		functions string
		created   int64
	)
	if err := row.Scan(&k.Project, &k.Name, &k.Version, &k.Wrapped, &functions, &created); err != nil {
		return k, err
	}
	var err error
	if k.Functions, err = parseList(functions); err != nil {
		return k, fmt.Errorf("KMS key %s functions: %w", k.Name, err)
	}
	if len(k.Functions) == 0 {
		k.Functions = nil
	}
	k.CreatedAt = fromUnixNano(created)
	return k, nil
}

// GetKMSKey returns a key's version, or its newest for version 0.
func (db *DB) GetKMSKey(ctx context.Context, project, name string, version int) (store.KMSKey, error) {
	q, args := `SELECT `+kmsKeyColumns+` FROM kms_keys WHERE project = ? AND name = ? AND version = ?`, []any{project, name, version}
	if version == 0 {
		q, args = `SELECT `+kmsKeyColumns+` FROM kms_keys WHERE project = ? AND name = ? ORDER BY version DESC LIMIT 1`, args[:2]
	}
	k, err := scanKMSKey(db.dataR.QueryRowContext(ctx, q, args...))
	if err != nil {
		return k, fmt.Errorf("get KMS key: %w", notFound(err))
	}
	return k, nil
}

// ListKMSKeys returns every version of a project's keys.
func (db *DB) ListKMSKeys(ctx context.Context, project string) ([]store.KMSKey, error) {
	rows, err := db.dataR.QueryContext(ctx, `SELECT `+kmsKeyColumns+` FROM kms_keys WHERE project = ? ORDER BY name, version`, project)
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
	res, err := db.dataW.ExecContext(ctx, `UPDATE kms_keys SET wrapped = ? WHERE project = ? AND name = ? AND version = ?`,
		wrapped, project, name, version)
	if err == nil {
		err = oneRow(res, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("rewrap KMS key: %w", err)
	}
	return nil
}
