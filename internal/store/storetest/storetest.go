// Package storetest is the one conformance suite of store.Store: every
// implementation runs Run from its own tests, so SQLite and PostgreSQL behave
// alike.
//
// Package storetest must never import an implementation: they import it.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
)

// Run runs the suite. Every call of open must return a fresh, empty store;
// open arranges its closing and cleanup with t.Cleanup.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, s store.Store)
	}{
		{"Ping", testPing},
		{"PutFunction/created", testPutCreated},
		{"PutFunction/unchanged", testPutUnchanged},
		{"PutFunction/updated", testPutUpdated},
		{"PutFunction/env", testPutEnv},
		{"PutFunction/concurrent-updates", testPutConcurrentUpdates},
		{"PutFunction/concurrent-create", testPutConcurrentCreate},
		{"GetFunction/not-found", testGetFunctionNotFound},
		{"ListFunctions", testListFunctions},
		{"GetVersion", testGetVersion},
		{"ListVersions", testListVersions},
		{"SetServing", testSetServing},
		{"SetServing/not-found", testSetServingNotFound},
		{"DeleteFunction", testDeleteFunction},
		{"DeleteFunction/not-found", testDeleteNotFound},
		{"DeleteFunction/recreate-starts-at-1", testDeleteRecreate},
		{"Projects/functions", testProjectFunctions},
		{"Projects/invocations", testProjectInvocations},
		{"InsertInvocations/round-trip", testInvocationRoundTrip},
		{"InsertInvocations/empty", testInsertEmpty},
		{"InsertInvocations/duplicate-ignored", testInsertDuplicate},
		{"ListInvocations/order", testListInvocationsOrder},
		{"ListInvocations/function", testListInvocationsFunction},
		{"ListInvocations/before", testListInvocationsBefore},
		{"ListInvocations/limit", testListInvocationsLimit},
		{"UsageSince", testUsageSince},
		{"GetInvocation/not-found", testGetInvocationNotFound},
		{"Settings", testSettings},
		{"Async/round-trip", testAsyncRoundTrip},
		{"Async/rank", testAsyncRank},
	}
	tests = append(tests, logTests...)
	tests = append(tests, aliasTests...)
	tests = append(tests, authTests...)
	tests = append(tests, identityTests...)
	tests = append(tests, docdbTests...)
	tests = append(tests, objectTests...)
	tests = append(tests, secretTests...)
	tests = append(tests, usageTests...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, open(t))
		})
	}
}

const (
	projA = "alpha"
	projB = "beta"
)

// base is the time test invocations start from; whole microseconds, since
// stores keep no more.
var base = time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)

func spec(n int) function.Spec {
	s := function.Spec{
		Runtime:  function.RuntimeWasm,
		Code:     fmt.Sprintf("sha256:%064x", n),
		MemoryMB: function.DefaultMemoryMB,
		Timeout:  function.Duration(function.DefaultTimeout),
	}
	return s
}

func put(t *testing.T, s store.Store, project, name string, sp function.Spec) store.PutResult {
	t.Helper()
	res, err := s.PutFunction(context.Background(), project, name, sp)
	if err != nil {
		t.Fatalf("PutFunction(%s, %s): %v", project, name, err)
	}
	return res
}

func wantAction(t *testing.T, res store.PutResult, action string, version int) {
	t.Helper()
	if res.Action != action || res.Function.Version != version || res.Version.Number != version {
		t.Fatalf("PutFunction = action %q, function version %d, version %d; want %q, %d",
			res.Action, res.Function.Version, res.Version.Number, action, version)
	}
}

func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("%s: err = %v, want ErrNotFound", what, err)
	}
}

func wantUTC(t *testing.T, what string, ts time.Time) {
	t.Helper()
	if ts.IsZero() || ts.Location() != time.UTC {
		t.Fatalf("%s = %v, want a non-zero UTC time", what, ts)
	}
}

