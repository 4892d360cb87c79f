package app

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/client"
	"github.com/hostless/hostless/internal/function"
)

// greeting is a spec of the SDK guest whose /echo answers X-Env: g.
func greeting(g string) function.Spec {
	return function.Spec{Contract: function.ContractSDK, MemoryMB: 64, Env: map[string]string{"GREETING": g}}
}

// callMany calls path n times from 4 clients and counts the answers by
// their X-Env header; any other answer fails the test.
func (a *testApp) callMany(path string, n int) map[string]int {
	a.t.Helper()
	var mu sync.Mutex
	counts := map[string]int{}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				resp, err := a.hc.Get(a.base + path)
				if err != nil {
					a.t.Errorf("GET %s: %v", path, err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					a.t.Errorf("GET %s: %d", path, resp.StatusCode)
					return
				}
				mu.Lock()
				counts[resp.Header.Get("X-Env")]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return counts
}

// withinSigmas fails unless hits of n calls fit a binomial of probability
// p within k standard deviations.
func withinSigmas(t *testing.T, what string, hits, n int, p, k float64) {
	t.Helper()
	mean := float64(n) * p
	sigma := math.Sqrt(float64(n) * p * (1 - p))
	if d := math.Abs(float64(hits) - mean); d > k*sigma {
		t.Errorf("%s: %d of %d calls, want %.0f ± %.0f (%.0f sigma of the binomial)", what, hits, n, mean, k*sigma, k)
	} else {
		t.Logf("%s: %d of %d calls (expected %.0f, sigma %.1f)", what, hits, n, mean, sigma)
	}
}

// versionsRun counts a function's invocation records by version.
func (a *testApp) versionsRun(fn string, want int) map[int]int {
	a.t.Helper()
	ctx := context.Background()
	var counts map[int]int
	waitFor(a.t, fmt.Sprintf("%d records of %s", want, fn), func() bool {
		counts = map[int]int{}
		total, before := 0, ""
		for {
			recs, next, err := a.c.ListInvocations(ctx, fn, 1000, before)
			if err != nil {
				a.t.Fatal(err)
			}
			for _, r := range recs {
				counts[r.Version]++
			}
			total += len(recs)
			if next == "" {
				break
			}
			before = next
		}
		return total >= want
	})
	return counts
}

// TestCanaryWeights: a canary deploy sends the canary its weight of 2,000
// calls through the real server (within 5 sigma of the binomial), the
// records say which version ran each, promote sends it every call, and
// rollback goes back to the version before.
func TestCanaryWeights(t *testing.T) {
	t.Parallel()
	g := buildGuests(t)
	a := startApp(t, newConfig(t))
	ctx := context.Background()
	spec2 := a.deploy("split", g.sdk, greeting("one")).Version.Spec
	spec2.Env = map[string]string{"GREETING": "two"}
	res, err := a.c.PutCanary(ctx, "split", spec2, 20)
	if err != nil {
		t.Fatal(err)
	}
	if res.Action != "updated" || res.Version.Number != 2 || res.Function.Version != 1 ||
		res.Function.CanaryVersion != 2 || res.Function.CanaryWeight != 20 {
		t.Fatalf("canary deploy = %q version %d, live %+v; want version 2 as live's canary at 20%%", res.Action, res.Version.Number, res.Function)
	}
	a.callMany("/fn/split@1/echo", 4) // start both versions: time cold starts apart from the split
	a.callMany("/fn/split@2/echo", 4)

	const n = 2000
	counts := a.callMany("/fn/split/echo", n)
	if counts["one"]+counts["two"] != n {
		t.Fatalf("answers %v, want only one and two", counts)
	}
	withinSigmas(t, "canary at 20%", counts["two"], n, 0.20, 5)
	// Each call's record says the version that answered it.
	runs := a.versionsRun("split", n+8)
	if runs[2] != counts["two"]+4 || runs[1] != counts["one"]+4 {
		t.Errorf("records by version %v; the answers were %v (+4 calls each by number)", runs, counts)
	}
	// @live is the same split.
	if live := a.callMany("/fn/split@live/echo", 200); live["one"] == 0 || live["two"] == 0 {
		t.Errorf("200 calls of @live: %v, want both versions", live)
	}

	var view client.FunctionView
	a.getJSON("/v1/functions/split", &view)
	if view.CanaryVersion != 2 || view.CanaryWeight != 20 || view.CanarySpec == nil || view.CanarySpec.Env["GREETING"] != "two" {
		t.Errorf("GET the function: %+v, want its canary 2 at 20%% with its spec", view)
	}

	promoted, err := a.c.Promote(ctx, "split", function.LiveAlias)
	if err != nil {
		t.Fatal(err)
	}
	if promoted.Version != 2 || promoted.HasCanary() {
		t.Fatalf("promote = %+v, want live at version 2 alone", promoted)
	}
	if got := a.callMany("/fn/split/echo", 200); got["two"] != 200 {
		t.Errorf("after promote: %v, want every call on version 2", got)
	}
	if _, err := a.c.Promote(ctx, "split", function.LiveAlias); err == nil || !strings.Contains(err.Error(), "no canary to promote") {
		t.Errorf("promote without a canary: %v, want a no_canary refusal", err)
	}
	fn, err := a.c.Rollback(ctx, "split", 0)
	if err != nil || fn.Version != 1 || fn.CanaryVersion != 0 {
		t.Fatalf("rollback = %+v, %v; want version 1", fn, err)
	}
	if got := a.callMany("/fn/split/echo", 100); got["one"] != 100 {
		t.Errorf("after rollback: %v, want every call on version 1", got)
	}
}

// TestRollbackDropsCanary: rolling back a function with a canary drops the
// canary and leaves live's version serving alone; the canary's version
// stays, reachable by number.
func TestRollbackDropsCanary(t *testing.T) {
	t.Parallel()
	g := buildGuests(t)
	a := startApp(t, newConfig(t))
	a.deploy("rb", g.sdk, greeting("one"))
	res := a.deploy("rb", g.sdk, greeting("two"))
	spec3 := res.Version.Spec
	spec3.Env = map[string]string{"GREETING": "three"}
	if _, err := a.c.PutCanary(context.Background(), "rb", spec3, 50); err != nil {
		t.Fatal(err)
	}
	if got := a.callMany("/fn/rb/echo", 100); got["two"] == 0 || got["three"] == 0 {
		t.Fatalf("a canary at 50%%: %v, want both versions", got)
	}
	resp, body := a.do("POST", "/v1/functions/rb/rollback", nil, authHeader(testKey))
	var fn function.Function
	if err := json.Unmarshal(body, &fn); resp.StatusCode != 200 || err != nil || fn.Version != 2 || fn.CanaryVersion != 0 || fn.CanaryWeight != 0 {
		t.Fatalf("rollback with a canary: %d %s, want live at version 2 alone", resp.StatusCode, body)
	}
	if got := a.callMany("/fn/rb/echo", 100); got["two"] != 100 {
		t.Errorf("after rollback: %v, want every call on version 2", got)
	}
	if got := a.callMany("/fn/rb@3/echo", 2); got["three"] != 2 {
		t.Errorf("the dropped canary by number: %v, want version 3", got)
	}
	vs, err := a.c.ListVersions(context.Background(), "rb")
	if err != nil || len(vs) != 3 {
		t.Errorf("versions after rollback: %d, %v; want all 3 kept", len(vs), err)
	}
	// The next rollback goes back a version, as without canaries.
	if fn, err := a.c.Rollback(context.Background(), "rb", 0); err != nil || fn.Version != 1 {
		t.Errorf("second rollback = %+v, %v; want version 1", fn, err)
	}
}

// TestAliasesAPI: aliases through the control API and function URLs, with
// the 4xx answers that say what to fix.
func TestAliasesAPI(t *testing.T) {
	t.Parallel()
	g := buildGuests(t)
	a := startApp(t, newConfig(t))
	for _, gr := range []string{"one", "two", "three"} {
		a.deploy("al", g.sdk, greeting(gr))
	}
	key := authHeader(testKey)
	alias := func(body string) []byte { return []byte(body) }
	alist := func(want ...string) func(*testing.T, *http.Response, []byte) {
		return func(t *testing.T, _ *http.Response, body []byte) {
			var r struct{ Aliases []function.Alias }
			if err := json.Unmarshal(body, &r); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range r.Aliases {
				got = append(got, fmt.Sprintf("%s=%d+%d@%d", a.Name, a.Version, a.CanaryVersion, a.CanaryWeight))
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("aliases %v, want %v", got, want)
			}
		}
	}
	echo := func(want ...string) func(*testing.T, *http.Response, []byte) {
		return func(t *testing.T, resp *http.Response, _ []byte) {
			got := resp.Header.Get("X-Env")
			for _, w := range want {
				if got == w {
					return
				}
			}
			t.Errorf("X-Env %q, want one of %v", got, want)
		}
	}
	const base = "/v1/functions/al/aliases"
	scenarios := []scenario{
		{name: "list has live", path: base, headers: key, status: 200, check: alist("live=3+0@0")},
		{name: "create beta", method: "PUT", path: base + "/beta", headers: key, body: alias(`{"version":1}`),
			status: 201, contains: []string{`"name":"beta"`, `"version":1`}},
		{name: "beta serves version 1", path: "/fn/al@beta/echo", status: 201, check: echo("one")},
		{name: "move beta to a split", method: "PUT", path: base + "/beta", headers: key,
			body: alias(`{"version":2,"canary_version":3,"canary_weight":50}`), status: 200,
			contains: []string{`"canary_version":3`, `"canary_weight":50`}},
		{name: "beta now splits", path: "/fn/al@beta/echo", status: 201, check: echo("two", "three")},
		{name: "what GET answers can be sent back", method: "PUT", path: base + "/beta", headers: key,
			body:   alias(`{"project":"default","function":"al","name":"beta","version":2,"canary_version":3,"canary_weight":50,"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}`),
			status: 200},
		{name: "get beta", path: base + "/beta", headers: key, status: 200, contains: []string{`"function":"al"`, `"canary_weight":50`}},
		{name: "list", path: base, headers: key, status: 200, check: alist("beta=2+3@50", "live=3+0@0")},
		{name: "live is unchanged by beta", path: "/fn/al/echo", status: 201, check: echo("three")},
		{name: "invoke through the API by alias", method: "POST", path: "/v1/functions/al@beta/invoke", headers: key, status: 200,
			check: func(t *testing.T, resp *http.Response, _ []byte) {
				if v := a.record(resp.Header.Get("X-Hostless-Invocation-Id")).Version; v != 2 && v != 3 {
					t.Errorf("invoke of al@beta ran version %d, want 2 or 3", v)
				}
			}},
		{name: "invoke through the API by version", method: "POST", path: "/v1/functions/al@1/invoke", headers: key, status: 200,
			check: func(t *testing.T, resp *http.Response, _ []byte) {
				if v := a.record(resp.Header.Get("X-Hostless-Invocation-Id")).Version; v != 1 {
					t.Errorf("invoke of al@1 ran version %d, want 1", v)
				}
			}},

		// Bad input: 4xx naming what to fix.
		{name: "an all-digit alias name", method: "PUT", path: base + "/3", headers: key, body: alias(`{"version":1}`),
			status: 400, code: "bad_request", contains: []string{"version number"}},
		{name: "an alias name that is no DNS label", method: "PUT", path: base + "/Bad_Name", headers: key, body: alias(`{"version":1}`),
			status: 400, code: "bad_request", contains: []string{"DNS label"}},
		{name: "version 0", method: "PUT", path: base + "/x", headers: key, body: alias(`{"version":0}`),
			status: 400, code: "bad_request", contains: []string{"numbered from 1"}},
		{name: "no body", method: "PUT", path: base + "/x", headers: key,
			status: 400, code: "bad_request", contains: []string{"invalid JSON body"}},
		{name: "canary is the version", method: "PUT", path: base + "/x", headers: key, body: alias(`{"version":1,"canary_version":1,"canary_weight":10}`),
			status: 400, code: "bad_request", contains: []string{"canary_version 1", "another version"}},
		{name: "weight 150", method: "PUT", path: base + "/x", headers: key, body: alias(`{"version":1,"canary_version":2,"canary_weight":150}`),
			status: 400, code: "bad_request", contains: []string{"canary_weight 150", "1 to 99 percent"}},
		{name: "weight 100", method: "PUT", path: base + "/x", headers: key, body: alias(`{"version":1,"canary_version":2,"canary_weight":100}`),
			status: 400, code: "bad_request", contains: []string{"promote"}},
		{name: "canary without weight", method: "PUT", path: base + "/x", headers: key, body: alias(`{"version":1,"canary_version":2}`),
			status: 400, code: "bad_request", contains: []string{"canary_weight is missing"}},
		{name: "weight without canary", method: "PUT", path: base + "/x", headers: key, body: alias(`{"version":1,"canary_weight":5}`),
			status: 400, code: "bad_request", contains: []string{"without a canary_version"}},
		{name: "weight as a string", method: "PUT", path: base + "/x", headers: key, body: alias(`{"version":1,"canary_version":2,"canary_weight":"5"}`),
			status: 400, code: "bad_request", contains: []string{"canary_weight"}},
		{name: "unknown field", method: "PUT", path: base + "/x", headers: key, body: alias(`{"version":1,"weight":5}`),
			status: 400, code: "bad_request", contains: []string{`unknown field \"weight\"`}},
		{name: "another name in the body", method: "PUT", path: base + "/x", headers: key, body: alias(`{"name":"y","version":1}`),
			status: 400, code: "bad_request", contains: []string{`names alias \"y\"`}},
		{name: "a version that doesn't exist", method: "PUT", path: base + "/x", headers: key, body: alias(`{"version":9}`),
			status: 404, code: "version_not_found", contains: []string{`function \"al\" has no version 9`}},
		{name: "a canary that doesn't exist", method: "PUT", path: base + "/x", headers: key, body: alias(`{"version":1,"canary_version":7,"canary_weight":5}`),
			status: 404, code: "version_not_found", contains: []string{`function \"al\" has no version 7`}},
		{name: "refused puts stored nothing", path: base, headers: key, status: 200, check: alist("beta=2+3@50", "live=3+0@0")},
		{name: "a function that doesn't exist", method: "PUT", path: "/v1/functions/nope/aliases/beta", headers: key, body: alias(`{"version":1}`),
			status: 404, code: "function_not_found"},
		{name: "aliases of a function that doesn't exist", path: "/v1/functions/nope/aliases", headers: key,
			status: 404, code: "function_not_found"},
		{name: "promote without a canary", method: "POST", path: base + "/live/promote", headers: key,
			status: 409, code: "no_canary", contains: []string{`alias \"live\" of function \"al\" has no canary to promote`}},
		{name: "delete live", method: "DELETE", path: base + "/live", headers: key,
			status: 400, code: "cannot_delete_live", contains: []string{"point it at another version"}},
		{name: "deploy with canary 0", method: "PUT", path: "/v1/functions/al?canary=0", headers: key,
			body: []byte(`{}`), status: 400, code: "bad_request", contains: []string{"canary=", "1 to 99"}},
		{name: "deploy with canary 100", method: "PUT", path: "/v1/functions/al?canary=100", headers: key,
			body: []byte(`{}`), status: 400, code: "bad_request", contains: []string{"1 to 99"}},
		{name: "deploy with canary abc", method: "PUT", path: "/v1/functions/al?canary=abc", headers: key,
			body: []byte(`{}`), status: 400, code: "bad_request", contains: []string{`canary=\"abc\"`}},

		// Promote beta, then delete it: 404 with a clear message.
		{name: "promote beta", method: "POST", path: base + "/beta/promote", headers: key, status: 200,
			contains: []string{`"version":3`}, absent: []string{"canary_version"}},
		{name: "beta serves its promoted canary", path: "/fn/al@beta/echo", status: 201, check: echo("three")},
		{name: "delete beta", method: "DELETE", path: base + "/beta", headers: key, status: 204},
		{name: "a deleted alias is 404 on its URL", path: "/fn/al@beta/echo", status: 404, code: "alias_not_found",
			contains: []string{`function \"al\" has no alias \"beta\"`, "hostless aliases al"}},
		{name: "a deleted alias is 404 on the API", path: base + "/beta", headers: key, status: 404, code: "alias_not_found",
			contains: []string{`function \"al\" has no alias \"beta\"`}},
		{name: "deleting it again", method: "DELETE", path: base + "/beta", headers: key, status: 404, code: "alias_not_found"},
		{name: "an alias no function has", path: "/fn/nope@beta/echo", status: 404, code: "function_not_found"},
		{name: "without the key", path: base, status: 401, code: "unauthorized"},
	}
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) { s.run(t, a) })
	}
}

