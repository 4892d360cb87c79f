package manifest

import (
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/hostless/hostless/internal/function"
)

func TestParseBuckets(t *testing.T) {
	t.Parallel()
	m, err := Parse([]byte(`buckets:
  uploads:
    rules:
      read: "true"
      write: "auth.id != ''"
  thumbnails:
  logs: {rules: {}}
functions:
  thumbs:
    runtime: wasm
    code: a.wasm
    buckets: {uploads: read, thumbnails: read-write}
  archive:
    runtime: wasm
    code: a.wasm
    buckets: [logs, old-logs]
`), dir)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(m.BucketOrder, ",") != "logs,thumbnails,uploads" {
		t.Errorf("BucketOrder = %v", m.BucketOrder)
	}
	if r := m.Buckets["uploads"].Rules; r["read"] != "true" || r["write"] != "auth.id != ''" || len(r) != 2 {
		t.Errorf("uploads rules = %v", r)
	}
	if m.Buckets["thumbnails"].Rules != nil {
		t.Errorf("a bucket without settings has rules %v; it must leave them as they are", m.Buckets["thumbnails"].Rules)
	}
	if r := m.Buckets["logs"].Rules; r == nil || len(r) != 0 {
		t.Errorf("rules: {} = %v, want an empty set (admins only)", r)
	}
	s := m.Functions["thumbs"].Spec("sha256:x")
	if !maps.Equal(s.Buckets, map[string]string{"uploads": "read", "thumbnails": "read-write"}) {
		t.Errorf("thumbs buckets = %v", s.Buckets)
	}
	if b := m.Functions["archive"].Buckets; !maps.Equal(b, map[string]string{"logs": "read-write", "old-logs": "read-write"}) {
		t.Errorf("a list of buckets = %v, want each read-write", b)
	}
	if _, err := Parse([]byte("buckets:\n  only-a-bucket:\n"), dir); err != nil {
		t.Errorf("a manifest with buckets alone: %v", err)
	}
}

func TestParseBucketErrors(t *testing.T) {
	t.Parallel()
	fn := func(buckets string) string {
		return "functions:\n  hello:\n    runtime: wasm\n    code: a.wasm\n    buckets: " + buckets + "\n"
	}
	tests := []parseErrorCase{
		{"not a mapping", "buckets: [a]\n", []string{"buckets must be a mapping of bucket names", "(line 1)"}},
		{"bad name", "buckets:\n  Photos:\n", []string{`bucket "Photos": name must be 3 to 63 lower-case`, "(line 2)"}},
		{"twice", "buckets:\n  photos:\n  photos:\n", []string{`bucket "photos" defined twice`, "(line 3)"}},
		{"key twice", "buckets: {}\nbuckets: {}\n", []string{`field "buckets" appears twice`}},
		{"unknown field", "buckets:\n  photos: {public: true}\n", []string{`bucket "photos": unknown field "public" (accepted: rules)`}},
		{"unknown operation", "buckets:\n  photos: {rules: {delete: 'true'}}\n", []string{`bucket "photos": rules: "delete" is not an operation (read, write)`}},
		{"empty rule", "buckets:\n  photos: {rules: {read: ''}}\n", []string{`rules.read is empty`}},
		{"rules a list", "buckets:\n  photos: {rules: [read]}\n", []string{"rules must be a mapping of operations"}},
		{"function: a string", fn("photos"), []string{`function "hello": buckets must be a mapping of bucket names to read, write or read-write, or a list`}},
		{"function: access a list", fn("{photos: [read]}"), []string{"the access to photos must be read, write or read-write"}},
		{"function: name twice", fn("[photos, photos]"), []string{"buckets: photos appears twice"}},
		{"function: unknown access", fn("{photos: all}"), []string{`bucket photos: access "all" must be read, write or read-write`}},
		{"function: bad name", fn("{Photos: read}"), []string{`bucket name "Photos" must be 3 to 63`}},
	}
	checkParseErrors(t, tests)
}

// parseErrorCase is a manifest Parse must refuse, with fragments its error
// must hold.
type parseErrorCase struct {
	name string
	yaml string
	want []string
}

// checkParseErrors parses each case's manifest and checks the error: it
// wraps function.ErrInvalid and holds every wanted fragment.
func checkParseErrors(t *testing.T, tests []parseErrorCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tt.yaml), dir)
			if err == nil {
				t.Fatal("Parse accepted it")
			}
			if !errors.Is(err, function.ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
