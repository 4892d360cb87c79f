package docsql

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/hostless/hostless/internal/baas/docdb/filter"
	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
)

// ListSQL is the SQL of one page of a list: SELECT ... FROM docs WHERE
// Where ORDER BY OrderBy LIMIT Limit+1 (the extra row tells whether there
// is a next page), and SELECT COUNT(*) FROM docs WHERE CountWhere.
type ListSQL struct {
	Where      string
	Args       []any
	CountWhere string
	CountArgs  []any
	OrderBy    string
	Limit      int
	keys       []filter.SortKey
	d          Dialect
}

// List compiles q for dialect d. Errors about the filter, the sort or
// the cursor wrap function.ErrInvalid: they are the client's to fix.
func List(d Dialect, q store.DocQuery) (*ListSQL, error) {
	invalid := func(err error) error { return fmt.Errorf("%w: %w", function.ErrInvalid, err) }
	l := &ListSQL{Limit: store.Limit(q.Limit), keys: q.Sort, d: d}
	l.Where = "project = " + d.Placeholder(1) + " AND collection = " + d.Placeholder(2)
	l.Args = []any{q.Project, q.Collection}
	if q.Filter != nil {
		w, a, err := Compile(d, q.Filter, len(l.Args))
		if err != nil {
			return nil, invalid(err)
		}
		l.Where += " AND (" + w + ")"
		l.Args = append(l.Args, a...)
	}
	l.CountWhere, l.CountArgs = l.Where, append([]any(nil), l.Args...)
	if q.After != "" {
		c, err := DecodeCursor(q.Sort, q.After)
		if err != nil {
			return nil, invalid(err)
		}
		w, a, err := After(d, q.Sort, c, len(l.Args))
		if err != nil {
			return nil, invalid(err)
		}
		l.Where += " AND (" + w + ")"
		l.Args = append(l.Args, a...)
	}
	var err error
	if l.OrderBy, err = OrderBy(d, q.Sort); err != nil {
		return nil, invalid(err)
	}
	return l, nil
}

// Next trims the rows read (up to Limit+1) to the page and returns the
// cursor of the next page, or "" when this page is the last.
func (l *ListSQL) Next(docs *[]store.Document) (string, error) {
	if len(*docs) <= l.Limit {
		return "", nil
	}
	*docs = (*docs)[:l.Limit]
	last := (*docs)[l.Limit-1]
	c, err := NewCursor(l.keys, last.Data, last.ID, last.CreatedAt.UTC().Format(store.DocTimeFormat), last.UpdatedAt.UTC().Format(store.DocTimeFormat))
	if err != nil {
		return "", err
	}
	return EncodeCursor(l.keys, c)
}

// CreateIndex returns the statement that indexes a field of documents
// for dialect d, idempotent: its name is derived from the path, so that
// collections indexing the same field share the index. It leads with
// project and collection and ends with created_at and id, so that a filter
// of equalities on the field lists in creation order (the default sort,
// and what "my documents, newest first" asks) by reading only the rows it
// returns.
func CreateIndex(d Dialect, path []string) (string, error) {
	expr, err := IndexExpr(d, path)
	if err != nil {
		return "", err
	}
	if len(path) == 1 && columns[path[0]] {
		return "", errors.New("id, created_at and updated_at are indexed already")
	}
	sum := sha256.Sum256([]byte(strings.Join(path, ".")))
	return "CREATE INDEX IF NOT EXISTS docs_fc_" + hex.EncodeToString(sum[:8]) + " ON docs (project, collection, " + expr + ", created_at, id)", nil
}
