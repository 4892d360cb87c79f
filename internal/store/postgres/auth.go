package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hostless/hostless/internal/store"
	"github.com/jackc/pgx/v5"
)

var _ store.Auth = (*DB)(nil)

// authMigrations build the auth tables. Never edit or reorder; only append.
var authMigrations = []string{
	`CREATE TABLE auth_users (
		project text NOT NULL,
		id text NOT NULL,
		email text NOT NULL,
		email_verified boolean NOT NULL DEFAULT false,
		password_hash text NOT NULL DEFAULT '',
		roles text[] NOT NULL DEFAULT '{}',
		disabled boolean NOT NULL DEFAULT false,
		created_at timestamptz NOT NULL,
		updated_at timestamptz NOT NULL,
		PRIMARY KEY (project, id),
		UNIQUE (project, email)
	);
	CREATE TABLE auth_refresh_tokens (
		project text NOT NULL,
		hash bytea NOT NULL,
		family text NOT NULL,
		user_id text NOT NULL,
		created_at timestamptz NOT NULL,
		expires_at timestamptz NOT NULL,
		used boolean NOT NULL DEFAULT false,
		revoked boolean NOT NULL DEFAULT false,
		PRIMARY KEY (project, hash)
	);
	CREATE INDEX auth_refresh_tokens_family ON auth_refresh_tokens (project, family);
	CREATE INDEX auth_refresh_tokens_user ON auth_refresh_tokens (project, user_id);
	CREATE TABLE auth_onetime_tokens (
		project text NOT NULL,
		hash bytea NOT NULL,
		user_id text NOT NULL,
		purpose text NOT NULL,
		expires_at timestamptz NOT NULL,
		used boolean NOT NULL DEFAULT false,
		PRIMARY KEY (project, hash)
	);
	CREATE TABLE auth_outbox (
		project text NOT NULL,
		id text NOT NULL,
		recipient text NOT NULL,
		subject text NOT NULL,
		body text NOT NULL,
		created_at timestamptz NOT NULL,
		PRIMARY KEY (project, id)
	);
	CREATE TABLE auth_api_keys (
		project text NOT NULL,
		id text NOT NULL,
		name text NOT NULL,
		secret_hash bytea NOT NULL,
		scopes text[] NOT NULL DEFAULT '{}',
		created_at timestamptz NOT NULL,
		PRIMARY KEY (project, id)
	);
	CREATE TABLE auth_signing_keys (
		id text PRIMARY KEY,
		sealed bytea NOT NULL,
		public bytea NOT NULL,
		created_at timestamptz NOT NULL,
		retire_at timestamptz NOT NULL
	)`,
}

func list(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// CreateUser stores a new user.
func (db *DB) CreateUser(ctx context.Context, u store.User) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO auth_users
		(project, id, email, email_verified, password_hash, roles, disabled, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		u.Project, u.ID, strings.ToLower(u.Email), u.EmailVerified, u.PasswordHash, list(u.Roles), u.Disabled,
		u.CreatedAt.UTC(), u.UpdatedAt.UTC())
	if isUniqueViolation(err) {
		return fmt.Errorf("create user: %w", store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	return nil
}

const userColumns = `project, id, email, email_verified, password_hash, roles, disabled, created_at, updated_at`

func scanUser(row pgx.Row) (store.User, error) {
	var u store.User
	if err := row.Scan(&u.Project, &u.ID, &u.Email, &u.EmailVerified, &u.PasswordHash, &u.Roles, &u.Disabled, &u.CreatedAt, &u.UpdatedAt); err != nil {
		return u, err
	}
	u.Roles = list(u.Roles)
	u.CreatedAt, u.UpdatedAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC()
	return u, nil
}

// GetUser returns a user by ID.
func (db *DB) GetUser(ctx context.Context, project, id string) (store.User, error) {
	u, err := scanUser(db.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM auth_users WHERE project = $1 AND id = $2`, project, id))
	if err != nil {
		return u, fmt.Errorf("get user: %w", notFound(err))
	}
	return u, nil
}

// GetUserByEmail returns a user by email.
func (db *DB) GetUserByEmail(ctx context.Context, project, email string) (store.User, error) {
	u, err := scanUser(db.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM auth_users WHERE project = $1 AND email = $2`,
		project, strings.ToLower(email)))
	if err != nil {
		return u, fmt.Errorf("get user: %w", notFound(err))
	}
	return u, nil
}

// ListUsers returns users ordered by email.
func (db *DB) ListUsers(ctx context.Context, project, after string, limit int) ([]store.User, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+userColumns+` FROM auth_users
		WHERE project = $1 AND email COLLATE "C" > $2 ORDER BY email COLLATE "C" LIMIT $3`, project, strings.ToLower(after), store.Limit(limit))
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	us, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.User, error) { return scanUser(r) })
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return us, nil
}

