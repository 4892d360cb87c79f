package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/hostless/hostless/internal/store"
)

var _ store.Objects = (*DB)(nil)

// objectMigrations build the object storage's tables. Keys sort by bytes
// (COLLATE "C"), the order S3 lists them in, and the primary keys are the
// listing indexes. meta holds user metadata and stored headers.
var objectMigrations = []string{
	`CREATE TABLE buckets (
		project    text        NOT NULL,
		name       text        COLLATE "C" NOT NULL,
		created_at timestamptz NOT NULL,
		PRIMARY KEY (project, name)
	)`,
	`CREATE TABLE objects (
		project      text        NOT NULL,
		bucket       text        COLLATE "C" NOT NULL,
		key          text        COLLATE "C" NOT NULL,
		size         bigint      NOT NULL,
		etag         text        NOT NULL,
		content_type text        NOT NULL,
		meta         jsonb       NOT NULL,
		modified_at  timestamptz NOT NULL,
		blob         text        NOT NULL,
		PRIMARY KEY (project, bucket, key),
		FOREIGN KEY (project, bucket) REFERENCES buckets (project, name)
	)`,
	`CREATE TABLE uploads (
		project      text        NOT NULL,
		bucket       text        COLLATE "C" NOT NULL,
		id           text        COLLATE "C" NOT NULL,
		key          text        COLLATE "C" NOT NULL,
		content_type text        NOT NULL,
		meta         jsonb       NOT NULL,
		created_at   timestamptz NOT NULL,
		PRIMARY KEY (project, bucket, id),
		FOREIGN KEY (project, bucket) REFERENCES buckets (project, name)
	)`,
	`CREATE TABLE parts (
		project     text        NOT NULL,
		bucket      text        COLLATE "C" NOT NULL,
		upload_id   text        COLLATE "C" NOT NULL,
		number      integer     NOT NULL,
		size        bigint      NOT NULL,
		etag        text        NOT NULL,
		modified_at timestamptz NOT NULL,
		blob        text        NOT NULL,
		PRIMARY KEY (project, bucket, upload_id, number),
		FOREIGN KEY (project, bucket, upload_id) REFERENCES uploads (project, bucket, id) ON DELETE CASCADE
	)`,
}

func encodeMeta(m store.ObjectMeta) (string, error) {
	b, err := json.Marshal(m)
	return string(b), err
}

func decodeMeta(b []byte, m *store.ObjectMeta) error {
	return json.Unmarshal(b, m)
}

// isForeignKeyViolation reports a write that names a missing row (or a
// delete of a row still named).
func isForeignKeyViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503"
}

// CreateBucket implements store.Objects.
func (db *DB) CreateBucket(ctx context.Context, b store.Bucket) error {
	tag, err := db.pool.Exec(ctx, `INSERT INTO buckets (project, name, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
		b.Project, b.Name, b.CreatedAt.UTC())
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", b.Name, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("create bucket %s: %w", b.Name, store.ErrBucketExists)
	}
	return nil
}

// GetBucket implements store.Objects.
func (db *DB) GetBucket(ctx context.Context, project, name string) (store.Bucket, error) {
	b := store.Bucket{Project: project, Name: name}
	err := db.pool.QueryRow(ctx, `SELECT created_at FROM buckets WHERE project = $1 AND name = $2`, project, name).Scan(&b.CreatedAt)
	if err != nil {
		return store.Bucket{}, fmt.Errorf("get bucket %s: %w", name, notFound(err))
	}
	b.CreatedAt = b.CreatedAt.UTC()
	return b, nil
}

// ListBuckets implements store.Objects.
func (db *DB) ListBuckets(ctx context.Context, project string) ([]store.Bucket, error) {
	rows, err := db.pool.Query(ctx, `SELECT name, created_at FROM buckets WHERE project = $1 ORDER BY name`, project)
	if err != nil {
		return nil, fmt.Errorf("list buckets: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Bucket, error) {
		b := store.Bucket{Project: project}
		err := row.Scan(&b.Name, &b.CreatedAt)
		b.CreatedAt = b.CreatedAt.UTC()
		return b, err
	})
	if err != nil {
		return nil, fmt.Errorf("list buckets: %w", err)
	}
	return out, nil
}

// DeleteBucket implements store.Objects.
func (db *DB) DeleteBucket(ctx context.Context, project, name string) error {
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var n int
		err := tx.QueryRow(ctx, `SELECT
			(SELECT COUNT(*) FROM (SELECT 1 FROM objects WHERE project = $1 AND bucket = $2 LIMIT 1) o) +
			(SELECT COUNT(*) FROM (SELECT 1 FROM uploads WHERE project = $1 AND bucket = $2 LIMIT 1) u)`,
			project, name).Scan(&n)
		if err != nil {
			return err
		}
		if n > 0 {
			return store.ErrBucketNotEmpty
		}
		tag, err := tx.Exec(ctx, `DELETE FROM buckets WHERE project = $1 AND name = $2`, project, name)
		if isForeignKeyViolation(err) {
			return store.ErrBucketNotEmpty // an object arrived meanwhile
		}
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete bucket %s: %w", name, err)
	}
	return nil
}

// putObject writes o in tx and returns the blob it replaced. The old row
// is locked before it is read, so two writers of one key each learn the
// blob the other wrote.
func putObject(ctx context.Context, tx pgx.Tx, o store.Object) (string, error) {
	meta, err := encodeMeta(o.ObjectMeta)
	if err != nil {
		return "", err
	}
	for range 8 {
		var old string
		err := tx.QueryRow(ctx, `SELECT blob FROM objects WHERE project = $1 AND bucket = $2 AND key = $3 FOR UPDATE`,
			o.Project, o.Bucket, o.Key).Scan(&old)
		switch {
		case err == nil:
			_, err = tx.Exec(ctx, `UPDATE objects SET size = $4, etag = $5, content_type = $6, meta = $7, modified_at = $8, blob = $9
				WHERE project = $1 AND bucket = $2 AND key = $3`,
				o.Project, o.Bucket, o.Key, o.Size, o.ETag, o.ContentType, meta, o.ModTime.UTC(), o.BlobKey)
			return old, err
		case !errors.Is(err, pgx.ErrNoRows):
			return "", err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO objects (project, bucket, key, size, etag, content_type, meta, modified_at, blob)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING`,
			o.Project, o.Bucket, o.Key, o.Size, o.ETag, o.ContentType, meta, o.ModTime.UTC(), o.BlobKey)
		if isForeignKeyViolation(err) {
			return "", store.ErrNotFound // no bucket
		}
		if err != nil {
			return "", err
		}
		if tag.RowsAffected() == 1 {
			return "", nil
		}
		// A concurrent writer inserted the key first: lock its row.
	}
	return "", errors.New("put object: too much contention on one key")
}

