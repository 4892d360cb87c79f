package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hostless/hostless/internal/store"
	"github.com/hostless/hostless/internal/store/docsql"
)

var _ store.DocDB = (*DB)(nil)

// docdbMigrations build the document database's tables in data.db. Never
// edit or reorder; only append.
var docdbMigrations = []string{
	`CREATE TABLE docdb_collections (
		project TEXT NOT NULL,
		name TEXT NOT NULL,
		spec TEXT NOT NULL,
		indexes TEXT NOT NULL DEFAULT '[]',
		doc_count INTEGER NOT NULL DEFAULT 0,
		created_at INTEGER NOT NULL,
		updated_at INTEGER NOT NULL,
		PRIMARY KEY (project, name)
	);
	CREATE TABLE docs (
		project TEXT NOT NULL,
		collection TEXT NOT NULL,
		id TEXT NOT NULL,
		data TEXT NOT NULL,
		version INTEGER NOT NULL,
		created_at TEXT NOT NULL,
		updated_at TEXT NOT NULL,
		PRIMARY KEY (project, collection, id)
	);
	CREATE INDEX docs_created_at ON docs (project, collection, created_at);
	CREATE INDEX docs_updated_at ON docs (project, collection, updated_at);
	CREATE TABLE doc_changes (
		seq INTEGER PRIMARY KEY AUTOINCREMENT,
		project TEXT NOT NULL,
		collection TEXT NOT NULL,
		id TEXT NOT NULL,
		op TEXT NOT NULL,
		data TEXT NOT NULL,
		version INTEGER NOT NULL,
		created_at TEXT NOT NULL,
		updated_at TEXT NOT NULL,
		at INTEGER NOT NULL
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
	created, err := db.putCollection(ctx, c)
	if err != nil {
		return false, fmt.Errorf("put collection %s: %w", c.Name, err)
	}
	return created, nil
}

func (db *DB) putCollection(ctx context.Context, c store.Collection) (bool, error) {
	idx, err := json.Marshal(c.Indexes)
	if err != nil {
		return false, err
	}
	var ddl []string
	for _, p := range c.Indexes {
		stmt, err := docsql.CreateIndex(docsql.SQLite, p)
		if err != nil {
			return false, err
		}
		ddl = append(ddl, stmt)
	}
	tx, err := db.dataW.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	for _, stmt := range ddl {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return false, err
		}
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO docdb_collections (project, name, spec, indexes, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (project, name) DO NOTHING`,
		c.Project, c.Name, string(c.Spec), string(idx), unixNano(c.UpdatedAt), unixNano(c.UpdatedAt))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	if n == 0 {
		if _, err := tx.ExecContext(ctx, `UPDATE docdb_collections SET spec = ?, indexes = ?, updated_at = ? WHERE project = ? AND name = ?`,
			string(c.Spec), string(idx), unixNano(c.UpdatedAt), c.Project, c.Name); err != nil {
			return false, err
		}
	}
	return n == 1, tx.Commit()
}

const collectionColumns = `project, name, spec, indexes, doc_count, created_at, updated_at`

func scanCollection(row interface{ Scan(...any) error }) (store.Collection, error) {
	var (
		c            store.Collection
		spec, idx    string
		created, upd int64
	)
	if err := row.Scan(&c.Project, &c.Name, &spec, &idx, &c.Count, &created, &upd); err != nil {
		return c, err
	}
	c.Spec = json.RawMessage(spec)
	if err := json.Unmarshal([]byte(idx), &c.Indexes); err != nil {
		return c, fmt.Errorf("collection %s indexes: %w", c.Name, err)
	}
	c.CreatedAt, c.UpdatedAt = fromUnixNano(created), fromUnixNano(upd)
	return c, nil
}

// GetCollection returns a collection.
func (db *DB) GetCollection(ctx context.Context, project, name string) (store.Collection, error) {
	c, err := scanCollection(db.dataR.QueryRowContext(ctx, `SELECT `+collectionColumns+` FROM docdb_collections
		WHERE project = ? AND name = ?`, project, name))
	if err != nil {
		return c, fmt.Errorf("get collection %s: %w", name, notFound(err))
	}
	return c, nil
}

// ListCollections returns a project's collections.
func (db *DB) ListCollections(ctx context.Context, project string) ([]store.Collection, error) {
	rows, err := db.dataR.QueryContext(ctx, `SELECT `+collectionColumns+` FROM docdb_collections
		WHERE project = ? ORDER BY name LIMIT ?`, project, store.MaxLimit)
	if err != nil {
		return nil, fmt.Errorf("list collections: %w", err)
	}
	defer rows.Close()
	var cs []store.Collection
	for rows.Next() {
		c, err := scanCollection(rows)
		if err != nil {
			return nil, fmt.Errorf("list collections: %w", err)
		}
		cs = append(cs, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list collections: %w", err)
	}
	return cs, nil
}

// DeleteCollection deletes a collection and its documents.
func (db *DB) DeleteCollection(ctx context.Context, project, name string) error {
	if err := db.deleteCollection(ctx, project, name); err != nil {
		return fmt.Errorf("delete collection %s: %w", name, err)
	}
	return nil
}

func (db *DB) deleteCollection(ctx context.Context, project, name string) error {
	tx, err := db.dataW.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM docdb_collections WHERE project = ? AND name = ?`, project, name)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return store.ErrNotFound
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM docs WHERE project = ? AND collection = ?`, project, name); err != nil {
		return err
	}
	return tx.Commit()
}

