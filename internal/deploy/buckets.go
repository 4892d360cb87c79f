package deploy

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/hostless/hostless/internal/client"
	"github.com/hostless/hostless/internal/manifest"
)

// bucketNames returns the buckets a deploy of m makes sure of, sorted: the
// manifest's buckets: and every bucket a function names.
func bucketNames(m *manifest.Manifest) []string {
	names := slices.Clone(m.BucketOrder)
	for _, fn := range m.Order {
		for b := range m.Functions[fn].Buckets {
			if m.Buckets[b] == nil && !slices.Contains(names, b) {
				names = append(names, b)
			}
		}
	}
	slices.Sort(names)
	return names
}

// bucketActions reads every bucket of m from the server and says what a
// deploy does to each: create, update (its rules) or unchanged.
func bucketActions(ctx context.Context, c *client.Client, m *manifest.Manifest) ([]Change, error) {
	var changes []Change
	for _, name := range bucketNames(m) {
		ch := Change{Name: name, Action: ActionCreate}
		got, err := c.GetBucketRules(ctx, name)
		want, hasRules := bucketRules(m, name)
		switch {
		case client.IsNotFound(err):
		case err != nil:
			return nil, fmt.Errorf("bucket %q: %w", name, err)
		case hasRules && got != want:
			ch.Action = ActionUpdate
		default:
			ch.Action = ActionUnchanged
		}
		changes = append(changes, ch)
	}
	return changes, nil
}

// bucketRules returns the rules m gives bucket, and whether it gives any
// (a bucket without rules: keeps the server's).
func bucketRules(m *manifest.Manifest, bucket string) (client.BucketRules, bool) {
	b := m.Buckets[bucket]
	if b == nil || b.Rules == nil {
		return client.BucketRules{}, false
	}
	return client.BucketRules{Read: b.Rules["read"], Write: b.Rules["write"]}, true
}

// PlanBuckets says what ApplyBuckets would do to each bucket, changing
// nothing, and prints it to out, if not nil.
func PlanBuckets(ctx context.Context, c *client.Client, m *manifest.Manifest, out io.Writer) ([]Change, error) {
	changes, err := bucketActions(ctx, c, m)
	if err != nil || out == nil || len(changes) == 0 {
		return changes, err
	}
	n := map[string]int{}
	for _, ch := range changes {
		n[ch.Action]++
		fmt.Fprintf(out, "%-24s %-9s bucket\n", ch.Name, ch.Action)
	}
	fmt.Fprintf(out, "Buckets: %d to create, %d to update, %d unchanged.\n", n[ActionCreate], n[ActionUpdate], n[ActionUnchanged])
	return changes, nil
}

// ApplyBuckets creates the buckets of m that the server lacks (the
// manifest's buckets: and those its functions name) and puts the rules
// the manifest gives, printing one line per bucket to out, if not nil.
// Buckets the manifest doesn't name are left alone, with their objects.
func ApplyBuckets(ctx context.Context, c *client.Client, m *manifest.Manifest, out io.Writer) ([]CollectionResult, error) {
	changes, err := bucketActions(ctx, c, m)
	if err != nil {
		return nil, err
	}
	var results []CollectionResult
	for _, ch := range changes {
		r := CollectionResult{Name: ch.Name, Action: "unchanged"}
		if ch.Action == ActionCreate {
			if err := c.CreateBucket(ctx, ch.Name); err != nil {
				return results, fmt.Errorf("bucket %q: %w", ch.Name, err)
			}
			r.Action = "created"
		}
		if rules, ok := bucketRules(m, ch.Name); ok && ch.Action != ActionUnchanged {
			if _, err := c.PutBucketRules(ctx, ch.Name, rules); err != nil {
				return results, fmt.Errorf("bucket %q: rules: %w", ch.Name, err)
			}
			if ch.Action == ActionUpdate {
				r.Action = "updated"
			}
		}
		results = append(results, r)
		if out != nil {
			fmt.Fprintf(out, "%-24s %-9s bucket\n", r.Name, r.Action)
		}
	}
	return results, nil
}