// UpdateUser changes a user in one transaction.
func (db *DB) UpdateUser(ctx context.Context, project, id string, change func(*store.User) error) (store.User, error) {
	var u store.User
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		cur, err := scanUser(tx.QueryRow(ctx, `SELECT `+userColumns+` FROM auth_users WHERE project = $1 AND id = $2 FOR UPDATE`, project, id))
		if err != nil {
			return notFound(err)
		}
		u = cur
		u.Roles = append([]string(nil), cur.Roles...)
		if err := change(&u); err != nil {
			return err
		}
		u.Project, u.ID, u.CreatedAt, u.Email = cur.Project, cur.ID, cur.CreatedAt, strings.ToLower(u.Email)
		_, err = tx.Exec(ctx, `UPDATE auth_users SET email = $1, email_verified = $2, password_hash = $3, roles = $4,
			disabled = $5, updated_at = $6 WHERE project = $7 AND id = $8`,
			u.Email, u.EmailVerified, u.PasswordHash, list(u.Roles), u.Disabled, u.UpdatedAt.UTC(), project, id)
		if isUniqueViolation(err) {
			return store.ErrConflict
		}
		return err
	})
	if err != nil {
		return store.User{}, fmt.Errorf("update user: %w", err)
	}
	return u, nil
}

// PutRefreshToken stores a refresh token.
func (db *DB) PutRefreshToken(ctx context.Context, t store.RefreshToken) error {
	if err := putRefresh(ctx, db.pool, t); err != nil {
		return fmt.Errorf("put refresh token: %w", err)
	}
	return nil
}

func putRefresh(ctx context.Context, q querier, t store.RefreshToken) error {
	_, err := q.Exec(ctx, `INSERT INTO auth_refresh_tokens (project, hash, family, user_id, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, t.Project, t.Hash[:], t.Family, t.UserID, t.CreatedAt.UTC(), t.ExpiresAt.UTC())
	if isUniqueViolation(err) {
		return store.ErrConflict
	}
	return err
}

const refreshColumns = `project, hash, family, user_id, created_at, expires_at, used, revoked`

func scanRefresh(row pgx.Row) (t store.RefreshToken, used, revoked bool, err error) {
	var hash []byte
	if err = row.Scan(&t.Project, &hash, &t.Family, &t.UserID, &t.CreatedAt, &t.ExpiresAt, &used, &revoked); err != nil {
		return t, false, false, err
	}
	copy(t.Hash[:], hash)
	t.CreatedAt, t.ExpiresAt = t.CreatedAt.UTC(), t.ExpiresAt.UTC()
	return t, used, revoked, nil
}

// errReused carries a revocation out of a transaction that must commit it.
var errReused = errors.New("reused")

// RotateRefreshToken spends a refresh token and stores its successor.
func (db *DB) RotateRefreshToken(ctx context.Context, project string, hash [32]byte, next store.RefreshToken, now time.Time) (store.RefreshToken, error) {
	var old store.RefreshToken
	reused := false
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var (
			used, revoked bool
			err           error
		)
		old, used, revoked, err = scanRefresh(tx.QueryRow(ctx, `SELECT `+refreshColumns+` FROM auth_refresh_tokens
			WHERE project = $1 AND hash = $2 FOR UPDATE`, project, hash[:]))
		if err != nil {
			return notFound(err)
		}
		if used || revoked {
			reused = true
			_, err := tx.Exec(ctx, `UPDATE auth_refresh_tokens SET revoked = true WHERE project = $1 AND family = $2`, project, old.Family)
			return err // commit the revocation
		}
		if !now.Before(old.ExpiresAt) {
			return store.ErrTokenExpired
		}
		if _, err := tx.Exec(ctx, `UPDATE auth_refresh_tokens SET used = true WHERE project = $1 AND hash = $2`, project, hash[:]); err != nil {
			return err
		}
		next.Project, next.Family, next.UserID = project, old.Family, old.UserID
		return putRefresh(ctx, tx, next)
	})
	if err == nil && reused {
		err = store.ErrTokenReused
	}
	if err != nil {
		return old, fmt.Errorf("rotate refresh token: %w", err)
	}
	return old, nil
}

// RevokeRefreshToken revokes the family of a refresh token.
func (db *DB) RevokeRefreshToken(ctx context.Context, project string, hash [32]byte) (store.RefreshToken, error) {
	var old store.RefreshToken
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var err error
		old, _, _, err = scanRefresh(tx.QueryRow(ctx, `SELECT `+refreshColumns+` FROM auth_refresh_tokens
			WHERE project = $1 AND hash = $2`, project, hash[:]))
		if err != nil {
			return notFound(err)
		}
		_, err = tx.Exec(ctx, `UPDATE auth_refresh_tokens SET revoked = true WHERE project = $1 AND family = $2`, project, old.Family)
		return err
	})
	if err != nil {
		return old, fmt.Errorf("revoke refresh token: %w", err)
	}
	return old, nil
}

// RevokeUserTokens revokes every refresh token of a user.
func (db *DB) RevokeUserTokens(ctx context.Context, project, userID string) error {
	if _, err := db.pool.Exec(ctx, `UPDATE auth_refresh_tokens SET revoked = true WHERE project = $1 AND user_id = $2`,
		project, userID); err != nil {
		return fmt.Errorf("revoke tokens of user %s: %w", userID, err)
	}
	return nil
}

// PutOneTimeToken stores a one-time token.
func (db *DB) PutOneTimeToken(ctx context.Context, t store.OneTimeToken) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO auth_onetime_tokens (project, hash, user_id, purpose, expires_at)
		VALUES ($1, $2, $3, $4, $5)`, t.Project, t.Hash[:], t.UserID, t.Purpose, t.ExpiresAt.UTC())
	if isUniqueViolation(err) {
		err = store.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("put one-time token: %w", err)
	}
	return nil
}

