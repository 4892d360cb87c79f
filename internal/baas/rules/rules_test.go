package rules

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var (
	alice = Auth{ID: "alice", Email: "alice@example.com", Roles: []string{"editor"}, Kind: KindUser, Scopes: []string{"docs:read"}}
	bob   = Auth{ID: "bob", Kind: KindUser}
	admin = Auth{ID: "root", Roles: []string{"admin"}, Kind: KindAdmin}
	anon  = Auth{Kind: KindAnonymous}
)

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		want []string // fragments of the error
	}{
		{name: "empty", src: "  ", want: []string{"empty"}},
		{name: "syntax", src: "auth.id == ", want: []string{"1:", "Syntax error"}},
		{name: "undeclared", src: "user.id == resource.owner_id", want: []string{"1:1:", "undeclared reference to 'user'"}},
		{name: "not bool", src: "resource.owner_id", want: []string{"1:1:", "must be a bool", "dyn"}},
		{name: "string", src: `"yes"`, want: []string{"must be a bool", "string"}},
		{name: "unknown auth field", src: `resource.owner_id == auth.uid`, want: []string{"1:22:", `auth has no field "uid"`, "email, id, kind, roles, scopes"}},
		{name: "unknown request field", src: `request.body.x == 1`, want: []string{`request has no field "body"`}},
		{name: "second line", src: "auth.id != \"\" &&\n  nope", want: []string{"2:3:", "undeclared reference to 'nope'"}},
		{name: "no such overload", src: `auth.kind == "user" && now > 3`, want: []string{"found no matching overload"}},
		{name: "too long", src: `auth.id == "` + strings.Repeat("x", MaxSourceBytes) + `"`, want: []string{"bytes long", "4096"}},
		{name: "too deep", src: strings.Repeat("(", 200) + "true" + strings.Repeat(")", 200), want: []string{"invalid rule", "recursion"}},
		{name: "too many nodes", src: strings.TrimSuffix(strings.Repeat(`auth.id==""||`, 300), "||"), want: []string{"invalid rule", "node"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Compile(tt.src)
			var ce *CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("Compile(%q) = %v, want a *CompileError", tt.src, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			for _, bad := range []string{"goroutine", ".go:", "panic", "*ast.", "container ''"} {
				if strings.Contains(err.Error(), bad) {
					t.Errorf("error %q shows internals (%q)", err, bad)
				}
			}
		})
	}
}

func TestCompileAccepts(t *testing.T) {
	t.Parallel()
	for _, src := range []string{
		`auth.id == resource.owner_id`,
		`"admin" in auth.roles`,
		`auth.id != "" && request.data.owner_id == auth.id`,
		`auth.kind == "user" && resource.published == true`,
		`has(resource.owner_id) && resource.owner_id == auth.id`,
		`resource.tags.exists(t, t in auth.roles)`,
		`timestamp(resource.created_at) > now - duration("24h")`,
		`[1, 2].exists(resource, resource == 2) && auth.id != ""`,
		`request.method == "create" && size(request.data) < 20`,
	} {
		t.Run(src, func(t *testing.T) {
			t.Parallel()
			r, err := Compile(src)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			if r.String() != src {
				t.Errorf("String() = %q", r.String())
			}
		})
	}
}

