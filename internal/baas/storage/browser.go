package storage

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/hostless/hostless/internal/apierror"
	"github.com/hostless/hostless/internal/baas/auth"
	"github.com/hostless/hostless/internal/baas/rules"
	"github.com/hostless/hostless/internal/store"
)

// The browser API serves objects on the platform's main server under
// /v1/storage, to the backend's users (their tokens), API keys and the
// admin, and to whoever holds a presigned URL. Access to a bucket:
//
//   - the admin (key, role or admin-scoped API key) may do everything;
//   - an API key by scope: storage:read / storage:write, or
//     storage:BUCKET:read / storage:BUCKET:write;
//   - everyone else by the bucket's CEL rule for the operation, read (get,
//     head, list) or write (put, delete), which sees auth, resource (bucket,
//     key, size, content_type, metadata: the stored object, or for a put the
//     incoming one), request.method and now;
//   - without a rule for the operation, no one else.
//
// A denied read answers 404, as a missing object does, so a rule does not
// reveal which keys exist.

const (
	rulesSettingPrefix = "storage.rules."
	defaultListLimit   = 100
	// maxListScan bounds the objects one list reads to fill a page when
	// the read rule must be evaluated on each: a page may come back short,
	// with a cursor to go on.
	maxListScan  = 5 * store.MaxListObjects
	maxRulesBody = 16 << 10
)

// Callers authenticates a request (rate limits included).
type Callers interface {
	Caller(r *http.Request) (auth.Principal, error)
}

// BucketRules are a bucket's access rules, CEL sources; "" means none.
type BucketRules struct {
	Read  string `json:"read,omitempty"`
	Write string `json:"write,omitempty"`
}

// ruleCache keeps compiled rules by source.
type ruleCache struct {
	mu sync.Mutex
	m  map[string]*rules.Rule
}

func (c *ruleCache) compile(src string) (*rules.Rule, error) {
	c.mu.Lock()
	r, ok := c.m[src]
	c.mu.Unlock()
	if ok {
		return r, nil
	}
	r, err := rules.Compile(src)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) > 1000 {
		c.m = map[string]*rules.Rule{}
	}
	c.m[src] = r
	c.mu.Unlock()
	return r, nil
}

// Register adds the browser API's endpoints to mux; callers
// authenticates every request that is not presigned.
func (h *Handler) Register(mux *http.ServeMux, callers Callers, log *slog.Logger) {
	b := &browser{h: h, callers: callers, log: log}
	handle := func(pattern string, fn apierror.Handler) { mux.Handle(pattern, apierror.Wrap(log, fn)) }
	handle("GET /v1/storage", b.admin(b.listBuckets))
	handle("GET /v1/storage/{bucket}/_rules", b.admin(b.getRules))
	handle("PUT /v1/storage/{bucket}/_rules", b.admin(b.putRules))
	handle("PUT /v1/storage/{bucket}", b.admin(b.createBucket))
	handle("POST /v1/storage/{bucket}/_presign", b.presign)
	handle("GET /v1/storage/{bucket}", b.list)
	handle("GET /v1/storage/{bucket}/{key...}", b.object)
	handle("PUT /v1/storage/{bucket}/{key...}", b.object)
	handle("POST /v1/storage/{bucket}/{key...}", b.object)
	handle("DELETE /v1/storage/{bucket}/{key...}", b.object)
}

// browser serves the browser API.
type browser struct {
	h       *Handler
	callers Callers
	log     *slog.Logger
}

func (b *browser) admin(fn apierror.Handler) apierror.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, err := b.callers.Caller(r)
		if err != nil {
			return err
		}
		switch {
		case p.Kind == auth.Anonymous:
			return apierror.New(http.StatusUnauthorized, "unauthorized", "send the admin key or an admin's token as \"Authorization: Bearer <token>\"")
		case !p.IsAdmin():
			return apierror.New(http.StatusForbidden, "forbidden", "bucket settings are for admins")
		}
		return fn(w, r)
	}
}

// bucketName returns the request's bucket, checked.
func bucketName(r *http.Request) (string, error) {
	name := r.PathValue("bucket")
	if validBucket(name) != nil {
		return "", apierror.NotFound("bucket_not_found", "no bucket named %q", show(name))
	}
	return name, nil
}