func testPing(t *testing.T, s store.Store) {
	if err := s.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func testPutCreated(t *testing.T, s store.Store) {
	ctx := context.Background()
	before := time.Now().Add(-time.Second)
	res := put(t, s, projA, "hello", spec(1))
	wantAction(t, res, "created", 1)
	if res.Function.Project != projA || res.Function.Name != "hello" {
		t.Fatalf("function = %+v", res.Function)
	}
	if res.Version.Project != projA || res.Version.Function != "hello" || !res.Version.Spec.Equal(new(spec(1))) {
		t.Fatalf("version = %+v", res.Version)
	}
	wantUTC(t, "CreatedAt", res.Function.CreatedAt)
	wantUTC(t, "Version.CreatedAt", res.Version.CreatedAt)
	if res.Function.CreatedAt.Before(before) || !res.Function.UpdatedAt.Equal(res.Function.CreatedAt) {
		t.Fatalf("times = %v, %v", res.Function.CreatedAt, res.Function.UpdatedAt)
	}
	got, err := s.GetFunction(ctx, projA, "hello")
	if err != nil {
		t.Fatal(err)
	}
	if got != res.Function {
		t.Fatalf("GetFunction = %+v, want %+v", got, res.Function)
	}
	wantUTC(t, "GetFunction.CreatedAt", got.CreatedAt)
	v, err := s.GetVersion(ctx, projA, "hello", 1)
	if err != nil {
		t.Fatal(err)
	}
	if !v.CreatedAt.Equal(res.Version.CreatedAt) || !v.Spec.Equal(new(spec(1))) || v.Project != res.Version.Project || v.Function != res.Version.Function || v.Number != res.Version.Number {
		t.Fatalf("GetVersion = %+v, want %+v", v, res.Version)
	}
}

func testPutUnchanged(t *testing.T, s store.Store) {
	ctx := context.Background()
	first := put(t, s, projA, "hello", spec(1))
	res := put(t, s, projA, "hello", spec(1))
	wantAction(t, res, "unchanged", 1)
	if res.Function != first.Function || !res.Version.CreatedAt.Equal(first.Version.CreatedAt) {
		t.Fatalf("unchanged put returned %+v, want %+v", res, first)
	}
	vs, err := s.ListVersions(ctx, projA, "hello")
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 {
		t.Fatalf("%d versions after an unchanged put, want 1", len(vs))
	}
}

func testPutUpdated(t *testing.T, s store.Store) {
	ctx := context.Background()
	first := put(t, s, projA, "hello", spec(1))
	for i, tc := range []struct {
		spec    function.Spec
		action  string
		version int
	}{
		{spec(2), "updated", 2},
		{spec(2), "unchanged", 2},
		{spec(3), "updated", 3},
		// Going back to an old spec makes a new version: versions are
		// immutable history, not a set of specs.
		{spec(1), "updated", 4},
	} {
		res := put(t, s, projA, "hello", tc.spec)
		wantAction(t, res, tc.action, tc.version)
		if !res.Function.CreatedAt.Equal(first.Function.CreatedAt) {
			t.Fatalf("step %d: CreatedAt changed", i)
		}
		got, err := s.GetFunction(ctx, projA, "hello")
		if err != nil {
			t.Fatal(err)
		}
		if got != res.Function {
			t.Fatalf("step %d: GetFunction = %+v, want %+v", i, got, res.Function)
		}
	}
	// Memory, timeout and contract changes are spec changes too.
	sp := spec(1)
	sp.MemoryMB = 256
	wantAction(t, put(t, s, projA, "hello", sp), "updated", 5)
	sp.Timeout = function.Duration(time.Minute)
	wantAction(t, put(t, s, projA, "hello", sp), "updated", 6)
	sp.Contract = function.ContractSDK
	wantAction(t, put(t, s, projA, "hello", sp), "updated", 7)
	v, err := s.GetVersion(ctx, projA, "hello", 7)
	if err != nil {
		t.Fatal(err)
	}
	if v.Spec.MemoryMB != 256 || v.Spec.Timeout != function.Duration(time.Minute) || v.Spec.Contract != function.ContractSDK {
		t.Fatalf("version 7 spec = %+v", v.Spec)
	}
}

func testPutEnv(t *testing.T, s store.Store) {
	ctx := context.Background()
	withEnv := func(env map[string]string) function.Spec {
		sp := spec(1)
		sp.Env = env
		return sp
	}
	steps := []struct {
		name    string
		env     map[string]string
		action  string
		version int
	}{
		{"create", map[string]string{"A": "1", "B": "2"}, "created", 1},
		{"same map", map[string]string{"B": "2", "A": "1"}, "unchanged", 1},
		{"changed value", map[string]string{"A": "1", "B": "3"}, "updated", 2},
		{"added key", map[string]string{"A": "1", "B": "3", "C": ""}, "updated", 3},
		{"removed key", map[string]string{"A": "1", "B": "3"}, "updated", 4},
		{"no env", nil, "updated", 5},
		{"empty env equals none", map[string]string{}, "unchanged", 5},
	}
	for _, st := range steps {
		res := put(t, s, projA, "env", withEnv(st.env))
		if res.Action != st.action || res.Function.Version != st.version {
			t.Fatalf("%s: action %q version %d, want %q %d", st.name, res.Action, res.Function.Version, st.action, st.version)
		}
	}
	v, err := s.GetVersion(ctx, projA, "env", 3)
	if err != nil {
		t.Fatal(err)
	}
	if want := withEnv(map[string]string{"A": "1", "B": "3", "C": ""}); !v.Spec.Equal(&want) || len(v.Spec.Env) != 3 {
		t.Fatalf("version 3 env = %v", v.Spec.Env)
	}
}

func testPutConcurrentUpdates(t *testing.T, s store.Store) {
	ctx := context.Background()
	put(t, s, projA, "busy", spec(0))
	const n = 8
	var wg sync.WaitGroup
	results := make([]store.PutResult, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			results[i], errs[i] = s.PutFunction(ctx, projA, "busy", spec(i+1))
		})
	}
	wg.Wait()
	var got []int
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("PutFunction %d: %v", i, errs[i])
		}
		if results[i].Action != "updated" {
			t.Fatalf("PutFunction %d: action %q, want updated", i, results[i].Action)
		}
		got = append(got, results[i].Version.Number)
	}
	slices.Sort(got)
	if want := []int{2, 3, 4, 5, 6, 7, 8, 9}; !slices.Equal(got, want) {
		t.Fatalf("versions = %v, want %v", got, want)
	}
	vs, err := s.ListVersions(ctx, projA, "busy")
	if err != nil {
		t.Fatal(err)
	}
	var listed []int
	for _, v := range vs {
		listed = append(listed, v.Number)
	}
	if want := []int{9, 8, 7, 6, 5, 4, 3, 2, 1}; !slices.Equal(listed, want) {
		t.Fatalf("ListVersions = %v, want %v", listed, want)
	}
	fn, err := s.GetFunction(ctx, projA, "busy")
	if err != nil {
		t.Fatal(err)
	}
	if fn.Version != 9 {
		t.Fatalf("serving version %d, want 9 (the last written)", fn.Version)
	}
}

