package rules

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
)

func eq(v any, path ...string) Equality { return Equality{Path: path, Value: v} }

func TestPlan(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		rule string
		auth Auth
		want Plan
	}{
		{name: "role allows", rule: `"admin" in auth.roles`, auth: admin, want: Plan{Decided: true, Allow: true}},
		{name: "role denies", rule: `"admin" in auth.roles`, auth: alice, want: Plan{Decided: true}},
		{name: "kind", rule: `auth.kind == "user"`, auth: alice, want: Plan{Decided: true, Allow: true}},
		{name: "kind denies", rule: `auth.kind == "user"`, auth: anon, want: Plan{Decided: true}},
		{name: "owner", rule: `auth.id == resource.owner_id`, auth: alice,
			want: Plan{Eqs: []Equality{eq("alice", "owner_id")}, Exact: true}},
		{name: "owner flipped", rule: `resource.owner_id == auth.id`, auth: alice,
			want: Plan{Eqs: []Equality{eq("alice", "owner_id")}, Exact: true}},
		{name: "empty id is still an equality", rule: `resource.owner_id == auth.id`, auth: anon,
			want: Plan{Eqs: []Equality{eq("", "owner_id")}, Exact: true}},
		{name: "guard holds", rule: `auth.id != "" && resource.owner_id == auth.id`, auth: alice,
			want: Plan{Eqs: []Equality{eq("alice", "owner_id")}, Exact: true}},
		{name: "guard fails", rule: `auth.id != "" && resource.owner_id == auth.id`, auth: anon,
			want: Plan{Decided: true}},
		{name: "nested conjunction", rule: `resource.published == true && (resource.team == "red" && auth.kind == "user")`, auth: alice,
			want: Plan{Eqs: []Equality{eq(true, "published"), eq("red", "team")}, Exact: true}},
		{name: "value from roles", rule: `resource.team == auth.roles[0]`, auth: alice,
			want: Plan{Eqs: []Equality{eq("editor", "team")}, Exact: true}},
		{name: "value errors", rule: `resource.team == auth.roles[0]`, auth: bob, want: Plan{Decided: true}},
		{name: "nested path", rule: `resource.meta.team == "red"`, auth: alice,
			want: Plan{Eqs: []Equality{eq("red", "meta", "team")}, Exact: true}},
		{name: "index syntax", rule: `resource["owner_id"] == auth.id`, auth: alice,
			want: Plan{Eqs: []Equality{eq("alice", "owner_id")}, Exact: true}},
		{name: "index with a dot", rule: `resource["a.b"]["c"] == "x"`, auth: alice,
			want: Plan{Eqs: []Equality{eq("x", "a.b", "c")}, Exact: true}},
		{name: "index by a variable", rule: `resource[auth.id] == true`, auth: alice, want: Plan{}},
		{name: "or", rule: `resource.owner_id == auth.id || "admin" in auth.roles`, auth: admin, want: Plan{}},
		{name: "not", rule: `!(resource.owner_id != auth.id)`, auth: alice, want: Plan{}},
		{name: "ternary", rule: `auth.kind == "user" ? resource.owner_id == auth.id : false`, auth: alice, want: Plan{}},
		{name: "has", rule: `has(resource.owner_id) && resource.owner_id == auth.id`, auth: alice,
			want: Plan{Eqs: []Equality{eq("alice", "owner_id")}}},
		{name: "list value", rule: `resource.tags == auth.roles`, auth: alice, want: Plan{}},
		{name: "map value", rule: `resource.meta == {"team": auth.id}`, auth: alice, want: Plan{}},
		{name: "two resource fields", rule: `resource.a == resource.b`, auth: alice, want: Plan{}},
		{name: "request", rule: `resource.owner_id == request.data.owner_id`, auth: alice, want: Plan{}},
		{name: "request only", rule: `request.method == "list"`, auth: alice, want: Plan{}},
		{name: "int", rule: `resource.n == 3`, auth: alice, want: Plan{Eqs: []Equality{eq(int64(3), "n")}, Exact: true}},
		{name: "uint", rule: `resource.n == 3u`, auth: alice, want: Plan{Eqs: []Equality{eq(int64(3), "n")}, Exact: true}},
		{name: "double", rule: `resource.n == 2.5`, auth: alice, want: Plan{Eqs: []Equality{eq(2.5, "n")}, Exact: true}},
		{name: "huge int", rule: `resource.n == 9007199254740993`, auth: alice, want: Plan{}},
		{name: "nan", rule: `resource.n == double("NaN")`, auth: alice, want: Plan{}},
		{name: "null", rule: `resource.x == null`, auth: alice, want: Plan{Eqs: []Equality{eq(nil, "x")}}},
		{name: "bytes", rule: `resource.x == b"abc"`, auth: alice, want: Plan{}},
		{name: "timestamp value", rule: `resource.x == now`, auth: alice, want: Plan{}},
		{name: "from now", rule: `resource.day == string(now)`, auth: alice,
			want: Plan{Eqs: []Equality{eq("2026-03-01T12:00:00Z", "day")}, Exact: true}},
		{name: "conflict", rule: `resource.owner_id == auth.id && resource.owner_id == "bob"`, auth: alice,
			want: Plan{Eqs: []Equality{eq("alice", "owner_id"), eq("bob", "owner_id")}}},
		{name: "path under a value", rule: `resource.a == "x" && resource.a.b == "y"`, auth: alice,
			want: Plan{Eqs: []Equality{eq("x", "a"), eq("y", "a", "b")}}},
		{name: "extra term", rule: `auth.id == resource.owner_id && resource.tags.exists(t, t == "x")`, auth: alice,
			want: Plan{Eqs: []Equality{eq("alice", "owner_id")}}},
		{name: "free term false", rule: `resource.tags.exists(t, t == "x") && auth.id == "nobody"`, auth: alice, want: Plan{Decided: true}},
		{name: "shadowed resource", rule: `[1, 2].exists(resource, resource == 2)`, auth: alice, want: Plan{Decided: true, Allow: true}},
		{name: "comprehension in the value", rule: `resource.team == auth.roles.filter(r, r != "admin")[0]`, auth: alice,
			want: Plan{Eqs: []Equality{eq("editor", "team")}, Exact: true}},
		{name: "runtime type error in a free term", rule: `resource.x == "a" && dyn(auth.id) > 3`, auth: alice, want: Plan{Decided: true}},
		{name: "has is not a path", rule: `has(resource.x) == true`, auth: alice, want: Plan{}},
		{name: "eq to a bool term", rule: `(resource.x == "a") == true`, auth: alice, want: Plan{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := Compile(tt.rule)
			if err != nil {
				t.Fatal(err)
			}
			got := r.Plan(tt.auth, t0)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Plan = %+v\nwant   %+v", got, tt.want)
			}
		})
	}
}

