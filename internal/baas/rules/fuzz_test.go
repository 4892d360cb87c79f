package rules

import (
	"context"
	"errors"
	"testing"
)

// FuzzCompile checks that no source makes Compile panic, that every error is a CompileError,
// and that a compiled rule's Plan and Eval don't panic and never allow on error.
func FuzzCompile(f *testing.F) {
	for _, src := range append(append([]string(nil), soundnessRules...), atoms...) {
		f.Add(src)
	}
	doc := map[string]any{"id": "d1", "owner_id": "alice", "published": true, "n": float64(3),
		"meta": map[string]any{"team": "red"}, "tags": []any{"x", "editor"}, "x": nil}
	req := map[string]any{"method": "update", "data": map[string]any{"owner_id": "alice"}}
	f.Fuzz(func(t *testing.T, src string) {
		r, err := Compile(src)
		if err != nil {
			var ce *CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("Compile(%q): %T %v, want a *CompileError", src, err, err)
			}
			return
		}
		for _, au := range []Auth{alice, anon} {
			p := r.Plan(au, t0)
			ok, err := r.Eval(context.Background(), Input{Auth: au, Resource: doc, Request: req, Now: t0})
			if ok && err != nil {
				t.Fatalf("%q: allowed with an error", src)
			}
			if p.Decided && ok != p.Allow {
				t.Fatalf("%q: decided %v, Eval %v (%v)", src, p.Allow, ok, err)
			}
			for _, e := range p.Eqs {
				if ok && !e.Matches(doc) {
					t.Fatalf("%q: Eval allows a document failing %v", src, e)
				}
			}
		}
	})
}
