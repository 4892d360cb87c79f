package docdb

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hostless/hostless/internal/apierror"
	"github.com/hostless/hostless/internal/baas/auth"
	"github.com/hostless/hostless/internal/baas/rules"
	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// isRead says whether an operation reads.
func isRead(op string) bool { return op == "list" || op == "get" }

// decision is what a caller may do with a collection for one operation:
// everything (all), or what rule allows.
type decision struct {
	all  bool
	rule *rules.Rule
}

// decide applies the access model of the package doc.
func decide(p auth.Principal, c *collection, op string) (decision, error) {
	if p.IsAdmin() {
		return decision{all: true}, nil
	}
	if p.Kind == auth.Key {
		mode := "write"
		if isRead(op) {
			mode = "read"
		}
		if p.HasScope("db:"+mode) || p.HasScope("db:"+c.name+":"+mode) {
			return decision{all: true}, nil
		}
		return decision{}, apierror.New(http.StatusForbidden, "forbidden", "this API key has no scope db:%s or db:%s:%s", mode, c.name, mode)
	}
	r := c.rules[op]
	if r == nil {
		if p.Kind == auth.Anonymous {
			return decision{}, apierror.New(http.StatusUnauthorized, "unauthorized", "collection %q has no %s rule: only admins may %s; send an admin's token", c.name, op, op)
		}
		return decision{}, apierror.New(http.StatusForbidden, "forbidden", "collection %q has no %s rule: only admins may %s", c.name, op, op)
	}
	return decision{rule: r}, nil
}

func denied(c *collection, op string) error {
	return apierror.New(http.StatusForbidden, "forbidden", "the %s rule of collection %q denies this", op, c.name)
}

// allow evaluates the decision's rule; errors of evaluation deny, and are
// logged (a rule reading a field a document lacks, ...).
func (s *Service) allow(ctx context.Context, d decision, p auth.Principal, resource, data map[string]any, method string) bool {
	if d.all {
		return true
	}
	in := rules.Input{Auth: rulesAuth(p), Resource: resource, Request: map[string]any{"method": method}, Now: time.Now()}
	if data != nil {
		in.Request["data"] = data
	}
	ok, err := d.rule.Eval(ctx, in)
	if err != nil {
		s.cfg.Log.Debug("a rule failed to evaluate and denied", "rule", d.rule.String(), "err", err)
		return false
	}
	return ok
}

// body is a document's fields as sent: the JSON to store and the values
// the schema and rules see.
type body struct {
	raw    json.RawMessage
	fields map[string]any
}

// parseBody reads a JSON object of fields, refusing reserved names
// (except id, returned apart, when allowID) and checking the schema.
func parseBody(c *collection, b []byte, allowID bool) (body, string, error) {
	if len(b) > c.spec.MaxDocumentBytes {
		return body{}, "", apierror.New(http.StatusRequestEntityTooLarge, "document_too_large", "the document is over %d bytes, the collection's max_document_bytes", c.spec.MaxDocumentBytes)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return body{}, "", apierror.BadRequest("the document is not JSON: %s", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return body{}, "", apierror.BadRequest("the document must be a JSON object")
	}
	id := ""
	if raw, ok := m["id"]; ok && allowID {
		s, ok := raw.(string)
		if !ok || !idRE.MatchString(s) {
			return body{}, "", apierror.BadRequest("id: use 1-%d letters, digits, '_', '-' or '.', starting with a letter or digit", MaxIDBytes)
		}
		id = s
		delete(m, "id")
	}
	for k := range m {
		if reserved[k] {
			return body{}, "", apierror.BadRequest("%q is a field the database keeps (id, version, created_at, updated_at): leave it out", k)
		}
	}
	return checked(c, m, id)
}

func checked(c *collection, m map[string]any, id string) (body, string, error) {
	if c.schema != nil {
		if err := c.schema.Validate(m); err != nil {
			var ve *jsonschema.ValidationError
			if errors.As(err, &ve) {
				return body{}, "", apierror.New(http.StatusUnprocessableEntity, "schema_violation", "the document doesn't match the collection's schema: %s", schemaMessage(ve))
			}
			return body{}, "", apierror.New(http.StatusUnprocessableEntity, "schema_violation", "the document doesn't match the collection's schema: %s", err)
		}
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return body{}, "", apierror.BadRequest("the document can't be stored: %s", err)
	}
	if len(raw) > c.spec.MaxDocumentBytes {
		return body{}, "", apierror.New(http.StatusRequestEntityTooLarge, "document_too_large", "the document is over %d bytes, the collection's max_document_bytes", c.spec.MaxDocumentBytes)
	}
	return body{raw: raw, fields: ruleValues(m).(map[string]any)}, id, nil
}

// schemaMessage is the first leaf of a validation error, with where.
func schemaMessage(ve *jsonschema.ValidationError) string {
	for len(ve.Causes) > 0 {
		ve = ve.Causes[0]
	}
	loc := "/"
	if len(ve.InstanceLocation) > 0 {
		loc = ""
		for _, p := range ve.InstanceLocation {
			loc += "/" + p
		}
	}
	return fmt.Sprintf("at %s: %s", loc, ve.ErrorKind.LocalizedString(english()))
}

// english prints schema errors (the library needs a printer).
var english = sync.OnceValue(func() *message.Printer { return message.NewPrinter(language.English) })

// ruleValues converts decoded JSON (json.Number) to what rules take:
// int64 for integers, float64 otherwise.
func ruleValues(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i
		}
		f, _ := strconv.ParseFloat(string(x), 64)
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = ruleValues(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = ruleValues(e)
		}
		return x
	}
	return v
}

