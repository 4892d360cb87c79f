package docdb_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/baas/auth"
	"github.com/hostless/hostless/internal/baas/docdb"
	"github.com/hostless/hostless/internal/masterkey"
	"github.com/hostless/hostless/internal/store"
	"github.com/hostless/hostless/internal/store/sqlite"
)

const adminKey = "test-admin-key-0123456789"

type env struct {
	t     *testing.T
	url   string
	auth  *auth.Service
	db    *docdb.Service
	store store.Store
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	raw := make([]byte, 32)
	rand.Read(raw)
	mk, err := masterkey.New(raw)
	if err != nil {
		t.Fatal(err)
	}
	as := auth.New(auth.Config{Store: st, Sealer: mk, AdminKey: func(c string) bool { return c == adminKey },
		SignupsPerIP: auth.Rate{Burst: -1}, HashConcurrency: 2})
	if err := as.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(as.Close)
	ds := docdb.New(docdb.Config{Store: st, Poll: 50 * time.Millisecond})
	if err := ds.Start(ctx); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	as.Register(mux, nil)
	ds.Register(mux, as, nil)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(ds.Close)
	return &env{t: t, url: srv.URL, auth: as, db: ds, store: st}
}

// user signs a new user up and returns its ID and access token.
func (e *env) user(email string) (string, string) {
	e.t.Helper()
	tk, err := e.auth.Signup(context.Background(), email, "correct horse battery", "127.0.0.1")
	if err != nil {
		e.t.Fatal(err)
	}
	return tk.User.ID, tk.AccessToken
}

type resp struct {
	status int
	header http.Header
	body   string
}

func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("response %d %q is not a JSON object: %v", r.status, r.body, err)
	}
	return m
}

func (e *env) do(method, path, token, body string, hdr ...string) resp {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, string(b)}
}

func (e *env) want(r resp, status int, fragments ...string) {
	e.t.Helper()
	if r.status != status {
		e.t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	for _, f := range fragments {
		if !strings.Contains(r.body, f) {
			e.t.Fatalf("body %s lacks %q", r.body, f)
		}
	}
}

const todosSpec = `{
	"schema": {"type": "object", "required": ["title", "owner_id"], "properties": {
		"title": {"type": "string", "maxLength": 100}, "owner_id": {"type": "string"},
		"priority": {"type": "integer"}, "done": {"type": "boolean"}}},
	"indexes": ["owner_id", "priority"],
	"rules": {
		"list": "auth.id != '' && resource.owner_id == auth.id",
		"get": "resource.owner_id == auth.id || 'admin' in auth.roles",
		"create": "auth.kind == 'user' && request.data.owner_id == auth.id",
		"update": "resource.owner_id == auth.id && request.data.owner_id == auth.id",
		"delete": "resource.owner_id == auth.id"
	}
}`

func ids(t *testing.T, r resp) []string {
	t.Helper()
	var out struct {
		Documents []struct {
			ID string `json:"id"`
		} `json:"documents"`
	}
	if err := json.Unmarshal([]byte(r.body), &out); err != nil {
		t.Fatalf("list body %s: %v", r.body, err)
	}
	var s []string
	for _, d := range out.Documents {
		s = append(s, d.ID)
	}
	return s
}

func TestCollectionsAreForAdmins(t *testing.T) {
	e := newEnv(t)
	_, tok := e.user("ann@example.com")
	e.want(e.do("PUT", "/v1/collections/todos", tok, todosSpec), 403, "admins")
	e.want(e.do("PUT", "/v1/collections/todos", "", todosSpec), 401)
	e.want(e.do("PUT", "/v1/collections/todos", adminKey, todosSpec), 201, `"name":"todos"`)
	e.want(e.do("PUT", "/v1/collections/todos", adminKey, todosSpec), 200)
	e.want(e.do("GET", "/v1/collections", adminKey, ""), 200, `"todos"`)
	for _, tc := range []struct{ name, path, spec, want string }{
		{"bad name", "/v1/collections/Todos", `{}`, "lower-case"},
		{"bad rule", "/v1/collections/x", `{"rules":{"get":"resource.owner =="}}`, "rules.get"},
		{"unknown op", "/v1/collections/x", `{"rules":{"read":"true"}}`, "not an operation"},
		{"rule not bool", "/v1/collections/x", `{"rules":{"get":"resource.title"}}`, "rules.get"},
		{"bad schema", "/v1/collections/x", `{"schema":{"type":12}}`, "schema"},
		{"remote ref", "/v1/collections/x", `{"schema":{"$ref":"http://example.com/s.json"}}`, "only references inside"},
		{"file ref", "/v1/collections/x", `{"schema":{"$ref":"file:///etc/passwd"}}`, "only references inside"},
		{"bad index", "/v1/collections/x", `{"indexes":["a b"]}`, "not a field path"},
		{"unknown field", "/v1/collections/x", `{"rulez":{}}`, "unknown field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.want(e.do("PUT", tc.path, adminKey, tc.spec), 400, tc.want)
		})
	}
}

