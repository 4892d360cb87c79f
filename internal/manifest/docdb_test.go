package manifest_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/hostless/hostless/internal/baas/docdb"
	"github.com/hostless/hostless/internal/baas/rules"
	"github.com/hostless/hostless/internal/manifest"
)

// TestCollectionBoundsMatchDocDB: the manifest checks a collection with
// the document database's own bounds, which it copies rather than import
// the rule compiler.
func TestCollectionBoundsMatchDocDB(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"MaxSchemaBytes", manifest.MaxSchemaBytes, docdb.MaxSchemaBytes},
		{"MaxIndexes", manifest.MaxIndexes, docdb.MaxIndexes},
		{"MaxDocumentBytes", manifest.MaxDocumentBytes, docdb.MaxDocumentBytes},
		{"MaxRuleBytes", manifest.MaxRuleBytes, rules.MaxSourceBytes},
	} {
		if c.got != c.want {
			t.Errorf("%s: manifest %d, server %d", c.name, c.got, c.want)
		}
	}
	if !slices.Equal(manifest.CollectionOperations, docdb.Operations) {
		t.Errorf("operations: manifest %v, server %v", manifest.CollectionOperations, docdb.Operations)
	}
	for _, name := range []string{"todos", "a", "a_1", "A", "1a", "_a", "a-b", "a.b", "", "é", "a" + strings.Repeat("b", 62), "a" + strings.Repeat("b", 63)} {
		y := "collections:\n  " + `"` + name + `"` + ":\n"
		_, err := manifest.Parse([]byte(y), "/app")
		if (err == nil) != (docdb.ValidName(name) == nil) {
			t.Errorf("name %q: manifest says %v, server says %v", name, err, docdb.ValidName(name))
		}
	}
}