func TestEval(t *testing.T) {
	t.Parallel()
	doc := map[string]any{"id": "d1", "owner_id": "alice", "published": true, "n": float64(3),
		"tags": []any{"editor", "x"}, "meta": map[string]any{"team": "red"},
		"created_at": "2026-03-01T11:00:00Z"}
	noOwner := map[string]any{"id": "d2", "published": false}
	intOwner := map[string]any{"id": "d3", "owner_id": float64(5)}
	tests := []struct {
		name    string
		rule    string
		in      Input
		want    bool
		wantErr bool
	}{
		{name: "owner", rule: `auth.id == resource.owner_id`, in: Input{Auth: alice, Resource: doc}, want: true},
		{name: "not owner", rule: `auth.id == resource.owner_id`, in: Input{Auth: bob, Resource: doc}},
		{name: "missing field denies with error", rule: `auth.id == resource.owner_id`, in: Input{Auth: alice, Resource: noOwner}, wantErr: true},
		{name: "nil resource denies with error", rule: `auth.id == resource.owner_id`, in: Input{Auth: alice}, wantErr: true},
		{name: "wrong type is unequal", rule: `auth.id == resource.owner_id`, in: Input{Auth: Auth{ID: "5"}, Resource: intOwner}},
		{name: "wrong type at run time denies", rule: `resource.owner_id.startsWith("a")`, in: Input{Auth: alice, Resource: intOwner}, wantErr: true},
		{name: "has guards", rule: `has(resource.owner_id) && resource.owner_id == auth.id`, in: Input{Auth: alice, Resource: noOwner}},
		{name: "or absorbs error", rule: `resource.owner_id == auth.id || "admin" in auth.roles`, in: Input{Auth: admin, Resource: noOwner}, want: true},
		{name: "role", rule: `"admin" in auth.roles`, in: Input{Auth: admin}, want: true},
		{name: "no roles", rule: `"admin" in auth.roles`, in: Input{Auth: bob}},
		{name: "anonymous", rule: `auth.kind == "anonymous"`, in: Input{Auth: anon}, want: true},
		{name: "scopes", rule: `"docs:read" in auth.scopes`, in: Input{Auth: alice}, want: true},
		{name: "create own", rule: `auth.id != "" && request.data.owner_id == auth.id`,
			in: Input{Auth: alice, Request: map[string]any{"method": "create", "data": map[string]any{"owner_id": "alice"}}}, want: true},
		{name: "create for other", rule: `auth.id != "" && request.data.owner_id == auth.id`,
			in: Input{Auth: alice, Request: map[string]any{"method": "create", "data": map[string]any{"owner_id": "bob"}}}},
		{name: "anonymous create", rule: `auth.id != "" && request.data.owner_id == auth.id`,
			in: Input{Auth: anon, Request: map[string]any{"method": "create", "data": map[string]any{"owner_id": ""}}}},
		{name: "nested", rule: `resource.meta.team == "red"`, in: Input{Resource: doc}, want: true},
		{name: "index syntax", rule: `resource["meta"]["team"] == "red"`, in: Input{Resource: doc}, want: true},
		{name: "number", rule: `resource.n == 3`, in: Input{Resource: doc}, want: true},
		{name: "comprehension", rule: `resource.tags.exists(t, t in auth.roles)`, in: Input{Auth: alice, Resource: doc}, want: true},
		{name: "now", rule: `timestamp(resource.created_at) > now - duration("2h")`, in: Input{Resource: doc, Now: t0}, want: true},
		{name: "now later", rule: `timestamp(resource.created_at) > now - duration("2h")`, in: Input{Resource: doc, Now: t0.Add(3 * time.Hour)}},
		{name: "bad timestamp denies", rule: `timestamp(resource.id) > now`, in: Input{Resource: doc, Now: t0}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := Compile(tt.rule)
			if err != nil {
				t.Fatal(err)
			}
			got, err := r.Eval(context.Background(), tt.in)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("Eval = %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
			if err != nil && got {
				t.Error("allowed on error")
			}
		})
	}
}

func TestCostLimit(t *testing.T) {
	t.Parallel()
	big := make([]any, 1_000_000)
	for i := range big {
		big[i] = "x"
	}
	tests := []struct {
		name string
		rule string
	}{
		{name: "exists", rule: `resource.tags.exists(t, t == auth.id)`},
		{name: "nested", rule: `resource.tags.all(a, resource.tags.all(b, a == b))`},
		{name: "map", rule: `resource.tags.map(t, t + t).size() == 0`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := Compile(tt.rule)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			ok, err := r.Eval(context.Background(), Input{Auth: alice, Resource: map[string]any{"tags": big}})
			if ok || err == nil || !strings.Contains(err.Error(), "cost limit") {
				t.Errorf("Eval = %v, %v; want a cost limit error", ok, err)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("took %v to stop", d)
			}
		})
	}
}

func TestEvalContextCancelled(t *testing.T) {
	t.Parallel()
	r, err := Compile(`resource.tags.exists(t, t == auth.id)`)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tags := make([]any, 1000)
	for i := range tags {
		tags[i] = "x"
	}
	ok, err := r.Eval(ctx, Input{Auth: alice, Resource: map[string]any{"tags": tags}})
	if ok || err == nil {
		t.Errorf("Eval = %v, %v; want a denial with an error", ok, err)
	}
}

func TestConcurrentEval(t *testing.T) {
	t.Parallel()
	r, err := Compile(`auth.id == resource.owner_id && "editor" in auth.roles`)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan bool)
	for i := 0; i < 8; i++ {
		go func() {
			ok := true
			for j := 0; j < 200; j++ {
				got, err := r.Eval(context.Background(), Input{Auth: alice, Resource: map[string]any{"owner_id": "alice"}})
				ok = ok && got && err == nil
				p := r.Plan(alice, t0)
				ok = ok && len(p.Eqs) == 1
			}
			done <- ok
		}()
	}
	for i := 0; i < 8; i++ {
		if !<-done {
			t.Error("a concurrent evaluation failed")
		}
	}
}