func TestOwnerRules(t *testing.T) {
	e := newEnv(t)
	e.want(e.do("PUT", "/v1/collections/todos", adminKey, todosSpec), 201)
	ann, annTok := e.user("ann@example.com")
	bob, bobTok := e.user("bob@example.com")

	// Create: only as yourself.
	r := e.do("POST", "/v1/db/todos", annTok, fmt.Sprintf(`{"title":"milk","owner_id":%q,"priority":2}`, ann))
	e.want(r, 201, `"version":1`, `"title":"milk"`)
	annDoc := r.json(t)["id"].(string)
	if r.header.Get("ETag") != `"1"` || r.header.Get("Location") != "/v1/db/todos/"+annDoc {
		t.Fatalf("ETag %q, Location %q", r.header.Get("ETag"), r.header.Get("Location"))
	}
	e.want(e.do("POST", "/v1/db/todos", bobTok, fmt.Sprintf(`{"title":"steal","owner_id":%q}`, ann)), 403, "create rule")
	e.want(e.do("POST", "/v1/db/todos", "", fmt.Sprintf(`{"title":"anon","owner_id":%q}`, ann)), 403)
	e.want(e.do("POST", "/v1/db/todos", bobTok, fmt.Sprintf(`{"title":"bread","owner_id":%q,"priority":5}`, bob)), 201)

	// Get: a denied document is not found, so a rule hides what exists.
	e.want(e.do("GET", "/v1/db/todos/"+annDoc, annTok, ""), 200, `"title":"milk"`)
	e.want(e.do("GET", "/v1/db/todos/"+annDoc, bobTok, ""), 404, "document_not_found")
	e.want(e.do("GET", "/v1/db/todos/"+annDoc, adminKey, ""), 200)

	// List: each sees their own, whatever the filter says.
	if got := ids(t, e.do("GET", "/v1/db/todos", annTok, "")); !slices.Equal(got, []string{annDoc}) {
		t.Fatalf("ann lists %v", got)
	}
	r = e.do("GET", "/v1/db/todos?filter="+urlq(fmt.Sprintf(`owner_id == %q || priority > 0`, ann)), bobTok, "")
	e.want(r, 200)
	for _, id := range ids(t, r) {
		if id == annDoc {
			t.Fatalf("bob's filter read past the rule: %s", r.body)
		}
	}
	if got := ids(t, e.do("GET", "/v1/db/todos", "", "")); len(got) != 0 {
		t.Fatalf("anonymous lists %v", got)
	}
	// The rule is exact (an equality with auth.id), so counts are allowed.
	e.want(e.do("GET", "/v1/db/todos?count=true", annTok, ""), 200, `"count":1`)

	// Update: replace and merge-patch, under If-Match.
	e.want(e.do("PATCH", "/v1/db/todos/"+annDoc, bobTok, `{"done":true}`), 403, "update rule")
	e.want(e.do("PATCH", "/v1/db/todos/"+annDoc, annTok, `{"done":true}`, "If-Match", `"1"`), 200, `"done":true`, `"version":2`, `"title":"milk"`)
	e.want(e.do("PATCH", "/v1/db/todos/"+annDoc, annTok, `{"done":false}`, "If-Match", `"1"`), 412, "version_mismatch")
	e.want(e.do("PATCH", "/v1/db/todos/"+annDoc, annTok, `{"priority":null}`), 200)
	if r := e.do("GET", "/v1/db/todos/"+annDoc, annTok, ""); strings.Contains(r.body, "priority") {
		t.Fatalf("merge patch with null kept the field: %s", r.body)
	}
	e.want(e.do("PATCH", "/v1/db/todos/"+annDoc, annTok, fmt.Sprintf(`{"owner_id":%q}`, bob)), 403, "update rule")
	e.want(e.do("PUT", "/v1/db/todos/"+annDoc, annTok, fmt.Sprintf(`{"title":"oat milk","owner_id":%q}`, ann)), 200, `"oat milk"`)
	e.want(e.do("PATCH", "/v1/db/todos/"+annDoc, annTok, `{"title":5}`), 422, "schema")
	e.want(e.do("GET", "/v1/db/todos/"+annDoc, annTok, "", "If-None-Match", `"4"`), 304)

	// Delete.
	e.want(e.do("DELETE", "/v1/db/todos/"+annDoc, bobTok, ""), 403, "delete rule")
	e.want(e.do("DELETE", "/v1/db/todos/"+annDoc, annTok, ""), 204)
	e.want(e.do("GET", "/v1/db/todos/"+annDoc, annTok, ""), 404)
}

