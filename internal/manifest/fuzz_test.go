package manifest

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hostless/hostless/internal/function"
)

// FuzzParse checks that no input panics Parse, that every error wraps
// function.ErrInvalid, and that a manifest Parse accepts is one a deploy
// accepts. Seeds are in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	ref := "sha256:" + strings.Repeat("0", 64)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data, "/app")
		if err != nil {
			if !errors.Is(err, function.ErrInvalid) {
				t.Fatalf("error does not wrap function.ErrInvalid: %v", err)
			}
			return
		}
		if len(m.Functions)+len(m.Collections) == 0 || len(m.Order) != len(m.Functions) || !slices.IsSorted(m.Order) {
			t.Fatalf("Order %v for %d functions", m.Order, len(m.Functions))
		}
		if len(m.CollectionOrder) != len(m.Collections) || !slices.IsSorted(m.CollectionOrder) {
			t.Fatalf("CollectionOrder %v for %d collections", m.CollectionOrder, len(m.Collections))
		}
		for _, name := range m.CollectionOrder {
			c := m.Collections[name]
			if c == nil || c.Name != name || !collectionNameRE.MatchString(name) {
				t.Fatalf("Collections[%q] = %+v", name, c)
			}
			if c.Schema != nil && (!json.Valid(c.Schema) || len(c.Schema) > MaxSchemaBytes || c.Schema[0] != '{') {
				t.Fatalf("%s: schema %q", name, c.Schema)
			}
			for op, src := range c.Rules {
				if !slices.Contains(CollectionOperations, op) || src == "" || len(src) > MaxRuleBytes {
					t.Fatalf("%s: rules.%s = %q", name, op, src)
				}
			}
			if len(c.Indexes) > MaxIndexes || c.MaxDocuments < 0 || c.MaxDocumentBytes < 0 || c.MaxDocumentBytes > MaxDocumentBytes {
				t.Fatalf("%s: %+v", name, c)
			}
		}
		for i, r := range m.Routes {
			if err := r.Validate(); err != nil {
				t.Fatalf("routes[%d]: accepted a route a deploy rejects: %v", i, err)
			}
		}
		for _, name := range m.Order {
			fn := m.Functions[name]
			if err := function.ValidName(name); err != nil {
				t.Fatalf("accepted an invalid name: %v", err)
			}
			if fn == nil || fn.Name != name {
				t.Fatalf("Functions[%q] = %+v", name, fn)
			}
			if !filepath.IsAbs(fn.Code) || !filepath.IsAbs(fn.BuildDir) {
				t.Fatalf("%s: relative paths: Code %q, BuildDir %q", name, fn.Code, fn.BuildDir)
			}
			spec := fn.Spec(ref)
			if err := spec.Validate(); err != nil {
				t.Fatalf("%s: accepted a spec a deploy rejects: %v", name, err)
			}
		}
	})
}