const docColumns = `project, collection, id, data, version, created_at, updated_at`

func scanDoc(row interface{ Scan(...any) error }) (store.Document, error) {
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
	d, err := scanDoc(db.dataR.QueryRowContext(ctx, `SELECT `+docColumns+` FROM docs
		WHERE project = ? AND collection = ? AND id = ?`, project, collection, id))
	if err != nil {
		return d, fmt.Errorf("get document %s/%s: %w", collection, id, notFound(err))
	}
	return d, nil
}

// WriteDocuments applies writes in one transaction. Concurrent calls
// commit together (group commit, see write): each call's writes run under
// a savepoint of one shared transaction, so one call's failure rolls back
// its writes alone, and one fsync acknowledges them all.
func (db *DB) WriteDocuments(ctx context.Context, project string, writes []store.DocWrite, now time.Time) ([]store.Document, error) {
	var docs []store.Document
	// One write fails clean (before writing, or undoing what it wrote) but
	// for a broken database: it needs no savepoint.
	err := db.write(ctx, len(writes) == 1, func(ctx context.Context, tx cachedTx) (dirty bool, err error) {
		docs, dirty, err = writeDocuments(ctx, tx, project, writes, now)
		return dirty, err
	})
	if err != nil {
		return nil, fmt.Errorf("write documents: %w", err)
	}
	return docs, nil
}

// writeDocuments applies writes in tx. When it fails, dirty says whether
// it left writes behind (a savepoint or the transaction must undo them);
// a clean failure left tx as it found it.
func writeDocuments(ctx context.Context, tx cachedTx, project string, writes []store.DocWrite, now time.Time) (docs []store.Document, dirty bool, err error) {
	docs, err = writeDocs(ctx, tx, project, writes, now, &dirty)
	return docs, dirty, err
}