// apiError turns the S3 errors of the shared object code into the
// platform's JSON errors: NoSuchKey becomes no_such_key.
func apiError(err error) error {
	se, ok := errors.AsType[*Error](err)
	if !ok {
		return err
	}
	var code strings.Builder
	for i, c := range se.Code {
		if unicode.IsUpper(c) && i > 0 {
			code.WriteByte('_')
		}
		code.WriteRune(unicode.ToLower(c))
	}
	e := apierror.New(se.Status, code.String(), "%s", se.Message)
	e.Header = se.header
	return e
}

// bucketRules returns a bucket's stored rules.
func (h *Handler) bucketRules(ctx context.Context, bucket string) (BucketRules, error) {
	var br BucketRules
	if h.cfg.Settings == nil {
		return br, nil
	}
	s, err := h.cfg.Settings.GetSetting(ctx, rulesSettingPrefix+bucket)
	if errors.Is(err, store.ErrNotFound) {
		return br, nil
	}
	if err != nil {
		return br, err
	}
	if err := json.Unmarshal([]byte(s), &br); err != nil {
		return br, errors.New("the stored rules of bucket " + bucket + " are corrupt")
	}
	return br, nil
}

func (b *browser) getRules(w http.ResponseWriter, r *http.Request) error {
	bucket, err := bucketName(r)
	if err != nil {
		return err
	}
	if err := b.bucketExists(r.Context(), bucket); err != nil {
		return err
	}
	br, err := b.h.bucketRules(r.Context(), bucket)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, br)
}

func (b *browser) putRules(w http.ResponseWriter, r *http.Request) error {
	bucket, err := bucketName(r)
	if err != nil {
		return err
	}
	if b.h.cfg.Settings == nil {
		return apierror.New(http.StatusNotImplemented, "not_implemented", "bucket rules are not stored on this server")
	}
	var br BucketRules
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRulesBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&br); err != nil {
		return apierror.BadRequest("the body must be {\"read\": \"CEL\", \"write\": \"CEL\"}: %s", err)
	}
	for op, src := range map[string]string{"read": br.Read, "write": br.Write} {
		if src == "" {
			continue
		}
		if _, err := b.h.rules.compile(src); err != nil {
			return apierror.BadRequest("%s: %s", op, err)
		}
	}
	if err := b.bucketExists(r.Context(), bucket); err != nil {
		return err
	}
	raw, _ := json.Marshal(br)
	if err := b.h.cfg.Settings.PutSetting(r.Context(), rulesSettingPrefix+bucket, string(raw)); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, br)
}

func (b *browser) createBucket(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("bucket")
	if e := validBucket(name); e != nil {
		return apierror.BadRequest("%s", e.Message)
	}
	err := b.h.cfg.Objects.CreateBucket(r.Context(), store.Bucket{Project: b.h.cfg.Project, Name: name, CreatedAt: now()})
	if errors.Is(err, store.ErrBucketExists) {
		return apierror.New(http.StatusConflict, "bucket_exists", "bucket %q exists", name)
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, map[string]string{"name": name})
}

// BucketInfo is a bucket as the browser API lists it.
type BucketInfo struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// listBuckets serves GET /v1/storage: the project's buckets by name, to
// admins (the console's storage browser).
func (b *browser) listBuckets(w http.ResponseWriter, r *http.Request) error {
	bs, err := b.h.cfg.Objects.ListBuckets(r.Context(), b.h.cfg.Project)
	if err != nil {
		return err
	}
	out := struct {
		Buckets []BucketInfo `json:"buckets"`
	}{Buckets: make([]BucketInfo, 0, len(bs))}
	for _, bk := range bs {
		out.Buckets = append(out.Buckets, BucketInfo{Name: bk.Name, CreatedAt: bk.CreatedAt})
	}
	return writeJSON(w, http.StatusOK, out)
}

func (b *browser) bucketExists(ctx context.Context, bucket string) error {
	_, err := b.h.cfg.Objects.GetBucket(ctx, b.h.cfg.Project, bucket)
	if errors.Is(err, store.ErrNotFound) {
		return apierror.NotFound("bucket_not_found", "no bucket named %q", bucket)
	}
	return err
}

// access is what a caller may do with a bucket for one mode: everything
// (all), or what rule allows.
type access struct {
	p    auth.Principal
	all  bool
	rule *rules.Rule
}

