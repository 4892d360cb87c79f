package docdb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hostless/hostless/internal/apierror"
	"github.com/hostless/hostless/internal/baas/auth"
	"github.com/hostless/hostless/internal/baas/docdb/filter"
	"github.com/hostless/hostless/internal/baas/rules"
	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
)

// Query is a list request.
type Query struct {
	Filter string // the filter language; "" for all
	Sort   string // "-priority,created_at"
	Cursor string
	Limit  int
	Count  bool
}

// Page is a page of a list.
type Page struct {
	Docs  []store.Document
	Next  string
	Count *int64
}

// maxScan bounds the rows a list reads to fill a page when its rule must
// be evaluated on each row: a page may come back short (with a cursor to
// go on) rather than scan a whole collection in one request.
const (
	maxScan  = 5000
	maxReads = 50
)

// narrowing turns a rule's plan into a filter: its equalities on fields
// the filter language can name. It reports whether the filter is the
// whole rule.
func narrowing(pl rules.Plan) (filter.Expr, bool) {
	var e filter.Expr
	exact := pl.Exact
	for _, eq := range pl.Eqs {
		ok := len(eq.Path) > 0 && len(eq.Path) <= filter.MaxPathLen && eq.Value != nil
		for _, s := range eq.Path {
			ok = ok && filter.ValidIdent(s)
		}
		if ok && len(eq.Path) == 1 && reserved[eq.Path[0]] && eq.Path[0] != "id" {
			// version is no column of the filter language, and times are
			// strings of one format only: leave them to the rule.
			ok = false
		}
		if !ok {
			exact = false
			continue
		}
		cmp := filter.Eq(eq.Path, eq.Value)
		if e == nil {
			e = cmp
		} else {
			e = filter.And(e, cmp)
		}
	}
	return e, exact
}

// List returns a page of the documents the caller may list that match
// the query.
func (s *Service) List(ctx context.Context, p auth.Principal, coll string, q Query) (Page, error) {
	c, err := s.collection(ctx, coll)
	if err != nil {
		return Page{}, err
	}
	d, err := decide(p, c, "list")
	if err != nil {
		return Page{}, err
	}
	var f filter.Expr
	if q.Filter != "" {
		if f, err = filter.Parse(q.Filter); err != nil {
			return Page{}, apierror.BadRequest("filter: %s", err)
		}
	}
	keys, err := filter.ParseSort(q.Sort)
	if err != nil {
		return Page{}, apierror.BadRequest("sort: %s", err)
	}
	now := time.Now()
	perRow := false
	if !d.all {
		pl := d.rule.Plan(rulesAuth(p), now)
		switch {
		case pl.Decided && !pl.Allow:
			return Page{Docs: []store.Document{}, Count: zeroIf(q.Count)}, nil
		case pl.Decided:
		default:
			n, exact := narrowing(pl)
			if n != nil {
				if f == nil {
					f = n
				} else {
					f = filter.And(f, n)
				}
			}
			perRow = !exact
		}
	}
	if perRow && q.Count {
		return Page{}, apierror.BadRequest("count: the list rule of %q is evaluated document by document, so a count would include what you can't read; leave count out", c.name)
	}
	limit := store.Limit(q.Limit)
	sq := store.DocQuery{Project: s.cfg.Project, Collection: c.name, Filter: f, Sort: keys, After: q.Cursor, Limit: limit, Count: q.Count}
	page := Page{Docs: make([]store.Document, 0, limit)}
	scanned, reads := 0, 0
	for {
		sp, err := s.cfg.Store.ListDocuments(ctx, sq)
		if errors.Is(err, function.ErrInvalid) {
			return Page{}, apierror.BadRequest("%s", strings.TrimPrefix(err.Error(), "list "+c.name+": "+function.ErrInvalid.Error()+": "))
		}
		if err != nil {
			return Page{}, err
		}
		if sq.Count {
			page.Count, sq.Count = sp.Count, false
		}
		if !perRow {
			page.Docs, page.Next = sp.Docs, sp.Next
			return page, nil
		}
		// Each read asks for what the page still lacks, so the page fills
		// at the end of a read, where the store's cursor continues.
		for _, doc := range sp.Docs {
			res, err := resource(doc)
			if err != nil {
				return Page{}, err
			}
			if s.allowAt(ctx, d, p, res, now) {
				page.Docs = append(page.Docs, doc)
			}
		}
		if len(page.Docs) == limit {
			page.Next = sp.Next
			return page, nil
		}
		scanned += len(sp.Docs)
		if sp.Next == "" {
			return page, nil
		}
		reads++
		if scanned >= maxScan || reads >= maxReads {
			page.Next = sp.Next
			return page, nil
		}
		sq.After, sq.Limit = sp.Next, limit-len(page.Docs)
	}
}

func zeroIf(b bool) *int64 {
	if !b {
		return nil
	}
	var n int64
	return &n
}

// allowAt is allow with the time the plan was made at.
func (s *Service) allowAt(ctx context.Context, d decision, p auth.Principal, res map[string]any, now time.Time) bool {
	in := rules.Input{Auth: rulesAuth(p), Resource: res, Request: map[string]any{"method": "list"}, Now: now}
	ok, err := d.rule.Eval(ctx, in)
	if err != nil {
		s.cfg.Log.Debug("a rule failed to evaluate and denied", "rule", d.rule.String(), "err", err)
		return false
	}
	return ok
}

// Fields projects a rendered document's fields to those named (top-level
// or dotted paths), keeping id, version and the times.
func parseFields(s string) ([][]string, error) {
	if s == "" {
		return nil, nil
	}
	var out [][]string
	for _, f := range strings.Split(s, ",") {
		p := strings.Split(strings.TrimSpace(f), ".")
		for _, seg := range p {
			if !filter.ValidIdent(seg) {
				return nil, fmt.Errorf("fields: %q is not a field path", f)
			}
		}
		if len(p) > filter.MaxPathLen {
			return nil, fmt.Errorf("fields: %q is too deep", f)
		}
		out = append(out, p)
	}
	if len(out) > 64 {
		return nil, errors.New("fields: at most 64")
	}
	return out, nil
}
