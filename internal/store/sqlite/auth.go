package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hostless/hostless/internal/store"

	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

var _ store.Auth = (*DB)(nil)

// authMigrations build the auth tables in data.db. Never edit or reorder;
// only append.
var authMigrations = []string{
	`CREATE TABLE auth_users (
		project TEXT NOT NULL,
		id TEXT NOT NULL,
		email TEXT NOT NULL,
		email_verified INTEGER NOT NULL DEFAULT 0,
		password_hash TEXT NOT NULL DEFAULT '',
		roles TEXT NOT NULL DEFAULT '[]',
		disabled INTEGER NOT NULL DEFAULT 0,
		created_at INTEGER NOT NULL,
		updated_at INTEGER NOT NULL,
		PRIMARY KEY (project, id),
		UNIQUE (project, email)
	);
	CREATE TABLE auth_refresh_tokens (
		project TEXT NOT NULL,
		hash BLOB NOT NULL,
		family TEXT NOT NULL,
		user_id TEXT NOT NULL,
		created_at INTEGER NOT NULL,
		expires_at INTEGER NOT NULL,
		used INTEGER NOT NULL DEFAULT 0,
		revoked INTEGER NOT NULL DEFAULT 0,
		PRIMARY KEY (project, hash)
	);
	CREATE INDEX auth_refresh_tokens_family ON auth_refresh_tokens (project, family);
	CREATE INDEX auth_refresh_tokens_user ON auth_refresh_tokens (project, user_id);
	CREATE TABLE auth_onetime_tokens (
		project TEXT NOT NULL,
		hash BLOB NOT NULL,
		user_id TEXT NOT NULL,
		purpose TEXT NOT NULL,
		expires_at INTEGER NOT NULL,
		used INTEGER NOT NULL DEFAULT 0,
		PRIMARY KEY (project, hash)
	);
	CREATE TABLE auth_outbox (
		project TEXT NOT NULL,
		id TEXT NOT NULL,
		recipient TEXT NOT NULL,
		subject TEXT NOT NULL,
		body TEXT NOT NULL,
		created_at INTEGER NOT NULL,
		PRIMARY KEY (project, id)
	);
	CREATE TABLE auth_api_keys (
		project TEXT NOT NULL,
		id TEXT NOT NULL,
		name TEXT NOT NULL,
		secret_hash BLOB NOT NULL,
		scopes TEXT NOT NULL DEFAULT '[]',
		created_at INTEGER NOT NULL,
		PRIMARY KEY (project, id)
	);
	CREATE TABLE auth_signing_keys (
		id TEXT PRIMARY KEY,
		sealed BLOB NOT NULL,
		public BLOB NOT NULL,
		created_at INTEGER NOT NULL,
		retire_at INTEGER NOT NULL
	)`,
}

func isConstraint(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	c := se.Code()
	return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

func jsonList(l []string) string {
	if l == nil {
		l = []string{}
	}
	b, _ := json.Marshal(l) // a []string always marshals
	return string(b)
}

func parseList(s string) ([]string, error) {
	var l []string
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, err
	}
	if l == nil {
		l = []string{}
	}
	return l, nil
}