// resource is a stored document as rules see it: its fields, id,
// version, created_at and updated_at.
func resource(d store.Document) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(d.Data))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("document %s: stored data: %w", d.ID, err)
	}
	if m == nil {
		m = map[string]any{}
	}
	ruleValues(m)
	m["id"], m["version"] = d.ID, d.Version
	m["created_at"], m["updated_at"] = d.CreatedAt.UTC().Format(store.DocTimeFormat), d.UpdatedAt.UTC().Format(store.DocTimeFormat)
	return m, nil
}

// render writes a document as the API shows it: id, version and times,
// then its fields.
func render(b *bytes.Buffer, d store.Document) {
	b.WriteString(`{"id":`)
	idJSON, _ := json.Marshal(d.ID)
	b.Write(idJSON)
	b.WriteString(`,"version":`)
	b.WriteString(strconv.FormatInt(d.Version, 10))
	b.WriteString(`,"created_at":"`)
	b.WriteString(d.CreatedAt.UTC().Format(store.DocTimeFormat))
	b.WriteString(`","updated_at":"`)
	b.WriteString(d.UpdatedAt.UTC().Format(store.DocTimeFormat))
	b.WriteByte('"')
	data := bytes.TrimSpace(d.Data)
	if len(data) > 2 { // more than {}
		b.WriteByte(',')
		b.Write(data[1:])
	} else {
		b.WriteByte('}')
	}
}

// batchErr maps the store's errors of a batch; the store's message names
// the collection and document.
func batchErr(err error) error {
	msg := strings.TrimPrefix(err.Error(), "write documents: ")
	switch {
	case errors.Is(err, store.ErrVersionMismatch):
		return apierror.New(http.StatusPreconditionFailed, "version_mismatch", "%s; nothing was written", msg)
	case errors.Is(err, store.ErrConflict):
		return apierror.New(http.StatusConflict, "document_exists", "%s; nothing was written", msg)
	case errors.Is(err, store.ErrCollectionFull):
		return apierror.New(http.StatusInsufficientStorage, "collection_full", "%s; nothing was written", msg)
	case errors.Is(err, store.ErrNotFound):
		return apierror.NotFound("document_not_found", "%s; nothing was written", msg)
	}
	return err
}

func docNotFound(c *collection, id string) error {
	return apierror.NotFound("document_not_found", "no document %q in collection %q", id, c.name)
}

