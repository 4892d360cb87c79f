package docdb

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/hostless/hostless/internal/apierror"
	"github.com/hostless/hostless/internal/baas/auth"
	"github.com/hostless/hostless/internal/store"
)

// maxBatchBody bounds a batch's JSON body.
const maxBatchBody = 8 << 20

// Callers authenticates a request (rate limits included).
type Callers interface {
	Caller(r *http.Request) (auth.Principal, error)
}

// Register adds the document database's endpoints to mux; callers
// authenticates every request.
func (s *Service) Register(mux *http.ServeMux, callers Callers, log *slog.Logger) {
	h := func(pattern string, fn func(w http.ResponseWriter, r *http.Request, p auth.Principal) error) {
		mux.Handle(pattern, apierror.Wrap(log, func(w http.ResponseWriter, r *http.Request) error {
			p, err := callers.Caller(r)
			if err != nil {
				return err
			}
			return fn(w, r, p)
		}))
	}
	admin := func(fn func(w http.ResponseWriter, r *http.Request) error) func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		return func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
			switch {
			case p.Kind == auth.Anonymous:
				return apierror.New(http.StatusUnauthorized, "unauthorized", "send the admin key or an admin's token as \"Authorization: Bearer <token>\"")
			case !p.IsAdmin():
				return apierror.New(http.StatusForbidden, "forbidden", "collections are defined by admins")
			}
			return fn(w, r)
		}
	}
	h("GET /v1/collections", admin(s.handleCollections))
	h("GET /v1/collections/{name}", admin(s.handleCollection))
	h("PUT /v1/collections/{name}", admin(s.handlePutCollection))
	h("DELETE /v1/collections/{name}", admin(s.handleDeleteCollection))
	h("POST /v1/db/_batch", s.handleBatch)
	h("POST /v1/db/{collection}", s.handleCreate)
	h("GET /v1/db/{collection}", s.handleList)
	h("GET /v1/db/{collection}/{id}", s.handleGet)
	h("PUT /v1/db/{collection}/{id}", s.handleWrite("replace"))
	h("PATCH /v1/db/{collection}/{id}", s.handleWrite("patch"))
	h("DELETE /v1/db/{collection}/{id}", s.handleWrite("delete"))
	// EventSource can't send headers: the event streams also take the
	// access token as ?access_token=.
	sse := func(pattern string) {
		mux.Handle(pattern, apierror.Wrap(log, func(w http.ResponseWriter, r *http.Request) error {
			if t := r.URL.Query().Get("access_token"); t != "" && r.Header.Get("Authorization") == "" {
				// Only a user's short-lived token: a URL lands in logs and
				// Referer headers, which a key (long-lived) must never.
				if strings.Count(t, ".") != 2 {
					return apierror.BadRequest("access_token: only a user's access token (a JWT) may go in a URL; send keys as \"Authorization: Bearer <key>\"")
				}
				r.Header.Set("Authorization", "Bearer "+t)
			}
			p, err := callers.Caller(r)
			if err != nil {
				return err
			}
			return s.handleEvents(w, r, p)
		}))
	}
	sse("GET /v1/db/{collection}/_events")
	sse("GET /v1/db/{collection}/{id}/_events")
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, apierror.New(http.StatusRequestEntityTooLarge, "body_too_large", "the body is over %d bytes", max)
		}
		return nil, apierror.BadRequest("read the body: %s", err)
	}
	return b, nil
}

func (s *Service) handleCollections(w http.ResponseWriter, r *http.Request) error {
	cs, err := s.Collections(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"collections": cs})
}

