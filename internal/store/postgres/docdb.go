package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hostless/hostless/internal/store"
	"github.com/hostless/hostless/internal/store/docsql"
	"github.com/jackc/pgx/v5"
)

var _ store.DocDB = (*DB)(nil)

// docdbMigrations build the document database's tables. Text columns that
// filters compare or sort are COLLATE "C" (byte order, as in SQLite), so
// that an index serves the compiled SQL. Never edit or reorder; only
// append.
var docdbMigrations = []string{
	`CREATE TABLE docdb_collections (
		project text NOT NULL,
		name text NOT NULL,
		spec jsonb NOT NULL,
		indexes jsonb NOT NULL DEFAULT '[]',
		doc_count bigint NOT NULL DEFAULT 0,
		created_at timestamptz NOT NULL,
		updated_at timestamptz NOT NULL,
		PRIMARY KEY (project, name)
	);
	CREATE TABLE docs (
		project text COLLATE "C" NOT NULL,
		collection text COLLATE "C" NOT NULL,
		id text COLLATE "C" NOT NULL,
		data jsonb NOT NULL,
		version bigint NOT NULL,
		created_at text COLLATE "C" NOT NULL,
		updated_at text COLLATE "C" NOT NULL,
		PRIMARY KEY (project, collection, id)
	);
	CREATE INDEX docs_created_at ON docs (project, collection, created_at);
	CREATE INDEX docs_updated_at ON docs (project, collection, updated_at);
	CREATE TABLE doc_changes (
		seq bigserial PRIMARY KEY,
		project text NOT NULL,
		collection text NOT NULL,
		id text NOT NULL,
		op text NOT NULL,
		data jsonb NOT NULL,
		version bigint NOT NULL,
		created_at text NOT NULL,
		updated_at text NOT NULL,
		at timestamptz NOT NULL
	);
	CREATE INDEX doc_changes_project ON doc_changes (project, seq);
	CREATE INDEX doc_changes_at ON doc_changes (at)`,
	// Times sort with id as the tie-breaker: the index orders a page whole.
	`DROP INDEX docs_created_at;
	DROP INDEX docs_updated_at;
	CREATE INDEX docs_created_at_id ON docs (project, collection, created_at, id);
	CREATE INDEX docs_updated_at_id ON docs (project, collection, updated_at, id)`,
}

// PutCollection creates or replaces a collection and creates its indexes.
func (db *DB) PutCollection(ctx context.Context, c store.Collection) (bool, error) {
	idx, err := json.Marshal(c.Indexes)
	if err != nil {
		return false, fmt.Errorf("put collection %s: %w", c.Name, err)
	}
	var ddl []string
	for _, p := range c.Indexes {
		stmt, err := docsql.CreateIndex(docsql.Postgres, p)
		if err != nil {
			return false, fmt.Errorf("put collection %s: %w", c.Name, err)
		}
		ddl = append(ddl, stmt)
	}
	var created bool
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		// Concurrent CREATE INDEX IF NOT EXISTS of one name can fail on
		// PostgreSQL's catalog; one collection change at a time.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockDocIndexes); err != nil {
			return err
		}
		for _, stmt := range ddl {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return err
			}
		}
		return tx.QueryRow(ctx, `INSERT INTO docdb_collections (project, name, spec, indexes, created_at, updated_at)
			VALUES ($1, $2, $3::text::jsonb, $4::text::jsonb, $5, $5) ON CONFLICT (project, name) DO UPDATE
			SET spec = excluded.spec, indexes = excluded.indexes, updated_at = excluded.updated_at
			RETURNING (xmax = 0)`, c.Project, c.Name, string(c.Spec), string(idx), c.UpdatedAt.UTC()).Scan(&created)
	})
	if err != nil {
		return false, fmt.Errorf("put collection %s: %w", c.Name, err)
	}
	return created, nil
}

const collectionColumns = `project, name, spec::text, indexes::text, doc_count, created_at, updated_at`

func scanCollection(row pgx.Row) (store.Collection, error) {
	var (
		c         store.Collection
		spec, idx string
	)
	if err := row.Scan(&c.Project, &c.Name, &spec, &idx, &c.Count, &c.CreatedAt, &c.UpdatedAt); err != nil {
		return c, err
	}
	c.Spec = json.RawMessage(spec)
	if err := json.Unmarshal([]byte(idx), &c.Indexes); err != nil {
		return c, fmt.Errorf("collection %s indexes: %w", c.Name, err)
	}
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	return c, nil
}

// GetCollection returns a collection.
func (db *DB) GetCollection(ctx context.Context, project, name string) (store.Collection, error) {
	c, err := scanCollection(db.pool.QueryRow(ctx, `SELECT `+collectionColumns+` FROM docdb_collections
		WHERE project = $1 AND name = $2`, project, name))
	if err != nil {
		return c, fmt.Errorf("get collection %s: %w", name, notFound(err))
	}
	return c, nil
}