func TestEqualityMatches(t *testing.T) {
	t.Parallel()
	doc := map[string]any{"s": "5", "f": float64(5), "i": int64(5), "b": true, "z": nil,
		"m": map[string]any{"k": "v"}, "l": []any{"a"}}
	tests := []struct {
		name string
		eq   Equality
		want bool
	}{
		{name: "string", eq: eq("5", "s"), want: true},
		{name: "string is not a number", eq: eq("5", "f")},
		{name: "number is not a string", eq: eq(int64(5), "s")},
		{name: "int vs float", eq: eq(int64(5), "f"), want: true},
		{name: "float vs int", eq: eq(5.0, "i"), want: true},
		{name: "bool", eq: eq(true, "b"), want: true},
		{name: "bool is not a string", eq: eq("true", "b")},
		{name: "null", eq: eq(nil, "z"), want: true},
		{name: "missing is not null", eq: eq(nil, "nope")},
		{name: "missing", eq: eq("v", "nope")},
		{name: "nested", eq: eq("v", "m", "k"), want: true},
		{name: "through a list", eq: eq("a", "l", "0")},
		{name: "through a string", eq: eq("v", "s", "k")},
		{name: "map leaf", eq: eq("v", "m")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.eq.Matches(doc); got != tt.want {
				t.Errorf("Matches = %v, want %v", got, tt.want)
			}
		})
	}
}

