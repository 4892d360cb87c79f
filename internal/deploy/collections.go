package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"slices"

	"github.com/hostless/hostless/internal/client"
	"github.com/hostless/hostless/internal/manifest"
)

// CollectionResult is what a deploy did to one collection: created,
// updated or unchanged.
type CollectionResult struct {
	Name   string
	Action string
}

func (r CollectionResult) line() string {
	return fmt.Sprintf("%-24s %-9s collection", r.Name, r.Action)
}

// CollectionSpec returns the spec a deploy puts for c.
func CollectionSpec(c *manifest.Collection) client.CollectionSpec {
	s := client.CollectionSpec{
		Indexes:          slices.Clone(c.Indexes),
		MaxDocuments:     c.MaxDocuments,
		MaxDocumentBytes: c.MaxDocumentBytes,
	}
	if c.Schema != nil {
		s.Schema = slices.Clone(c.Schema)
	}
	if len(c.Rules) > 0 {
		s.Rules = make(map[string]string, len(c.Rules))
		for op, src := range c.Rules {
			s.Rules[op] = src
		}
	}
	return s
}

// SameCollectionSpec reports whether two specs say the same thing: their
// JSON is compared as values, so key order, spacing and 1 against 1.0 in
// a schema don't count, nor do an empty list and an absent one.
func SameCollectionSpec(a, b client.CollectionSpec) bool {
	va, erra := jsonValue(a)
	vb, errb := jsonValue(b)
	return erra == nil && errb == nil && reflect.DeepEqual(va, vb)
}

func jsonValue(s client.CollectionSpec) (any, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	var v any
	err = json.Unmarshal(b, &v)
	return v, err
}

// collectionActions reads every collection of m from the server and says
// what a deploy does to each: create, update or unchanged.
func collectionActions(ctx context.Context, c *client.Client, m *manifest.Manifest) ([]Change, error) {
	var changes []Change
	for _, name := range m.CollectionOrder {
		ch := Change{Name: name, Action: ActionCreate}
		got, err := c.GetCollection(ctx, name)
		switch {
		case client.IsNotFound(err):
		case err != nil:
			return nil, fmt.Errorf("collection %q: %w", name, err)
		case SameCollectionSpec(got.Spec, CollectionSpec(m.Collections[name])):
			ch.Action = ActionUnchanged
		default:
			ch.Action = ActionUpdate
		}
		changes = append(changes, ch)
	}
	return changes, nil
}

// PlanCollections says what ApplyCollections would do to each collection
// of m, changing nothing, and prints it to out, if not nil.
func PlanCollections(ctx context.Context, c *client.Client, m *manifest.Manifest, out io.Writer) ([]Change, error) {
	changes, err := collectionActions(ctx, c, m)
	if err != nil || out == nil || len(changes) == 0 {
		return changes, err
	}
	n := map[string]int{}
	for _, ch := range changes {
		n[ch.Action]++
		fmt.Fprintf(out, "%-24s %-9s collection\n", ch.Name, ch.Action)
	}
	fmt.Fprintf(out, "Collections: %d to create, %d to update, %d unchanged.\n", n[ActionCreate], n[ActionUpdate], n[ActionUnchanged])
	return changes, nil
}

// ApplyCollections puts each collection of m whose spec differs from the
// server's (or that the server lacks), printing one line per collection
// to out, if not nil. The server keeps a collection's documents when its
// spec changes. Collections on the server that m doesn't name are left
// alone: a deploy never deletes data (hostless collections rm does).
func ApplyCollections(ctx context.Context, c *client.Client, m *manifest.Manifest, out io.Writer) ([]CollectionResult, error) {
	// Read them all first: a server that can't be read changes nothing.
	changes, err := collectionActions(ctx, c, m)
	if err != nil {
		return nil, err
	}
	var results []CollectionResult
	for _, ch := range changes {
		r := CollectionResult{Name: ch.Name, Action: "unchanged"}
		if ch.Action != ActionUnchanged {
			if _, err := c.PutCollection(ctx, ch.Name, CollectionSpec(m.Collections[ch.Name])); err != nil {
				return results, fmt.Errorf("collection %q: %w", ch.Name, err)
			}
			r.Action = map[string]string{ActionCreate: "created", ActionUpdate: "updated"}[ch.Action]
		}
		results = append(results, r)
		if out != nil {
			fmt.Fprintln(out, r.line())
		}
	}
	return results, nil
}
