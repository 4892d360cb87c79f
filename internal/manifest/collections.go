package manifest

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/hostless/hostless/internal/baas/docdb/filter"
	"github.com/hostless/hostless/internal/function"
)

// Collection is one entry under collections: the definition of a
// document database collection, with the JSON names of PUT
// /v1/collections/{name} (docdb.Spec). Parse checks what it can without
// the rule compiler (which it must not import: it would link CEL into
// every reader of a manifest): the name, the operations, the index paths
// and the bounds. The server compiles the schema and the rules when the
// deploy puts the collection.
type Collection struct {
	Name string `json:"-"`
	// Schema is the JSON Schema the manifest wrote as YAML; nil accepts
	// any object.
	Schema  json.RawMessage `json:"schema,omitempty"`
	Indexes []string        `json:"indexes,omitempty"`
	// Rules are CEL expressions by operation (list, get, create, update,
	// delete); an operation without one is for admins only.
	Rules            map[string]string `json:"rules,omitempty"`
	MaxDocuments     int64             `json:"max_documents,omitempty"`
	MaxDocumentBytes int               `json:"max_document_bytes,omitempty"`
}

// Bounds of a collection, as internal/baas/docdb and internal/baas/rules
// apply them (collections_test.go checks that they agree).
const (
	MaxCollections   = 1000
	MaxSchemaBytes   = 64 << 10
	MaxIndexes       = 16
	MaxDocumentBytes = 1 << 20
	MaxRuleBytes     = 4 << 10
	maxSchemaNodes   = 10000 // values in a schema, aliases counted each time they are used
	maxSchemaDepth   = 64
)

// CollectionOperations are the operations a rule may govern.
var CollectionOperations = []string{"list", "get", "create", "update", "delete"}

var (
	collectionFields = []string{"schema", "indexes", "rules", "max_documents", "max_document_bytes"}
	collectionNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
	// reservedFields are a document's own fields: indexed already.
	reservedFields = []string{"id", "version", "created_at", "updated_at"}
)

// collections reads the top-level collections: a mapping of names to
// specs. key is the collections key, for the line of a problem with no
// node of its own.
func (p *parser) collections(key, at *yaml.Node) {
	v := resolve(at)
	if isNull(v) {
		return
	}
	if v.Kind != yaml.MappingNode {
		p.fail("", at, "collections must be a mapping of collection names to their schema, indexes and rules")
		return
	}
	if len(v.Content)/2 > MaxCollections {
		p.fail("", at, "manifest has %d collections (at most %d)", len(v.Content)/2, MaxCollections)
		return
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k := resolve(v.Content[i])
		if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
			p.fail("", k, "collection names must be strings")
			continue
		}
		name := k.Value
		p.coll = name
		switch {
		case p.m.Collections[name] != nil:
			p.fail("", k, "collection defined twice")
		case !collectionNameRE.MatchString(name):
			p.fail("", k, "name must be a lower-case letter, then lower-case letters, digits and _ (at most 63)")
			p.collection(name, k, resolve(v.Content[i+1])) // every problem at once
		default:
			if c := p.collection(name, k, resolve(v.Content[i+1])); c != nil {
				p.m.Collections[name] = c
			}
		}
		p.coll = ""
	}
}

// collection parses one collection's spec, returning nil if it has
// problems.
func (p *parser) collection(name string, at, n *yaml.Node) *Collection {
	before := len(p.errs)
	c := &Collection{Name: name}
	if isNull(n) {
		return c // no schema, no rules: any object, admins only
	}
	if n.Kind != yaml.MappingNode {
		p.fail("", n, "must be a mapping (%s)", strings.Join(collectionFields, ", "))
		return nil
	}
	values := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		key := keyName(k)
		switch {
		case k.Tag == "!!merge":
			p.fail("", k, "merge keys (<<) are not supported; repeat the fields")
		case k.Kind != yaml.ScalarNode || !slices.Contains(collectionFields, key):
			p.fail("", k, "unknown field %q (accepted: %s)", short(key), strings.Join(collectionFields, ", "))
		case values[key] != nil:
			p.fail("", k, "field %q appears twice", key)
		default:
			values[key] = v
		}
	}
	if s := values["schema"]; !isNull(resolve(s)) {
		c.Schema = p.schema(s)
	}
	c.Indexes = p.indexes(values["indexes"])
	c.Rules = p.rules(values["rules"])
	if p.scalar("", "max_documents", values, maxNameBytes) != "" {
		if n := p.integer("", "max_documents", values["max_documents"], ""); n < 0 {
			p.fail("", values["max_documents"], "max_documents %d must not be negative (0 or absent: the default, 1000000)", n)
		} else {
			c.MaxDocuments = int64(n)
		}
	}
	if v := p.scalar("", "max_document_bytes", values, maxNameBytes); v != "" {
		c.MaxDocumentBytes = p.documentBytes(values["max_document_bytes"], v)
	}
	if len(p.errs) > before {
		return nil
	}
	return c
}

// documentBytes reads max_document_bytes: a whole number of bytes or a
// size such as 64KB.
func (p *parser) documentBytes(at *yaml.Node, v string) int {
	var n int64
	if resolve(at).Tag == "!!int" {
		n = int64(p.integer("", "max_document_bytes", at, " of bytes or a size such as 64KB"))
	} else {
		var err error
		if n, err = function.ParseBytes(v); err != nil {
			p.fail("", at, "max_document_bytes %q must be a whole number of bytes or a size such as 64KB", short(v))
			return 0
		}
	}
	if n < 0 || n > MaxDocumentBytes {
		p.fail("", at, "max_document_bytes %d is out of range (0 to %d: 1MB)", n, MaxDocumentBytes)
		return 0
	}
	return int(n)
}