func testPutConcurrentCreate(t *testing.T, s store.Store) {
	ctx := context.Background()
	const n = 8
	var wg sync.WaitGroup
	actions := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			var res store.PutResult
			res, errs[i] = s.PutFunction(ctx, projA, "fresh", spec(1))
			actions[i] = res.Action
		})
	}
	wg.Wait()
	created := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("PutFunction %d: %v", i, errs[i])
		}
		switch actions[i] {
		case "created":
			created++
		case "unchanged":
		default:
			t.Fatalf("PutFunction %d: action %q", i, actions[i])
		}
	}
	if created != 1 {
		t.Fatalf("%d calls created the function, want 1", created)
	}
	vs, err := s.ListVersions(ctx, projA, "fresh")
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 || vs[0].Number != 1 {
		t.Fatalf("ListVersions = %+v, want only version 1", vs)
	}
}

func testGetFunctionNotFound(t *testing.T, s store.Store) {
	_, err := s.GetFunction(context.Background(), projA, "nope")
	wantNotFound(t, "GetFunction", err)
}

func testListFunctions(t *testing.T, s store.Store) {
	ctx := context.Background()
	fns, err := s.ListFunctions(ctx, projA)
	if err != nil {
		t.Fatal(err)
	}
	if len(fns) != 0 {
		t.Fatalf("empty store lists %d functions", len(fns))
	}
	for _, name := range []string{"zeta", "alpha", "mid"} {
		put(t, s, projA, name, spec(1))
	}
	put(t, s, projA, "mid", spec(2))
	put(t, s, projB, "other", spec(1))
	fns, err = s.ListFunctions(ctx, projA)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, fn := range fns {
		got = append(got, fmt.Sprintf("%s/%s@%d", fn.Project, fn.Name, fn.Version))
		wantUTC(t, "UpdatedAt", fn.UpdatedAt)
	}
	if want := []string{"alpha/alpha@1", "alpha/mid@2", "alpha/zeta@1"}; !slices.Equal(got, want) {
		t.Fatalf("ListFunctions = %v, want %v", got, want)
	}
}