// CreateUser stores a new user.
func (db *DB) CreateUser(ctx context.Context, u store.User) error {
	_, err := db.dataW.ExecContext(ctx, `INSERT INTO auth_users
		(project, id, email, email_verified, password_hash, roles, disabled, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.Project, u.ID, strings.ToLower(u.Email), u.EmailVerified, u.PasswordHash, jsonList(u.Roles), u.Disabled,
		unixNano(u.CreatedAt), unixNano(u.UpdatedAt))
	if isConstraint(err) {
		return fmt.Errorf("create user: %w", store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	return nil
}

const userColumns = `project, id, email, email_verified, password_hash, roles, disabled, created_at, updated_at`

func scanUser(row interface{ Scan(...any) error }) (store.User, error) {
	var (
		u            store.User
		roles        string
		created, upd int64
	)
	if err := row.Scan(&u.Project, &u.ID, &u.Email, &u.EmailVerified, &u.PasswordHash, &roles, &u.Disabled, &created, &upd); err != nil {
		return u, err
	}
	var err error
	if u.Roles, err = parseList(roles); err != nil {
		return u, fmt.Errorf("user %s roles: %w", u.ID, err)
	}
	u.CreatedAt, u.UpdatedAt = fromUnixNano(created), fromUnixNano(upd)
	return u, nil
}

// GetUser returns a user by ID.
func (db *DB) GetUser(ctx context.Context, project, id string) (store.User, error) {
	u, err := scanUser(db.dataR.QueryRowContext(ctx, `SELECT `+userColumns+` FROM auth_users WHERE project = ? AND id = ?`, project, id))
	if err != nil {
		return u, fmt.Errorf("get user: %w", notFound(err))
	}
	return u, nil
}

// GetUserByEmail returns a user by email.
func (db *DB) GetUserByEmail(ctx context.Context, project, email string) (store.User, error) {
	u, err := scanUser(db.dataR.QueryRowContext(ctx, `SELECT `+userColumns+` FROM auth_users WHERE project = ? AND email = ?`,
		project, strings.ToLower(email)))
	if err != nil {
		return u, fmt.Errorf("get user: %w", notFound(err))
	}
	return u, nil
}

// ListUsers returns users ordered by email.
func (db *DB) ListUsers(ctx context.Context, project, after string, limit int) ([]store.User, error) {
	rows, err := db.dataR.QueryContext(ctx, `SELECT `+userColumns+` FROM auth_users
		WHERE project = ? AND email > ? ORDER BY email LIMIT ?`, project, strings.ToLower(after), store.Limit(limit))
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var us []store.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		us = append(us, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return us, nil
}

// UpdateUser changes a user in one transaction.
func (db *DB) UpdateUser(ctx context.Context, project, id string, change func(*store.User) error) (store.User, error) {
	tx, err := db.dataW.BeginTx(ctx, nil)
	if err != nil {
		return store.User{}, fmt.Errorf("update user: %w", err)
	}
	defer tx.Rollback()
	cur, err := scanUser(tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM auth_users WHERE project = ? AND id = ?`, project, id))
	if err != nil {
		return store.User{}, fmt.Errorf("update user: %w", notFound(err))
	}
	u := cur
	u.Roles = append([]string(nil), cur.Roles...)
	if err := change(&u); err != nil {
		return store.User{}, fmt.Errorf("update user: %w", err)
	}
	u.Project, u.ID, u.CreatedAt = cur.Project, cur.ID, cur.CreatedAt
	_, err = tx.ExecContext(ctx, `UPDATE auth_users SET email = ?, email_verified = ?, password_hash = ?, roles = ?,
		disabled = ?, updated_at = ? WHERE project = ? AND id = ?`,
		strings.ToLower(u.Email), u.EmailVerified, u.PasswordHash, jsonList(u.Roles), u.Disabled, unixNano(u.UpdatedAt), project, id)
	if isConstraint(err) {
		return store.User{}, fmt.Errorf("update user: %w", store.ErrConflict)
	}
	if err != nil {
		return store.User{}, fmt.Errorf("update user: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return store.User{}, fmt.Errorf("update user: %w", err)
	}
	u.Email = strings.ToLower(u.Email)
	return u, nil
}

