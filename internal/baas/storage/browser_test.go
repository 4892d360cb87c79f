package storage_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/baas/auth"
	"github.com/hostless/hostless/internal/baas/storage"
	blobfs "github.com/hostless/hostless/internal/blob/fs"
	"github.com/hostless/hostless/internal/store/sqlite"
)

// fakeCallers reads the principal from the bearer token: "admin",
// "user:ID", "key:SCOPE,SCOPE"; none is anonymous.
type fakeCallers struct{}

func (fakeCallers) Caller(r *http.Request) (auth.Principal, error) {
	tok := auth.Bearer(r)
	switch {
	case tok == "":
		return auth.Principal{Kind: auth.Anonymous}, nil
	case tok == "admin":
		return auth.Principal{Kind: auth.Admin}, nil
	case strings.HasPrefix(tok, "user:"):
		return auth.Principal{Kind: auth.User, ID: tok[len("user:"):]}, nil
	case strings.HasPrefix(tok, "key:"):
		return auth.Principal{Kind: auth.Key, ID: "k1", Scopes: strings.Split(tok[len("key:"):], ",")}, nil
	}
	return auth.Principal{}, &storage.Error{Status: 401, Code: "InvalidToken", Message: "bad token"}
}

// browserServer serves the browser API over a SQLite store and blob
// directory, with a clock tests can move.
type browserServer struct {
	*httptest.Server
	skew   atomic.Int64
	events eventLog
}