// UseOneTimeToken spends a one-time token.
func (db *DB) UseOneTimeToken(ctx context.Context, project string, hash [32]byte, purpose string, now time.Time) (store.OneTimeToken, error) {
	t := store.OneTimeToken{Project: project, Hash: hash}
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var used bool
		err := tx.QueryRow(ctx, `SELECT user_id, purpose, expires_at, used FROM auth_onetime_tokens
			WHERE project = $1 AND hash = $2 AND purpose = $3 FOR UPDATE`, project, hash[:], purpose).Scan(&t.UserID, &t.Purpose, &t.ExpiresAt, &used)
		if err != nil {
			return notFound(err)
		}
		t.ExpiresAt = t.ExpiresAt.UTC()
		switch {
		case used:
			return store.ErrTokenReused
		case !now.Before(t.ExpiresAt):
			return store.ErrTokenExpired
		}
		if _, err := tx.Exec(ctx, `UPDATE auth_onetime_tokens SET used = true WHERE project = $1 AND hash = $2`, project, hash[:]); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM auth_onetime_tokens WHERE project = $1 AND expires_at < $2`, project, now.Add(-24*time.Hour).UTC())
		return err
	})
	if err != nil {
		return t, fmt.Errorf("use one-time token: %w", err)
	}
	return t, nil
}

// PutMail adds a message to the outbox.
func (db *DB) PutMail(ctx context.Context, m store.Mail) error {
	if _, err := db.pool.Exec(ctx, `INSERT INTO auth_outbox (project, id, recipient, subject, body, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, m.Project, m.ID, m.To, m.Subject, m.Body, m.CreatedAt.UTC()); err != nil {
		return fmt.Errorf("put mail: %w", err)
	}
	return nil
}

// ListMail returns the newest messages of the outbox.
func (db *DB) ListMail(ctx context.Context, project string, limit int) ([]store.Mail, error) {
	rows, err := db.pool.Query(ctx, `SELECT project, id, recipient, subject, body, created_at FROM auth_outbox
		WHERE project = $1 ORDER BY created_at DESC, id DESC LIMIT $2`, project, store.Limit(limit))
	if err != nil {
		return nil, fmt.Errorf("list mail: %w", err)
	}
	ms, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Mail, error) {
		var m store.Mail
		err := r.Scan(&m.Project, &m.ID, &m.To, &m.Subject, &m.Body, &m.CreatedAt)
		m.CreatedAt = m.CreatedAt.UTC()
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("list mail: %w", err)
	}
	return ms, nil
}

