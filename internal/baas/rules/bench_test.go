package rules

import (
	"context"
	"testing"
)

func BenchmarkEval(b *testing.B) {
	r, err := Compile(`auth.id != "" && resource.owner_id == auth.id`)
	if err != nil {
		b.Fatal(err)
	}
	in := Input{Auth: alice, Now: t0, Resource: map[string]any{"id": "d1", "owner_id": "alice",
		"created_at": "2026-03-01T11:00:00Z", "title": "hello", "n": float64(3)}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := r.Eval(ctx, in); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

func BenchmarkPlan(b *testing.B) {
	for _, bc := range []struct {
		name string
		rule string
	}{
		{name: "decided", rule: `"admin" in auth.roles`},
		{name: "owner", rule: `auth.id != "" && resource.owner_id == auth.id`},
		{name: "inexact", rule: `resource.owner_id == auth.id && resource.tags.exists(t, t == "x")`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r, err := Compile(bc.rule)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				r.Plan(alice, t0)
			}
		})
	}
}

func BenchmarkCompile(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(`auth.id != "" && resource.owner_id == auth.id`); err != nil {
			b.Fatal(err)
		}
	}
}