// storeErr maps the store's errors of a write to the API's.
func storeErr(c *collection, id string, err error) error {
	switch {
	case errors.Is(err, store.ErrVersionMismatch):
		return apierror.New(http.StatusPreconditionFailed, "version_mismatch", "document %q changed since the version you sent (If-Match); read it again", id)
	case errors.Is(err, store.ErrConflict):
		return apierror.New(http.StatusConflict, "document_exists", "collection %q has a document %q already", c.name, id)
	case errors.Is(err, store.ErrCollectionFull):
		return apierror.New(http.StatusInsufficientStorage, "collection_full", "collection %q holds its max_documents (%d)", c.name, c.spec.MaxDocuments)
	case errors.Is(err, store.ErrNotFound):
		return docNotFound(c, id)
	}
	return err
}

// Get returns a document the caller may read; a denied one is not found.
func (s *Service) Get(ctx context.Context, p auth.Principal, coll, id string) (store.Document, error) {
	c, err := s.collection(ctx, coll)
	if err != nil {
		return store.Document{}, err
	}
	d, err := decide(p, c, "get")
	if err != nil {
		return store.Document{}, err
	}
	if !idRE.MatchString(id) {
		return store.Document{}, docNotFound(c, id)
	}
	doc, err := s.cfg.Store.GetDocument(ctx, s.cfg.Project, coll, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Document{}, docNotFound(c, id)
	}
	if err != nil {
		return store.Document{}, err
	}
	if !d.all {
		res, err := resource(doc)
		if err != nil {
			return store.Document{}, err
		}
		if !s.allow(ctx, d, p, res, nil, "get") {
			return store.Document{}, docNotFound(c, id)
		}
	}
	return doc, nil
}

// Write is one write of a batch, as the API takes it.
type Write struct {
	// Op is create, replace, patch or delete.
	Op         string          `json:"op"`
	Collection string          `json:"collection"`
	ID         string          `json:"id,omitempty"`
	Data       json.RawMessage `json:"data,omitempty"`
	// IfVersion, when > 0, must be the document's version.
	IfVersion int64 `json:"if_version,omitempty"`
}

// Written is a write's outcome.
type Written struct {
	Op  string
	Doc store.Document
}

// Write applies writes in one transaction, all or none, each under its
// collection's rule.
func (s *Service) Write(ctx context.Context, p auth.Principal, ws []Write) ([]Written, error) {
	if len(ws) == 0 || len(ws) > MaxBatch {
		return nil, apierror.BadRequest("a batch has 1 to %d writes", MaxBatch)
	}
	now := time.Now().UTC()
	sw := make([]store.DocWrite, len(ws))
	colls := make([]*collection, len(ws))
	for i, w := range ws {
		c, err := s.collection(ctx, w.Collection)
		if err != nil {
			return nil, err
		}
		colls[i] = c
		if sw[i], err = s.prepare(ctx, p, c, w, now); err != nil {
			if len(ws) > 1 {
				return nil, fmt.Errorf("write %d: %w", i, err)
			}
			return nil, err
		}
	}
	docs, err := s.cfg.Store.WriteDocuments(ctx, s.cfg.Project, sw, now)
	if err != nil {
		var ae *apierror.Error
		if errors.As(err, &ae) {
			return nil, ae
		}
		if len(sw) == 1 {
			return nil, storeErr(colls[0], sw[0].ID, err)
		}
		return nil, batchErr(err)
	}
	out := make([]Written, len(docs))
	for i, d := range docs {
		out[i] = Written{Op: sw[i].Op, Doc: d}
	}
	s.feed.wake()
	for _, w := range out {
		var b bytes.Buffer
		render(&b, w.Doc)
		if s.cfg.Emit != nil {
			s.cfg.Emit("db."+w.Doc.Collection+"."+w.Op, b.Bytes())
		}
	}
	return out, nil
}

