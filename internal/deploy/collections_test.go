package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/hostless/hostless/internal/client"
	"github.com/hostless/hostless/internal/deploy"
	"github.com/hostless/hostless/internal/manifest"
)

// collectionServer is the collections API of a server: it keeps each
// spec's JSON as it was put, re-encoded with its keys in another order,
// as a store might.
type collectionServer struct {
	mu    sync.Mutex
	specs map[string]json.RawMessage
	log   []string // "METHOD name"
	// refuse answers a PUT of this collection with a 400.
	refuse string
}

func newCollectionServer(t *testing.T) (*collectionServer, *client.Client) {
	s := &collectionServer{specs: map[string]json.RawMessage{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		name, ok := strings.CutPrefix(r.URL.Path, "/v1/collections/")
		if !ok {
			http.Error(w, "unexpected "+r.URL.Path, http.StatusTeapot)
			return
		}
		s.log = append(s.log, r.Method+" "+name)
		w.Header().Set("Content-Type", "application/json")
		switch r.Method {
		case http.MethodGet:
			spec, ok := s.specs[name]
			if !ok {
				w.WriteHeader(http.StatusNotFound)
				io.WriteString(w, `{"error":{"code":"collection_not_found","message":"no collection named \"`+name+`\""}}`)
				return
			}
			json.NewEncoder(w).Encode(map[string]any{"name": name, "spec": spec, "documents": 0})
		case http.MethodPut:
			if name == s.refuse {
				w.WriteHeader(http.StatusBadRequest)
				io.WriteString(w, `{"error":{"code":"bad_request","message":"rules.get: syntax error"}}`)
				return
			}
			b, _ := io.ReadAll(r.Body)
			var v any
			if err := json.Unmarshal(b, &v); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			// A map re-encodes with sorted keys; indent it, too.
			s.specs[name], _ = json.MarshalIndent(v, "", "    ")
			json.NewEncoder(w).Encode(map[string]any{"name": name, "spec": s.specs[name]})
		default:
			http.Error(w, "unexpected "+r.Method, http.StatusTeapot)
		}
	}))
	t.Cleanup(srv.Close)
	return s, client.New(srv.URL, "test-admin-key-0123456789")
}

func (s *collectionServer) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.log
	s.log = nil
	return l
}

