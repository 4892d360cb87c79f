package postgres

import (
	"context"
	"fmt"

	"github.com/hostless/hostless/internal/store"
	"github.com/jackc/pgx/v5"
)

var _ store.Identities = (*DB)(nil)

// identityMigrations build the identity provider links. Never edit or
// reorder; only append.
var identityMigrations = []string{
	`CREATE TABLE auth_identities (
		project text NOT NULL,
		provider text NOT NULL,
		subject text NOT NULL,
		user_id text NOT NULL,
		email text NOT NULL DEFAULT '',
		created_at timestamptz NOT NULL,
		PRIMARY KEY (project, provider, subject)
	);
	CREATE INDEX auth_identities_user ON auth_identities (project, user_id)`,
}

// LinkIdentity stores a new link.
func (db *DB) LinkIdentity(ctx context.Context, id store.Identity) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO auth_identities (project, provider, subject, user_id, email, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, id.Project, id.Provider, id.Subject, id.UserID, id.Email, id.CreatedAt.UTC())
	if isUniqueViolation(err) {
		err = store.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("link identity: %w", err)
	}
	return nil
}

const identityColumns = `project, provider, subject, user_id, email, created_at`

func scanIdentity(row pgx.Row) (store.Identity, error) {
	var id store.Identity
	if err := row.Scan(&id.Project, &id.Provider, &id.Subject, &id.UserID, &id.Email, &id.CreatedAt); err != nil {
		return id, err
	}
	id.CreatedAt = id.CreatedAt.UTC()
	return id, nil
}

// GetIdentity returns the link of a provider's subject.
func (db *DB) GetIdentity(ctx context.Context, project, provider, subject string) (store.Identity, error) {
	id, err := scanIdentity(db.pool.QueryRow(ctx, `SELECT `+identityColumns+` FROM auth_identities
		WHERE project = $1 AND provider = $2 AND subject = $3`, project, provider, subject))
	if err != nil {
		return id, fmt.Errorf("get identity: %w", notFound(err))
	}
	return id, nil
}

// ListIdentities returns a user's links.
func (db *DB) ListIdentities(ctx context.Context, project, userID string) ([]store.Identity, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+identityColumns+` FROM auth_identities
		WHERE project = $1 AND user_id = $2 ORDER BY provider COLLATE "C", subject COLLATE "C"`, project, userID)
	if err != nil {
		return nil, fmt.Errorf("list identities: %w", err)
	}
	defer rows.Close()
	var out []store.Identity
	for rows.Next() {
		id, err := scanIdentity(rows)
		if err != nil {
			return nil, fmt.Errorf("list identities: %w", err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list identities: %w", err)
	}
	return out, nil
}
