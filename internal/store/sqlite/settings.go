package sqlite

import (
	"context"
	"fmt"
)

// Settings are platform-wide: they are stored under the empty project.

// GetSetting returns a platform setting, or store.ErrNotFound.
func (db *DB) GetSetting(ctx context.Context, key string) (string, error) {
	var v string
	err := db.metaR.QueryRowContext(ctx,
		`SELECT value FROM settings WHERE project = '' AND key = ?`, key).Scan(&v)
	if err != nil {
		return "", fmt.Errorf("get setting %s: %w", key, notFound(err))
	}
	return v, nil
}

// PutSettingIfAbsent stores value under key unless key exists, and reports
// whether it stored it.
func (db *DB) PutSettingIfAbsent(ctx context.Context, key, value string) (bool, error) {
	res, err := db.metaW.ExecContext(ctx,
		`INSERT INTO settings (project, key, value) VALUES ('', ?, ?) ON CONFLICT (project, key) DO NOTHING`, key, value)
	if err != nil {
		return false, fmt.Errorf("put setting %s: %w", key, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("put setting %s: %w", key, err)
	}
	return n == 1, nil
}

// PutSetting stores value under key, replacing what was there.
func (db *DB) PutSetting(ctx context.Context, key, value string) error {
	_, err := db.metaW.ExecContext(ctx,
		`INSERT INTO settings (project, key, value) VALUES ('', ?, ?) ON CONFLICT (project, key) DO UPDATE SET value = excluded.value`, key, value)
	if err != nil {
		return fmt.Errorf("put setting %s: %w", key, err)
	}
	return nil
}
