package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/hostless/hostless/internal/store"
)

var _ store.Objects = (*DB)(nil)

// objectMigrations build the object storage's tables in data.db. Keys sort
// by bytes (SQLite's BINARY collation), the order S3 lists them in, and
// the primary keys are the listing indexes. meta is JSON: user metadata
// and stored headers.
var objectMigrations = []string{
	`CREATE TABLE buckets (
		project    TEXT    NOT NULL,
		name       TEXT    NOT NULL,
		created_at INTEGER NOT NULL,
		PRIMARY KEY (project, name)
	) WITHOUT ROWID`,
	`CREATE TABLE objects (
		project      TEXT    NOT NULL,
		bucket       TEXT    NOT NULL,
		key          TEXT    NOT NULL,
		size         INTEGER NOT NULL,
		etag         TEXT    NOT NULL,
		content_type TEXT    NOT NULL,
		meta         TEXT    NOT NULL,
		modified_at  INTEGER NOT NULL,
		blob         TEXT    NOT NULL,
		PRIMARY KEY (project, bucket, key),
		FOREIGN KEY (project, bucket) REFERENCES buckets (project, name)
	) WITHOUT ROWID`,
	`CREATE TABLE uploads (
		project      TEXT    NOT NULL,
		bucket       TEXT    NOT NULL,
		id           TEXT    NOT NULL,
		key          TEXT    NOT NULL,
		content_type TEXT    NOT NULL,
		meta         TEXT    NOT NULL,
		created_at   INTEGER NOT NULL,
		PRIMARY KEY (project, bucket, id),
		FOREIGN KEY (project, bucket) REFERENCES buckets (project, name)
	) WITHOUT ROWID`,
	`CREATE TABLE parts (
		project     TEXT    NOT NULL,
		bucket      TEXT    NOT NULL,
		upload_id   TEXT    NOT NULL,
		number      INTEGER NOT NULL,
		size        INTEGER NOT NULL,
		etag        TEXT    NOT NULL,
		modified_at INTEGER NOT NULL,
		blob        TEXT    NOT NULL,
		PRIMARY KEY (project, bucket, upload_id, number),
		FOREIGN KEY (project, bucket, upload_id) REFERENCES uploads (project, bucket, id) ON DELETE CASCADE
	) WITHOUT ROWID`,
}

// noMeta is the meta of an object without user metadata or stored
// headers, the common case, which skips JSON both ways.
const noMeta = "{}"

func encodeMeta(m store.ObjectMeta) (string, error) {
	if len(m.Metadata) == 0 && len(m.Headers) == 0 {
		return noMeta, nil
	}
	b, err := json.Marshal(m)
	return string(b), err
}

func decodeMeta(s string, m *store.ObjectMeta) error {
	if s == noMeta {
		m.Metadata, m.Headers = nil, nil
		return nil
	}
	return json.Unmarshal([]byte(s), m)
}

// CreateBucket implements store.Objects.
func (db *DB) CreateBucket(ctx context.Context, b store.Bucket) error {
	res, err := db.dataW.ExecContext(ctx,
		`INSERT INTO buckets (project, name, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
		b.Project, b.Name, unixNano(b.CreatedAt))
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", b.Name, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("create bucket %s: %w", b.Name, errors.Join(err, store.ErrBucketExists))
	}
	return nil
}

// GetBucket implements store.Objects.
func (db *DB) GetBucket(ctx context.Context, project, name string) (store.Bucket, error) {
	b := store.Bucket{Project: project, Name: name}
	var created int64
	err := db.pointRead(ctx, `SELECT created_at FROM buckets WHERE project = ? AND name = ?`, project, name).Scan(&created)
	if err != nil {
		return store.Bucket{}, fmt.Errorf("get bucket %s: %w", name, notFound(err))
	}
	b.CreatedAt = fromUnixNano(created)
	return b, nil
}

// ListBuckets implements store.Objects.
func (db *DB) ListBuckets(ctx context.Context, project string) ([]store.Bucket, error) {
	rows, err := db.dataR.QueryContext(ctx,
		`SELECT name, created_at FROM buckets WHERE project = ? ORDER BY name`, project)
	if err != nil {
		return nil, fmt.Errorf("list buckets: %w", err)
	}
	defer rows.Close()
	var out []store.Bucket
	for rows.Next() {
		b := store.Bucket{Project: project}
		var created int64
		if err := rows.Scan(&b.Name, &created); err != nil {
			return nil, fmt.Errorf("list buckets: %w", err)
		}
		b.CreatedAt = fromUnixNano(created)
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list buckets: %w", err)
	}
	return out, nil
}

// DeleteBucket implements store.Objects.
func (db *DB) DeleteBucket(ctx context.Context, project, name string) error {
	err := db.dataTx(ctx, func(tx *sql.Tx) error {
		var n int
		err := tx.QueryRowContext(ctx, `SELECT
			(SELECT COUNT(*) FROM (SELECT 1 FROM objects WHERE project = ? AND bucket = ? LIMIT 1)) +
			(SELECT COUNT(*) FROM (SELECT 1 FROM uploads WHERE project = ? AND bucket = ? LIMIT 1))`,
			project, name, project, name).Scan(&n)
		if err != nil {
			return err
		}
		if n > 0 {
			return store.ErrBucketNotEmpty
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM buckets WHERE project = ? AND name = ?`, project, name)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errors.Join(err, store.ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete bucket %s: %w", name, err)
	}
	return nil
}