// PutAPIKey stores an API key.
func (db *DB) PutAPIKey(ctx context.Context, k store.APIKey) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO auth_api_keys (project, id, name, secret_hash, scopes, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, k.Project, k.ID, k.Name, k.SecretHash[:], list(k.Scopes), k.CreatedAt.UTC())
	if isUniqueViolation(err) {
		err = store.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("put API key: %w", err)
	}
	return nil
}

const apiKeyColumns = `project, id, name, secret_hash, scopes, created_at`

func scanAPIKey(row pgx.Row) (store.APIKey, error) {
	var (
		k    store.APIKey
		hash []byte
	)
	if err := row.Scan(&k.Project, &k.ID, &k.Name, &hash, &k.Scopes, &k.CreatedAt); err != nil {
		return k, err
	}
	copy(k.SecretHash[:], hash)
	k.Scopes, k.CreatedAt = list(k.Scopes), k.CreatedAt.UTC()
	return k, nil
}

// GetAPIKey returns an API key.
func (db *DB) GetAPIKey(ctx context.Context, project, id string) (store.APIKey, error) {
	k, err := scanAPIKey(db.pool.QueryRow(ctx, `SELECT `+apiKeyColumns+` FROM auth_api_keys WHERE project = $1 AND id = $2`, project, id))
	if err != nil {
		return k, fmt.Errorf("get API key: %w", notFound(err))
	}
	return k, nil
}

// ListAPIKeys returns a project's API keys.
func (db *DB) ListAPIKeys(ctx context.Context, project string) ([]store.APIKey, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+apiKeyColumns+` FROM auth_api_keys WHERE project = $1 ORDER BY id COLLATE "C" LIMIT $2`,
		project, store.MaxLimit)
	if err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	ks, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.APIKey, error) { return scanAPIKey(r) })
	if err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	return ks, nil
}

// DeleteAPIKey deletes an API key.
func (db *DB) DeleteAPIKey(ctx context.Context, project, id string) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM auth_api_keys WHERE project = $1 AND id = $2`, project, id)
	if err != nil {
		return fmt.Errorf("delete API key: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete API key: %w", store.ErrNotFound)
	}
	return nil
}

// PutSigningKey stores a signing key.
func (db *DB) PutSigningKey(ctx context.Context, k store.SigningKey) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO auth_signing_keys (id, sealed, public, created_at, retire_at)
		VALUES ($1, $2, $3, $4, $5)`, k.ID, k.Sealed, k.Public, k.CreatedAt.UTC(), k.RetireAt.UTC())
	if isUniqueViolation(err) {
		err = store.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("put signing key: %w", err)
	}
	return nil
}

// RewrapSigningKey replaces a signing key's sealed private half.
func (db *DB) RewrapSigningKey(ctx context.Context, id string, old, sealed []byte) error {
	tag, err := db.pool.Exec(ctx, `UPDATE auth_signing_keys SET sealed = $1 WHERE id = $2 AND sealed = $3`, sealed, id, old)
	if err == nil && tag.RowsAffected() == 0 {
		err = store.ErrConflict
		var n int
		if qerr := db.pool.QueryRow(ctx, `SELECT count(*) FROM auth_signing_keys WHERE id = $1`, id).Scan(&n); qerr == nil && n == 0 {
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
	if _, err := db.pool.Exec(ctx, `DELETE FROM auth_signing_keys WHERE retire_at <= $1`, now.UTC()); err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	rows, err := db.pool.Query(ctx, `SELECT id, sealed, public, created_at, retire_at FROM auth_signing_keys
		WHERE retire_at > $1 ORDER BY created_at, id`, now.UTC())
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	ks, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.SigningKey, error) {
		var k store.SigningKey
		err := r.Scan(&k.ID, &k.Sealed, &k.Public, &k.CreatedAt, &k.RetireAt)
		k.CreatedAt, k.RetireAt = k.CreatedAt.UTC(), k.RetireAt.UTC()
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	return ks, nil
}
