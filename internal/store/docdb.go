package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/hostless/hostless/internal/baas/docdb/filter"
)

// Errors of the document store, matched with errors.Is.
var (
	// ErrVersionMismatch: a write's IfVersion is not the document's
	// version (someone else wrote it first).
	ErrVersionMismatch = errors.New("version mismatch")
	// ErrCollectionFull: the collection holds its maximum of documents.
	ErrCollectionFull = errors.New("collection full")
)

// DocTimeFormat is how document times are stored: fixed-width UTC, so
// that they sort as strings on both stores, at microsecond precision.
const DocTimeFormat = "2006-01-02T15:04:05.000000Z"

// Collection is a collection's definition. Spec is the docdb package's
// JSON (schema, rules, limits), opaque here; Indexes are the field paths
// the store indexes.
type Collection struct {
	Project   string
	Name      string
	Spec      json.RawMessage
	Indexes   [][]string
	Count     int64 // documents it holds
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Document is one document. Data is a JSON object of the user's fields;
// ID, Version and the times are kept beside it.
type Document struct {
	Project    string
	Collection string
	ID         string
	Data       json.RawMessage
	Version    int64
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// The kinds of document writes and changes.
const (
	DocCreated = "created"
	DocUpdated = "updated"
	DocDeleted = "deleted"
)

// DocWrite is one write of a batch.
type DocWrite struct {
	// Op is DocCreated, DocUpdated or DocDeleted.
	Op         string
	Collection string
	ID         string
	// IfVersion, when > 0, is the version the document must have
	// (ErrVersionMismatch otherwise). Creates ignore it.
	IfVersion int64
	// Data is a create's document data.
	Data json.RawMessage
	// Change computes an update's new data from the current document; its
	// error aborts the batch.
	Change func(cur Document) (json.RawMessage, error)
	// Check, when set, sees the current document of an update or delete
	// before anything is written (an access rule); its error aborts the
	// batch.
	Check func(cur Document) error
	// MaxDocs, when > 0, is the most documents a create may leave in the
	// collection (ErrCollectionFull).
	MaxDocs int64
}

// DocQuery selects documents.
type DocQuery struct {
	Project    string
	Collection string
	Filter     filter.Expr // nil: all
	Sort       []filter.SortKey
	// After is the cursor of the previous page ("" for the first).
	After string
	Limit int
	// Count asks for the number of documents matching Filter.
	Count bool
}

// DocPage is a page of a list.
type DocPage struct {
	Docs []Document
	// Next is the cursor of the next page; "" when this one is the last.
	Next  string
	Count *int64
}

// Change is an entry of the change log: a document's create, update or
// delete, numbered in commit order per store.
type Change struct {
	Seq int64
	Op  string
	// Doc is the document after a create or an update, and as it was
	// before a delete.
	Doc Document
	At  time.Time
}

// DocDB stores the document database: collections, documents and the
// change log that realtime subscriptions and events read.
type DocDB interface {
	// PutCollection creates or replaces a collection's definition (its
	// documents stay) and creates its indexes; it reports whether it
	// created the collection.
	PutCollection(ctx context.Context, c Collection) (bool, error)
	// GetCollection returns a collection, or ErrNotFound.
	GetCollection(ctx context.Context, project, name string) (Collection, error)
	// ListCollections returns a project's collections ordered by name.
	ListCollections(ctx context.Context, project string) ([]Collection, error)
	// DeleteCollection deletes a collection and its documents, or returns
	// ErrNotFound.
	DeleteCollection(ctx context.Context, project, name string) error

	// GetDocument returns a document, or ErrNotFound.
	GetDocument(ctx context.Context, project, collection, id string) (Document, error)
	// WriteDocuments applies writes in one transaction, all or none, and
	// returns the documents written (a delete's as it was), each logged as
	// a change. Errors: ErrNotFound (a collection or, for update and
	// delete, a document), ErrConflict (a create's ID exists),
	// ErrVersionMismatch, ErrCollectionFull, or Change's and Check's own.
	WriteDocuments(ctx context.Context, project string, writes []DocWrite, now time.Time) ([]Document, error)
	// ListDocuments returns a page of documents in Sort order (then by ID).
	// A cursor that doesn't decode, or whose sort differs, is
	// function.ErrInvalid.
	ListDocuments(ctx context.Context, q DocQuery) (DocPage, error)

	// ChangesSince returns up to limit changes of a project with Seq >
	// after, oldest first.
	ChangesSince(ctx context.Context, project string, after int64, limit int) ([]Change, error)
	// LastChange returns the Seq of a project's newest change, or 0.
	LastChange(ctx context.Context, project string) (int64, error)
	// PruneChanges deletes the changes older than before.
	PruneChanges(ctx context.Context, before time.Time) error
}