// decide applies the access model of the package doc for mode "read" or
// "write".
func (b *browser) decide(ctx context.Context, p auth.Principal, bucket, mode string) (access, error) {
	if p.IsAdmin() {
		return access{p: p, all: true}, nil
	}
	if p.Kind == auth.Key {
		if p.HasScope("storage:"+mode) || p.HasScope("storage:"+bucket+":"+mode) {
			return access{p: p, all: true}, nil
		}
		return access{}, apierror.New(http.StatusForbidden, "forbidden", "this API key has no scope storage:%s or storage:%s:%s", mode, bucket, mode)
	}
	br, err := b.h.bucketRules(ctx, bucket)
	if err != nil {
		return access{}, err
	}
	src := br.Read
	if mode == "write" {
		src = br.Write
	}
	if src == "" {
		if p.Kind == auth.Anonymous {
			return access{}, apierror.New(http.StatusUnauthorized, "unauthorized", "bucket %q has no %s rule: only admins may %s; send an admin's token", bucket, mode, mode)
		}
		return access{}, apierror.New(http.StatusForbidden, "forbidden", "bucket %q has no %s rule: only admins may %s", bucket, mode, mode)
	}
	r, err := b.h.rules.compile(src)
	if err != nil {
		return access{}, err // stored rules compiled when they were put
	}
	return access{p: p, rule: r}, nil
}

// allows evaluates the rule for one object; a rule that fails to
// evaluate denies.
func (b *browser) allows(ctx context.Context, a access, o store.Object, method string) bool {
	if a.all {
		return true
	}
	md := map[string]any{}
	for k, v := range o.Metadata {
		md[k] = v
	}
	in := rules.Input{
		Auth: rulesAuth(a.p),
		Resource: map[string]any{
			"bucket": o.Bucket, "key": o.Key, "size": o.Size, "content_type": o.ContentType, "metadata": md,
		},
		Request: map[string]any{"method": method},
		Now:     time.Now(),
	}
	ok, err := a.rule.Eval(ctx, in)
	if err != nil {
		b.log.Debug("a bucket rule failed to evaluate and denied", "rule", a.rule.String(), "err", err)
		return false
	}
	return ok
}

func rulesAuth(p auth.Principal) rules.Auth {
	roles, scopes := p.Roles, p.Scopes
	if roles == nil {
		roles = []string{}
	}
	if scopes == nil {
		scopes = []string{}
	}
	return rules.Auth{ID: p.ID, Email: p.Email, Roles: roles, Kind: string(p.Kind), Scopes: scopes}
}

func modeOf(method string) string {
	if method == http.MethodGet || method == http.MethodHead {
		return "read"
	}
	return "write"
}

func notFound(bucket, key string) error {
	return apierror.NotFound("object_not_found", "no object %q in bucket %q", key, bucket)
}

// object serves GET, HEAD, PUT, POST and DELETE of one object.
func (b *browser) object(w http.ResponseWriter, r *http.Request) error {
	bucket, err := bucketName(r)
	if err != nil {
		return err
	}
	key := r.PathValue("key")
	if key == "" {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			return b.list(w, r)
		}
		return apierror.BadRequest("the path names no key: /v1/storage/{bucket}/{key}")
	}
	if e := validKey(bucket, key); e != nil {
		return apiError(e)
	}
	var a access
	presignedCT := ""
	switch p, err := parsePresigned(r.URL.RawQuery); {
	case errors.Is(err, errNotPresigned):
		p, err := b.callers.Caller(r)
		if err != nil {
			return err
		}
		if a, err = b.decide(r.Context(), p, bucket, modeOf(r.Method)); err != nil {
			if modeOf(r.Method) == "read" && p.Kind != auth.Anonymous {
				return notFound(bucket, key)
			}
			return err
		}
	case err != nil:
		return apierror.New(http.StatusForbidden, "invalid_presigned_url", "%s", err)
	default:
		if r.Method == http.MethodDelete {
			return apierror.New(http.StatusForbidden, "invalid_presigned_url", "a presigned URL is for GET or PUT")
		}
		if err := checkPresigned(b.h.cfg.SignKey, p, r.Method, bucket, key, b.h.cfg.Now()); err != nil {
			return apierror.New(http.StatusForbidden, "invalid_presigned_url", "%s", err)
		}
		a = access{all: true}
		presignedCT = p.contentType
		if presignedCT != "" && r.Header.Get("Content-Type") != presignedCT && signedMethod(r.Method) == http.MethodPut {
			return apierror.New(http.StatusForbidden, "invalid_presigned_url", "this URL uploads with Content-Type %q only", presignedCT)
		}
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return b.get(w, r, a, bucket, key)
	case http.MethodDelete:
		return b.delete(w, r, a, bucket, key)
	}
	return b.put(w, r, a, bucket, key)
}

