package client

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/baas/auth"
	"github.com/hostless/hostless/internal/baas/docdb"
)

// TestBackendTypesMatchTheServer: the client's mirrors of the backend's
// JSON carry every field the server sends, under the same names, and the
// server accepts every field the client sends.
func TestBackendTypesMatchTheServer(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	spec := docdb.Spec{Schema: json.RawMessage(`{"type":"object"}`), Indexes: []string{"owner_id"},
		Rules: map[string]string{"get": "true"}, MaxDocuments: 10, MaxDocumentBytes: 1024}
	tests := []struct {
		name           string
		server, client any
	}{
		{"user", auth.UserView{ID: "u1", Email: "a@b.c", EmailVerified: true, Roles: []string{"admin"}, Disabled: true, CreatedAt: now, UpdatedAt: now}, &User{}},
		{"user change", auth.UserChange{Disabled: new(bool), Roles: &[]string{"x"}}, &UserChange{}},
		{"api key", auth.APIKeyView{ID: "k", Name: "n", Scopes: []string{"db:read"}, CreatedAt: now, Key: "secret"}, &APIKey{}},
		{"spec", spec, &CollectionSpec{}},
		{"collection", docdb.CollectionView{Name: "todos", Spec: spec, Documents: 3, CreatedAt: now, UpdatedAt: now}, &Collection{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want, err := json.Marshal(tt.server)
			if err != nil {
				t.Fatal(err)
			}
			d := json.NewDecoder(bytes.NewReader(want))
			d.DisallowUnknownFields()
			if err := d.Decode(tt.client); err != nil {
				t.Fatalf("the client can't read the server's %s: %v", want, err)
			}
			got, _ := json.Marshal(tt.client)
			var a, b any
			_ = json.Unmarshal(want, &a)
			_ = json.Unmarshal(got, &b)
			if !reflect.DeepEqual(a, b) {
				t.Errorf("round trip:\nserver %s\nclient %s", want, got)
			}
			// And the other way: the server's type takes what the client sends.
			d = json.NewDecoder(bytes.NewReader(got))
			d.DisallowUnknownFields()
			if err := d.Decode(reflect.New(reflect.TypeOf(tt.server)).Interface()); err != nil {
				t.Errorf("the server can't read the client's %s: %v", got, err)
			}
		})
	}
}

