package deploy

import (
	"fmt"
	"testing"

	"github.com/hostless/hostless/internal/client"
	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
)

// TestPlanAgreesWithTheServer: for every kind of deploy (plain or canary)
// of every spec (new, live's version's, its canary's) onto a live alias
// with or without a canary, the plan says what the server's rule does.
func TestPlanAgreesWithTheServer(t *testing.T) {
	t.Parallel()
	spec := func(n int) *function.Spec {
		s := function.Spec{Runtime: function.RuntimeWasm, Code: fmt.Sprintf("sha256:%064d", n)}
		s.Normalize()
		return &s
	}
	const next = 4
	for _, hasCanary := range []bool{false, true} {
		for _, deployed := range []int{1, 2, 3} { // live's version has spec 1, its canary spec 2, 3 is new
			for _, weight := range []int{0, 10} {
				name := fmt.Sprintf("canary %v, spec %d, weight %d", hasCanary, deployed, weight)
				live := function.Alias{Name: function.LiveAlias, Version: 1}
				view := client.FunctionView{Function: function.Function{Version: 1}, Spec: spec(1)}
				var canarySpec *function.Spec
				if hasCanary {
					live.CanaryVersion, live.CanaryWeight = 2, 30
					view.CanaryVersion, view.CanaryWeight, view.CanarySpec = 2, 30, spec(2)
					canarySpec = spec(2)
				}
				after, action, n := store.Deploy(live, spec(1), canarySpec, spec(deployed), weight, next)
				planned, to := planUpdate(view, *spec(deployed), weight)
				want := map[string]string{"unchanged": ActionUnchanged, "updated": ActionUpdate}[action]
				if planned != want {
					t.Errorf("%s: plan %q, the server does %q", name, planned, action)
					continue
				}
				if action == "unchanged" {
					continue
				}
				var wantTo string
				switch {
				case n == next && after.CanaryVersion == next:
					wantTo = "a new version as its canary (10%)"
				case n == next:
					wantTo = "a new version"
				case n == 2:
					wantTo = "version 2 alone (the canary's spec: promoted)"
				default:
					wantTo = "version 1 alone (the canary is dropped)"
				}
				if to != wantTo {
					t.Errorf("%s: plan %q, the server makes live %+v (version %d): want %q", name, to, after, n, wantTo)
				}
			}
		}
	}
}