func testGetVersion(t *testing.T, s store.Store) {
	ctx := context.Background()
	sp := spec(7)
	sp.Contract = function.ContractCGI
	sp.Env = map[string]string{"GREETING": "hello, world", "EMPTY": "", "UNICODE": "héllo ✓"}
	put(t, s, projA, "v", sp)
	v, err := s.GetVersion(ctx, projA, "v", 1)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Spec.Equal(&sp) || v.Number != 1 || v.Function != "v" || v.Project != projA {
		t.Fatalf("GetVersion = %+v, want spec %+v", v, sp)
	}
	for _, tc := range []struct {
		name    string
		project string
		fn      string
		version int
	}{
		{"missing version", projA, "v", 2},
		{"version 0", projA, "v", 0},
		{"missing function", projA, "w", 1},
		{"other project", projB, "v", 1},
	} {
		_, err := s.GetVersion(ctx, tc.project, tc.fn, tc.version)
		wantNotFound(t, "GetVersion "+tc.name, err)
	}
}

func testListVersions(t *testing.T, s store.Store) {
	ctx := context.Background()
	for i := 1; i <= 3; i++ {
		put(t, s, projA, "v", spec(i))
	}
	vs, err := s.ListVersions(ctx, projA, "v")
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 3 {
		t.Fatalf("%d versions, want 3", len(vs))
	}
	for i, v := range vs {
		want := 3 - i
		if v.Number != want || !v.Spec.Equal(new(spec(want))) {
			t.Fatalf("versions[%d] = %d (%s), want %d", i, v.Number, v.Spec.Code, want)
		}
		wantUTC(t, "CreatedAt", v.CreatedAt)
	}
	vs, err = s.ListVersions(ctx, projA, "missing")
	if err != nil || len(vs) != 0 {
		t.Fatalf("ListVersions of a missing function = %v, %v; want none", vs, err)
	}
}

func testDeleteFunction(t *testing.T, s store.Store) {
	ctx := context.Background()
	put(t, s, projA, "gone", spec(1))
	put(t, s, projA, "gone", spec(2))
	put(t, s, projA, "kept", spec(1))
	rec := invocation(projA, "gone", 0, 1)
	if err := s.InsertInvocations(ctx, []function.Invocation{rec}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteFunction(ctx, projA, "gone"); err != nil {
		t.Fatal(err)
	}
	_, err := s.GetFunction(ctx, projA, "gone")
	wantNotFound(t, "GetFunction after delete", err)
	for _, n := range []int{1, 2} {
		_, err := s.GetVersion(ctx, projA, "gone", n)
		wantNotFound(t, fmt.Sprintf("GetVersion %d after delete", n), err)
	}
	if vs, err := s.ListVersions(ctx, projA, "gone"); err != nil || len(vs) != 0 {
		t.Fatalf("ListVersions after delete = %v, %v", vs, err)
	}
	if _, err := s.GetFunction(ctx, projA, "kept"); err != nil {
		t.Fatalf("another function went with it: %v", err)
	}
	// Invocation records are telemetry: they outlive the function.
	if _, err := s.GetInvocation(ctx, projA, rec.ID); err != nil {
		t.Fatalf("invocation record deleted with its function: %v", err)
	}
}

func testDeleteNotFound(t *testing.T, s store.Store) {
	ctx := context.Background()
	wantNotFound(t, "DeleteFunction", s.DeleteFunction(ctx, projA, "nope"))
	put(t, s, projB, "elsewhere", spec(1))
	wantNotFound(t, "DeleteFunction in another project", s.DeleteFunction(ctx, projA, "elsewhere"))
}

// testSetServing rolls back: an older version serves, nothing is deleted,
// and the next different deploy gets a new number after the newest.
func testSetServing(t *testing.T, s store.Store) {
	ctx := context.Background()
	put(t, s, projA, "roll", spec(1))
	put(t, s, projA, "roll", spec(2))
	fn, err := s.SetServing(ctx, projA, "roll", 1)
	if err != nil {
		t.Fatal(err)
	}
	if fn.Version != 1 {
		t.Fatalf("SetServing returned version %d, want 1", fn.Version)
	}
	if got, err := s.GetFunction(ctx, projA, "roll"); err != nil || got.Version != 1 {
		t.Fatalf("after rollback GetFunction = %+v, %v; want version 1", got, err)
	}
	if vs, err := s.ListVersions(ctx, projA, "roll"); err != nil || len(vs) != 2 {
		t.Fatalf("rollback kept %d versions (%v), want 2", len(vs), err)
	}
	// The serving version's spec decides "unchanged"; a new spec numbers on.
	wantAction(t, put(t, s, projA, "roll", spec(1)), "unchanged", 1)
	wantAction(t, put(t, s, projA, "roll", spec(2)), "updated", 3)
	if other, err := s.GetFunction(ctx, projB, "roll"); err == nil {
		t.Fatalf("project B sees %+v", other)
	}
}

func testSetServingNotFound(t *testing.T, s store.Store) {
	ctx := context.Background()
	put(t, s, projA, "present", spec(1))
	for _, tc := range []struct {
		name, project, fn string
		version           int
	}{
		{"no such version", projA, "present", 7},
		{"no such function", projA, "absent", 1},
		{"other project", projB, "present", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.SetServing(ctx, tc.project, tc.fn, tc.version); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("err = %v, want ErrNotFound", err)
			}
		})
	}
	if fn, err := s.GetFunction(ctx, projA, "present"); err != nil || fn.Version != 1 {
		t.Fatalf("a failed SetServing changed the function: %+v %v", fn, err)
	}
}