func newBrowserServer(t *testing.T) *browserServer {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	blobs := blobfs.New(filepath.Join(dir, "objects"))
	blobs.WithoutSync()
	if err := blobs.Open(); err != nil {
		t.Fatal(err)
	}
	s := &browserServer{}
	h := storage.New(storage.Config{
		Objects: db, Blobs: blobs, Lookup: lookup, Settings: db, SignKey: []byte("0123456789abcdef0123456789abcdef"),
		MaxObjectBytes: 1 << 20, Emit: s.events.emit(t),
		Now: func() time.Time { return time.Now().Add(time.Duration(s.skew.Load())) },
	})
	mux := http.NewServeMux()
	h.Register(mux, fakeCallers{}, nil)
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func (s *browserServer) do(t *testing.T, method, path, token string, body []byte, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == nil {
		req.Body = nil
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func (s *browserServer) mustDo(t *testing.T, method, path, token, body string, want int) []byte {
	t.Helper()
	resp, b := s.do(t, method, path, token, []byte(body), nil)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, want)
	}
	return b
}

// apiScenario is one request to the browser API and what must (and must
// not) come back.
type apiScenario struct {
	name    string
	method  string
	path    string
	token   string
	body    string
	header  http.Header
	status  int
	want    []string
	notWant []string
}

func (sc apiScenario) run(t *testing.T, s *browserServer) {
	t.Helper()
	var body []byte
	if sc.body != "" {
		body = []byte(sc.body)
	}
	resp, b := s.do(t, sc.method, sc.path, sc.token, body, sc.header)
	if resp.StatusCode != sc.status {
		t.Errorf("%s %s: status %d, want %d; body %s", sc.method, sc.path, resp.StatusCode, sc.status, b)
	}
	for _, w := range sc.want {
		if !bytes.Contains(b, []byte(w)) {
			t.Errorf("%s %s: body %s lacks %q", sc.method, sc.path, b, w)
		}
	}
	for _, w := range sc.notWant {
		if bytes.Contains(b, []byte(w)) {
			t.Errorf("%s %s: body %s has %q", sc.method, sc.path, b, w)
		}
	}
}

// seed makes the buckets of the scenarios: pub (public read, admin
// writes), home (owner folders), closed (no rules).
func seed(t *testing.T, s *browserServer) {
	t.Helper()
	for _, b := range []string{"pub", "home", "closed"} {
		s.mustDo(t, "PUT", "/v1/storage/"+b, "admin", "", http.StatusCreated)
	}
	s.mustDo(t, "PUT", "/v1/storage/pub/_rules", "admin", `{"read": "true"}`, http.StatusOK)
	owner := `auth.id != \"\" && resource.key.startsWith(\"users/\" + auth.id + \"/\")`
	s.mustDo(t, "PUT", "/v1/storage/home/_rules", "admin", `{"read": "`+owner+`", "write": "`+owner+` && resource.size < 100"}`, http.StatusOK)
	s.mustDo(t, "PUT", "/v1/storage/pub/hello.txt", "admin", "hello world", http.StatusCreated)
	s.mustDo(t, "PUT", "/v1/storage/closed/secret.txt", "admin", "top secret", http.StatusCreated)
	s.mustDo(t, "PUT", "/v1/storage/home/users/bob/notes.txt", "admin", "bob's notes", http.StatusCreated)
}

func TestBrowserRules(t *testing.T) {
	t.Parallel()
	s := newBrowserServer(t)
	seed(t, s)
	for _, sc := range []apiScenario{
		{name: "public read, anonymous", method: "GET", path: "/v1/storage/pub/hello.txt", status: 200, want: []string{"hello world"}},
		{name: "public read, range", method: "GET", path: "/v1/storage/pub/hello.txt", header: http.Header{"Range": {"bytes=6-"}}, status: 206, want: []string{"world"}, notWant: []string{"hello"}},
		{name: "public read, head", method: "HEAD", path: "/v1/storage/pub/hello.txt", status: 200},
		{name: "public read, missing", method: "GET", path: "/v1/storage/pub/nope.txt", status: 404},
		{name: "public list", method: "GET", path: "/v1/storage/pub", status: 200, want: []string{`"key":"hello.txt"`, `"size":11`}},
		{name: "public bucket, anonymous write", method: "PUT", path: "/v1/storage/pub/x.txt", body: "x", status: 401},
		{name: "public bucket, user write", method: "PUT", path: "/v1/storage/pub/x.txt", token: "user:alice", body: "x", status: 403, want: []string{"no write rule"}},
		{name: "public bucket, user delete", method: "DELETE", path: "/v1/storage/pub/hello.txt", token: "user:alice", status: 403},
		{name: "closed by default, anonymous", method: "GET", path: "/v1/storage/closed/secret.txt", status: 401, notWant: []string{"top secret"}},
		{name: "closed by default, user", method: "GET", path: "/v1/storage/closed/secret.txt", token: "user:alice", status: 404, notWant: []string{"top secret"}},
		{name: "closed list, user", method: "GET", path: "/v1/storage/closed", token: "user:alice", status: 403, notWant: []string{"secret.txt"}},
		{name: "closed, admin", method: "GET", path: "/v1/storage/closed/secret.txt", token: "admin", status: 200, want: []string{"top secret"}},
		{name: "owner writes own folder", method: "PUT", path: "/v1/storage/home/users/alice/a.txt", token: "user:alice", body: "mine", status: 201, want: []string{`"key":"users/alice/a.txt"`}},
		{name: "owner reads own folder", method: "GET", path: "/v1/storage/home/users/alice/a.txt", token: "user:alice", status: 200, want: []string{"mine"}},
		{name: "other user's folder read is 404", method: "GET", path: "/v1/storage/home/users/bob/notes.txt", token: "user:alice", status: 404, notWant: []string{"bob's notes"}},
		{name: "other user's folder write", method: "PUT", path: "/v1/storage/home/users/bob/x.txt", token: "user:alice", body: "x", status: 403},
		{name: "rule sees the incoming size", method: "PUT", path: "/v1/storage/home/users/alice/big.txt", token: "user:alice", body: strings.Repeat("x", 200), status: 403},
		{name: "anonymous, owner folders", method: "GET", path: "/v1/storage/home/users/bob/notes.txt", status: 404},
		{name: "list filtered by the read rule", method: "GET", path: "/v1/storage/home?prefix=users/", token: "user:alice", status: 200, want: []string{"users/alice/a.txt"}, notWant: []string{"bob"}},
		{name: "owner deletes", method: "DELETE", path: "/v1/storage/home/users/alice/a.txt", token: "user:alice", status: 204},
		{name: "owner can't delete another's", method: "DELETE", path: "/v1/storage/home/users/bob/notes.txt", token: "user:alice", status: 403},
		{name: "key with storage:read", method: "GET", path: "/v1/storage/closed/secret.txt", token: "key:storage:read", status: 200, want: []string{"top secret"}},
		{name: "key with storage:read can't write", method: "PUT", path: "/v1/storage/closed/k.txt", token: "key:storage:read", body: "k", status: 403, want: []string{"storage:write"}},
		{name: "key scoped to another bucket", method: "GET", path: "/v1/storage/closed/secret.txt", token: "key:storage:pub:read", status: 404},
		{name: "key with storage:BUCKET:write", method: "PUT", path: "/v1/storage/closed/k.txt", token: "key:storage:closed:write", body: "k", status: 201},
		{name: "key list", method: "GET", path: "/v1/storage/closed", token: "key:storage:closed:read", status: 200, want: []string{"secret.txt", "k.txt"}},
		{name: "rules are admin only", method: "PUT", path: "/v1/storage/pub/_rules", token: "user:alice", body: `{"write": "true"}`, status: 403},
		{name: "rules read back", method: "GET", path: "/v1/storage/home/_rules", token: "admin", status: 200, want: []string{`"read":"auth.id`}},
		{name: "bad rule", method: "PUT", path: "/v1/storage/pub/_rules", token: "admin", body: `{"read": "resource.key +"}`, status: 400, want: []string{"invalid rule"}},
		{name: "rules of a missing bucket", method: "PUT", path: "/v1/storage/nobucket/_rules", token: "admin", body: `{"read": "true"}`, status: 404},
		{name: "path trick", method: "GET", path: "/v1/storage/pub/a/../../closed/secret.txt", status: 401, notWant: []string{"top secret"}},
		{name: "write to a missing bucket", method: "PUT", path: "/v1/storage/nobucket/x", token: "admin", body: "x", status: 404},
		{name: "too large", method: "PUT", path: "/v1/storage/closed/big", token: "admin", body: strings.Repeat("x", 1<<20+1), status: 413},
	} {
		t.Run(sc.name, func(t *testing.T) { sc.run(t, s) })
	}
}

// TestBrowserListBuckets: GET /v1/storage lists the buckets by name, to
// admins only (the console's storage browser).
func TestBrowserListBuckets(t *testing.T) {
	t.Parallel()
	s := newBrowserServer(t)
	apiScenario{name: "no buckets yet", method: "GET", path: "/v1/storage", token: "admin", status: 200, want: []string{`{"buckets":[]}`}}.run(t, s)
	seed(t, s)
	for _, sc := range []apiScenario{
		{name: "admin", method: "GET", path: "/v1/storage", token: "admin", status: 200,
			want: []string{`{"buckets":[{"name":"closed","created_at":"`, `{"name":"home"`, `{"name":"pub"`}},
		{name: "anonymous", method: "GET", path: "/v1/storage", status: 401, notWant: []string{"closed", "home"}},
		{name: "user", method: "GET", path: "/v1/storage", token: "user:alice", status: 403, notWant: []string{"closed", "home"}},
		{name: "key with storage:read", method: "GET", path: "/v1/storage", token: "key:storage:read", status: 403, notWant: []string{"closed", "home"}},
		{name: "not a write", method: "POST", path: "/v1/storage", token: "admin", status: 405},
	} {
		t.Run(sc.name, func(t *testing.T) { sc.run(t, s) })
	}
}

func TestBrowserConditionalGet(t *testing.T) {
	t.Parallel()
	s := newBrowserServer(t)
	seed(t, s)
	resp, _ := s.do(t, "GET", "/v1/storage/pub/hello.txt", "", nil, nil)
	etag := resp.Header.Get("ETag")
	resp, b := s.do(t, "GET", "/v1/storage/pub/hello.txt", "", nil, http.Header{"If-None-Match": {etag}})
	if resp.StatusCode != http.StatusNotModified || len(b) != 0 {
		t.Fatalf("If-None-Match: %d %q", resp.StatusCode, b)
	}
}

func presignURL(t *testing.T, s *browserServer, bucket, token, body string, want int) string {
	t.Helper()
	b := s.mustDo(t, "POST", "/v1/storage/"+bucket+"/_presign", token, body, want)
	var out struct{ URL string }
	_ = json.Unmarshal(b, &out)
	return out.URL
}

func TestBrowserPresign(t *testing.T) {
	t.Parallel()
	s := newBrowserServer(t)
	seed(t, s)
	text := http.Header{"Content-Type": {"text/plain"}}
	put := presignURL(t, s, "home", "user:alice", `{"key": "users/alice/up.txt", "method": "PUT", "content_type": "text/plain", "expires_in": 60}`, 200)
	get := presignURL(t, s, "closed", "admin", `{"key": "secret.txt"}`, 200)
	short := presignURL(t, s, "closed", "admin", `{"key": "secret.txt", "expires_in": 1}`, 200)
	for _, sc := range []apiScenario{
		{name: "presigned PUT works without a token", method: "PUT", path: put, header: text, body: "uploaded", status: 201},
		{name: "presigned PUT with another content type", method: "PUT", path: put, header: http.Header{"Content-Type": {"text/html"}}, body: "<p>", status: 403, want: []string{"text/plain"}},
		{name: "presigned GET works without a token", method: "GET", path: get, status: 200, want: []string{"top secret"}},
		{name: "presigned HEAD rides on GET", method: "HEAD", path: get, status: 200},
		{name: "GET URL used to PUT", method: "PUT", path: get, body: "x", status: 403, want: []string{"invalid_presigned_url", "signature does not match"}},
		{name: "PUT URL used to GET", method: "GET", path: put, status: 403},
		{name: "presigned DELETE", method: "DELETE", path: get, status: 403},
		{name: "tampered key", method: "GET", path: strings.Replace(get, "secret.txt", "secret2.txt", 1), status: 403, want: []string{"signature does not match"}},
		{name: "tampered expiry", method: "GET", path: strings.Replace(get, "x-hostless-expires=", "x-hostless-expires=9", 1), status: 403, want: []string{"signature does not match"}},
		{name: "tampered signature", method: "GET", path: get[:len(get)-4] + "0000", status: 403},
		{name: "malformed signature", method: "GET", path: get + "zz", status: 403, want: []string{"64 hex digits"}},
		{name: "presign a forbidden PUT", method: "POST", path: "/v1/storage/home/_presign", token: "user:alice", body: `{"key": "users/bob/x", "method": "PUT"}`, status: 403},
		{name: "presign a hidden GET", method: "POST", path: "/v1/storage/home/_presign", token: "user:alice", body: `{"key": "users/bob/notes.txt"}`, status: 404},
		{name: "presign anonymous on a closed bucket", method: "POST", path: "/v1/storage/closed/_presign", body: `{"key": "secret.txt"}`, status: 401},
		{name: "presign too long", method: "POST", path: "/v1/storage/closed/_presign", token: "admin", body: `{"key": "secret.txt", "expires_in": 604801}`, status: 400},
		{name: "presign a bad method", method: "POST", path: "/v1/storage/closed/_presign", token: "admin", body: `{"key": "secret.txt", "method": "DELETE"}`, status: 400},
	} {
		t.Run(sc.name, func(t *testing.T) { sc.run(t, s) })
	}
	s.mustDo(t, "GET", "/v1/storage/home/users/alice/up.txt", "user:alice", "", 200)
	s.skew.Store(int64(2 * time.Second))
	apiScenario{method: "GET", path: short, status: 403, want: []string{"expired"}}.run(t, s)
}

// TestBrowserEvents: writes and deletes through the browser API emit the
// object events.
func TestBrowserEvents(t *testing.T) {
	t.Parallel()
	s := newBrowserServer(t)
	s.mustDo(t, "PUT", "/v1/storage/bk1", "admin", "", http.StatusCreated)
	s.mustDo(t, "PUT", "/v1/storage/bk1/x%20y.txt", "admin", "12345", http.StatusCreated)
	s.mustDo(t, "DELETE", "/v1/storage/bk1/x%20y.txt", "admin", "", http.StatusNoContent)
	names, evs := s.events.all()
	if len(names) != 2 || names[0] != storage.EventCreated || names[1] != storage.EventDeleted {
		t.Fatalf("events %v", names)
	}
	if o := evs[0].Records[0].S3.Object; o.Key != "x+y.txt" || o.Size != 5 || evs[0].Records[0].EventName != "ObjectCreated:Put" {
		t.Fatalf("created event %+v", evs[0].Records[0])
	}
}