func (b *browser) get(w http.ResponseWriter, r *http.Request, a access, bucket, key string) error {
	rw := &responseWriter{ResponseWriter: w}
	req := &request{w: rw, r: r, ctx: r.Context(), id: "browser", query: r.URL.Query(), bucket: bucket, key: key, hasKey: true, idle: b.h.cfg.IdleTimeout, startedAt: time.Now()}
	req.allow = func(o store.Object) error {
		if !b.allows(r.Context(), a, o, r.Method) {
			return notFound(bucket, key)
		}
		return nil
	}
	err := b.h.getObject(req, r.Method == http.MethodGet)
	if err == nil {
		return nil
	}
	if rw.wrote {
		panic(http.ErrAbortHandler) // the response is under way
	}
	if se, ok := errors.AsType[*Error](err); ok && (se.Code == "NoSuchKey" || se.Code == "NoSuchBucket") && !a.all {
		return notFound(bucket, key) // a rule's caller learns no more than a missing object
	}
	return apiError(err)
}

func (b *browser) put(w http.ResponseWriter, r *http.Request, a access, bucket, key string) error {
	meta, err := metaFromHeaders(r.Header)
	if err != nil {
		return apiError(err)
	}
	size := max(r.ContentLength, -1)
	if size > b.h.cfg.MaxObjectBytes {
		return apiError(errEntityTooLarge(b.h.cfg.MaxObjectBytes))
	}
	incoming := store.Object{Bucket: bucket, Key: key, Size: max(size, 0), ObjectMeta: meta}
	if !b.allows(r.Context(), a, incoming, r.Method) {
		return denied(a.p, "write", bucket, key)
	}
	body := &idleReader{r: r.Body, rc: http.NewResponseController(w), idle: b.h.cfg.IdleTimeout}
	o, err := b.h.writeObject(r.Context(), "browser", bucket, key, meta, body, size, nil)
	if err != nil {
		if se, ok := errors.AsType[*Error](err); ok && se.Code == "NoSuchBucket" {
			return apierror.NotFound("bucket_not_found", "no bucket named %q", bucket)
		}
		return apiError(err)
	}
	w.Header().Set("ETag", quote(o.ETag))
	return writeJSON(w, http.StatusCreated, objectJSON(o))
}