// PutObject implements store.Objects.
func (db *DB) PutObject(ctx context.Context, o store.Object) (string, error) {
	var old string
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) (err error) {
		old, err = putObject(ctx, tx, o)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("put object %s/%s: %w", o.Bucket, o.Key, err)
	}
	return old, nil
}

const objectColumns = `key, size, etag, content_type, meta, modified_at, blob`

func scanObject(row pgx.Row, o *store.Object) error {
	var meta []byte
	if err := row.Scan(&o.Key, &o.Size, &o.ETag, &o.ContentType, &meta, &o.ModTime, &o.BlobKey); err != nil {
		return err
	}
	o.ModTime = o.ModTime.UTC()
	return decodeMeta(meta, &o.ObjectMeta)
}

// GetObject implements store.Objects.
func (db *DB) GetObject(ctx context.Context, project, bucket, key string) (store.Object, error) {
	o := store.Object{Project: project, Bucket: bucket}
	row := db.pool.QueryRow(ctx, `SELECT `+objectColumns+` FROM objects WHERE project = $1 AND bucket = $2 AND key = $3`,
		project, bucket, key)
	if err := scanObject(row, &o); err != nil {
		return store.Object{}, fmt.Errorf("get object %s/%s: %w", bucket, key, notFound(err))
	}
	return o, nil
}

// DeleteObject implements store.Objects.
func (db *DB) DeleteObject(ctx context.Context, project, bucket, key string) (string, error) {
	var blob string
	err := db.pool.QueryRow(ctx, `DELETE FROM objects WHERE project = $1 AND bucket = $2 AND key = $3 RETURNING blob`,
		project, bucket, key).Scan(&blob)
	if err != nil {
		return "", fmt.Errorf("delete object %s/%s: %w", bucket, key, notFound(err))
	}
	return blob, nil
}