func (s *Service) handleCollection(w http.ResponseWriter, r *http.Request) error {
	c, err := s.Collection(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

func (s *Service) handlePutCollection(w http.ResponseWriter, r *http.Request) error {
	b, err := readBody(w, r, 2*MaxSchemaBytes)
	if err != nil {
		return err
	}
	var spec Spec
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&spec); err != nil {
		return apierror.BadRequest("collection spec: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	name := r.PathValue("name")
	created, err := s.PutCollection(r.Context(), name, spec)
	if err != nil {
		return err
	}
	c, err := s.Collection(r.Context(), name)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return writeJSON(w, status, c)
}

func (s *Service) handleDeleteCollection(w http.ResponseWriter, r *http.Request) error {
	if err := s.DeleteCollection(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func etag(d store.Document) string { return `"` + strconv.FormatInt(d.Version, 10) + `"` }

// ifMatch reads If-Match: a version, quoted or not ("*" or absent: any).
func ifMatch(r *http.Request) (int64, error) {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	if v == "" || v == "*" {
		return 0, nil
	}
	v = strings.Trim(strings.TrimPrefix(v, "W/"), `"`)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return 0, apierror.BadRequest("If-Match: send the document's version (its ETag), e.g. \"3\"")
	}
	return n, nil
}

func writeDoc(w http.ResponseWriter, status int, d store.Document) error {
	var b bytes.Buffer
	render(&b, d)
	b.WriteByte('\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("ETag", etag(d))
	w.WriteHeader(status)
	_, err := w.Write(b.Bytes())
	return err
}

func (s *Service) handleCreate(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	b, err := readBody(w, r, MaxDocumentBytes)
	if err != nil {
		return err
	}
	out, err := s.Write(r.Context(), p, []Write{{Op: "create", Collection: r.PathValue("collection"), Data: b}})
	if err != nil {
		return err
	}
	d := out[0].Doc
	w.Header().Set("Location", "/v1/db/"+d.Collection+"/"+d.ID)
	return writeDoc(w, http.StatusCreated, d)
}

func (s *Service) handleGet(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	d, err := s.Get(r.Context(), p, r.PathValue("collection"), r.PathValue("id"))
	if err != nil {
		return err
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" && strings.Trim(strings.TrimPrefix(inm, "W/"), `"`) == strconv.FormatInt(d.Version, 10) {
		w.Header().Set("ETag", etag(d))
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	return writeDoc(w, http.StatusOK, d)
}

func (s *Service) handleWrite(op string) func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	return func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		v, err := ifMatch(r)
		if err != nil {
			return err
		}
		wr := Write{Op: op, Collection: r.PathValue("collection"), ID: r.PathValue("id"), IfVersion: v}
		if op != "delete" {
			if wr.Data, err = readBody(w, r, MaxDocumentBytes); err != nil {
				return err
			}
		}
		out, err := s.Write(r.Context(), p, []Write{wr})
		if err != nil {
			return err
		}
		if op == "delete" {
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
		return writeDoc(w, http.StatusOK, out[0].Doc)
	}
}

func (s *Service) handleBatch(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	b, err := readBody(w, r, maxBatchBody)
	if err != nil {
		return err
	}
	var req struct {
		Writes []Write `json:"writes"`
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&req); err != nil {
		return apierror.BadRequest("batch: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	out, err := s.Write(r.Context(), p, req.Writes)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	buf.WriteString(`{"results":[`)
	for i, o := range out {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString(`{"op":`)
		opJSON, _ := json.Marshal(req.Writes[i].Op)
		buf.Write(opJSON)
		buf.WriteString(`,"document":`)
		render(&buf, o.Doc)
		buf.WriteByte('}')
	}
	buf.WriteString("]}\n")
	w.Header().Set("Content-Type", "application/json")
	_, err = w.Write(buf.Bytes())
	return err
}

func (s *Service) handleList(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	qv := r.URL.Query()
	q := Query{Filter: qv.Get("filter"), Sort: qv.Get("sort"), Cursor: qv.Get("cursor")}
	if v := qv.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > store.MaxLimit {
			return apierror.BadRequest("limit: want 1 to %d", store.MaxLimit)
		}
		q.Limit = n
	}
	if v := qv.Get("count"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return apierror.BadRequest("count: want true or false")
		}
		q.Count = b
	}
	fields, err := parseFields(qv.Get("fields"))
	if err != nil {
		return apierror.BadRequest("%s", err)
	}
	page, err := s.List(r.Context(), p, r.PathValue("collection"), q)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	buf.WriteString(`{"documents":[`)
	for i, d := range page.Docs {
		if i > 0 {
			buf.WriteByte(',')
		}
		if fields != nil {
			if d.Data, err = project(d.Data, fields); err != nil {
				return err
			}
		}
		render(&buf, d)
	}
	buf.WriteString(`]`)
	if page.Next != "" {
		buf.WriteString(`,"next_cursor":"`)
		buf.WriteString(page.Next) // base64url: nothing to escape
		buf.WriteByte('"')
	}
	if page.Count != nil {
		buf.WriteString(`,"count":`)
		buf.WriteString(strconv.FormatInt(*page.Count, 10))
	}
	buf.WriteString("}\n")
	w.Header().Set("Content-Type", "application/json")
	_, err = w.Write(buf.Bytes())
	return err
}

// project keeps the named paths of a document's data.
func project(data json.RawMessage, paths [][]string) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	out := map[string]any{}
	for _, p := range paths {
		v, ok := lookup(m, p)
		if !ok {
			continue
		}
		// Rebuild the nesting down to the selected value.
		cur := out
		for _, seg := range p[:len(p)-1] {
			next, ok := cur[seg].(map[string]any)
			if !ok {
				next = map[string]any{}
				cur[seg] = next
			}
			cur = next
		}
		cur[p[len(p)-1]] = v
	}
	return json.Marshal(out)
}

func lookup(m map[string]json.RawMessage, p []string) (json.RawMessage, bool) {
	v, ok := m[p[0]]
	if !ok {
		return nil, false
	}
	if len(p) == 1 {
		return v, true
	}
	var sub map[string]json.RawMessage
	if err := json.Unmarshal(v, &sub); err != nil {
		return nil, false
	}
	return lookup(sub, p[1:])
}

func (s *Service) handleEvents(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var last int64
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("last_event_id")
	}
	if v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return apierror.BadRequest("Last-Event-ID: want the id of the last event received")
		}
		last = n
	}
	return s.Subscribe(r.Context(), w, p, r.PathValue("collection"), r.PathValue("id"), last)
}