func (b *browser) delete(w http.ResponseWriter, r *http.Request, a access, bucket, key string) error {
	o, err := b.h.cfg.Objects.GetObject(r.Context(), b.h.cfg.Project, bucket, key)
	if errors.Is(err, store.ErrNotFound) {
		o = store.Object{Bucket: bucket, Key: key}
	} else if err != nil {
		return err
	}
	if !b.allows(r.Context(), a, o, r.Method) {
		return denied(a.p, "write", bucket, key)
	}
	err = b.h.removeObject(r.Context(), "browser", bucket, key)
	if errors.Is(err, store.ErrNotFound) {
		return notFound(bucket, key)
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func denied(p auth.Principal, mode, bucket, key string) error {
	if p.Kind == auth.Anonymous {
		return apierror.New(http.StatusUnauthorized, "unauthorized", "bucket %q's %s rule does not allow this without a token", bucket, mode)
	}
	return apierror.New(http.StatusForbidden, "forbidden", "bucket %q's %s rule does not allow this on %q", bucket, mode, key)
}

// ObjectInfo is an object as the browser API lists it.
type ObjectInfo struct {
	Key          string            `json:"key"`
	Size         int64             `json:"size"`
	ETag         string            `json:"etag"`
	ContentType  string            `json:"content_type,omitempty"`
	LastModified time.Time         `json:"last_modified"`
	Metadata     map[string]string `json:"metadata,omitempty"`
}

func objectJSON(o store.Object) ObjectInfo {
	return ObjectInfo{Key: o.Key, Size: o.Size, ETag: o.ETag, ContentType: o.ContentType, LastModified: o.ModTime, Metadata: o.Metadata}
}

// list serves GET /v1/storage/{bucket}?prefix=&cursor=&limit=: the
// objects the caller may read, by key; cursor goes on after the last key
// read, which a rule may have hidden.
func (b *browser) list(w http.ResponseWriter, r *http.Request) error {
	bucket, err := bucketName(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	limit := defaultListLimit
	if s := q.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > store.MaxListObjects {
			return apierror.BadRequest("limit: use 1 to %d", store.MaxListObjects)
		}
	}
	p, err := b.callers.Caller(r)
	if err != nil {
		return err
	}
	a, err := b.decide(r.Context(), p, bucket, "read")
	if err != nil {
		return err
	}
	if err := b.bucketExists(r.Context(), bucket); err != nil {
		if !a.all {
			return apierror.NotFound("bucket_not_found", "no bucket named %q", bucket)
		}
		return err
	}
	f := store.ObjectFilter{Project: b.h.cfg.Project, Bucket: bucket, Prefix: q.Get("prefix"), After: q.Get("cursor")}
	page := struct {
		Objects []ObjectInfo `json:"objects"`
		Cursor  string       `json:"cursor,omitempty"`
	}{Objects: []ObjectInfo{}}
	scanned := 0
	for {
		f.Limit = limit - len(page.Objects)
		if !a.all {
			f.Limit = store.MaxListObjects
		}
		os, err := b.h.cfg.Objects.ListObjects(r.Context(), f)
		if err != nil {
			return err
		}
		full := false
		for _, o := range os {
			scanned++
			f.After = o.Key
			if b.allows(r.Context(), a, o, http.MethodGet) {
				page.Objects = append(page.Objects, objectJSON(o))
			}
			if len(page.Objects) == limit {
				full = true
				break
			}
		}
		if len(os) < f.Limit && !full {
			break // the end
		}
		if full || scanned >= maxListScan {
			page.Cursor = f.After
			break
		}
	}
	return writeJSON(w, http.StatusOK, page)
}

// presignRequest is the body of POST /v1/storage/{bucket}/_presign.
type presignRequest struct {
	Key         string `json:"key"`
	Method      string `json:"method"`
	ExpiresIn   int64  `json:"expires_in"`
	ContentType string `json:"content_type"`
}

func (b *browser) presign(w http.ResponseWriter, r *http.Request) error {
	bucket, err := bucketName(r)
	if err != nil {
		return err
	}
	p, err := b.callers.Caller(r)
	if err != nil {
		return err
	}
	if len(b.h.cfg.SignKey) == 0 {
		return apierror.New(http.StatusNotImplemented, "not_implemented", "presigned URLs are not enabled on this server")
	}
	var pr presignRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&pr); err != nil {
		return apierror.BadRequest("the body must be {\"key\", \"method\", \"expires_in\", \"content_type\"}: %s", err)
	}
	if pr.Method == "" {
		pr.Method = http.MethodGet
	}
	if pr.Method != http.MethodGet && pr.Method != http.MethodPut {
		return apierror.BadRequest("method: use GET or PUT")
	}
	if e := validKey(bucket, pr.Key); e != nil || pr.Key == "" || strings.HasPrefix(pr.Key, "_") && !strings.Contains(pr.Key, "/") {
		return apierror.BadRequest("key: %q is not a key this API serves", show(pr.Key))
	}
	expiresIn := DefaultPresignExpiry
	if pr.ExpiresIn != 0 {
		if pr.ExpiresIn < 1 || pr.ExpiresIn > int64(MaxPresignExpiry/time.Second) {
			return apierror.BadRequest("expires_in: use 1 to %d seconds", int64(MaxPresignExpiry/time.Second))
		}
		expiresIn = time.Duration(pr.ExpiresIn) * time.Second
	}
	if len(pr.ContentType) > maxContentTypeLen {
		return apierror.BadRequest("content_type is too long")
	}
	if pr.Method == http.MethodGet {
		pr.ContentType = "" // a download serves the object's own
	}
	a, err := b.decide(r.Context(), p, bucket, modeOf(pr.Method))
	if err != nil {
		return err
	}
	o := store.Object{Bucket: bucket, Key: pr.Key, ObjectMeta: store.ObjectMeta{ContentType: pr.ContentType}}
	if pr.Method == http.MethodGet && !a.all {
		// The rule judges the stored object; one that isn't there (or
		// isn't to be seen) can't be shared.
		if o, err = b.h.cfg.Objects.GetObject(r.Context(), b.h.cfg.Project, bucket, pr.Key); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return notFound(bucket, pr.Key)
			}
			return err
		}
	}
	if !b.allows(r.Context(), a, o, pr.Method) {
		if pr.Method == http.MethodGet {
			return notFound(bucket, pr.Key)
		}
		return denied(p, "write", bucket, pr.Key)
	}
	expires := b.h.cfg.Now().Add(expiresIn).Unix()
	return writeJSON(w, http.StatusOK, map[string]any{
		"url":        presignURL(b.h.cfg.SignKey, pr.Method, bucket, pr.Key, expires, pr.ContentType),
		"method":     pr.Method,
		"expires_at": time.Unix(expires, 0).UTC(),
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}
