package manifest

import (
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/hostless/hostless/internal/function"
)

// MaxBuckets bounds the buckets of a manifest.
const MaxBuckets = 1000

// Bucket is a bucket of the object storage that a deploy creates when it
// is missing, with the rules of the browser API (/v1/storage) when it has
// any. Rules left out keep what the bucket has.
type Bucket struct {
	Name string
	// Rules are CEL expressions by operation (read, write); nil leaves the
	// bucket's rules as they are.
	Rules map[string]string
}

// BucketOperations are the operations a bucket's rules name.
var BucketOperations = []string{"read", "write"}

var bucketFields = []string{"rules"}

// buckets reads the manifest's buckets: a mapping of names to a bucket's
// settings (or nothing).
func (p *parser) buckets(at *yaml.Node) {
	v := resolve(at)
	if isNull(v) {
		return
	}
	if v.Kind != yaml.MappingNode {
		p.fail("", at, "buckets must be a mapping of bucket names to their settings (rules)")
		return
	}
	if len(v.Content)/2 > MaxBuckets {
		p.fail("", at, "manifest has %d buckets (at most %d)", len(v.Content)/2, MaxBuckets)
		return
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, n := resolve(v.Content[i]), resolve(v.Content[i+1])
		if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
			p.fail("", k, "bucket names must be strings")
			continue
		}
		name := k.Value
		if p.m.Buckets[name] != nil {
			p.fail("", k, "bucket %q defined twice", short(name))
			continue
		}
		before := len(p.errs)
		if !function.ValidBucketName(name) {
			p.fail("", k, "bucket %q: name must be 3 to 63 lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit", short(name))
		}
		b := &Bucket{Name: name}
		if !isNull(n) {
			b.Rules = p.bucketSettings(name, n)
		}
		if len(p.errs) == before {
			p.m.Buckets[name] = b
			p.m.BucketOrder = append(p.m.BucketOrder, name)
		}
	}
	slices.Sort(p.m.BucketOrder)
}

// bucketSettings reads one bucket's settings and returns its rules.
func (p *parser) bucketSettings(name string, n *yaml.Node) map[string]string {
	if n.Kind != yaml.MappingNode {
		p.fail("", n, "bucket %q must be a mapping (%s)", short(name), strings.Join(bucketFields, ", "))
		return nil
	}
	var rules map[string]string
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode || k.Value != "rules" || k.Tag == "!!merge" {
			p.fail("", k, "bucket %q: unknown field %q (accepted: %s)", short(name), short(keyName(k)), strings.Join(bucketFields, ", "))
			continue
		}
		if rules != nil {
			p.fail("", k, "bucket %q: field \"rules\" appears twice", short(name))
			continue
		}
		rules = map[string]string{}
		if isNull(v) {
			continue
		}
		if v.Kind != yaml.MappingNode {
			p.fail("", v, "bucket %q: rules must be a mapping of operations (read, write) to CEL expressions", short(name))
			continue
		}
		for j := 0; j+1 < len(v.Content); j += 2 {
			op, e := resolve(v.Content[j]), v.Content[j+1]
			switch {
			case op.Kind != yaml.ScalarNode || !slices.Contains(BucketOperations, op.Value):
				p.fail("", op, "bucket %q: rules: %q is not an operation (read, write)", short(name), short(keyName(op)))
				continue
			case rules[op.Value] != "":
				p.fail("", op, "bucket %q: rules.%s appears twice", short(name), op.Value)
				continue
			}
			before := len(p.errs)
			src := strings.TrimSpace(p.scalar("", "rules."+op.Value, map[string]*yaml.Node{"rules." + op.Value: e}, MaxRuleBytes))
			switch {
			case len(p.errs) > before:
			case src == "":
				p.fail("", e, "bucket %q: rules.%s is empty: write a CEL expression, such as \"auth.id != ''\", or leave the operation out (admins only)", short(name), op.Value)
			default:
				rules[op.Value] = src
			}
		}
	}
	return rules
}

// functionBuckets reads a function's buckets: a mapping of bucket names
// to read, write or read-write, or a list of names, each read-write.
func (p *parser) functionBuckets(fn string, at *yaml.Node) map[string]string {
	v := resolve(at)
	if isNull(v) {
		return nil
	}
	out := map[string]string{}
	add := func(k *yaml.Node, access string) bool {
		if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" || len(k.Value) > maxNameBytes {
			p.fail(fn, k, "buckets: bucket names must be short strings")
			return false
		}
		if _, dup := out[k.Value]; dup {
			p.fail(fn, k, "buckets: %s appears twice", short(k.Value))
			return false
		}
		out[k.Value] = access
		return true
	}
	switch v.Kind {
	case yaml.SequenceNode:
		if len(v.Content) > function.MaxBuckets {
			p.fail(fn, at, "buckets has %d entries (at most %d)", len(v.Content), function.MaxBuckets)
			return nil
		}
		for _, e := range v.Content {
			if !add(resolve(e), function.BucketReadWrite) {
				return nil
			}
		}
	case yaml.MappingNode:
		if len(v.Content)/2 > function.MaxBuckets {
			p.fail(fn, at, "buckets has %d entries (at most %d)", len(v.Content)/2, function.MaxBuckets)
			return nil
		}
		for i := 0; i+1 < len(v.Content); i += 2 {
			a := resolve(v.Content[i+1])
			if a.Kind != yaml.ScalarNode || isNull(a) {
				p.fail(fn, a, "buckets: the access to %s must be read, write or read-write", short(keyName(resolve(v.Content[i]))))
				return nil
			}
			if !add(resolve(v.Content[i]), a.Value) {
				return nil
			}
		}
	default:
		p.fail(fn, at, "buckets must be a mapping of bucket names to read, write or read-write, or a list of names (read-write)")
		return nil
	}
	return out
}