func urlq(s string) string {
	r := strings.NewReplacer(" ", "%20", "&", "%26", "|", "%7C", `"`, "%22", "=", "%3D", ">", "%3E", "<", "%3C", "!", "%21", "+", "%2B")
	return r.Replace(s)
}

func TestClosedByDefaultAndKeys(t *testing.T) {
	e := newEnv(t)
	e.want(e.do("PUT", "/v1/collections/secrets", adminKey, `{}`), 201)
	_, tok := e.user("ann@example.com")
	e.want(e.do("POST", "/v1/db/secrets", tok, `{"a":1}`), 403, "no create rule")
	e.want(e.do("GET", "/v1/db/secrets", "", ""), 401, "no list rule")
	e.want(e.do("POST", "/v1/db/secrets", adminKey, `{"a":1}`), 201)

	ctx := context.Background()
	reader, err := e.auth.CreateAPIKey(ctx, "reader", []string{"db:read"})
	if err != nil {
		t.Fatal(err)
	}
	writer, err := e.auth.CreateAPIKey(ctx, "writer", []string{"db:secrets:*"})
	if err != nil {
		t.Fatal(err)
	}
	e.want(e.do("GET", "/v1/db/secrets", reader.Key, ""), 200, `"a":1`)
	e.want(e.do("POST", "/v1/db/secrets", reader.Key, `{"a":2}`), 403, "db:write")
	e.want(e.do("POST", "/v1/db/secrets", writer.Key, `{"a":2}`), 201)
	e.want(e.do("GET", "/v1/db/secrets", "hlk_0000000000000000_nope", ""), 401, "invalid_token")
}

