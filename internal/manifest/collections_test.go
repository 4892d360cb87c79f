package manifest

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestCollectionsGolden parses testdata/collections.yaml and compares the
// collections, as the JSON a deploy sends, with
// testdata/collections.golden.json (go test -run Golden -update rewrites it).
func TestCollectionsGolden(t *testing.T) {
	t.Parallel()
	m, err := Load(filepath.Join("testdata", "collections.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Functions) != 0 || strings.Join(m.CollectionOrder, ",") != "audit_log,scratch,todos" {
		t.Fatalf("functions %v, collections %v", m.Order, m.CollectionOrder)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m.Collections); err != nil {
		t.Fatal(err)
	}
	got := buf.Bytes()
	golden := filepath.Join("testdata", "collections.golden.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("parsed collections differ from %s (run with -update if the change is right):\n%s", golden, got)
	}
}

func TestParseCollectionErrors(t *testing.T) {
	t.Parallel()
	const head = "collections:\n  todos:\n"
	tests := []parseErrorCase{
		{"not a mapping", "collections: [todos]\n", []string{"collections must be a mapping", "(line 1)"}},
		{"bad name", "collections:\n  Todos: {}\n", []string{`collection "Todos": name must be a lower-case letter`, "(line 2)"}},
		{"name with a dash", "collections:\n  my-todos:\n", []string{`collection "my-todos": name must be`}},
		{"name too long", "collections:\n  a" + strings.Repeat("b", 63) + ":\n", []string{"name must be", "at most 63"}},
		{"twice", "collections:\n  todos: {}\n  todos: {}\n", []string{`collection "todos": collection defined twice`, "(line 3)"}},
		{"key twice", "collections: {}\ncollections: {}\n", []string{`field "collections" appears twice`, "(line 2)"}},
		{"spec a list", head + "    - schema\n", []string{`collection "todos": must be a mapping (schema, indexes, rules, max_documents, max_document_bytes)`, "(line 3)"}},
		{"unknown field", head + "    rule: {}\n", []string{`collection "todos": unknown field "rule" (accepted: schema, indexes, rules`, "(line 3)"}},
		{"field twice", head + "    indexes: []\n    indexes: []\n", []string{`field "indexes" appears twice`, "(line 4)"}},
		{"schema a string", head + "    schema: '{\"type\": \"object\"}'\n", []string{"schema must be a mapping: a JSON Schema", "(line 3)"}},
		{"schema a list", head + "    schema: [1]\n", []string{"schema must be a mapping"}},
		{"schema key not a string", head + "    schema:\n      ? [a]\n      : 1\n", []string{"schema: keys must be strings", "(line 4)"}},
		{"schema key twice", head + "    schema:\n      type: object\n      type: array\n", []string{"schema.type appears twice", "(line 5)"}},
		{"schema merge key", head + "    schema:\n      <<: {type: object}\n", []string{"merge keys << are not supported"}},
		{"schema nan", head + "    schema:\n      properties:\n        n: {minimum: .nan}\n", []string{`schema.properties.n.minimum ".nan" is not a value JSON can hold`, "(line 5)"}},
		{"schema too deep", head + "    schema: " + strings.Repeat("{a: ", 70) + "1" + strings.Repeat("}", 70) + "\n", []string{"is nested more than 64 deep"}},
		{"schema too big", head + "    schema: {description: " + strings.Repeat("x", MaxSchemaBytes) + "}\n", []string{"schema is 65", "bytes as JSON (at most 65536)"}},
		{"schema alias bomb", head + "    schema:\n      a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n      b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n" +
			"      c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n      d: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n", []string{"schema has more than 10000 values"}},
		{"indexes not a list", head + "    indexes: owner_id\n", []string{"indexes must be a list", "(line 3)"}},
		{"index not a path", head + "    indexes:\n      - owner_id\n      - owner-id\n", []string{`indexes[1] "owner-id" is not a field path`, "(line 5)"}},
		{"index empty segment", head + "    indexes: [a..b]\n", []string{`indexes[0] "a..b" is not a field path`}},
		{"index too deep", head + "    indexes: [a.b.c.d.e.f.g.h.i]\n", []string{`indexes[0] "a.b.c.d.e.f.g.h.i" is not a field path`, "at most 8"}},
		{"index reserved", head + "    indexes: [created_at]\n", []string{`indexes[0] "created_at": created_at is a document's own field, indexed already`}},
		{"index twice", head + "    indexes: [a, a]\n", []string{`indexes[1] "a" is listed twice`}},
		{"too many indexes", head + "    indexes: [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q]\n", []string{"indexes has 17 entries (at most 16)"}},
		{"rules a list", head + "    rules: [true]\n", []string{"rules must be a mapping of operations (list, get, create, update, delete)", "(line 3)"}},
		{"unknown operation", head + "    rules:\n      read: 'true'\n", []string{`rules: "read" is not an operation (list, get, create, update, delete)`, "(line 4)"}},
		{"operation twice", head + "    rules:\n      get: 'true'\n      get: 'false'\n", []string{"rules.get appears twice", "(line 5)"}},
		{"empty rule", head + "    rules:\n      get:\n", []string{"rules.get is empty", "(line 4)"}},
		{"blank rule", head + "    rules:\n      get: '  '\n", []string{"rules.get is empty"}},
		{"rule a mapping", head + "    rules:\n      get: {a: b}\n", []string{"rules.get must be a single value", "(line 4)"}},
		{"rule too long", head + "    rules:\n      get: " + strings.Repeat("x", MaxRuleBytes+1) + "\n", []string{"rules.get is 4097 bytes (at most 4096)"}},
		{"max_documents negative", head + "    max_documents: -1\n", []string{"max_documents -1 must not be negative", "(line 3)"}},
		{"max_documents a float", head + "    max_documents: 1.5\n", []string{`max_documents "1.5" must be a whole number`}},
		{"max_document_bytes too big", head + "    max_document_bytes: 2MB\n", []string{"max_document_bytes 2097152 is out of range (0 to 1048576: 1MB)", "(line 3)"}},
		{"max_document_bytes words", head + "    max_document_bytes: lots\n", []string{`max_document_bytes "lots" must be a whole number of bytes or a size`}},
		{"every problem at once", "collections:\n  Bad:\n    indexes: [id]\n  good:\n    rules: {write: x}\n",
			[]string{`collection "Bad": name must be`, `collection "Bad": indexes[0] "id"`, `collection "good": rules: "write"`}},
		{"functions still named", "functions:\n  a: {runtime: wasm}\ncollections:\n  todos: {rules: {x: y}}\n",
			[]string{`function "a": code is required`, `collection "todos": rules: "x"`}},
		{"only an empty collections key", "collections:\n", []string{"no functions or collections in manifest"}},
	}
	checkParseErrors(t, tests)
}

// TestParseCollectionsOnly: a manifest may declare collections alone, and
// an empty spec is an open-schema, admins-only collection.
func TestParseCollectionsOnly(t *testing.T) {
	t.Parallel()
	m, err := Parse([]byte("collections:\n  notes:\n  logs: {}\n"), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Functions) != 0 || len(m.Order) != 0 || strings.Join(m.CollectionOrder, ",") != "logs,notes" {
		t.Fatalf("%+v", m)
	}
	if b, _ := json.Marshal(m.Collections["notes"]); string(b) != "{}" {
		t.Errorf("an empty collection's spec is %s", b)
	}
}