// TestServedVersionsDrain: after a deploy, the old version's instances
// stop (its min_instances are no longer kept), calls by number still start
// and reuse it, and a canary's two versions both keep theirs.
func TestServedVersionsDrain(t *testing.T) {
	t.Parallel()
	g := buildGuests(t)
	cfg := newConfig(t)
	cfg.IdleTimeout = 300 * time.Millisecond
	a := startApp(t, cfg)
	spec := func(gr string) function.Spec {
		s := greeting(gr)
		s.MinInstances = 1
		return s
	}
	a.deploy("dr", g.sdk, spec("one"))
	waitIdle := func(what string, n int) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second) // a first compile may come first
		for a.sched.Stats().Idle != n || a.sched.Stats().Busy != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %+v, want %d idle", what, a.sched.Stats(), n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitIdle("version 1's min instance", 1)
	res := a.deploy("dr", g.sdk, spec("two"))
	time.Sleep(time.Second) // three idle timeouts: nothing tops version 1 up
	waitIdle("version 2's min instance alone", 1)
	if got := a.callMany("/fn/dr/echo", 1); got["two"] != 1 {
		t.Fatalf("live: %v, want version 2", got)
	}
	// Called by number, version 1 starts and stays warm between calls...
	var ids []string
	for range 2 { // back to back, well within the idle timeout
		_, _, id := a.invoke("GET", "/fn/dr@1/echo", nil)
		ids = append(ids, id)
	}
	recs := []function.Invocation{a.record(ids[0]), a.record(ids[1])}
	if !recs[0].Cold || recs[1].Cold || recs[1].Version != 1 {
		t.Errorf("two calls of @1: cold %v then %v (version %d), want a cold start then a warm call", recs[0].Cold, recs[1].Cold, recs[1].Version)
	}
	// ...until its idle timeout: min_instances belong to versions that serve.
	waitIdle("version 1 idle-reaped", 1)

	// A canary keeps both versions' minimums; promoting drains the old one.
	spec3 := res.Version.Spec
	spec3.Env = map[string]string{"GREETING": "three"}
	if _, err := a.c.PutCanary(context.Background(), "dr", spec3, 10); err != nil {
		t.Fatal(err)
	}
	waitIdle("versions 2 and 3 while 3 is the canary", 2)
	time.Sleep(time.Second)
	waitIdle("versions 2 and 3 after idle timeouts", 2)
	if _, err := a.c.Promote(context.Background(), "dr", function.LiveAlias); err != nil {
		t.Fatal(err)
	}
	waitIdle("version 3 alone after promote", 1)
	if got := a.callMany("/fn/dr/echo", 20); got["three"] != 20 {
		t.Errorf("after promote: %v, want version 3", got)
	}
}
