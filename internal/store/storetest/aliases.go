package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
)

// aliasTests are the suite's cases for aliases and canary deploys.
var aliasTests = []struct {
	name string
	run  func(t *testing.T, s store.Store)
}{
	{"Aliases/live-from-create", testLiveFromCreate},
	{"Aliases/put-get-list", testPutGetListAliases},
	{"Aliases/not-found", testAliasesNotFound},
	{"Aliases/invalid", testAliasesInvalid},
	{"Aliases/delete", testDeleteAlias},
	{"Aliases/deleted-with-function", testAliasesDeletedWithFunction},
	{"Aliases/projects", testAliasesProjects},
	{"PutCanary", testPutCanary},
	{"PutCanary/new-function", testPutCanaryCreates},
	{"PutCanary/bad-weight", testPutCanaryBadWeight},
	{"PutFunction/concurrent-canaries", testPutConcurrentCanaries},
	{"SetServing/clears-canary", testSetServingClearsCanary},
	{"UpdateAlias", testUpdateAlias},
	{"UpdateAlias/concurrent", testUpdateAliasConcurrent},
}

// alias returns what an alias points at, for comparing.
func pointsAt(a function.Alias) string {
	if a.CanaryVersion == 0 {
		return fmt.Sprintf("%s=%d", a.Name, a.Version)
	}
	return fmt.Sprintf("%s=%d+%d@%d%%", a.Name, a.Version, a.CanaryVersion, a.CanaryWeight)
}

func liveOf(fn function.Function) string {
	return pointsAt(function.Alias{Name: function.LiveAlias, Version: fn.Version, CanaryVersion: fn.CanaryVersion, CanaryWeight: fn.CanaryWeight})
}

func getAlias(t *testing.T, s store.Store, project, fn, alias string) function.Alias {
	t.Helper()
	a, err := s.GetAlias(context.Background(), project, fn, alias)
	if err != nil {
		t.Fatalf("GetAlias(%s, %s, %s): %v", project, fn, alias, err)
	}
	return a
}

func putAlias(t *testing.T, s store.Store, project, fn string, a function.Alias) (function.Alias, bool) {
	t.Helper()
	got, created, err := s.PutAlias(context.Background(), project, fn, a)
	if err != nil {
		t.Fatalf("PutAlias(%s, %s, %+v): %v", project, fn, a, err)
	}
	return got, created
}

func listAliases(t *testing.T, s store.Store, project, fn string) []string {
	t.Helper()
	as, err := s.ListAliases(context.Background(), project, fn)
	if err != nil {
		t.Fatalf("ListAliases(%s, %s): %v", project, fn, err)
	}
	var out []string
	for _, a := range as {
		if a.Project != project || a.Function != fn {
			t.Fatalf("ListAliases(%s, %s) lists %+v", project, fn, a)
		}
		wantUTC(t, "alias CreatedAt", a.CreatedAt)
		out = append(out, pointsAt(a))
	}
	return out
}

// wantLive checks the live alias through GetFunction and GetAlias.
func wantLive(t *testing.T, s store.Store, project, fn, want string) {
	t.Helper()
	f, err := s.GetFunction(context.Background(), project, fn)
	if err != nil {
		t.Fatal(err)
	}
	if got := liveOf(f); got != want {
		t.Fatalf("GetFunction(%s): live %s, want %s", fn, got, want)
	}
	if got := pointsAt(getAlias(t, s, project, fn, function.LiveAlias)); got != want {
		t.Fatalf("GetAlias(%s, live) = %s, want %s", fn, got, want)
	}
}

func testLiveFromCreate(t *testing.T, s store.Store) {
	res := put(t, s, projA, "hello", spec(1))
	live := getAlias(t, s, projA, "hello", function.LiveAlias)
	if live.Project != projA || live.Function != "hello" || live.Name != function.LiveAlias || live.Version != 1 || live.HasCanary() {
		t.Fatalf("live alias of a new function = %+v", live)
	}
	wantUTC(t, "live CreatedAt", live.CreatedAt)
	if !live.CreatedAt.Equal(res.Function.CreatedAt) || !live.UpdatedAt.Equal(live.CreatedAt) {
		t.Fatalf("live alias times %v, %v; want the function's creation %v", live.CreatedAt, live.UpdatedAt, res.Function.CreatedAt)
	}
	if got := listAliases(t, s, projA, "hello"); !slices.Equal(got, []string{"live=1"}) {
		t.Fatalf("ListAliases = %v, want only live=1", got)
	}
	put(t, s, projA, "hello", spec(2))
	if got := listAliases(t, s, projA, "hello"); !slices.Equal(got, []string{"live=2"}) {
		t.Fatalf("after a second deploy ListAliases = %v, want live=2", got)
	}
	if res.Function.CanaryVersion != 0 || res.Function.CanaryWeight != 0 {
		t.Fatalf("a new function has a canary: %+v", res.Function)
	}
}