func testDeleteRecreate(t *testing.T, s store.Store) {
	ctx := context.Background()
	put(t, s, projA, "phoenix", spec(1))
	put(t, s, projA, "phoenix", spec(2))
	if err := s.DeleteFunction(ctx, projA, "phoenix"); err != nil {
		t.Fatal(err)
	}
	res := put(t, s, projA, "phoenix", spec(3))
	wantAction(t, res, "created", 1)
	vs, err := s.ListVersions(ctx, projA, "phoenix")
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 || !vs[0].Spec.Equal(new(spec(3))) {
		t.Fatalf("versions after re-creating = %+v", vs)
	}
}

func testProjectFunctions(t *testing.T, s store.Store) {
	ctx := context.Background()
	wantAction(t, put(t, s, projA, "same", spec(1)), "created", 1)
	wantAction(t, put(t, s, projB, "same", spec(1)), "created", 1)
	wantAction(t, put(t, s, projA, "same", spec(2)), "updated", 2)
	fb, err := s.GetFunction(ctx, projB, "same")
	if err != nil {
		t.Fatal(err)
	}
	if fb.Version != 1 || fb.Project != projB {
		t.Fatalf("project B function = %+v", fb)
	}
	if err := s.DeleteFunction(ctx, projB, "same"); err != nil {
		t.Fatal(err)
	}
	if fa, err := s.GetFunction(ctx, projA, "same"); err != nil || fa.Version != 2 {
		t.Fatalf("project A function after deleting B's = %+v, %v", fa, err)
	}
	if vs, err := s.ListVersions(ctx, projA, "same"); err != nil || len(vs) != 2 {
		t.Fatalf("project A versions after deleting B's = %d, %v", len(vs), err)
	}
	if fns, err := s.ListFunctions(ctx, projB); err != nil || len(fns) != 0 {
		t.Fatalf("project B functions = %v, %v", fns, err)
	}
}

// invocation makes a record of fn whose ID sorts by i, with n log lines.
func invocation(project, fn string, i, lines int) function.Invocation {
	start := base.Add(time.Duration(i) * time.Millisecond)
	r := function.Invocation{
		ID:         function.NewID(start),
		Project:    project,
		Function:   fn,
		Version:    1 + i%3,
		Trigger:    "http",
		Start:      start,
		Duration:   1500*time.Microsecond + time.Duration(i)*time.Nanosecond,
		BilledMS:   2,
		MemoryMB:   128,
		Cold:       i%2 == 0,
		Status:     function.StatusOK,
		HTTPStatus: 200,
	}
	for j := range lines {
		stream := "stdout"
		if j%2 == 1 {
			stream = "stderr"
		}
		r.Logs = append(r.Logs, function.LogLine{
			Time:   start.Add(time.Duration(j) * time.Microsecond),
			Stream: stream,
			Line:   fmt.Sprintf("%s %d line %d", fn, i, j),
		})
	}
	return r
}