// dataTx runs fn in a transaction of data.db's writer, committing if fn
// returns nil.
func (db *DB) dataTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.dataW.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

func bucketExists(ctx context.Context, tx *sql.Tx, project, bucket string) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM buckets WHERE project = ? AND name = ?`, project, bucket).Scan(&one)
	return notFound(err)
}

// putObject writes o in tx and returns the blob it replaced. It reads
// before it writes and writes once, so a failure leaves writes behind
// (dirty) only when that one write fails.
func putObject(ctx context.Context, tx cachedTx, o store.Object) (old string, dirty bool, err error) {
	meta, err := encodeMeta(o.ObjectMeta)
	if err != nil {
		return "", false, err
	}
	var one int
	if err := tx.queryRow(ctx, `SELECT 1 FROM buckets WHERE project = ? AND name = ?`, o.Project, o.Bucket).Scan(&one); err != nil {
		return "", false, notFound(err)
	}
	err = tx.queryRow(ctx, `SELECT blob FROM objects WHERE project = ? AND bucket = ? AND key = ?`,
		o.Project, o.Bucket, o.Key).Scan(&old)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", false, err
	}
	_, err = tx.exec(ctx, `INSERT INTO objects (project, bucket, key, size, etag, content_type, meta, modified_at, blob)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (project, bucket, key) DO UPDATE SET size = excluded.size, etag = excluded.etag,
			content_type = excluded.content_type, meta = excluded.meta, modified_at = excluded.modified_at, blob = excluded.blob`,
		o.Project, o.Bucket, o.Key, o.Size, o.ETag, o.ContentType, meta, unixNano(o.ModTime), o.BlobKey)
	if err != nil {
		return "", true, err
	}
	return old, false, nil
}

// PutObject implements store.Objects. Concurrent puts commit together (see
// write): the object S3 clients write most often costs one commit per
// group, not one per object.
func (db *DB) PutObject(ctx context.Context, o store.Object) (string, error) {
	var old string
	err := db.write(ctx, true, func(ctx context.Context, tx cachedTx) (dirty bool, err error) {
		old, dirty, err = putObject(ctx, tx, o)
		return dirty, err
	})
	if err != nil {
		return "", fmt.Errorf("put object %s/%s: %w", o.Bucket, o.Key, err)
	}
	return old, nil
}

const objectColumns = `key, size, etag, content_type, meta, modified_at, blob`

func scanObject(row interface{ Scan(...any) error }, o *store.Object) error {
	var meta string
	var mod int64
	if err := row.Scan(&o.Key, &o.Size, &o.ETag, &o.ContentType, &meta, &mod, &o.BlobKey); err != nil {
		return err
	}
	o.ModTime = fromUnixNano(mod)
	return decodeMeta(meta, &o.ObjectMeta)
}

// GetObject implements store.Objects.
func (db *DB) GetObject(ctx context.Context, project, bucket, key string) (store.Object, error) {
	o := store.Object{Project: project, Bucket: bucket}
	row := db.pointRead(ctx, `SELECT `+objectColumns+` FROM objects WHERE project = ? AND bucket = ? AND key = ?`,
		project, bucket, key)
	if err := scanObject(row, &o); err != nil {
		return store.Object{}, fmt.Errorf("get object %s/%s: %w", bucket, key, notFound(err))
	}
	return o, nil
}

// DeleteObject implements store.Objects.
func (db *DB) DeleteObject(ctx context.Context, project, bucket, key string) (string, error) {
	var blob string
	err := db.dataTx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `DELETE FROM objects WHERE project = ? AND bucket = ? AND key = ? RETURNING blob`,
			project, bucket, key).Scan(&blob)
	})
	if err != nil {
		return "", fmt.Errorf("delete object %s/%s: %w", bucket, key, notFound(err))
	}
	return blob, nil
}

// ListObjects implements store.Objects.
func (db *DB) ListObjects(ctx context.Context, f store.ObjectFilter) ([]store.Object, error) {
	var q strings.Builder
	q.WriteString(`SELECT ` + objectColumns + ` FROM objects WHERE project = ? AND bucket = ?`)
	args := []any{f.Project, f.Bucket}
	if f.Prefix != "" {
		q.WriteString(` AND key >= ?`)
		args = append(args, f.Prefix)
		if end, ok := store.PrefixEnd(f.Prefix); ok {
			q.WriteString(` AND key < ?`)
			args = append(args, end)
		}
	}
	if f.After != "" {
		q.WriteString(` AND key > ?`)
		args = append(args, f.After)
	}
	if f.From != "" {
		q.WriteString(` AND key >= ?`)
		args = append(args, f.From)
	}
	q.WriteString(` ORDER BY key LIMIT ?`)
	args = append(args, listLimit(f.Limit))
	rows, err := db.dataR.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("list objects %s: %w", f.Bucket, err)
	}
	defer rows.Close()
	var out []store.Object
	for rows.Next() {
		o := store.Object{Project: f.Project, Bucket: f.Bucket}
		if err := scanObject(rows, &o); err != nil {
			return nil, fmt.Errorf("list objects %s: %w", f.Bucket, err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list objects %s: %w", f.Bucket, err)
	}
	return out, nil
}

func listLimit(n int) int {
	if n <= 0 || n > store.MaxListObjects {
		return store.MaxListObjects
	}
	return n
}

// CreateUpload implements store.Objects.
func (db *DB) CreateUpload(ctx context.Context, u store.Upload) error {
	meta, err := encodeMeta(u.ObjectMeta)
	if err != nil {
		return fmt.Errorf("create upload: %w", err)
	}
	err = db.dataTx(ctx, func(tx *sql.Tx) error {
		if err := bucketExists(ctx, tx, u.Project, u.Bucket); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO uploads (project, bucket, id, key, content_type, meta, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, u.Project, u.Bucket, u.ID, u.Key, u.ContentType, meta, unixNano(u.CreatedAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("create upload %s/%s: %w", u.Bucket, u.Key, err)
	}
	return nil
}

// GetUpload implements store.Objects.
func (db *DB) GetUpload(ctx context.Context, project, bucket, id string) (store.Upload, error) {
	u := store.Upload{Project: project, Bucket: bucket, ID: id}
	var meta string
	var created int64
	err := db.dataR.QueryRowContext(ctx, `SELECT key, content_type, meta, created_at FROM uploads
		WHERE project = ? AND bucket = ? AND id = ?`, project, bucket, id).Scan(&u.Key, &u.ContentType, &meta, &created)
	if err == nil {
		err = decodeMeta(meta, &u.ObjectMeta)
	}
	if err != nil {
		return store.Upload{}, fmt.Errorf("get upload %s: %w", id, notFound(err))
	}
	u.CreatedAt = fromUnixNano(created)
	return u, nil
}

// PutPart implements store.Objects.
func (db *DB) PutPart(ctx context.Context, p store.Part) (string, error) {
	var old string
	err := db.dataTx(ctx, func(tx *sql.Tx) error {
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM uploads WHERE project = ? AND bucket = ? AND id = ?`,
			p.Project, p.Bucket, p.UploadID).Scan(&one); err != nil {
			return notFound(err)
		}
		err := tx.QueryRowContext(ctx, `SELECT blob FROM parts WHERE project = ? AND bucket = ? AND upload_id = ? AND number = ?`,
			p.Project, p.Bucket, p.UploadID, p.Number).Scan(&old)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO parts (project, bucket, upload_id, number, size, etag, modified_at, blob)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (project, bucket, upload_id, number) DO UPDATE SET size = excluded.size, etag = excluded.etag,
				modified_at = excluded.modified_at, blob = excluded.blob`,
			p.Project, p.Bucket, p.UploadID, p.Number, p.Size, p.ETag, unixNano(p.ModTime), p.BlobKey)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("put part %d of %s: %w", p.Number, p.UploadID, err)
	}
	return old, nil
}

// ListParts implements store.Objects.
func (db *DB) ListParts(ctx context.Context, project, bucket, uploadID string, after, limit int) ([]store.Part, error) {
	rows, err := db.dataR.QueryContext(ctx, `SELECT number, size, etag, modified_at, blob FROM parts
		WHERE project = ? AND bucket = ? AND upload_id = ? AND number > ? ORDER BY number LIMIT ?`,
		project, bucket, uploadID, after, listLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("list parts of %s: %w", uploadID, err)
	}
	defer rows.Close()
	var out []store.Part
	for rows.Next() {
		p := store.Part{Project: project, Bucket: bucket, UploadID: uploadID}
		var mod int64
		if err := rows.Scan(&p.Number, &p.Size, &p.ETag, &mod, &p.BlobKey); err != nil {
			return nil, fmt.Errorf("list parts of %s: %w", uploadID, err)
		}
		p.ModTime = fromUnixNano(mod)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list parts of %s: %w", uploadID, err)
	}
	return out, nil
}

// deleteUpload deletes an upload and its parts in tx, returning the parts'
// blobs.
func deleteUpload(ctx context.Context, tx *sql.Tx, project, bucket, id string) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `DELETE FROM parts WHERE project = ? AND bucket = ? AND upload_id = ? RETURNING blob`,
		project, bucket, id)
	if err != nil {
		return nil, err
	}
	var blobs []string
	for rows.Next() {
		var b string
		if err := rows.Scan(&b); err != nil {
			rows.Close()
			return nil, err
		}
		blobs = append(blobs, b)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, err
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM uploads WHERE project = ? AND bucket = ? AND id = ?`, project, bucket, id)
	if err != nil {
		return nil, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return nil, errors.Join(err, store.ErrNotFound)
	}
	return blobs, nil
}