// PutRefreshToken stores a refresh token.
func (db *DB) PutRefreshToken(ctx context.Context, t store.RefreshToken) error {
	if err := putRefresh(ctx, db.dataW, t); err != nil {
		return fmt.Errorf("put refresh token: %w", err)
	}
	return nil
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func putRefresh(ctx context.Context, q execer, t store.RefreshToken) error {
	_, err := q.ExecContext(ctx, `INSERT INTO auth_refresh_tokens (project, hash, family, user_id, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?)`, t.Project, t.Hash[:], t.Family, t.UserID, unixNano(t.CreatedAt), unixNano(t.ExpiresAt))
	if isConstraint(err) {
		return store.ErrConflict
	}
	return err
}

func scanRefresh(row interface{ Scan(...any) error }) (t store.RefreshToken, used, revoked bool, err error) {
	var (
		hash             []byte
		created, expires int64
	)
	if err = row.Scan(&t.Project, &hash, &t.Family, &t.UserID, &created, &expires, &used, &revoked); err != nil {
		return t, false, false, err
	}
	copy(t.Hash[:], hash)
	t.CreatedAt, t.ExpiresAt = fromUnixNano(created), fromUnixNano(expires)
	return t, used, revoked, nil
}

const refreshColumns = `project, hash, family, user_id, created_at, expires_at, used, revoked`

// RotateRefreshToken spends a refresh token and stores its successor.
func (db *DB) RotateRefreshToken(ctx context.Context, project string, hash [32]byte, next store.RefreshToken, now time.Time) (store.RefreshToken, error) {
	old, err := db.rotateRefresh(ctx, project, hash, next, now)
	if err != nil {
		return old, fmt.Errorf("rotate refresh token: %w", err)
	}
	return old, nil
}

func (db *DB) rotateRefresh(ctx context.Context, project string, hash [32]byte, next store.RefreshToken, now time.Time) (store.RefreshToken, error) {
	tx, err := db.dataW.BeginTx(ctx, nil)
	if err != nil {
		return store.RefreshToken{}, err
	}
	defer tx.Rollback()
	old, used, revoked, err := scanRefresh(tx.QueryRowContext(ctx, `SELECT `+refreshColumns+` FROM auth_refresh_tokens
		WHERE project = ? AND hash = ?`, project, hash[:]))
	if err != nil {
		return old, notFound(err)
	}
	if used || revoked {
		if _, err := tx.ExecContext(ctx, `UPDATE auth_refresh_tokens SET revoked = 1 WHERE project = ? AND family = ?`, project, old.Family); err != nil {
			return old, err
		}
		if err := tx.Commit(); err != nil {
			return old, err
		}
		return old, store.ErrTokenReused
	}
	if !now.Before(old.ExpiresAt) {
		return old, store.ErrTokenExpired
	}
	if _, err := tx.ExecContext(ctx, `UPDATE auth_refresh_tokens SET used = 1 WHERE project = ? AND hash = ?`, project, hash[:]); err != nil {
		return old, err
	}
	next.Project, next.Family, next.UserID = project, old.Family, old.UserID
	if err := putRefresh(ctx, tx, next); err != nil {
		return old, err
	}
	return old, tx.Commit()
}

// RevokeRefreshToken revokes the family of a refresh token.
func (db *DB) RevokeRefreshToken(ctx context.Context, project string, hash [32]byte) (store.RefreshToken, error) {
	tx, err := db.dataW.BeginTx(ctx, nil)
	if err != nil {
		return store.RefreshToken{}, fmt.Errorf("revoke refresh token: %w", err)
	}
	defer tx.Rollback()
	old, _, _, err := scanRefresh(tx.QueryRowContext(ctx, `SELECT `+refreshColumns+` FROM auth_refresh_tokens
		WHERE project = ? AND hash = ?`, project, hash[:]))
	if err != nil {
		return old, fmt.Errorf("revoke refresh token: %w", notFound(err))
	}
	if _, err := tx.ExecContext(ctx, `UPDATE auth_refresh_tokens SET revoked = 1 WHERE project = ? AND family = ?`, project, old.Family); err != nil {
		return old, fmt.Errorf("revoke refresh token: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return old, fmt.Errorf("revoke refresh token: %w", err)
	}
	return old, nil
}

// RevokeUserTokens revokes every refresh token of a user.
func (db *DB) RevokeUserTokens(ctx context.Context, project, userID string) error {
	if _, err := db.dataW.ExecContext(ctx, `UPDATE auth_refresh_tokens SET revoked = 1 WHERE project = ? AND user_id = ?`,
		project, userID); err != nil {
		return fmt.Errorf("revoke tokens of user %s: %w", userID, err)
	}
	return nil
}

// PutOneTimeToken stores a one-time token.
func (db *DB) PutOneTimeToken(ctx context.Context, t store.OneTimeToken) error {
	_, err := db.dataW.ExecContext(ctx, `INSERT INTO auth_onetime_tokens (project, hash, user_id, purpose, expires_at)
		VALUES (?, ?, ?, ?, ?)`, t.Project, t.Hash[:], t.UserID, t.Purpose, unixNano(t.ExpiresAt))
	if isConstraint(err) {
		err = store.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("put one-time token: %w", err)
	}
	return nil
}

// UseOneTimeToken spends a one-time token.
func (db *DB) UseOneTimeToken(ctx context.Context, project string, hash [32]byte, purpose string, now time.Time) (store.OneTimeToken, error) {
	t, err := db.useOneTime(ctx, project, hash, purpose, now)
	if err != nil {
		return t, fmt.Errorf("use one-time token: %w", err)
	}
	return t, nil
}

func (db *DB) useOneTime(ctx context.Context, project string, hash [32]byte, purpose string, now time.Time) (store.OneTimeToken, error) {
	tx, err := db.dataW.BeginTx(ctx, nil)
	if err != nil {
		return store.OneTimeToken{}, err
	}
	defer tx.Rollback()
	t := store.OneTimeToken{Project: project, Hash: hash}
	var (
		expires int64
		used    bool
	)
	err = tx.QueryRowContext(ctx, `SELECT user_id, purpose, expires_at, used FROM auth_onetime_tokens
		WHERE project = ? AND hash = ? AND purpose = ?`, project, hash[:], purpose).Scan(&t.UserID, &t.Purpose, &expires, &used)
	if err != nil {
		return t, notFound(err)
	}
	t.ExpiresAt = fromUnixNano(expires)
	switch {
	case used:
		return t, store.ErrTokenReused
	case !now.Before(t.ExpiresAt):
		return t, store.ErrTokenExpired
	}
	if _, err := tx.ExecContext(ctx, `UPDATE auth_onetime_tokens SET used = 1 WHERE project = ? AND hash = ?`, project, hash[:]); err != nil {
		return t, err
	}
	// Spent and expired tokens of any user go with the first use after
	// their expiry: the table stays small without a sweeper.
	if _, err := tx.ExecContext(ctx, `DELETE FROM auth_onetime_tokens WHERE project = ? AND expires_at < ?`,
		project, unixNano(now.Add(-24*time.Hour))); err != nil {
		return t, err
	}
	return t, tx.Commit()
}

// PutMail adds a message to the outbox.
func (db *DB) PutMail(ctx context.Context, m store.Mail) error {
	if _, err := db.dataW.ExecContext(ctx, `INSERT INTO auth_outbox (project, id, recipient, subject, body, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`, m.Project, m.ID, m.To, m.Subject, m.Body, unixNano(m.CreatedAt)); err != nil {
		return fmt.Errorf("put mail: %w", err)
	}
	return nil
}

// ListMail returns the newest messages of the outbox.
func (db *DB) ListMail(ctx context.Context, project string, limit int) ([]store.Mail, error) {
	rows, err := db.dataR.QueryContext(ctx, `SELECT project, id, recipient, subject, body, created_at FROM auth_outbox
		WHERE project = ? ORDER BY created_at DESC, id DESC LIMIT ?`, project, store.Limit(limit))
	if err != nil {
		return nil, fmt.Errorf("list mail: %w", err)
	}
	defer rows.Close()
	var ms []store.Mail
	for rows.Next() {
		var (
			m       store.Mail
			created int64
		)
		if err := rows.Scan(&m.Project, &m.ID, &m.To, &m.Subject, &m.Body, &created); err != nil {
			return nil, fmt.Errorf("list mail: %w", err)
		}
		m.CreatedAt = fromUnixNano(created)
		ms = append(ms, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list mail: %w", err)
	}
	return ms, nil
}

// PutAPIKey stores an API key.
func (db *DB) PutAPIKey(ctx context.Context, k store.APIKey) error {
	_, err := db.dataW.ExecContext(ctx, `INSERT INTO auth_api_keys (project, id, name, secret_hash, scopes, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`, k.Project, k.ID, k.Name, k.SecretHash[:], jsonList(k.Scopes), unixNano(k.CreatedAt))
	if isConstraint(err) {
		err = store.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("put API key: %w", err)
	}
	return nil
}

const apiKeyColumns = `project, id, name, secret_hash, scopes, created_at`

func scanAPIKey(row interface{ Scan(...any) error }) (store.APIKey, error) {
	var (
		k       store.APIKey
		hash    []byte
		scopes  string
		created int64
	)
	if err := row.Scan(&k.Project, &k.ID, &k.Name, &hash, &scopes, &created); err != nil {
		return k, err
	}
	copy(k.SecretHash[:], hash)
	var err error
	if k.Scopes, err = parseList(scopes); err != nil {
		return k, fmt.Errorf("API key %s scopes: %w", k.ID, err)
	}
	k.CreatedAt = fromUnixNano(created)
	return k, nil
}

// GetAPIKey returns an API key.
func (db *DB) GetAPIKey(ctx context.Context, project, id string) (store.APIKey, error) {
	k, err := scanAPIKey(db.dataR.QueryRowContext(ctx, `SELECT `+apiKeyColumns+` FROM auth_api_keys WHERE project = ? AND id = ?`, project, id))
	if err != nil {
		return k, fmt.Errorf("get API key: %w", notFound(err))
	}
	return k, nil
}

// ListAPIKeys returns a project's API keys.
func (db *DB) ListAPIKeys(ctx context.Context, project string) ([]store.APIKey, error) {
	rows, err := db.dataR.QueryContext(ctx, `SELECT `+apiKeyColumns+` FROM auth_api_keys WHERE project = ? ORDER BY id LIMIT ?`,
		project, store.MaxLimit)
	if err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	defer rows.Close()
	var ks []store.APIKey
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, fmt.Errorf("list API keys: %w", err)
		}
		ks = append(ks, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	return ks, nil
}

// DeleteAPIKey deletes an API key.
func (db *DB) DeleteAPIKey(ctx context.Context, project, id string) error {
	res, err := db.dataW.ExecContext(ctx, `DELETE FROM auth_api_keys WHERE project = ? AND id = ?`, project, id)
	if err != nil {
		return fmt.Errorf("delete API key: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("delete API key: %w", err)
	} else if n == 0 {
		return fmt.Errorf("delete API key: %w", store.ErrNotFound)
	}
	return nil
}

// PutSigningKey stores a signing key.
func (db *DB) PutSigningKey(ctx context.Context, k store.SigningKey) error {
	_, err := db.dataW.ExecContext(ctx, `INSERT INTO auth_signing_keys (id, sealed, public, created_at, retire_at)
		VALUES (?, ?, ?, ?, ?)`, k.ID, k.Sealed, k.Public, unixNano(k.CreatedAt), unixNano(k.RetireAt))
	if isConstraint(err) {
		err = store.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("put signing key: %w", err)
	}
	return nil
}

// RewrapSigningKey replaces a signing key's sealed private half.
func (db *DB) RewrapSigningKey(ctx context.Context, id string, old, sealed []byte) error {
	res, err := db.dataW.ExecContext(ctx, `UPDATE auth_signing_keys SET sealed = ? WHERE id = ? AND sealed = ?`, sealed, id, old)
	if err == nil {
		err = oneRow(res, store.ErrConflict)
	}
	if errors.Is(err, store.ErrConflict) {
		var n int
		if qerr := db.dataR.QueryRowContext(ctx, `SELECT count(*) FROM auth_signing_keys WHERE id = ?`, id).Scan(&n); qerr == nil && n == 0 {
			err = store.ErrNotFound
		}
	}
	if err != nil {
		return fmt.Errorf("rewrap signing key: %w", err)
	}
	return nil
}

// ListSigningKeys returns the keys not retired at now and deletes the others.
func (db *DB) ListSigningKeys(ctx context.Context, now time.Time) ([]store.SigningKey, error) {
	if _, err := db.dataW.ExecContext(ctx, `DELETE FROM auth_signing_keys WHERE retire_at <= ?`, unixNano(now)); err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	rows, err := db.dataR.QueryContext(ctx, `SELECT id, sealed, public, created_at, retire_at FROM auth_signing_keys
		WHERE retire_at > ? ORDER BY created_at, id`, unixNano(now))
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	defer rows.Close()
	var ks []store.SigningKey
	for rows.Next() {
		var (
			k               store.SigningKey
			created, retire int64
		)
		if err := rows.Scan(&k.ID, &k.Sealed, &k.Public, &created, &retire); err != nil {
			return nil, fmt.Errorf("list signing keys: %w", err)
		}
		k.CreatedAt, k.RetireAt = fromUnixNano(created), fromUnixNano(retire)
		ks = append(ks, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	return ks, nil
}
