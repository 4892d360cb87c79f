package invoker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
)

func testSpec(n int) function.Spec {
	s := function.Spec{Runtime: function.RuntimeWasm, Code: fmt.Sprintf("sha256:%064d", n)}
	s.Normalize()
	return s
}

// withinSigmas fails unless hits of n draws fit a binomial of probability
// p within k standard deviations.
func withinSigmas(t *testing.T, what string, hits, n int, p, k float64) {
	t.Helper()
	mean := float64(n) * p
	sigma := math.Sqrt(float64(n) * p * (1 - p))
	if d := math.Abs(float64(hits) - mean); d > k*sigma {
		t.Errorf("%s: %d of %d, want %.0f ± %.0f (%.0f sigma)", what, hits, n, mean, k*sigma, k)
	}
}

// TestCanaryPick: calls through an alias with a canary reach the canary at
// its weight, and a promote, once Changed, sends every call to it.
func TestCanaryPick(t *testing.T) {
	iv, ps := newResolver(t)
	ctx := context.Background()
	if _, err := ps.PutFunction(ctx, "default", "f", testSpec(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := ps.PutCanary(ctx, "default", "f", testSpec(2), 10); err != nil {
		t.Fatal(err)
	}
	for _, weight := range []int{1, 20, 50, 99} {
		if _, err := ps.UpdateAlias(ctx, "default", "f", function.LiveAlias, func(a *function.Alias) error {
			a.CanaryWeight = weight
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		iv.Changed("default", "f")
		const n = 100_000
		canary := 0
		for range n {
			v, err := iv.Resolve(ctx, "default", "f")
			if err != nil {
				t.Fatal(err)
			}
			switch v.Number {
			case 2:
				canary++
			case 1:
			default:
				t.Fatalf("resolved version %d", v.Number)
			}
		}
		withinSigmas(t, fmt.Sprintf("weight %d%%", weight), canary, n, float64(weight)/100, 5)
	}
	// Promote: every call goes to the canary.
	if _, err := ps.UpdateAlias(ctx, "default", "f", function.LiveAlias, func(a *function.Alias) error {
		a.Version, a.CanaryVersion, a.CanaryWeight = a.CanaryVersion, 0, 0
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	iv.Changed("default", "f")
	for range 1000 {
		if v, err := iv.Resolve(ctx, "default", "f"); err != nil || v.Number != 2 {
			t.Fatalf("after promote: %v, %v; want version 2", v, err)
		}
	}
}

// TestResolveAlias: an alias resolves from memory until Changed; unknown
// aliases and names no alias can have are answered without floods of store
// reads; a missing function is not-found whatever the alias.
func TestResolveAlias(t *testing.T) {
	iv, ps := newResolver(t)
	ctx := context.Background()
	for i := 1; i <= 3; i++ {
		if _, err := ps.PutFunction(ctx, "default", "f", testSpec(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := ps.PutAlias(ctx, "default", "f", function.Alias{Name: "beta", Version: 1}); err != nil {
		t.Fatal(err)
	}
	resolve := func(alias string) (int, error) {
		t.Helper()
		v, err := iv.ResolveAlias(ctx, "default", "f", alias)
		if err != nil {
			return 0, err
		}
		return v.Number, nil
	}
	if n, err := resolve("beta"); err != nil || n != 1 {
		t.Fatalf("beta = %d, %v; want 1", n, err)
	}
	if _, _, err := ps.PutAlias(ctx, "default", "f", function.Alias{Name: "beta", Version: 2}); err != nil {
		t.Fatal(err)
	}
	reads := ps.reads.Load()
	if n, _ := resolve("beta"); n != 1 || ps.reads.Load() != reads {
		t.Fatalf("before Changed beta = %d with %d store reads, want 1 from memory", n, ps.reads.Load()-reads)
	}
	iv.Changed("default", "f")
	if n, err := resolve("beta"); err != nil || n != 2 {
		t.Fatalf("after Changed beta = %d, %v; want 2", n, err)
	}
	if n, err := resolve(function.LiveAlias); err != nil || n != 3 {
		t.Fatalf("live = %d, %v; want 3", n, err)
	}

	for _, alias := range []string{"gamma", "Bad_Name", "7", ""} {
		reads := ps.reads.Load()
		for range 50 {
			_, err := resolve(alias)
			var ae *function.AliasNotFoundError
			if !errors.As(err, &ae) || ae.Alias != alias || ae.Function != "f" || errors.Is(err, store.ErrNotFound) {
				t.Fatalf("alias %q: err = %v, want an AliasNotFoundError", alias, err)
			}
		}
		if n := ps.reads.Load() - reads; n > 1 {
			t.Errorf("50 calls of unknown alias %q made %d store reads, want at most 1", alias, n)
		}
	}
	for _, alias := range []string{function.LiveAlias, "beta", "Bad_Name"} {
		if _, err := iv.ResolveAlias(ctx, "default", "nope", alias); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("alias %q of a missing function: %v, want not found", alias, err)
		}
	}
	// A version by number that live's canary is comes from the route.
	if _, err := ps.PutCanary(ctx, "default", "f", testSpec(4), 10); err != nil {
		t.Fatal(err)
	}
	iv.Changed("default", "f")
	if _, err := iv.Resolve(ctx, "default", "f"); err != nil {
		t.Fatal(err)
	}
	reads = ps.reads.Load()
	for _, n := range []int{3, 4} {
		if v, err := iv.resolvePinned(ctx, "default", "f", n); err != nil || v.Number != n {
			t.Fatalf("@%d = %v, %v", n, v, err)
		}
	}
	if ps.reads.Load() != reads {
		t.Errorf("live's version and canary by number read the store %d times, want 0", ps.reads.Load()-reads)
	}
	if _, err := iv.resolvePinned(ctx, "default", "f", 9); !errors.Is(err, function.ErrVersionNotFound) {
		t.Errorf("@9: %v, want ErrVersionNotFound", err)
	}
}

// BenchmarkResolve is the alias lookup of every call: from the cache, with
// and without a canary to pick.
func BenchmarkResolve(b *testing.B) {
	for _, bc := range []struct {
		name   string
		alias  string
		canary bool
	}{
		{"live", function.LiveAlias, false},
		{"live-with-canary", function.LiveAlias, true},
		{"other-alias", "beta", false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			iv, ps := newResolver(b)
			ctx := context.Background()
			ps.PutFunction(ctx, "default", "f", testSpec(1))
			ps.PutFunction(ctx, "default", "f", testSpec(2))
			ps.PutAlias(ctx, "default", "f", function.Alias{Name: "beta", Version: 1})
			if bc.canary {
				ps.PutCanary(ctx, "default", "f", testSpec(3), 10)
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := iv.ResolveAlias(ctx, "default", "f", bc.alias); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