// ListCollections returns a project's collections.
func (db *DB) ListCollections(ctx context.Context, project string) ([]store.Collection, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+collectionColumns+` FROM docdb_collections
		WHERE project = $1 ORDER BY name COLLATE "C" LIMIT $2`, project, store.MaxLimit)
	if err != nil {
		return nil, fmt.Errorf("list collections: %w", err)
	}
	cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Collection, error) { return scanCollection(r) })
	if err != nil {
		return nil, fmt.Errorf("list collections: %w", err)
	}
	return cs, nil
}

// DeleteCollection deletes a collection and its documents.
func (db *DB) DeleteCollection(ctx context.Context, project, name string) error {
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM docdb_collections WHERE project = $1 AND name = $2`, project, name)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrNotFound
		}
		_, err = tx.Exec(ctx, `DELETE FROM docs WHERE project = $1 AND collection = $2`, project, name)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete collection %s: %w", name, err)
	}
	return nil
}

const docColumns = `project, collection, id, data::text, version, created_at, updated_at`

func scanDoc(row pgx.Row) (store.Document, error) {
	var (
		d            store.Document
		data         string
		created, upd string
	)
	if err := row.Scan(&d.Project, &d.Collection, &d.ID, &data, &d.Version, &created, &upd); err != nil {
		return d, err
	}
	d.Data = json.RawMessage(data)
	var err error
	if d.CreatedAt, err = time.Parse(store.DocTimeFormat, created); err != nil {
		return d, err
	}
	if d.UpdatedAt, err = time.Parse(store.DocTimeFormat, upd); err != nil {
		return d, err
	}
	return d, nil
}

// GetDocument returns a document.
func (db *DB) GetDocument(ctx context.Context, project, collection, id string) (store.Document, error) {
	d, err := scanDoc(db.pool.QueryRow(ctx, `SELECT `+docColumns+` FROM docs
		WHERE project = $1 AND collection = $2 AND id = $3`, project, collection, id))
	if err != nil {
		return d, fmt.Errorf("get document %s/%s: %w", collection, id, notFound(err))
	}
	return d, nil
}

// WriteDocuments applies writes in one transaction.
func (db *DB) WriteDocuments(ctx context.Context, project string, writes []store.DocWrite, now time.Time) ([]store.Document, error) {
	var out []store.Document
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var err error
		out, err = writeDocuments(ctx, tx, project, writes, now)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("write documents: %w", err)
	}
	return out, nil
}

func writeDocuments(ctx context.Context, tx pgx.Tx, project string, writes []store.DocWrite, now time.Time) ([]store.Document, error) {
	ts := now.UTC().Format(store.DocTimeFormat)
	tsTime, _ := time.Parse(store.DocTimeFormat, ts)
	out := make([]store.Document, 0, len(writes))
	ops := make([]string, 0, len(writes))
	for _, w := range writes {
		var (
			d     store.Document
			delta int64
		)
		switch w.Op {
		case store.DocCreated:
			// The collection's row is locked by the count update below;
			// read it locked so that MaxDocs holds under concurrency.
			var count int64
			if err := tx.QueryRow(ctx, `SELECT doc_count FROM docdb_collections WHERE project = $1 AND name = $2 FOR UPDATE`,
				project, w.Collection).Scan(&count); err != nil {
				return nil, fmt.Errorf("collection %s: %w", w.Collection, notFound(err))
			}
			if w.MaxDocs > 0 && count >= w.MaxDocs {
				return nil, fmt.Errorf("collection %s holds %d documents: %w", w.Collection, count, store.ErrCollectionFull)
			}
			d = store.Document{Project: project, Collection: w.Collection, ID: w.ID, Data: w.Data, Version: 1, CreatedAt: tsTime, UpdatedAt: tsTime}
			tag, err := tx.Exec(ctx, `INSERT INTO docs (project, collection, id, data, version, created_at, updated_at)
				VALUES ($1, $2, $3, $4::text::jsonb, 1, $5, $5) ON CONFLICT DO NOTHING`, project, w.Collection, w.ID, string(w.Data), ts)
			if err != nil {
				return nil, err
			}
			if tag.RowsAffected() == 0 {
				return nil, fmt.Errorf("document %s/%s: %w", w.Collection, w.ID, store.ErrConflict)
			}
			delta = 1
		case store.DocUpdated, store.DocDeleted:
			cur, err := scanDoc(tx.QueryRow(ctx, `SELECT `+docColumns+` FROM docs
				WHERE project = $1 AND collection = $2 AND id = $3 FOR UPDATE`, project, w.Collection, w.ID))
			if err != nil {
				return nil, fmt.Errorf("document %s/%s: %w", w.Collection, w.ID, notFound(err))
			}
			if w.IfVersion > 0 && cur.Version != w.IfVersion {
				return nil, fmt.Errorf("document %s/%s is at version %d, not %d: %w", w.Collection, w.ID, cur.Version, w.IfVersion, store.ErrVersionMismatch)
			}
			if w.Check != nil {
				if err := w.Check(cur); err != nil {
					return nil, err
				}
			}
			d = cur
			if w.Op == store.DocDeleted {
				if _, err := tx.Exec(ctx, `DELETE FROM docs WHERE project = $1 AND collection = $2 AND id = $3`,
					project, w.Collection, w.ID); err != nil {
					return nil, err
				}
				delta = -1
				break
			}
			data, err := w.Change(cur)
			if err != nil {
				return nil, err
			}
			d.Data, d.Version, d.UpdatedAt = data, cur.Version+1, tsTime
			if _, err := tx.Exec(ctx, `UPDATE docs SET data = $1::text::jsonb, version = $2, updated_at = $3
				WHERE project = $4 AND collection = $5 AND id = $6`, string(data), d.Version, ts, project, w.Collection, w.ID); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("unknown write %q", w.Op)
		}
		if delta != 0 {
			tag, err := tx.Exec(ctx, `UPDATE docdb_collections SET doc_count = doc_count + $1 WHERE project = $2 AND name = $3`,
				delta, project, w.Collection)
			if err != nil {
				return nil, err
			}
			if tag.RowsAffected() == 0 {
				return nil, fmt.Errorf("collection %s: %w", w.Collection, store.ErrNotFound)
			}
		}
		out = append(out, d)
		ops = append(ops, w.Op)
	}
	// The change log's numbers must follow commit order, or a reader that
	// saw number n+1 before n committed would skip n for good: the changes
	// go in last, under a per-project lock held until this commit.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('hostless doc_changes ' || $1, 0))`, project); err != nil {
		return nil, err
	}
	for i, d := range out {
		if _, err := tx.Exec(ctx, `INSERT INTO doc_changes (project, collection, id, op, data, version, created_at, updated_at, at)
			VALUES ($1, $2, $3, $4, $5::text::jsonb, $6, $7, $8, $9)`, project, d.Collection, d.ID, ops[i], string(d.Data), d.Version,
			d.CreatedAt.Format(store.DocTimeFormat), d.UpdatedAt.Format(store.DocTimeFormat), now.UTC()); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ChangesSince returns a project's changes after a sequence number.
func (db *DB) ChangesSince(ctx context.Context, project string, after int64, limit int) ([]store.Change, error) {
	rows, err := db.pool.Query(ctx, `SELECT seq, op, project, collection, id, data::text, version, created_at, updated_at, at
		FROM doc_changes WHERE project = $1 AND seq > $2 ORDER BY seq LIMIT $3`, project, after, store.Limit(limit))
	if err != nil {
		return nil, fmt.Errorf("read changes: %w", err)
	}
	cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Change, error) {
		var (
			c            store.Change
			data         string
			created, upd string
		)
		err := r.Scan(&c.Seq, &c.Op, &c.Doc.Project, &c.Doc.Collection, &c.Doc.ID, &data, &c.Doc.Version, &created, &upd, &c.At)
		c.Doc.Data = json.RawMessage(data)
		c.Doc.CreatedAt, _ = time.Parse(store.DocTimeFormat, created)
		c.Doc.UpdatedAt, _ = time.Parse(store.DocTimeFormat, upd)
		c.At = c.At.UTC()
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("read changes: %w", err)
	}
	return cs, nil
}