func testPutGetListAliases(t *testing.T, s store.Store) {
	ctx := context.Background()
	for i := 1; i <= 3; i++ {
		put(t, s, projA, "fn", spec(i))
	}
	before, err := s.GetFunction(ctx, projA, "fn")
	if err != nil {
		t.Fatal(err)
	}
	beta, created := putAlias(t, s, projA, "fn", function.Alias{Name: "beta", Version: 1})
	if !created || beta.Project != projA || beta.Function != "fn" || beta.Name != "beta" || beta.Version != 1 {
		t.Fatalf("PutAlias(beta) = %+v, created %v", beta, created)
	}
	wantUTC(t, "beta CreatedAt", beta.CreatedAt)
	if got := getAlias(t, s, projA, "fn", "beta"); got != beta {
		t.Fatalf("GetAlias(beta) = %+v, want %+v", got, beta)
	}
	moved, created := putAlias(t, s, projA, "fn", function.Alias{Name: "beta", Version: 2, CanaryVersion: 3, CanaryWeight: 25})
	if created || pointsAt(moved) != "beta=2+3@25%" {
		t.Fatalf("replacing beta = %+v, created %v", moved, created)
	}
	if !moved.CreatedAt.Equal(beta.CreatedAt) || moved.UpdatedAt.Before(beta.UpdatedAt) {
		t.Fatalf("replacing beta: times %v, %v; want created %v kept", moved.CreatedAt, moved.UpdatedAt, beta.CreatedAt)
	}
	if got := getAlias(t, s, projA, "fn", "beta"); got != moved {
		t.Fatalf("GetAlias(beta) = %+v, want %+v", got, moved)
	}
	putAlias(t, s, projA, "fn", function.Alias{Name: "alpha", Version: 3})
	// Project and function in the argument are ignored: the path names them.
	putAlias(t, s, projA, "fn", function.Alias{Project: projB, Function: "other", Name: "zulu-9", Version: 2})
	if got, want := listAliases(t, s, projA, "fn"), []string{"alpha=3", "beta=2+3@25%", "live=3", "zulu-9=2"}; !slices.Equal(got, want) {
		t.Fatalf("ListAliases = %v, want %v", got, want)
	}
	// Other aliases are not the function's serving state.
	after, err := s.GetFunction(ctx, projA, "fn")
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Fatalf("putting other aliases changed the function: %+v, was %+v", after, before)
	}
	// The live alias can be put too: it is what serves.
	live, created := putAlias(t, s, projA, "fn", function.Alias{Name: function.LiveAlias, Version: 2, CanaryVersion: 3, CanaryWeight: 5})
	if created {
		t.Fatal("putting live reported it created")
	}
	wantLive(t, s, projA, "fn", "live=2+3@5%")
	if f, _ := s.GetFunction(ctx, projA, "fn"); !f.UpdatedAt.Equal(live.UpdatedAt) {
		t.Fatalf("function UpdatedAt %v after moving live at %v", f.UpdatedAt, live.UpdatedAt)
	}
}