func parse(t *testing.T, yaml string) *manifest.Manifest {
	t.Helper()
	m, err := manifest.Parse([]byte(yaml), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

const todos = `collections:
  todos:
    schema:
      type: object
      properties: {title: {type: string, maxLength: 100}, n: {type: number, minimum: 1.0}}
    indexes: [owner_id]
    rules:
      list: resource.owner_id == auth.id
      create: request.data.owner_id == auth.id
  notes:
`

func TestApplyCollections(t *testing.T) {
	t.Parallel()
	srv, c := newCollectionServer(t)
	ctx := context.Background()
	srv.specs["legacy"] = json.RawMessage(`{"indexes":["x"]}`)

	var out bytes.Buffer
	res, err := deploy.ApplyCollections(ctx, c, parse(t, todos), &out)
	if err != nil {
		t.Fatal(err)
	}
	want := []deploy.CollectionResult{{Name: "notes", Action: "created"}, {Name: "todos", Action: "created"}}
	if len(res) != 2 || res[0] != want[0] || res[1] != want[1] {
		t.Errorf("results %+v, want %+v", res, want)
	}
	for _, re := range []string{`(?m)^notes\s+created\s+collection$`, `(?m)^todos\s+created\s+collection$`} {
		if !regexp.MustCompile(re).MatchString(out.String()) {
			t.Errorf("output lacks %s:\n%s", re, out.String())
		}
	}
	// Every GET before the first PUT: a server that can't be read changes nothing.
	if got := strings.Join(srv.requests(), ","); got != "GET notes,GET todos,PUT notes,PUT todos" {
		t.Errorf("requests %s", got)
	}
	var put map[string]any
	_ = json.Unmarshal(srv.specs["todos"], &put)
	if put["rules"].(map[string]any)["list"] != "resource.owner_id == auth.id" || put["schema"].(map[string]any)["type"] != "object" {
		t.Errorf("stored spec %s", srv.specs["todos"])
	}

	// Again: the server's JSON has other key order and spacing, 1.0 is 1.
	out.Reset()
	res, err = deploy.ApplyCollections(ctx, c, parse(t, todos), &out)
	if err != nil || len(res) != 2 || res[0].Action != "unchanged" || res[1].Action != "unchanged" {
		t.Fatalf("second deploy: %+v, %v", res, err)
	}
	if got := strings.Join(srv.requests(), ","); got != "GET notes,GET todos" {
		t.Errorf("an unchanged deploy sent %s", got)
	}

	// One rule changes: that collection alone is put. legacy stays.
	changed := strings.Replace(todos, "create: request.data.owner_id == auth.id", "create: auth.id != ''", 1)
	plan, err := deploy.PlanCollections(ctx, c, parse(t, changed), &out)
	if err != nil || len(plan) != 2 || plan[0].Action != deploy.ActionUnchanged || plan[1].Action != deploy.ActionUpdate {
		t.Fatalf("plan %+v, %v", plan, err)
	}
	if !strings.Contains(out.String(), "Collections: 0 to create, 1 to update, 1 unchanged.") {
		t.Errorf("plan output:\n%s", out.String())
	}
	if got := strings.Join(srv.requests(), ","); got != "GET notes,GET todos" {
		t.Errorf("a plan sent %s", got)
	}
	res, err = deploy.ApplyCollections(ctx, c, parse(t, changed), nil)
	if err != nil || res[0].Action != "unchanged" || res[1].Action != "updated" {
		t.Fatalf("third deploy: %+v, %v", res, err)
	}
	if got := strings.Join(srv.requests(), ","); got != "GET notes,GET todos,PUT todos" {
		t.Errorf("requests %s", got)
	}
	if _, ok := srv.specs["legacy"]; !ok {
		t.Error("a collection the manifest doesn't name was removed")
	}

	// The server refuses a spec: the error names the collection.
	srv.refuse = "todos"
	_, err = deploy.ApplyCollections(ctx, c, parse(t, strings.Replace(todos, "auth.id\n", "auth.uid\n", 1)), nil)
	if err == nil || !strings.Contains(err.Error(), `collection "todos": rules.get: syntax error`) {
		t.Errorf("refused spec: %v", err)
	}
}

// TestApplyPutsCollectionsAfterCheckingCode: Apply puts collections, then
// functions; bad code stops it before either.
func TestApplyPutsCollectionsAfterCheckingCode(t *testing.T) {
	t.Parallel()
	srv, c := newCollectionServer(t)
	dir := t.TempDir()
	m, err := manifest.Parse([]byte(todos+"functions:\n  a: {runtime: wasm, code: a.wasm}\n"), dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := deploy.Apply(context.Background(), c, m, nil); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("Apply with missing code: %v", err)
	}
	if got := srv.requests(); len(got) != 0 {
		t.Errorf("Apply sent %v before refusing the code", got)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.wasm"), []byte(wasmMagic), 0o644); err != nil {
		t.Fatal(err)
	}
	// The fake server has no artifacts API: the function fails, after the collections.
	_, err = deploy.Apply(context.Background(), c, m, nil)
	if err == nil || !strings.Contains(err.Error(), `function "a"`) {
		t.Fatalf("Apply: %v", err)
	}
	if got := strings.Join(srv.requests(), ","); got != "GET notes,GET todos,PUT notes,PUT todos" {
		t.Errorf("requests %s", got)
	}
}

func TestSameCollectionSpec(t *testing.T) {
	t.Parallel()
	spec := func(s string) client.CollectionSpec {
		var c client.CollectionSpec
		if err := json.Unmarshal([]byte(s), &c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name string
		a, b string
		same bool
	}{
		{"empty", `{}`, `{}`, true},
		{"key order and spacing", `{"schema":{"type":"object","required":["a"]}}`, `{"schema":{ "required" : ["a"], "type":"object"}}`, true},
		{"1 and 1.0", `{"schema":{"minimum":1}}`, `{"schema":{"minimum":1.0}}`, true},
		{"empty lists are absent", `{"indexes":[],"rules":{}}`, `{}`, true},
		{"list order counts", `{"indexes":["a","b"]}`, `{"indexes":["b","a"]}`, false},
		{"a rule", `{"rules":{"get":"true"}}`, `{"rules":{"get":"false"}}`, false},
		{"a schema", `{"schema":{"type":"object"}}`, `{}`, false},
		{"a bound", `{"max_documents":5}`, `{}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := deploy.SameCollectionSpec(spec(tt.a), spec(tt.b)); got != tt.same {
				t.Errorf("SameCollectionSpec(%s, %s) = %v", tt.a, tt.b, got)
			}
		})
	}
}