// TestBackendRequests: each method sends the request the server's routes
// expect and decodes the answer.
func TestBackendRequests(t *testing.T) {
	t.Parallel()
	type seen struct{ method, path, body string }
	var got seen
	answers := map[string]string{
		"GET /v1/users":                `{"users":[{"id":"u1","email":"a@b.c","roles":[]}]}`,
		"POST /v1/users":               `{"id":"u2","email":"d@e.f","email_verified":true,"roles":["admin"]}`,
		"PATCH /v1/users/u 1":          `{"id":"u 1","disabled":true}`,
		"POST /v1/auth/keys":           `{"id":"k1","name":"ci","scopes":["db:read"],"key":"hk_k1_s"}`,
		"GET /v1/auth/keys":            `{"keys":[{"id":"k1","name":"ci","scopes":["db:read"]}]}`,
		"DELETE /v1/auth/keys/k1":      ``,
		"GET /v1/auth/outbox":          `{"mail":[{"to":"a@b.c","subject":"Hi","body":"x"}]}`,
		"GET /v1/collections":          `{"collections":[{"name":"todos","spec":{"indexes":["o"]}}]}`,
		"GET /v1/collections/todos":    `{"name":"todos","spec":{"rules":{"get":"true"}},"documents":2}`,
		"PUT /v1/collections/todos":    `{"name":"todos","spec":{"max_documents":5}}`,
		"DELETE /v1/collections/todos": ``,
		"GET /v1/collections/nope":     `{"error":{"code":"collection_not_found","message":"no collection named \"nope\""}}`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = seen{r.Method, r.URL.RequestURI(), string(b)}
		if r.Header.Get("Authorization") != "Bearer admin" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		a, ok := answers[r.Method+" "+r.URL.Path]
		switch {
		case !ok:
			w.WriteHeader(http.StatusTeapot)
		case strings.Contains(a, `"error"`):
			w.WriteHeader(http.StatusNotFound)
		case a == "":
			w.WriteHeader(http.StatusNoContent)
		}
		io.WriteString(w, a)
	}))
	defer srv.Close()
	c := New(srv.URL, "admin")
	ctx := context.Background()
	check := func(what string, err error, want seen) {
		t.Helper()
		if err != nil {
			t.Errorf("%s: %v", what, err)
		}
		if got != want {
			t.Errorf("%s sent %+v, want %+v", what, got, want)
		}
	}

	us, err := c.ListUsers(ctx, "a@b.c", 10)
	check("ListUsers", err, seen{"GET", "/v1/users?after=a%40b.c&limit=10", ""})
	if len(us) != 1 || us[0].ID != "u1" {
		t.Errorf("ListUsers: %+v", us)
	}
	u, err := c.CreateUser(ctx, "d@e.f", "pw", []string{"admin"})
	check("CreateUser", err, seen{"POST", "/v1/users", `{"email":"d@e.f","password":"pw","roles":["admin"]}`})
	if u.ID != "u2" || !u.EmailVerified {
		t.Errorf("CreateUser: %+v", u)
	}
	_, err = c.CreateUser(ctx, "d@e.f", "", nil)
	check("CreateUser without a password", err, seen{"POST", "/v1/users", `{"email":"d@e.f","roles":[]}`})
	yes := true
	u, err = c.UpdateUser(ctx, "u 1", UserChange{Disabled: &yes})
	check("UpdateUser", err, seen{"PATCH", "/v1/users/u%201", `{"disabled":true}`})
	if !u.Disabled {
		t.Errorf("UpdateUser: %+v", u)
	}
	_, err = c.UpdateUser(ctx, "u 1", UserChange{Roles: &[]string{}})
	check("UpdateUser roles", err, seen{"PATCH", "/v1/users/u%201", `{"roles":[]}`})
	k, err := c.CreateAPIKey(ctx, "ci", []string{"db:read"})
	check("CreateAPIKey", err, seen{"POST", "/v1/auth/keys", `{"name":"ci","scopes":["db:read"]}`})
	if k.Key != "hk_k1_s" {
		t.Errorf("CreateAPIKey: %+v", k)
	}
	ks, err := c.ListAPIKeys(ctx)
	check("ListAPIKeys", err, seen{"GET", "/v1/auth/keys", ""})
	if len(ks) != 1 || ks[0].Key != "" {
		t.Errorf("ListAPIKeys: %+v", ks)
	}
	check("DeleteAPIKey", c.DeleteAPIKey(ctx, "k1"), seen{"DELETE", "/v1/auth/keys/k1", ""})
	ms, err := c.Outbox(ctx)
	check("Outbox", err, seen{"GET", "/v1/auth/outbox", ""})
	if len(ms) != 1 || ms[0].Subject != "Hi" {
		t.Errorf("Outbox: %+v", ms)
	}
	cs, err := c.ListCollections(ctx)
	check("ListCollections", err, seen{"GET", "/v1/collections", ""})
	if len(cs) != 1 || cs[0].Spec.Indexes[0] != "o" {
		t.Errorf("ListCollections: %+v", cs)
	}
	col, err := c.GetCollection(ctx, "todos")
	check("GetCollection", err, seen{"GET", "/v1/collections/todos", ""})
	if col.Documents != 2 || col.Spec.Rules["get"] != "true" {
		t.Errorf("GetCollection: %+v", col)
	}
	col, err = c.PutCollection(ctx, "todos", CollectionSpec{Schema: json.RawMessage(`{"type":"object"}`), MaxDocuments: 5})
	check("PutCollection", err, seen{"PUT", "/v1/collections/todos", `{"schema":{"type":"object"},"max_documents":5}`})
	if col.Spec.MaxDocuments != 5 {
		t.Errorf("PutCollection: %+v", col)
	}
	check("DeleteCollection", c.DeleteCollection(ctx, "todos"), seen{"DELETE", "/v1/collections/todos", ""})
	if _, err := c.GetCollection(ctx, "nope"); !IsNotFound(err) || !strings.Contains(err.Error(), `no collection named "nope"`) {
		t.Errorf("GetCollection of a missing one: %v", err)
	}
}