// LastChange returns the newest change's sequence number.
func (db *DB) LastChange(ctx context.Context, project string) (int64, error) {
	var seq *int64
	if err := db.pool.QueryRow(ctx, `SELECT MAX(seq) FROM doc_changes WHERE project = $1`, project).Scan(&seq); err != nil {
		return 0, fmt.Errorf("last change: %w", err)
	}
	if seq == nil {
		return 0, nil
	}
	return *seq, nil
}

// PruneChanges deletes old changes.
func (db *DB) PruneChanges(ctx context.Context, before time.Time) error {
	if _, err := db.pool.Exec(ctx, `DELETE FROM doc_changes WHERE at < $1`, before.UTC()); err != nil {
		return fmt.Errorf("prune changes: %w", err)
	}
	return nil
}

// ListDocuments returns a page of documents.
func (db *DB) ListDocuments(ctx context.Context, q store.DocQuery) (store.DocPage, error) {
	var page store.DocPage
	sq, err := docsql.List(docsql.Postgres, q)
	if err != nil {
		return page, fmt.Errorf("list %s: %w", q.Collection, err)
	}
	rows, err := db.pool.Query(ctx, `SELECT `+docColumns+` FROM docs WHERE `+sq.Where+` ORDER BY `+sq.OrderBy+` LIMIT `+fmt.Sprint(sq.Limit+1), sq.Args...)
	if err != nil {
		return page, fmt.Errorf("list %s: %w", q.Collection, err)
	}
	page.Docs, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Document, error) { return scanDoc(r) })
	if err != nil {
		return page, fmt.Errorf("list %s: %w", q.Collection, err)
	}
	if page.Next, err = sq.Next(&page.Docs); err != nil {
		return page, fmt.Errorf("list %s: %w", q.Collection, err)
	}
	if q.Count {
		var n int64
		if err := db.pool.QueryRow(ctx, `SELECT COUNT(*) FROM docs WHERE `+sq.CountWhere, sq.CountArgs...).Scan(&n); err != nil {
			return page, fmt.Errorf("count %s: %w", q.Collection, err)
		}
		page.Count = &n
	}
	return page, nil
}