func writeDocs(ctx context.Context, tx cachedTx, project string, writes []store.DocWrite, now time.Time, dirty *bool) ([]store.Document, error) {
	ts := now.UTC().Format(store.DocTimeFormat)
	at := unixNano(now)
	out := make([]store.Document, 0, len(writes))
	for _, w := range writes {
		var (
			d     store.Document
			delta int64
		)
		switch w.Op {
		case store.DocCreated:
			// Count first: the row is the collection's existence and its
			// size at once; a refusal below rolls the increment back.
			var count int64
			if err := tx.queryRow(ctx, `UPDATE docdb_collections SET doc_count = doc_count + 1 WHERE project = ? AND name = ? RETURNING doc_count`,
				project, w.Collection).Scan(&count); err != nil {
				return nil, fmt.Errorf("collection %s: %w", w.Collection, notFound(err))
			}
			undo := func(err error) ([]store.Document, error) {
				if _, uerr := tx.exec(ctx, `UPDATE docdb_collections SET doc_count = doc_count - 1 WHERE project = ? AND name = ?`,
					project, w.Collection); uerr != nil {
					*dirty = true
				}
				return nil, err
			}
			if w.MaxDocs > 0 && count > w.MaxDocs {
				return undo(fmt.Errorf("collection %s holds %d documents: %w", w.Collection, count-1, store.ErrCollectionFull))
			}
			d = store.Document{Project: project, Collection: w.Collection, ID: w.ID, Data: w.Data, Version: 1}
			d.CreatedAt, _ = time.Parse(store.DocTimeFormat, ts)
			d.UpdatedAt = d.CreatedAt
			_, err := tx.exec(ctx, `INSERT INTO docs (`+docColumns+`) VALUES (?, ?, ?, ?, 1, ?, ?)`,
				project, w.Collection, w.ID, string(w.Data), ts, ts)
			if isConstraint(err) {
				return undo(fmt.Errorf("document %s/%s: %w", w.Collection, w.ID, store.ErrConflict))
			}
			if err != nil {
				*dirty = true
				return nil, err
			}
			*dirty = true
		case store.DocUpdated, store.DocDeleted:
			cur, err := scanDoc(tx.queryRow(ctx, `SELECT `+docColumns+` FROM docs
				WHERE project = ? AND collection = ? AND id = ?`, project, w.Collection, w.ID))
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
			var data json.RawMessage
			if w.Op == store.DocUpdated {
				if data, err = w.Change(cur); err != nil {
					return nil, err
				}
			}
			*dirty = true // from here on, a failure may leave a write behind
			if w.Op == store.DocDeleted {
				if _, err := tx.exec(ctx, `DELETE FROM docs WHERE project = ? AND collection = ? AND id = ?`,
					project, w.Collection, w.ID); err != nil {
					return nil, err
				}
				delta = -1
				break
			}
			d.Data, d.Version = data, cur.Version+1
			d.UpdatedAt, _ = time.Parse(store.DocTimeFormat, ts)
			if _, err := tx.exec(ctx, `UPDATE docs SET data = ?, version = ?, updated_at = ?
				WHERE project = ? AND collection = ? AND id = ?`, string(data), d.Version, ts, project, w.Collection, w.ID); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("unknown write %q", w.Op)
		}
		if delta != 0 {
			if _, err := tx.exec(ctx, `UPDATE docdb_collections SET doc_count = doc_count + ? WHERE project = ? AND name = ?`,
				delta, project, w.Collection); err != nil {
				return nil, err
			}
		}
		if _, err := tx.exec(ctx, `INSERT INTO doc_changes (project, collection, id, op, data, version, created_at, updated_at, at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, project, d.Collection, d.ID, w.Op, string(d.Data), d.Version,
			d.CreatedAt.Format(store.DocTimeFormat), d.UpdatedAt.Format(store.DocTimeFormat), at); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// ChangesSince returns a project's changes after a sequence number.
func (db *DB) ChangesSince(ctx context.Context, project string, after int64, limit int) ([]store.Change, error) {
	rows, err := db.dataR.QueryContext(ctx, `SELECT seq, op, project, collection, id, data, version, created_at, updated_at, at
		FROM doc_changes WHERE project = ? AND seq > ? ORDER BY seq LIMIT ?`, project, after, store.Limit(limit))
	if err != nil {
		return nil, fmt.Errorf("read changes: %w", err)
	}
	defer rows.Close()
	var cs []store.Change
	for rows.Next() {
		var (
			c            store.Change
			data         string
			created, upd string
			at           int64
		)
		if err := rows.Scan(&c.Seq, &c.Op, &c.Doc.Project, &c.Doc.Collection, &c.Doc.ID, &data, &c.Doc.Version, &created, &upd, &at); err != nil {
			return nil, fmt.Errorf("read changes: %w", err)
		}
		c.Doc.Data = json.RawMessage(data)
		c.Doc.CreatedAt, _ = time.Parse(store.DocTimeFormat, created)
		c.Doc.UpdatedAt, _ = time.Parse(store.DocTimeFormat, upd)
		c.At = fromUnixNano(at)
		cs = append(cs, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read changes: %w", err)
	}
	return cs, nil
}

// LastChange returns the newest change's sequence number.
func (db *DB) LastChange(ctx context.Context, project string) (int64, error) {
	var seq sql.NullInt64
	if err := db.dataR.QueryRowContext(ctx, `SELECT MAX(seq) FROM doc_changes WHERE project = ?`, project).Scan(&seq); err != nil {
		return 0, fmt.Errorf("last change: %w", err)
	}
	return seq.Int64, nil
}

// PruneChanges deletes old changes.
func (db *DB) PruneChanges(ctx context.Context, before time.Time) error {
	if _, err := db.dataW.ExecContext(ctx, `DELETE FROM doc_changes WHERE at < ?`, unixNano(before)); err != nil {
		return fmt.Errorf("prune changes: %w", err)
	}
	return nil
}

// ListDocuments returns a page of documents.
func (db *DB) ListDocuments(ctx context.Context, q store.DocQuery) (store.DocPage, error) {
	p, err := listDocuments(ctx, db.dataR, docsql.SQLite, q)
	if err != nil {
		return p, fmt.Errorf("list %s: %w", q.Collection, err)
	}
	return p, nil
}

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func listDocuments(ctx context.Context, q queryer, d docsql.Dialect, dq store.DocQuery) (store.DocPage, error) {
	var page store.DocPage
	sq, err := docsql.List(d, dq)
	if err != nil {
		return page, err
	}
	rows, err := q.QueryContext(ctx, `SELECT `+docColumns+` FROM docs WHERE `+sq.Where+` ORDER BY `+sq.OrderBy+` LIMIT `+fmt.Sprint(sq.Limit+1), sq.Args...)
	if err != nil {
		return page, err
	}
	defer rows.Close()
	for rows.Next() {
		doc, err := scanDoc(rows)
		if err != nil {
			return page, err
		}
		page.Docs = append(page.Docs, doc)
	}
	if err := rows.Err(); err != nil {
		return page, err
	}
	if page.Next, err = sq.Next(&page.Docs); err != nil {
		return page, err
	}
	if dq.Count {
		var n int64
		if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM docs WHERE `+sq.CountWhere, sq.CountArgs...).Scan(&n); err != nil {
			return page, err
		}
		page.Count = &n
	}
	return page, nil
}