func testAliasesNotFound(t *testing.T, s store.Store) {
	ctx := context.Background()
	put(t, s, projA, "fn", spec(1))
	_, err := s.GetAlias(ctx, projA, "nope", function.LiveAlias)
	if !errors.Is(err, store.ErrNotFound) || errors.Is(err, function.ErrAliasNotFound) {
		t.Fatalf("GetAlias of a missing function: %v, want ErrNotFound only", err)
	}
	_, err = s.GetAlias(ctx, projA, "fn", "beta")
	if !errors.Is(err, function.ErrAliasNotFound) || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetAlias of a missing alias: %v, want ErrAliasNotFound only", err)
	}
	if ae, ok := errors.AsType[*function.AliasNotFoundError](err); !ok || ae.Function != "fn" || ae.Alias != "beta" {
		t.Fatalf("GetAlias of a missing alias: %v, want an AliasNotFoundError naming fn and beta", err)
	}
	if _, err := s.ListAliases(ctx, projA, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ListAliases of a missing function: %v, want ErrNotFound", err)
	}
	if _, _, err := s.PutAlias(ctx, projA, "nope", function.Alias{Name: "beta", Version: 1}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("PutAlias on a missing function: %v, want ErrNotFound", err)
	}
	for _, tc := range []struct {
		name    string
		alias   function.Alias
		missing int
	}{
		{"version", function.Alias{Name: "beta", Version: 2}, 2},
		{"canary version", function.Alias{Name: "beta", Version: 1, CanaryVersion: 9, CanaryWeight: 10}, 9},
		{"live's version", function.Alias{Name: function.LiveAlias, Version: 4}, 4},
	} {
		_, _, err := s.PutAlias(ctx, projA, "fn", tc.alias)
		ve, ok := errors.AsType[*function.VersionNotFoundError](err)
		if !ok || !errors.Is(err, function.ErrVersionNotFound) || ve.Version != tc.missing || ve.Function != "fn" {
			t.Fatalf("PutAlias naming a missing %s: %v, want a VersionNotFoundError for %d", tc.name, err, tc.missing)
		}
	}
	if _, err := s.UpdateAlias(ctx, projA, "fn", "beta", func(*function.Alias) error { return nil }); !errors.Is(err, function.ErrAliasNotFound) {
		t.Fatalf("UpdateAlias of a missing alias: %v, want ErrAliasNotFound", err)
	}
	if _, err := s.UpdateAlias(ctx, projA, "nope", function.LiveAlias, func(*function.Alias) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdateAlias on a missing function: %v, want ErrNotFound", err)
	}
	if err := s.DeleteAlias(ctx, projA, "fn", "beta"); !errors.Is(err, function.ErrAliasNotFound) {
		t.Fatalf("DeleteAlias of a missing alias: %v, want ErrAliasNotFound", err)
	}
	if err := s.DeleteAlias(ctx, projA, "nope", "beta"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DeleteAlias on a missing function: %v, want ErrNotFound", err)
	}
	if got := listAliases(t, s, projA, "fn"); !slices.Equal(got, []string{"live=1"}) {
		t.Fatalf("failed calls left aliases: %v", got)
	}
}

func testAliasesInvalid(t *testing.T, s store.Store) {
	ctx := context.Background()
	put(t, s, projA, "fn", spec(1))
	put(t, s, projA, "fn", spec(2))
	for _, a := range []function.Alias{
		{Name: "3", Version: 1},
		{Name: "Beta", Version: 1},
		{Name: "beta", Version: 0},
		{Name: "beta", Version: 1, CanaryVersion: 1, CanaryWeight: 10},
		{Name: "beta", Version: 1, CanaryVersion: 2},
		{Name: "beta", Version: 1, CanaryVersion: 2, CanaryWeight: 100},
		{Name: "beta", Version: 1, CanaryWeight: 10},
	} {
		if _, _, err := s.PutAlias(ctx, projA, "fn", a); !errors.Is(err, function.ErrInvalid) {
			t.Errorf("PutAlias(%+v): %v, want ErrInvalid", a, err)
		}
	}
	if got := listAliases(t, s, projA, "fn"); !slices.Equal(got, []string{"live=2"}) {
		t.Fatalf("invalid aliases were stored: %v", got)
	}
}