// soundnessRules are hand-picked rules for TestPlanSound; more are generated from atoms.
var soundnessRules = []string{
	`"admin" in auth.roles`,
	`auth.id == resource.owner_id`,
	`auth.id != "" && resource.owner_id == auth.id`,
	`resource.owner_id == auth.id || "admin" in auth.roles`,
	`has(resource.owner_id) && resource.owner_id == auth.id`,
	`resource.published == true && resource.meta.team == auth.roles[0]`,
	`resource["meta"]["team"] == "red" && auth.kind == "user"`,
	`resource.n == 3 && resource.x == null`,
	`resource.n == 2.5 || resource.n == 3`,
	`resource.owner_id == auth.id && resource.owner_id == "bob"`,
	`resource.meta == "x" && resource.meta.team == "red"`,
	`resource.tags == auth.roles`,
	`resource.tags.exists(t, t in auth.roles) && resource.published == true`,
	`!(resource.owner_id != auth.id)`,
	`auth.kind == "user" ? resource.owner_id == auth.id : resource.published == true`,
	`resource.day == string(now) && auth.id != ""`,
	`resource.owner_id == resource.id`,
	`dyn(resource.n) > 2 && resource.owner_id == auth.id`,
}

var atoms = []string{
	`resource.owner_id == auth.id`,
	`auth.id == resource.owner_id`,
	`resource.published == true`,
	`resource.meta.team == "red"`,
	`resource["meta"]["team"] == auth.roles[0]`,
	`resource.n == 3`,
	`resource.n == 3.0`,
	`resource.x == null`,
	`resource.tags.exists(t, t == "x")`,
	`has(resource.owner_id)`,
	`"admin" in auth.roles`,
	`auth.kind == "user"`,
	`auth.id != ""`,
	`auth.email.endsWith("@example.com")`,
	`resource.owner_id == resource.id`,
	`resource.tags == auth.roles`,
	`resource.n > 1`,
	`true`,
	`false`,
}

// genRule builds a random rule of atoms joined by &&, || and !.
func genRule(rng *rand.Rand, depth int) string {
	if depth == 0 || rng.IntN(3) == 0 {
		return atoms[rng.IntN(len(atoms))]
	}
	switch rng.IntN(5) {
	case 0, 1, 2:
		return "(" + genRule(rng, depth-1) + " && " + genRule(rng, depth-1) + ")"
	case 3:
		return "(" + genRule(rng, depth-1) + " || " + genRule(rng, depth-1) + ")"
	default:
		return "!(" + genRule(rng, depth-1) + ")"
	}
}

var soundnessDocs = []map[string]any{
	{},
	{"id": "d1", "owner_id": "alice", "published": true, "n": float64(3), "meta": map[string]any{"team": "red"}, "tags": []any{"x"}},
	{"id": "d2", "owner_id": "bob", "published": false, "n": int64(3), "meta": map[string]any{"team": "editor"}},
	{"id": "d3", "owner_id": "", "published": "true", "n": 2.5, "x": nil, "meta": "x"},
	{"id": "d4", "owner_id": float64(5), "published": true, "n": "3", "x": "null"},
	{"id": "d5", "owner_id": "alice", "published": true, "tags": []any{"editor"}, "meta": map[string]any{}},
	{"id": "alice", "owner_id": "alice", "day": "2026-03-01T12:00:00Z", "n": float64(4)},
	{"id": "d6", "owner_id": nil, "published": nil, "meta": nil},
}

var soundnessCallers = []Auth{alice, bob, admin, anon, {ID: "5", Roles: []string{"red"}, Kind: KindKey, Email: "k@example.com"}}