// prepare checks one write against the caller's access and the
// collection's schema, and turns it into the store's.
func (s *Service) prepare(ctx context.Context, p auth.Principal, c *collection, w Write, now time.Time) (store.DocWrite, error) {
	sw := store.DocWrite{Collection: c.name, ID: w.ID, IfVersion: w.IfVersion}
	if w.IfVersion < 0 {
		return sw, apierror.BadRequest("if_version: want a positive version")
	}
	switch w.Op {
	case "create":
		d, err := decide(p, c, "create")
		if err != nil {
			return sw, err
		}
		b, id, err := parseBody(c, w.Data, true)
		if err != nil {
			return sw, err
		}
		switch {
		case w.ID != "" && id != "" && w.ID != id:
			return sw, apierror.BadRequest("id: the path says %q, the document %q", w.ID, id)
		case w.ID != "":
			if !idRE.MatchString(w.ID) {
				return sw, apierror.BadRequest("id: use 1-%d letters, digits, '_', '-' or '.', starting with a letter or digit", MaxIDBytes)
			}
			id = w.ID
		case id == "":
			id = function.NewID(now)
		}
		b.fields["id"] = id
		ok := s.allow(ctx, d, p, nil, b.fields, "create")
		delete(b.fields, "id")
		if !ok {
			return sw, denied(c, "create")
		}
		sw.Op, sw.ID, sw.Data, sw.MaxDocs = store.DocCreated, id, b.raw, c.spec.MaxDocuments
		return sw, nil
	case "replace", "patch":
		if !idRE.MatchString(w.ID) {
			return sw, docNotFound(c, w.ID)
		}
		d, err := decide(p, c, "update")
		if err != nil {
			return sw, err
		}
		if w.Op == "replace" {
			b, _, err := parseBody(c, w.Data, false)
			if err != nil {
				return sw, err
			}
			sw.Change = func(cur store.Document) (json.RawMessage, error) {
				if !d.all {
					res, err := resource(cur)
					if err != nil {
						return nil, err
					}
					if !s.allow(ctx, d, p, res, b.fields, "update") {
						return nil, denied(c, "update")
					}
				}
				return b.raw, nil
			}
		} else {
			if len(w.Data) > c.spec.MaxDocumentBytes {
				return sw, apierror.New(http.StatusRequestEntityTooLarge, "document_too_large", "the patch is over %d bytes, the collection's max_document_bytes", c.spec.MaxDocumentBytes)
			}
			v, err := jsonschema.UnmarshalJSON(bytes.NewReader(w.Data))
			if err != nil {
				return sw, apierror.BadRequest("the patch is not JSON: %s", err)
			}
			pm, ok := v.(map[string]any)
			if !ok {
				return sw, apierror.BadRequest("a patch is a JSON object (RFC 7396 merge patch)")
			}
			for k := range pm {
				if reserved[k] {
					return sw, apierror.BadRequest("%q is a field the database keeps: leave it out", k)
				}
			}
			patch := pm
			sw.Change = func(cur store.Document) (json.RawMessage, error) {
				dec := json.NewDecoder(bytes.NewReader(cur.Data))
				dec.UseNumber()
				var m map[string]any
				if err := dec.Decode(&m); err != nil {
					return nil, fmt.Errorf("document %s: stored data: %w", cur.ID, err)
				}
				merged := mergePatch(m, patch).(map[string]any)
				b, _, err := checked(c, merged, "")
				if err != nil {
					return nil, err
				}
				if !d.all {
					res, err := resource(cur)
					if err != nil {
						return nil, err
					}
					if !s.allow(ctx, d, p, res, b.fields, "update") {
						return nil, denied(c, "update")
					}
				}
				return b.raw, nil
			}
		}
		sw.Op = store.DocUpdated
		return sw, nil
	case "delete":
		if !idRE.MatchString(w.ID) {
			return sw, docNotFound(c, w.ID)
		}
		d, err := decide(p, c, "delete")
		if err != nil {
			return sw, err
		}
		sw.Op = store.DocDeleted
		if !d.all {
			sw.Check = func(cur store.Document) error {
				res, err := resource(cur)
				if err != nil {
					return err
				}
				if !s.allow(ctx, d, p, res, nil, "delete") {
					return denied(c, "delete")
				}
				return nil
			}
		}
		return sw, nil
	}
	return sw, apierror.BadRequest("op %q: want create, replace, patch or delete", w.Op)
}

// mergePatch applies an RFC 7396 JSON merge patch.
func mergePatch(target, patch any) any {
	pm, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	tm, ok := target.(map[string]any)
	if !ok {
		tm = map[string]any{}
	}
	for k, v := range pm {
		if v == nil {
			delete(tm, k)
			continue
		}
		tm[k] = mergePatch(tm[k], v)
	}
	return tm
}
