package sqlite

import (
	"context"
	"fmt"

	"github.com/hostless/hostless/internal/store"
)

var _ store.Identities = (*DB)(nil)

// identityMigrations build the identity provider links in data.db. Never
// edit or reorder; only append.
var identityMigrations = []string{
	`CREATE TABLE auth_identities (
		project TEXT NOT NULL,
		provider TEXT NOT NULL,
		subject TEXT NOT NULL,
		user_id TEXT NOT NULL,
		email TEXT NOT NULL DEFAULT '',
		created_at INTEGER NOT NULL,
		PRIMARY KEY (project, provider, subject)
	);
	CREATE INDEX auth_identities_user ON auth_identities (project, user_id)`,
}

// LinkIdentity stores a new link.
func (db *DB) LinkIdentity(ctx context.Context, id store.Identity) error {
	_, err := db.dataW.ExecContext(ctx, `INSERT INTO auth_identities (project, provider, subject, user_id, email, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`, id.Project, id.Provider, id.Subject, id.UserID, id.Email, unixNano(id.CreatedAt))
	if isConstraint(err) {
		err = store.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("link identity: %w", err)
	}
	return nil
}

const identityColumns = `project, provider, subject, user_id, email, created_at`

func scanIdentity(row scanner) (store.Identity, error) {
	var (
		id      store.Identity
		created int64
	)
	if err := row.Scan(&id.Project, &id.Provider, &id.Subject, &id.UserID, &id.Email, &created); err != nil {
		return id, err
	}
	id.CreatedAt = fromUnixNano(created)
	return id, nil
}

// GetIdentity returns the link of a provider's subject.
func (db *DB) GetIdentity(ctx context.Context, project, provider, subject string) (store.Identity, error) {
	id, err := scanIdentity(db.dataR.QueryRowContext(ctx, `SELECT `+identityColumns+` FROM auth_identities
		WHERE project = ? AND provider = ? AND subject = ?`, project, provider, subject))
	if err != nil {
		return id, fmt.Errorf("get identity: %w", notFound(err))
	}
	return id, nil
}

// ListIdentities returns a user's links.
func (db *DB) ListIdentities(ctx context.Context, project, userID string) ([]store.Identity, error) {
	rows, err := db.dataR.QueryContext(ctx, `SELECT `+identityColumns+` FROM auth_identities
		WHERE project = ? AND user_id = ? ORDER BY provider, subject`, project, userID)
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