// TestPlanSound checks Plan against Eval: when Decided, Eval agrees on every document; a
// document that fails an Equality never passes; when Exact, a document passes exactly when
// every Equality holds.
func TestPlanSound(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	ruleSet := append([]string(nil), soundnessRules...)
	for range 300 {
		ruleSet = append(ruleSet, genRule(rng, 4))
	}
	var decided, exact, narrowed int
	for _, src := range ruleSet {
		r, err := Compile(src)
		if err != nil {
			t.Fatalf("Compile(%q): %v", src, err)
		}
		for _, au := range soundnessCallers {
			p := r.Plan(au, t0)
			switch {
			case p.Decided:
				decided++
			case p.Exact:
				exact++
			case len(p.Eqs) > 0:
				narrowed++
			}
			for i, doc := range docsFor(p) {
				ok, err := r.Eval(context.Background(), Input{Auth: au, Resource: doc, Now: t0})
				if err != nil && ok {
					t.Fatalf("%q: allowed with an error", src)
				}
				where := fmt.Sprintf("rule %q, caller %q, doc %d %v, plan %+v", src, au.ID, i, doc, p)
				if p.Decided {
					if ok != p.Allow {
						t.Errorf("%s: decided %v, Eval %v (%v)", where, p.Allow, ok, err)
					}
					continue
				}
				all := true
				for _, e := range p.Eqs {
					if !e.Matches(doc) {
						all = false
						if ok {
							t.Errorf("%s: fails %v but Eval allows", where, e)
						}
					}
				}
				if p.Exact && ok != all {
					t.Errorf("%s: exact, equalities hold %v, Eval %v (%v)", where, all, ok, err)
				}
			}
		}
	}
	t.Logf("%d plans: %d decided, %d exact, %d narrowed", len(ruleSet)*len(soundnessCallers), decided, exact, narrowed)
	if decided == 0 || exact == 0 || narrowed == 0 {
		t.Error("the table does not exercise every kind of plan")
	}
}

// docsFor returns the fixed documents, and each of them changed to satisfy p's Equalities (where
// they can all be satisfied), so that Exact plans are checked on passing documents too.
func docsFor(p Plan) []map[string]any {
	docs := append([]map[string]any(nil), soundnessDocs...)
	for _, base := range soundnessDocs {
		doc := deepCopy(base).(map[string]any)
		ok := true
		for _, e := range p.Eqs {
			ok = ok && set(doc, e.Path, e.Value)
		}
		if ok {
			docs = append(docs, doc)
		}
	}
	return docs
}

func set(doc map[string]any, path []string, v any) bool {
	m := doc
	for _, k := range path[:len(path)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[path[len(path)-1]] = v
	return true
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = deepCopy(e)
		}
		return l
	}
	return v
}

// TestPlanCostNotExact covers terms that each fit the cost limit but together do not: Plan
// evaluates them one by one, the whole rule exceeds the limit on every document, so the plan
// must not be exact.
func TestPlanCostNotExact(t *testing.T) {
	t.Parallel()
	roles := make([]string, 3000)
	for i := range roles {
		roles[i] = fmt.Sprint("r", i)
	}
	au := Auth{ID: "alice", Kind: KindUser, Roles: roles}
	term := `auth.roles.all(r, r != "")`
	for _, src := range []string{term, term + ` && resource.owner_id == auth.id`} {
		r, err := Compile(src)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := r.Eval(context.Background(), Input{Auth: au, Resource: map[string]any{"owner_id": "alice"}}); !ok {
			t.Fatalf("%s: Eval = %v, %v; want one term to fit the limit", src, ok, err)
		}
	}
	src := term + ` && ` + term + ` && ` + term + ` && resource.owner_id == auth.id`
	r, err := Compile(src)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := r.Eval(context.Background(), Input{Auth: au, Resource: map[string]any{"owner_id": "alice"}})
	if ok || err == nil {
		t.Fatalf("Eval = %v, %v; want the cost limit", ok, err)
	}
	p := r.Plan(au, t0)
	want := Plan{Eqs: []Equality{eq("alice", "owner_id")}}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("Plan = %+v, want %+v", p, want)
	}
}