func insert(t *testing.T, s store.Store, recs ...function.Invocation) {
	t.Helper()
	if err := s.InsertInvocations(context.Background(), recs); err != nil {
		t.Fatalf("InsertInvocations: %v", err)
	}
}

func ids(recs []function.Invocation) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.ID)
	}
	return out
}

func testInvocationRoundTrip(t *testing.T, s store.Store) {
	ctx := context.Background()
	want := invocation(projA, "hello", 1, 3)
	want.Status = function.StatusError
	want.Error = "function failed: exit 2"
	want.HTTPStatus = 502
	want.ResponseBytes = 4321
	want.Trigger = "api"
	want.Logs[1].Line = "unicode ✓ and\ttabs"
	want.Logs[2].Line = ""
	want.RequestID = "req-0123456789"
	insert(t, s, want, invocation(projA, "hello", 2, 0))

	got, err := s.GetInvocation(ctx, projA, want.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantUTC(t, "Start", got.Start)
	if !got.Start.Equal(want.Start) {
		t.Fatalf("Start = %v, want %v", got.Start, want.Start)
	}
	gotLogs, wantLogs := got.Logs, want.Logs
	got.Logs, want.Logs = nil, nil
	got.Start, want.Start = time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("GetInvocation = %+v\nwant %+v", got, want)
	}
	if len(gotLogs) != len(wantLogs) {
		t.Fatalf("%d log lines, want %d", len(gotLogs), len(wantLogs))
	}
	for i, l := range gotLogs {
		w := wantLogs[i]
		if l.Stream != w.Stream || l.Line != w.Line || !l.Time.Equal(w.Time) || l.Time.Location() != time.UTC {
			t.Fatalf("log %d = %+v, want %+v", i, l, w)
		}
		if l.Seq <= 0 || (i > 0 && l.Seq <= gotLogs[i-1].Seq) {
			t.Fatalf("log seqs not increasing: %+v", gotLogs)
		}
	}

	list, err := s.ListInvocations(ctx, store.InvocationFilter{Project: projA})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("listed %d, want 2", len(list))
	}
	for _, r := range list {
		if len(r.Logs) != 0 {
			t.Fatalf("ListInvocations returned logs for %s", r.ID)
		}
	}
	if list[1].Error != want.Error || list[1].Duration != want.Duration || list[1].Cold != want.Cold {
		t.Fatalf("listed record = %+v", list[1])
	}
}