func TestBadInput(t *testing.T) {
	e := newEnv(t)
	e.want(e.do("PUT", "/v1/collections/notes", adminKey, `{"max_document_bytes": 1024, "max_documents": 2, "rules": {"create": "true", "list": "true"}}`), 201)
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		want                     string
	}{
		{"not JSON", "POST", "/v1/db/notes", `{"a":`, 400, "not JSON"},
		{"not an object", "POST", "/v1/db/notes", `[1,2]`, 400, "JSON object"},
		{"reserved field", "POST", "/v1/db/notes", `{"version":3}`, 400, "keeps"},
		{"bad id", "POST", "/v1/db/notes", `{"id":"../x"}`, 400, "id:"},
		{"too large", "POST", "/v1/db/notes", `{"a":"` + strings.Repeat("x", 2000) + `"}`, 413, "max_document_bytes"},
		{"no collection", "POST", "/v1/db/nope", `{}`, 404, "collection_not_found"},
		{"bad filter", "GET", "/v1/db/notes?filter=a%20%3D%201", "", 400, "filter"},
		{"bad sort", "GET", "/v1/db/notes?sort=a..b", "", 400, "sort"},
		{"bad cursor", "GET", "/v1/db/notes?cursor=xyz", "", 400, "cursor"},
		{"bad limit", "GET", "/v1/db/notes?limit=0", "", 400, "limit"},
		{"injection is a string", "GET", "/v1/db/notes?filter=a%20%3D%3D%20%22x'%20OR%201%3D1%20--%22", "", 200, `"documents":[]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.want(e.do(tc.method, tc.path, adminKey, tc.body), tc.status, tc.want)
		})
	}
	_, tok := e.user("ann@example.com")
	e.want(e.do("POST", "/v1/db/notes", tok, `{"id":"n1"}`), 201, `"id":"n1"`)
	e.want(e.do("POST", "/v1/db/notes", tok, `{"id":"n1"}`), 409, "document_exists")
	e.want(e.do("POST", "/v1/db/notes", tok, `{}`), 201)
	e.want(e.do("POST", "/v1/db/notes", tok, `{}`), 507, "collection_full")
}

func TestBatchIsAtomic(t *testing.T) {
	e := newEnv(t)
	e.want(e.do("PUT", "/v1/collections/a", adminKey, `{}`), 201)
	e.want(e.do("POST", "/v1/db/a", adminKey, `{"id":"x","n":1}`), 201)
	e.want(e.do("POST", "/v1/db/_batch", adminKey, `{"writes":[
		{"op":"create","collection":"a","id":"y","data":{"n":2}},
		{"op":"patch","collection":"a","id":"x","data":{"n":5},"if_version":7}]}`), 412, "nothing was written")
	e.want(e.do("GET", "/v1/db/a/y", adminKey, ""), 404)
	e.want(e.do("POST", "/v1/db/_batch", adminKey, `{"writes":[
		{"op":"create","collection":"a","id":"y","data":{"n":2}},
		{"op":"patch","collection":"a","id":"x","data":{"n":5},"if_version":1},
		{"op":"delete","collection":"a","id":"y"}]}`), 200, `"op":"delete"`)
	e.want(e.do("GET", "/v1/db/a/x", adminKey, ""), 200, `"n":5`)
	e.want(e.do("GET", "/v1/db/a/y", adminKey, ""), 404)
}

func TestListPagingFieldsAndNarrowing(t *testing.T) {
	e := newEnv(t)
	// A rule that isn't an equality: evaluated on each row.
	e.want(e.do("PUT", "/v1/collections/posts", adminKey, `{"indexes":["rank"], "rules": {"list": "resource.rank % 2 == 0 || auth.kind == 'admin'"}}`), 201)
	for i := range 25 {
		e.want(e.do("POST", "/v1/db/posts", adminKey, fmt.Sprintf(`{"id":"p%02d","rank":%d,"body":"text %d","meta":{"a":%d,"b":1}}`, i, i, i, i)), 201)
	}
	_, tok := e.user("ann@example.com")
	var got []string
	cursor := ""
	for pages := 0; pages < 20; pages++ {
		path := "/v1/db/posts?sort=-rank&limit=4&fields=rank,meta.a"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := e.do("GET", path, tok, "")
		e.want(r, 200)
		if strings.Contains(r.body, "text") || strings.Contains(r.body, `"b":1`) {
			t.Fatalf("fields didn't project: %s", r.body)
		}
		got = append(got, ids(t, r)...)
		m := r.json(t)
		next, _ := m["next_cursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	var want []string
	for i := 24; i >= 0; i -= 2 {
		want = append(want, fmt.Sprintf("p%02d", i))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("pages = %v, want %v", got, want)
	}
	e.want(e.do("GET", "/v1/db/posts?count=true", tok, ""), 400, "count")
}

// sse reads a change stream's events until n arrive.
func sse(t *testing.T, url, token, last string, n int) (events []map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	if last != "" {
		req.Header.Set("Last-Event-ID", last)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("subscribe: %d %s", res.StatusCode, b)
	}
	sc := bufio.NewScanner(res.Body)
	ev := map[string]string{}
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if ev["id"] != "" {
				events = append(events, ev)
				if len(events) == n {
					return events
				}
			}
			ev = map[string]string{}
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		k, v, _ := strings.Cut(line, ": ")
		ev[k] = v
	}
	t.Fatalf("stream ended after %d events (want %d): %v", len(events), n, sc.Err())
	return nil
}

func TestRealtime(t *testing.T) {
	e := newEnv(t)
	e.want(e.do("PUT", "/v1/collections/todos", adminKey, todosSpec), 201)
	ann, annTok := e.user("ann@example.com")
	bob, bobTok := e.user("bob@example.com")

	got := make(chan []map[string]string, 1)
	go func() { got <- sse(t, e.url+"/v1/db/todos/_events?access_token="+annTok, "", "", 3) }()
	time.Sleep(200 * time.Millisecond) // let the subscription open
	r := e.do("POST", "/v1/db/todos", annTok, fmt.Sprintf(`{"title":"a","owner_id":%q}`, ann))
	e.want(r, 201)
	id := r.json(t)["id"].(string)
	e.want(e.do("POST", "/v1/db/todos", bobTok, fmt.Sprintf(`{"title":"bob's","owner_id":%q}`, bob)), 201) // not for ann
	e.want(e.do("PATCH", "/v1/db/todos/"+id, annTok, `{"done":true}`), 200)
	e.want(e.do("DELETE", "/v1/db/todos/"+id, annTok, ""), 204)
	var evs []map[string]string
	select {
	case evs = <-got:
	case <-time.After(15 * time.Second):
		t.Fatal("no events")
	}
	ops := []string{evs[0]["event"], evs[1]["event"], evs[2]["event"]}
	if !slices.Equal(ops, []string{"created", "updated", "deleted"}) {
		t.Fatalf("events %v", evs)
	}
	for _, ev := range evs {
		if strings.Contains(ev["data"], "bob's") {
			t.Fatalf("ann saw bob's document: %v", ev)
		}
		if !strings.Contains(ev["data"], `"id":"`+id+`"`) {
			t.Fatalf("event %v is not about %s", ev, id)
		}
	}
	// A reconnect with the first event's ID replays the rest, no gap.
	again := sse(t, e.url+"/v1/db/todos/_events", annTok, evs[0]["id"], 2)
	if again[0]["id"] != evs[1]["id"] || again[1]["id"] != evs[2]["id"] {
		t.Fatalf("resume replayed %v, want %v and %v", again, evs[1], evs[2])
	}
	// An invalid token can't subscribe, and keys don't go in URLs.
	e.want(e.do("GET", "/v1/db/todos/_events?access_token=a.b.c", "", ""), 401)
	e.want(e.do("GET", "/v1/db/todos/_events?access_token="+adminKey, "", ""), 400, "JWT")
}