// ListObjects implements store.Objects.
func (db *DB) ListObjects(ctx context.Context, f store.ObjectFilter) ([]store.Object, error) {
	var q strings.Builder
	q.WriteString(`SELECT ` + objectColumns + ` FROM objects WHERE project = $1 AND bucket = $2`)
	args := []any{f.Project, f.Bucket}
	cond := func(op, v string) {
		args = append(args, v)
		q.WriteString(` AND key ` + op + ` $` + strconv.Itoa(len(args)))
	}
	if f.Prefix != "" {
		cond(">=", f.Prefix)
		if end, ok := store.PrefixEnd(f.Prefix); ok {
			cond("<", end)
		}
	}
	if f.After != "" {
		cond(">", f.After)
	}
	if f.From != "" {
		cond(">=", f.From)
	}
	args = append(args, listLimit(f.Limit))
	q.WriteString(` ORDER BY key LIMIT $` + strconv.Itoa(len(args)))
	rows, err := db.pool.Query(ctx, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("list objects %s: %w", f.Bucket, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Object, error) {
		o := store.Object{Project: f.Project, Bucket: f.Bucket}
		return o, scanObject(row, &o)
	})
	if err != nil {
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
	_, err = db.pool.Exec(ctx, `INSERT INTO uploads (project, bucket, id, key, content_type, meta, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, u.Project, u.Bucket, u.ID, u.Key, u.ContentType, meta, u.CreatedAt.UTC())
	if isForeignKeyViolation(err) {
		err = store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("create upload %s/%s: %w", u.Bucket, u.Key, err)
	}
	return nil
}

// GetUpload implements store.Objects.
func (db *DB) GetUpload(ctx context.Context, project, bucket, id string) (store.Upload, error) {
	u := store.Upload{Project: project, Bucket: bucket, ID: id}
	var meta []byte
	err := db.pool.QueryRow(ctx, `SELECT key, content_type, meta, created_at FROM uploads
		WHERE project = $1 AND bucket = $2 AND id = $3`, project, bucket, id).Scan(&u.Key, &u.ContentType, &meta, &u.CreatedAt)
	if err == nil {
		err = decodeMeta(meta, &u.ObjectMeta)
	}
	if err != nil {
		return store.Upload{}, fmt.Errorf("get upload %s: %w", id, notFound(err))
	}
	u.CreatedAt = u.CreatedAt.UTC()
	return u, nil
}

// PutPart implements store.Objects. The upload's row is share-locked, so a
// concurrent Complete or Abort (which lock it for update) sees every part.
func (db *DB) PutPart(ctx context.Context, p store.Part) (string, error) {
	var old string
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM uploads WHERE project = $1 AND bucket = $2 AND id = $3 FOR SHARE`,
			p.Project, p.Bucket, p.UploadID).Scan(&one); err != nil {
			return notFound(err)
		}
		// The share lock serializes this against Complete and Abort, not
		// against another PutPart of the same number: the part's row
		// lock does.
		err := tx.QueryRow(ctx, `SELECT blob FROM parts WHERE project = $1 AND bucket = $2 AND upload_id = $3 AND number = $4 FOR UPDATE`,
			p.Project, p.Bucket, p.UploadID, p.Number).Scan(&old)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if err == nil {
			_, err = tx.Exec(ctx, `UPDATE parts SET size = $5, etag = $6, modified_at = $7, blob = $8
				WHERE project = $1 AND bucket = $2 AND upload_id = $3 AND number = $4`,
				p.Project, p.Bucket, p.UploadID, p.Number, p.Size, p.ETag, p.ModTime.UTC(), p.BlobKey)
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO parts (project, bucket, upload_id, number, size, etag, modified_at, blob)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
			p.Project, p.Bucket, p.UploadID, p.Number, p.Size, p.ETag, p.ModTime.UTC(), p.BlobKey)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errors.New("a concurrent upload of the same part number won")
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("put part %d of %s: %w", p.Number, p.UploadID, err)
	}
	return old, nil
}

// ListParts implements store.Objects.
func (db *DB) ListParts(ctx context.Context, project, bucket, uploadID string, after, limit int) ([]store.Part, error) {
	rows, err := db.pool.Query(ctx, `SELECT number, size, etag, modified_at, blob FROM parts
		WHERE project = $1 AND bucket = $2 AND upload_id = $3 AND number > $4 ORDER BY number LIMIT $5`,
		project, bucket, uploadID, after, listLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("list parts of %s: %w", uploadID, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Part, error) {
		p := store.Part{Project: project, Bucket: bucket, UploadID: uploadID}
		err := row.Scan(&p.Number, &p.Size, &p.ETag, &p.ModTime, &p.BlobKey)
		p.ModTime = p.ModTime.UTC()
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("list parts of %s: %w", uploadID, err)
	}
	return out, nil
}

// deleteUpload locks an upload, then deletes it with its parts and returns
// the parts' blobs.
func deleteUpload(ctx context.Context, tx pgx.Tx, project, bucket, id string) ([]string, error) {
	var one int
	if err := tx.QueryRow(ctx, `SELECT 1 FROM uploads WHERE project = $1 AND bucket = $2 AND id = $3 FOR UPDATE`,
		project, bucket, id).Scan(&one); err != nil {
		return nil, notFound(err)
	}
	rows, err := tx.Query(ctx, `DELETE FROM parts WHERE project = $1 AND bucket = $2 AND upload_id = $3 RETURNING blob`,
		project, bucket, id)
	if err != nil {
		return nil, err
	}
	blobs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM uploads WHERE project = $1 AND bucket = $2 AND id = $3`, project, bucket, id); err != nil {
		return nil, err
	}
	return blobs, nil
}

// CompleteUpload implements store.Objects.
func (db *DB) CompleteUpload(ctx context.Context, uploadID string, used []store.Part, o store.Object) ([]string, error) {
	var obsolete []string
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM uploads WHERE project = $1 AND bucket = $2 AND id = $3 FOR UPDATE`,
			o.Project, o.Bucket, uploadID).Scan(&one); err != nil {
			return notFound(err)
		}
		for _, p := range used {
			var blob string
			err := tx.QueryRow(ctx, `SELECT blob FROM parts WHERE project = $1 AND bucket = $2 AND upload_id = $3 AND number = $4`,
				o.Project, o.Bucket, uploadID, p.Number).Scan(&blob)
			if errors.Is(err, pgx.ErrNoRows) || (err == nil && blob != p.BlobKey) {
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
		old, err := putObject(ctx, tx, o)
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
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) (err error) {
		blobs, err = deleteUpload(ctx, tx, project, bucket, uploadID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("abort upload %s: %w", uploadID, err)
	}
	return blobs, nil
}