func testInsertEmpty(t *testing.T, s store.Store) {
	if err := s.InsertInvocations(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
}

// testInsertDuplicate pins the documented choice: a record already stored is
// skipped with its logs, so a redelivered batch is harmless.
func testInsertDuplicate(t *testing.T, s store.Store) {
	ctx := context.Background()
	r1 := invocation(projA, "hello", 1, 2)
	insert(t, s, r1)
	r2 := invocation(projA, "hello", 2, 1)
	insert(t, s, r1, r2)
	got, err := s.GetInvocation(ctx, projA, r1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Logs) != 2 {
		t.Fatalf("duplicate insert left %d log lines, want 2", len(got.Logs))
	}
	if _, err := s.GetInvocation(ctx, projA, r2.ID); err != nil {
		t.Fatalf("the new record of a batch with a duplicate: %v", err)
	}
	if logs := listLines(t, s, store.LogFilter{Project: projA}); len(logs) != 3 {
		t.Fatalf("%d lines, want 3", len(logs))
	}
}

func testListInvocationsOrder(t *testing.T, s store.Store) {
	ctx := context.Background()
	// Insert out of order, across batches: the list is by ID regardless.
	var recs []function.Invocation
	for i := range 10 {
		recs = append(recs, invocation(projA, "hello", i, 0))
	}
	insert(t, s, recs[5], recs[1], recs[9])
	insert(t, s, recs[0], recs[2], recs[3], recs[4], recs[6], recs[7], recs[8])
	got, err := s.ListInvocations(ctx, store.InvocationFilter{Project: projA})
	if err != nil {
		t.Fatal(err)
	}
	want := ids(recs)
	slices.Reverse(want)
	if !slices.Equal(ids(got), want) {
		t.Fatalf("ListInvocations = %v, want %v", ids(got), want)
	}
}

func testListInvocationsFunction(t *testing.T, s store.Store) {
	ctx := context.Background()
	var recs []function.Invocation
	for i := range 9 {
		recs = append(recs, invocation(projA, []string{"a", "b", "c"}[i%3], i, 0))
	}
	insert(t, s, recs...)
	got, err := s.ListInvocations(ctx, store.InvocationFilter{Project: projA, Function: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{recs[7].ID, recs[4].ID, recs[1].ID}; !slices.Equal(ids(got), want) {
		t.Fatalf("ListInvocations(b) = %v, want %v", ids(got), want)
	}
	got, err = s.ListInvocations(ctx, store.InvocationFilter{Project: projA, Function: "none"})
	if err != nil || len(got) != 0 {
		t.Fatalf("ListInvocations(none) = %v, %v", got, err)
	}
}

func testListInvocationsBefore(t *testing.T, s store.Store) {
	ctx := context.Background()
	var recs []function.Invocation
	for i := range 25 {
		recs = append(recs, invocation(projA, "hello", i, 0))
	}
	insert(t, s, recs...)
	var pages [][]string
	before := ""
	for {
		page, err := s.ListInvocations(ctx, store.InvocationFilter{Project: projA, Before: before, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		pages = append(pages, ids(page))
		before = page[len(page)-1].ID
	}
	if len(pages) != 3 || len(pages[0]) != 10 || len(pages[1]) != 10 || len(pages[2]) != 5 {
		t.Fatalf("page sizes wrong: %v", pages)
	}
	want := ids(recs)
	slices.Reverse(want)
	if got := slices.Concat(pages...); !slices.Equal(got, want) {
		t.Fatalf("paged = %v, want %v", got, want)
	}
	// Before is exclusive and need not be a stored ID.
	page, err := s.ListInvocations(ctx, store.InvocationFilter{Project: projA, Before: recs[3].ID})
	if err != nil {
		t.Fatal(err)
	}
	if w := []string{recs[2].ID, recs[1].ID, recs[0].ID}; !slices.Equal(ids(page), w) {
		t.Fatalf("before %s = %v, want %v", recs[3].ID, ids(page), w)
	}
	page, err = s.ListInvocations(ctx, store.InvocationFilter{Project: projA, Before: function.NewID(base.Add(-time.Hour))})
	if err != nil || len(page) != 0 {
		t.Fatalf("before everything = %v, %v", ids(page), err)
	}
}

func testListInvocationsLimit(t *testing.T, s store.Store) {
	ctx := context.Background()
	const n = 1100
	recs := make([]function.Invocation, n)
	for i := range recs {
		recs[i] = invocation(projA, "hello", i, 0)
	}
	insert(t, s, recs[:500]...)
	insert(t, s, recs[500:]...)
	for _, tc := range []struct {
		name  string
		limit int
		want  int
	}{
		{"default", 0, 100},
		{"negative means default", -1, 100},
		{"one", 1, 1},
		{"asked", 250, 250},
		{"cap", 5000, 1000},
	} {
		got, err := s.ListInvocations(ctx, store.InvocationFilter{Project: projA, Limit: tc.limit})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != tc.want {
			t.Fatalf("%s: %d records, want %d", tc.name, len(got), tc.want)
		}
		if got[0].ID != recs[n-1].ID {
			t.Fatalf("%s: first is not the newest", tc.name)
		}
	}
}

func testGetInvocationNotFound(t *testing.T, s store.Store) {
	ctx := context.Background()
	_, err := s.GetInvocation(ctx, projA, function.NewID(base))
	wantNotFound(t, "GetInvocation", err)
	r := invocation(projB, "hello", 0, 1)
	insert(t, s, r)
	_, err = s.GetInvocation(ctx, projA, r.ID)
	wantNotFound(t, "GetInvocation of another project's record", err)
}

func testProjectInvocations(t *testing.T, s store.Store) {
	ctx := context.Background()
	insert(t, s, invocation(projA, "same", 0, 2), invocation(projB, "same", 1, 2), invocation(projB, "other", 2, 1))
	for _, tc := range []struct {
		project   string
		function  string
		recs, log int
	}{
		{projA, "", 1, 2},
		{projA, "same", 1, 2},
		{projB, "", 2, 3},
		{projB, "same", 1, 2},
		{"gamma", "", 0, 0},
	} {
		recs, err := s.ListInvocations(ctx, store.InvocationFilter{Project: tc.project, Function: tc.function})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.Project != tc.project {
				t.Fatalf("%s/%s: listed a record of %s", tc.project, tc.function, r.Project)
			}
		}
		if len(recs) != tc.recs {
			t.Fatalf("%s/%s: %d records, want %d", tc.project, tc.function, len(recs), tc.recs)
		}
		if lines := listLines(t, s, store.LogFilter{Project: tc.project, Function: tc.function}); len(lines) != tc.log {
			t.Fatalf("%s/%s: %d lines, want %d", tc.project, tc.function, len(lines), tc.log)
		}
	}
}

func testSettings(t *testing.T, s store.Store) {
	ctx := context.Background()
	_, err := s.GetSetting(ctx, "admin_key_hash")
	wantNotFound(t, "GetSetting", err)
	for _, tc := range []struct {
		name   string
		key    string
		value  string
		stored bool
	}{
		{"first", "admin_key_hash", "h1", true},
		{"again", "admin_key_hash", "h2", false},
		{"other key", "cluster_id", "c1", true},
		{"empty value", "empty", "", true},
	} {
		stored, err := s.PutSettingIfAbsent(ctx, tc.key, tc.value)
		if err != nil {
			t.Fatal(err)
		}
		if stored != tc.stored {
			t.Fatalf("%s: stored = %v, want %v", tc.name, stored, tc.stored)
		}
	}
	for key, want := range map[string]string{"admin_key_hash": "h1", "cluster_id": "c1", "empty": ""} {
		got, err := s.GetSetting(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("GetSetting(%s) = %q, want %q", key, got, want)
		}
	}
	// PutSetting replaces; a new key is created.
	for _, kv := range [][2]string{{"cluster_id", "c2"}, {"fresh", "f1"}} {
		if err := s.PutSetting(ctx, kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetSetting(ctx, kv[0]); err != nil || got != kv[1] {
			t.Fatalf("after PutSetting(%s, %s): %q %v", kv[0], kv[1], got, err)
		}
	}
}

// BenchBatch makes 256 invocation records of 2 log lines each, counting
// them in n: the batch the stores' insert benchmarks write.
func BenchBatch(n *int) []function.Invocation {
	recs := make([]function.Invocation, 256)
	t := time.Now().UTC()
	for i := range recs {
		*n++
		recs[i] = function.Invocation{
			ID: function.NewID(t), Project: function.DefaultProject, Function: "bench", Version: 1,
			Trigger: "http", Start: t, Duration: time.Millisecond, BilledMS: 1, MemoryMB: 128,
			Status: function.StatusOK, HTTPStatus: 200,
			Logs: []function.LogLine{
				{Time: t, Stream: "stdout", Line: "handling request GET /"},
				{Time: t, Stream: "stderr", Line: "done in 1ms"},
			},
		}
	}
	return recs
}

func testUsageSince(t *testing.T, s store.Store) {
	ctx := context.Background()
	base := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	mk := func(fn string, at time.Time, billed int64, mem int) function.Invocation {
		return function.Invocation{ID: function.NewID(at), Project: function.DefaultProject, Function: fn, Version: 1,
			Trigger: "http", Start: at.UTC(), BilledMS: billed, MemoryMB: mem, Status: function.StatusOK}
	}
	insert(t, s,
		mk("a", base, 1000, 1024),                         // before the window
		mk("a", base.Add(time.Hour), 100, 128),            // at its start: counted
		mk("a", base.Add(time.Hour+time.Minute), 50, 256), // counted
		mk("b", base.Add(90*time.Minute), 7, 64),          // counted
		function.Invocation{ID: function.NewID(base.Add(time.Hour + time.Second)), Project: "other", Function: "a",
			Version: 1, Trigger: "http", Start: base.Add(time.Hour).UTC(), BilledMS: 1, MemoryMB: 1, Status: function.StatusOK},
	)
	got, err := s.UsageSince(ctx, function.DefaultProject, base.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"a": 100*128 + 50*256, "b": 7 * 64}
	if len(got) != len(want) || got["a"] != want["a"] || got["b"] != want["b"] {
		t.Fatalf("UsageSince = %v, want %v", got, want)
	}
	got, err = s.UsageSince(ctx, function.DefaultProject, time.Now().Add(time.Hour))
	if err != nil || len(got) != 0 {
		t.Fatalf("usage of the future: %v %v", got, err)
	}
}