// CompleteUpload implements store.Objects.
func (db *DB) CompleteUpload(ctx context.Context, uploadID string, used []store.Part, o store.Object) ([]string, error) {
	var obsolete []string
	err := db.dataTx(ctx, func(tx *sql.Tx) error {
		for _, p := range used {
			var blob string
			err := tx.QueryRowContext(ctx, `SELECT blob FROM parts WHERE project = ? AND bucket = ? AND upload_id = ? AND number = ?`,
				o.Project, o.Bucket, uploadID, p.Number).Scan(&blob)
			if errors.Is(err, sql.ErrNoRows) || (err == nil && blob != p.BlobKey) {
				return store.ErrPartChanged
			}
			if err != nil {
				return err
			}
		}
		parts, err := deleteUpload(ctx, tx, o.Project, o.Bucket, uploadID)
		if err != nil {
			return err
		}
		old, _, err := putObject(ctx, cachedTx{tx, db}, o)
		if err != nil {
			return err
		}
		obsolete = parts
		if old != "" {
			obsolete = append(obsolete, old)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("complete upload %s: %w", uploadID, err)
	}
	return obsolete, nil
}

// AbortUpload implements store.Objects.
func (db *DB) AbortUpload(ctx context.Context, project, bucket, uploadID string) ([]string, error) {
	var blobs []string
	err := db.dataTx(ctx, func(tx *sql.Tx) (err error) {
		blobs, err = deleteUpload(ctx, tx, project, bucket, uploadID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("abort upload %s: %w", uploadID, err)
	}
	return blobs, nil
}