// indexes reads the field paths to index: names of letters, digits and _
// joined by dots, not a document's own fields.
func (p *parser) indexes(at *yaml.Node) []string {
	paths := p.strings("", "indexes", at, MaxIndexes)
	for i, ix := range paths {
		entry := resolve(resolve(at).Content[i]) // p.strings accepted a list
		parts := strings.Split(ix, ".")
		switch {
		case len(parts) > filter.MaxPathLen || slices.ContainsFunc(parts, func(s string) bool { return !filter.ValidIdent(s) }):
			p.fail("", entry, "indexes[%d] %q is not a field path (names of letters, digits and _, joined by dots, at most %d)", i, short(ix), filter.MaxPathLen)
		case slices.Contains(reservedFields, parts[0]):
			p.fail("", entry, "indexes[%d] %q: %s is a document's own field, indexed already", i, ix, parts[0])
		case slices.Contains(paths[:i], ix):
			p.fail("", entry, "indexes[%d] %q is listed twice", i, ix)
		}
	}
	return paths
}

// rules reads rules: a mapping of operations to CEL expressions.
func (p *parser) rules(at *yaml.Node) map[string]string {
	v := resolve(at)
	if isNull(v) {
		return nil
	}
	if v.Kind != yaml.MappingNode {
		p.fail("", at, "rules must be a mapping of operations (%s) to CEL expressions", strings.Join(CollectionOperations, ", "))
		return nil
	}
	out := map[string]string{}
	seen := map[string]bool{}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, e := resolve(v.Content[i]), v.Content[i+1]
		op := keyName(k)
		switch {
		case k.Kind != yaml.ScalarNode || k.Tag == "!!merge" || !slices.Contains(CollectionOperations, op):
			p.fail("", k, "rules: %q is not an operation (%s)", short(op), strings.Join(CollectionOperations, ", "))
			continue
		case seen[op]:
			p.fail("", k, "rules.%s appears twice", op)
			continue
		}
		seen[op] = true
		before := len(p.errs)
		src := strings.TrimSpace(p.scalar("", "rules."+op, map[string]*yaml.Node{"rules." + op: e}, MaxRuleBytes))
		switch {
		case len(p.errs) > before:
		case src == "":
			p.fail("", e, "rules.%s is empty: write a CEL expression, such as \"auth.id != ''\", or leave the operation out (admins only)", op)
		default:
			out[op] = src
		}
	}
	return out
}

// schema converts a YAML schema to JSON: mappings with string keys,
// lists, strings, numbers, booleans and null. Aliases are followed, each
// use counted, so a small document can't expand into a huge schema.
func (p *parser) schema(at *yaml.Node) json.RawMessage {
	budget := maxSchemaNodes
	v, ok := p.jsonValue(at, "schema", &budget, 0)
	if !ok {
		return nil
	}
	if _, isMap := v.(map[string]any); !isMap {
		p.fail("", at, "schema must be a mapping: a JSON Schema such as {type: object, properties: {...}}")
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		p.fail("", at, "schema: %v", err)
		return nil
	}
	if len(b) > MaxSchemaBytes {
		p.fail("", at, "schema is %d bytes as JSON (at most %d)", len(b), MaxSchemaBytes)
		return nil
	}
	return b
}

// jsonValue converts one YAML value; where names the value in messages
// (schema.properties.title).
func (p *parser) jsonValue(at *yaml.Node, where string, budget *int, depth int) (any, bool) {
	n := resolve(at)
	if *budget--; *budget < 0 {
		if *budget == -1 {
			p.fail("", at, "schema has more than %d values", maxSchemaNodes)
		}
		return nil, false
	}
	if depth > maxSchemaDepth {
		p.fail("", at, "%s is nested more than %d deep", short(where), maxSchemaDepth)
		return nil, false
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := resolve(n.Content[i])
			if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
				p.fail("", k, "%s: keys must be strings (merge keys << are not supported)", short(where))
				return nil, false
			}
			if _, dup := m[k.Value]; dup {
				p.fail("", k, "%s.%s appears twice", short(where), short(k.Value))
				return nil, false
			}
			v, ok := p.jsonValue(n.Content[i+1], where+"."+k.Value, budget, depth+1)
			if !ok {
				return nil, false
			}
			m[k.Value] = v
		}
		return m, true
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for i, e := range n.Content {
			v, ok := p.jsonValue(e, fmt.Sprintf("%s[%d]", where, i), budget, depth+1)
			if !ok {
				return nil, false
			}
			l = append(l, v)
		}
		return l, true
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return nil, true
		case "!!bool":
			var b bool
			if n.Decode(&b) == nil {
				return b, true
			}
		case "!!int":
			var i int64
			if n.Decode(&i) == nil {
				return i, true
			}
		case "!!float":
			var f float64
			if n.Decode(&f) == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
				return f, true
			}
		default: // strings, and timestamps and the like as written
			return n.Value, true
		}
		p.fail("", at, "%s %q is not a value JSON can hold", short(where), short(n.Value))
		return nil, false
	}
	p.fail("", at, "%s: unsupported YAML", short(where))
	return nil, false
}