func testDeleteAlias(t *testing.T, s store.Store) {
	ctx := context.Background()
	put(t, s, projA, "fn", spec(1))
	putAlias(t, s, projA, "fn", function.Alias{Name: "beta", Version: 1})
	if err := s.DeleteAlias(ctx, projA, "fn", "beta"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetAlias(ctx, projA, "fn", "beta"); !errors.Is(err, function.ErrAliasNotFound) {
		t.Fatalf("GetAlias after delete: %v, want ErrAliasNotFound", err)
	}
	err := s.DeleteAlias(ctx, projA, "fn", function.LiveAlias)
	if !errors.Is(err, store.ErrDeleteLive) || !errors.Is(err, function.ErrInvalid) {
		t.Fatalf("DeleteAlias(live): %v, want ErrDeleteLive", err)
	}
	wantLive(t, s, projA, "fn", "live=1")
	// A deleted alias can be made again.
	if _, created := putAlias(t, s, projA, "fn", function.Alias{Name: "beta", Version: 1}); !created {
		t.Fatal("putting a deleted alias again did not create it")
	}
}

func testAliasesDeletedWithFunction(t *testing.T, s store.Store) {
	ctx := context.Background()
	put(t, s, projA, "fn", spec(1))
	put(t, s, projA, "fn", spec(2))
	putAlias(t, s, projA, "fn", function.Alias{Name: "beta", Version: 1, CanaryVersion: 2, CanaryWeight: 50})
	if _, err := s.PutCanary(ctx, projA, "fn", spec(3), 10); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteFunction(ctx, projA, "fn"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetAlias(ctx, projA, "fn", "beta"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetAlias after deleting the function: %v, want ErrNotFound", err)
	}
	put(t, s, projA, "fn", spec(9))
	if got := listAliases(t, s, projA, "fn"); !slices.Equal(got, []string{"live=1"}) {
		t.Fatalf("re-created function has aliases %v, want only live=1", got)
	}
}

func testAliasesProjects(t *testing.T, s store.Store) {
	ctx := context.Background()
	put(t, s, projA, "fn", spec(1))
	put(t, s, projB, "fn", spec(1))
	put(t, s, projB, "fn", spec(2))
	putAlias(t, s, projA, "fn", function.Alias{Name: "beta", Version: 1})
	if _, err := s.GetAlias(ctx, projB, "fn", "beta"); !errors.Is(err, function.ErrAliasNotFound) {
		t.Fatalf("project B sees A's alias: %v", err)
	}
	// Project A has no version 2: B's doesn't count.
	if _, _, err := s.PutAlias(ctx, projA, "fn", function.Alias{Name: "beta", Version: 2}); !errors.Is(err, function.ErrVersionNotFound) {
		t.Fatalf("PutAlias naming another project's version: %v, want ErrVersionNotFound", err)
	}
	if err := s.DeleteAlias(ctx, projB, "fn", "beta"); !errors.Is(err, function.ErrAliasNotFound) {
		t.Fatalf("DeleteAlias in project B: %v", err)
	}
	wantLive(t, s, projA, "fn", "live=1")
	wantLive(t, s, projB, "fn", "live=2")
}

// testPutCanary walks a canary deploy's life: a changed spec becomes live's
// canary, the same spec again changes nothing, a plain deploy of either
// version's spec makes it serve alone, and a plain deploy of a new spec
// replaces both.
func testPutCanary(t *testing.T, s store.Store) {
	ctx := context.Background()
	put(t, s, projA, "fn", spec(1))
	canary := func(sp function.Spec, weight int) store.PutResult {
		t.Helper()
		res, err := s.PutCanary(ctx, projA, "fn", sp, weight)
		if err != nil {
			t.Fatalf("PutCanary: %v", err)
		}
		return res
	}
	steps := []struct {
		name    string
		do      func() store.PutResult
		action  string
		version int    // the version with the spec
		live    string // live after
	}{
		{"a new spec is the canary", func() store.PutResult { return canary(spec(2), 10) }, "updated", 2, "live=1+2@10%"},
		{"the same spec again changes nothing, weight included", func() store.PutResult { return canary(spec(2), 30) }, "unchanged", 2, "live=1+2@10%"},
		{"another spec replaces the canary", func() store.PutResult { return canary(spec(3), 20) }, "updated", 3, "live=1+3@20%"},
		{"a plain deploy of the canary's spec promotes it", func() store.PutResult { return put(t, s, projA, "fn", spec(3)) }, "updated", 3, "live=3"},
		{"then it is unchanged", func() store.PutResult { return put(t, s, projA, "fn", spec(3)) }, "unchanged", 3, "live=3"},
		{"a canary again", func() store.PutResult { return canary(spec(4), 50) }, "updated", 4, "live=3+4@50%"},
		{"a plain deploy of the stable spec drops the canary", func() store.PutResult { return put(t, s, projA, "fn", spec(3)) }, "updated", 3, "live=3"},
		{"and a canary once more", func() store.PutResult { return canary(spec(5), 1) }, "updated", 5, "live=3+5@1%"},
		{"a plain deploy of a new spec replaces both", func() store.PutResult { return put(t, s, projA, "fn", spec(6)) }, "updated", 6, "live=6"},
		{"a canary deploy of the serving spec changes nothing", func() store.PutResult { return canary(spec(6), 10) }, "unchanged", 6, "live=6"},
	}
	for _, st := range steps {
		res := st.do()
		if res.Action != st.action || res.Version.Number != st.version || liveOf(res.Function) != st.live {
			t.Fatalf("%s: action %q, version %d, %s; want %q, %d, %s", st.name, res.Action, res.Version.Number, liveOf(res.Function), st.action, st.version, st.live)
		}
		if !res.Version.Spec.Equal(new(spec(st.version))) || res.Version.Function != "fn" || res.Version.Project != projA {
			t.Fatalf("%s: result version %+v does not have spec %d", st.name, res.Version, st.version)
		}
		wantUTC(t, st.name+": version CreatedAt", res.Version.CreatedAt)
		wantLive(t, s, projA, "fn", st.live)
	}
	vs, err := s.ListVersions(ctx, projA, "fn")
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 6 {
		t.Fatalf("%d versions, want 6: promoting and dropping canaries make none", len(vs))
	}
}

func testPutCanaryCreates(t *testing.T, s store.Store) {
	res, err := s.PutCanary(context.Background(), projA, "fresh", spec(1), 10)
	if err != nil {
		t.Fatal(err)
	}
	if res.Action != "created" || liveOf(res.Function) != "live=1" {
		t.Fatalf("PutCanary of a new function: %q %s, want created live=1 (nothing to split with)", res.Action, liveOf(res.Function))
	}
	wantLive(t, s, projA, "fresh", "live=1")
}

func testPutCanaryBadWeight(t *testing.T, s store.Store) {
	ctx := context.Background()
	put(t, s, projA, "fn", spec(1))
	for _, w := range []int{0, -1, 100, 250} {
		if _, err := s.PutCanary(ctx, projA, "fn", spec(2), w); !errors.Is(err, function.ErrInvalid) {
			t.Errorf("PutCanary weight %d: %v, want ErrInvalid", w, err)
		}
	}
	if vs, err := s.ListVersions(ctx, projA, "fn"); err != nil || len(vs) != 1 {
		t.Fatalf("refused canaries made versions: %d, %v", len(vs), err)
	}
}

// testPutConcurrentCanaries: concurrent canary deploys number their
// versions apart, and live ends with the stable version and one canary.
func testPutConcurrentCanaries(t *testing.T, s store.Store) {
	ctx := context.Background()
	put(t, s, projA, "busy", spec(0))
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	got := make([]int, n)
	for i := range n {
		wg.Go(func() {
			var res store.PutResult
			res, errs[i] = s.PutCanary(ctx, projA, "busy", spec(i+1), 10)
			got[i] = res.Version.Number
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("PutCanary %d: %v", i, err)
		}
	}
	slices.Sort(got)
	if want := []int{2, 3, 4, 5, 6, 7}; !slices.Equal(got, want) {
		t.Fatalf("versions = %v, want %v", got, want)
	}
	fn, err := s.GetFunction(ctx, projA, "busy")
	if err != nil {
		t.Fatal(err)
	}
	if fn.Version != 1 || fn.CanaryVersion != 7 || fn.CanaryWeight != 10 {
		t.Fatalf("live = %s, want live=1+7@10%% (the last written)", liveOf(fn))
	}

	// The same spec from many deploys at once: one makes the canary, the
	// others find it (each reads live after the one before wrote it).
	put(t, s, projA, "same", spec(0))
	actions := make([]string, n)
	for i := range n {
		wg.Go(func() {
			var res store.PutResult
			res, errs[i] = s.PutCanary(ctx, projA, "same", spec(1), 10)
			actions[i] = res.Action
		})
	}
	wg.Wait()
	updated := 0
	for i, err := range errs {
		if err != nil {
			t.Fatalf("PutCanary %d: %v", i, err)
		}
		if actions[i] == "updated" {
			updated++
		}
	}
	if updated != 1 {
		t.Fatalf("%d of %d identical canary deploys made a version, want 1", updated, n)
	}
	wantLive(t, s, projA, "same", "live=1+2@10%")
}

func testSetServingClearsCanary(t *testing.T, s store.Store) {
	ctx := context.Background()
	put(t, s, projA, "fn", spec(1))
	put(t, s, projA, "fn", spec(2))
	if _, err := s.PutCanary(ctx, projA, "fn", spec(3), 40); err != nil {
		t.Fatal(err)
	}
	fn, err := s.SetServing(ctx, projA, "fn", 1)
	if err != nil {
		t.Fatal(err)
	}
	if liveOf(fn) != "live=1" {
		t.Fatalf("SetServing(1) returned %s, want live=1", liveOf(fn))
	}
	wantLive(t, s, projA, "fn", "live=1")
	// A failed SetServing leaves live as it was.
	if _, err := s.SetServing(ctx, projA, "fn", 0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SetServing(0): %v, want ErrNotFound", err)
	}
	wantLive(t, s, projA, "fn", "live=1")
}

func testUpdateAlias(t *testing.T, s store.Store) {
	ctx := context.Background()
	for i := 1; i <= 3; i++ {
		put(t, s, projA, "fn", spec(i))
	}
	beta, _ := putAlias(t, s, projA, "fn", function.Alias{Name: "beta", Version: 1, CanaryVersion: 2, CanaryWeight: 30})
	// A promote: the canary becomes the version.
	promoted, err := s.UpdateAlias(ctx, projA, "fn", "beta", func(a *function.Alias) error {
		a.Version, a.CanaryVersion, a.CanaryWeight = a.CanaryVersion, 0, 0
		a.Name, a.Function, a.Project = "renamed", "other", projB // ignored
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if pointsAt(promoted) != "beta=2" || promoted.Project != projA || promoted.Function != "fn" || !promoted.CreatedAt.Equal(beta.CreatedAt) {
		t.Fatalf("UpdateAlias = %+v, want beta=2 with its identity and creation", promoted)
	}
	if got := getAlias(t, s, projA, "fn", "beta"); got != promoted {
		t.Fatalf("GetAlias = %+v, want %+v", got, promoted)
	}
	if _, err := s.GetAlias(ctx, projA, "fn", "renamed"); !errors.Is(err, function.ErrAliasNotFound) {
		t.Fatalf("UpdateAlias renamed the alias: %v", err)
	}
	// A change that errs writes nothing and returns the error.
	errNo := errors.New("no canary to promote")
	if _, err := s.UpdateAlias(ctx, projA, "fn", "beta", func(a *function.Alias) error {
		a.Version = 3
		return errNo
	}); !errors.Is(err, errNo) {
		t.Fatalf("UpdateAlias with a failing change: %v, want its error", err)
	}
	if _, err := s.UpdateAlias(ctx, projA, "fn", "beta", func(a *function.Alias) error {
		a.CanaryVersion = 2 // the version itself
		a.CanaryWeight = 5
		return nil
	}); !errors.Is(err, function.ErrInvalid) {
		t.Fatalf("UpdateAlias to an invalid alias: %v, want ErrInvalid", err)
	}
	if _, err := s.UpdateAlias(ctx, projA, "fn", "beta", func(a *function.Alias) error {
		a.Version = 8
		return nil
	}); !errors.Is(err, function.ErrVersionNotFound) {
		t.Fatalf("UpdateAlias to a missing version: %v, want ErrVersionNotFound", err)
	}
	if got := getAlias(t, s, projA, "fn", "beta"); got != promoted {
		t.Fatalf("failed updates changed beta: %+v, want %+v", got, promoted)
	}
	// A change that changes nothing writes nothing.
	same, err := s.UpdateAlias(ctx, projA, "fn", "beta", func(*function.Alias) error { return nil })
	if err != nil || same != promoted {
		t.Fatalf("UpdateAlias with no change = %+v, %v; want %+v", same, err, promoted)
	}
	// Moving live moves the function.
	before, _ := s.GetFunction(ctx, projA, "fn")
	time.Sleep(2 * time.Millisecond)
	live, err := s.UpdateAlias(ctx, projA, "fn", function.LiveAlias, func(a *function.Alias) error {
		a.Version, a.CanaryVersion, a.CanaryWeight = 1, 3, 15
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantLive(t, s, projA, "fn", "live=1+3@15%")
	after, _ := s.GetFunction(ctx, projA, "fn")
	if !after.UpdatedAt.After(before.UpdatedAt) || !after.UpdatedAt.Equal(live.UpdatedAt) {
		t.Fatalf("moving live: function UpdatedAt %v (was %v), alias %v", after.UpdatedAt, before.UpdatedAt, live.UpdatedAt)
	}
}

// testUpdateAliasConcurrent: read-modify-writes of one alias take turns,
// so none is lost.
func testUpdateAliasConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	put(t, s, projA, "fn", spec(1))
	put(t, s, projA, "fn", spec(2))
	putAlias(t, s, projA, "fn", function.Alias{Name: "beta", Version: 1, CanaryVersion: 2, CanaryWeight: 1})
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = s.UpdateAlias(ctx, projA, "fn", "beta", func(a *function.Alias) error {
				a.CanaryWeight++
				return nil
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("UpdateAlias %d: %v", i, err)
		}
	}
	if got := getAlias(t, s, projA, "fn", "beta"); got.CanaryWeight != 1+n {
		t.Fatalf("weight after %d concurrent increments = %d, want %d", n, got.CanaryWeight, 1+n)
	}
}
