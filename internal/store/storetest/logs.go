package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
	"github.com/hostless/hostless/internal/store/logchunk"
)

// logTests are the suite's tests of log lines: ListLogs, LogBytes and
// TrimTelemetry.
var logTests = []struct {
	name string
	run  func(t *testing.T, s store.Store)
}{
	{"ListLogs/tail", testListLogsTail},
	{"ListLogs/follow", testListLogsFollow},
	{"ListLogs/function", testListLogsFunction},
	{"ListLogs/limit", testListLogsLimit},
	{"ListLogs/older-pages", testListLogsOlderPages},
	{"ListLogs/status", testListLogsStatus},
	{"ListLogs/grep", testListLogsGrep},
	{"ListLogs/since", testListLogsSince},
	{"ListLogs/filtered-follow-moves-on", testListLogsFilteredFollow},
	{"ListLogs/bounded-scan", testListLogsBoundedScan},
	{"ListLogs/many-lines", testListLogsManyLines},
	{"TrimTelemetry/age", testTrimAge},
	{"TrimTelemetry/size", testTrimSize},
	{"TrimTelemetry/cursors-survive", testTrimCursors},
}

func listLogs(t *testing.T, s store.Store, f store.LogFilter) store.LogPage {
	t.Helper()
	p, err := s.ListLogs(context.Background(), f)
	if err != nil {
		t.Fatalf("ListLogs(%+v): %v", f, err)
	}
	return p
}

func listLines(t *testing.T, s store.Store, f store.LogFilter) []function.LogLine {
	t.Helper()
	return listLogs(t, s, f).Lines
}

// linesOf returns the lines of recs as ListLogs lists them.
func linesOf(recs ...function.Invocation) []function.LogLine {
	var all []function.LogLine
	for _, r := range recs {
		for _, l := range r.Logs {
			l.InvocationID, l.Function, l.Version = r.ID, r.Function, r.Version
			all = append(all, l)
		}
	}
	return all
}

// logFixture inserts 5 invocations of two functions, 4 lines each, in two
// batches, and returns the lines in insertion order.
func logFixture(t *testing.T, s store.Store) []function.LogLine {
	var recs []function.Invocation
	for i := range 5 {
		recs = append(recs, invocation(projA, []string{"f", "g"}[i%2], i, 4))
	}
	insert(t, s, recs[:2]...)
	insert(t, s, recs[2:]...)
	return linesOf(recs...)
}

func sameLines(t *testing.T, what string, got, want []function.LogLine) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d lines, want %d", what, len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Line != w.Line || g.Stream != w.Stream || g.InvocationID != w.InvocationID ||
			g.Function != w.Function || g.Version != w.Version || !g.Time.Equal(w.Time) || g.Time.Location() != time.UTC {
			t.Fatalf("%s: line %d = %+v, want %+v", what, i, g, w)
		}
		if g.Seq <= 0 || i > 0 && g.Seq <= got[i-1].Seq {
			t.Fatalf("%s: seqs not increasing at %d", what, i)
		}
	}
}

func testListLogsTail(t *testing.T, s store.Store) {
	all := logFixture(t, s)
	for _, tc := range []struct {
		name  string
		limit int
		want  []function.LogLine
		older bool // Prev says older lines may match
	}{
		{"all", 0, all, false},
		{"last 3", 3, all[len(all)-3:], true},
		{"more than stored", 500, all, false},
	} {
		p := listLogs(t, s, store.LogFilter{Project: projA, Limit: tc.limit})
		sameLines(t, "tail "+tc.name, p.Lines, tc.want)
		if last := p.Lines[len(p.Lines)-1].Seq; p.Next != last {
			t.Fatalf("tail %s: Next = %d, want the last line's seq %d", tc.name, p.Next, last)
		}
		if (p.Prev != 0) != tc.older {
			t.Fatalf("tail %s: Prev = %d", tc.name, p.Prev)
		}
	}
	empty := listLogs(t, s, store.LogFilter{Project: "gamma"})
	if len(empty.Lines) != 0 || empty.Prev != 0 || empty.Next <= 0 {
		t.Fatalf("tail of a project without lines = %+v; want none, no Prev and a Next to follow from", empty)
	}
}

func testListLogsFollow(t *testing.T, s store.Store) {
	// Following an empty store from its tail's Next sees the first lines.
	start := listLogs(t, s, store.LogFilter{Project: projA})
	if len(start.Lines) != 0 || start.Next <= 0 {
		t.Fatalf("tail of an empty store = %+v", start)
	}
	all := logFixture(t, s)
	got := listLogs(t, s, store.LogFilter{Project: projA, AfterSeq: start.Next})
	sameLines(t, "from the empty tail", got.Lines, all)

	tail := listLogs(t, s, store.LogFilter{Project: projA, Limit: 2})
	sameLines(t, "tail", tail.Lines, all[len(all)-2:])
	cursor := tail.Next
	got = listLogs(t, s, store.LogFilter{Project: projA, AfterSeq: cursor})
	if len(got.Lines) != 0 || got.Next != cursor || got.More {
		t.Fatalf("follow with nothing new = %+v, want no lines and Next %d", got, cursor)
	}
	more := invocation(projA, "f", 10, 3)
	insert(t, s, more)
	got = listLogs(t, s, store.LogFilter{Project: projA, AfterSeq: cursor})
	want := linesOf(more)
	sameLines(t, "follow", got.Lines, want)
	if got.Next != got.Lines[len(got.Lines)-1].Seq {
		t.Fatalf("Next = %d, want the last line's", got.Next)
	}

	// Following in pages from a cursor visits every later line once, oldest
	// first.
	all = append(all, want...)
	first := listLogs(t, s, store.LogFilter{Project: projA, Limit: 1000})
	sameLines(t, "everything", first.Lines, all)
	var paged []function.LogLine
	after := first.Lines[0].Seq
	for {
		page := listLogs(t, s, store.LogFilter{Project: projA, AfterSeq: after, Limit: 7})
		if len(page.Lines) > 7 {
			t.Fatalf("page of %d lines, limit 7", len(page.Lines))
		}
		paged = append(paged, page.Lines...)
		if page.Next < after {
			t.Fatalf("Next went back from %d to %d", after, page.Next)
		}
		after = page.Next
		if !page.More {
			break
		}
	}
	sameLines(t, "paged follow", paged, all[1:])
}

func testListLogsFunction(t *testing.T, s store.Store) {
	all := logFixture(t, s)
	var wantG []function.LogLine
	for _, l := range all {
		if l.Function == "g" {
			wantG = append(wantG, l)
		}
	}
	sameLines(t, "function g", listLines(t, s, store.LogFilter{Project: projA, Function: "g"}), wantG)
	got := listLines(t, s, store.LogFilter{Project: projA, Function: "g", Limit: 3})
	sameLines(t, "tail of g", got, wantG[len(wantG)-3:])
	got = listLines(t, s, store.LogFilter{Project: projA, Function: "g", AfterSeq: got[0].Seq})
	sameLines(t, "follow g", got, wantG[len(wantG)-2:])
	if got := listLines(t, s, store.LogFilter{Project: projA, Function: "none"}); len(got) != 0 {
		t.Fatalf("lines of a function that logged nothing: %+v", got)
	}
}

func testListLogsLimit(t *testing.T, s store.Store) {
	recs := make([]function.Invocation, 120)
	for i := range recs {
		recs[i] = invocation(projA, "chatty", i, 10) // 1200 lines
	}
	insert(t, s, recs...)
	all := linesOf(recs...)
	for _, tc := range []struct {
		name     string
		afterSeq int64
		limit    int
		want     []function.LogLine
	}{
		{"tail default", 0, 0, all[len(all)-100:]},
		{"tail cap", 0, 5000, all[len(all)-1000:]},
		{"follow default", 1, 0, all[:100]},
		{"follow cap", 1, 5000, all[:1000]},
	} {
		sameLines(t, tc.name, listLines(t, s, store.LogFilter{Project: projA, AfterSeq: tc.afterSeq, Limit: tc.limit}), tc.want)
	}
}

func testListLogsOlderPages(t *testing.T, s store.Store) {
	all := logFixture(t, s)
	var paged []function.LogLine
	p := listLogs(t, s, store.LogFilter{Project: projA, Limit: 3})
	for pages := 1; ; pages++ {
		if len(p.Lines) > 3 || pages > 10 {
			t.Fatalf("page %d: %d lines", pages, len(p.Lines))
		}
		paged = append(slices.Clone(p.Lines), paged...)
		if p.Prev == 0 {
			break
		}
		p = listLogs(t, s, store.LogFilter{Project: projA, BeforeSeq: p.Prev, Limit: 3})
	}
	sameLines(t, "older pages", paged, all)
	// BeforeSeq is exclusive, and pages within one invocation's lines too.
	got := listLines(t, s, store.LogFilter{Project: projA, BeforeSeq: paged[6].Seq, Limit: 2})
	sameLines(t, "before line 6", got, all[4:6])
	if got := listLogs(t, s, store.LogFilter{Project: projA, BeforeSeq: paged[0].Seq}); len(got.Lines) != 0 || got.Prev != 0 {
		t.Fatalf("before the first line = %+v", got)
	}
}

func testListLogsStatus(t *testing.T, s store.Store) {
	var recs []function.Invocation
	statuses := []string{function.StatusOK, function.StatusError, function.StatusOK, function.StatusTimeout, function.StatusOOM, function.StatusOK}
	for i, st := range statuses {
		r := invocation(projA, []string{"f", "g"}[i%2], i, 2)
		r.Status = st
		recs = append(recs, r)
	}
	insert(t, s, recs...)
	pick := func(keep ...int) []function.LogLine {
		var out []function.Invocation
		for _, i := range keep {
			out = append(out, recs[i])
		}
		return linesOf(out...)
	}
	failed := []string{function.StatusError, function.StatusTimeout, function.StatusOOM, function.StatusThrottled}
	for _, tc := range []struct {
		name     string
		function string
		statuses []string
		want     []function.LogLine
	}{
		{"failed", "", failed, pick(1, 3, 4)},
		{"ok", "", []string{function.StatusOK}, pick(0, 2, 5)},
		{"timeout", "", []string{function.StatusTimeout}, pick(3)},
		{"ok or oom", "", []string{function.StatusOK, function.StatusOOM}, pick(0, 2, 4, 5)},
		{"failed of g", "g", failed, pick(1, 3)},
		{"throttled", "", []string{function.StatusThrottled}, nil},
	} {
		sameLines(t, tc.name, listLines(t, s, store.LogFilter{Project: projA, Function: tc.function, Statuses: tc.statuses}), tc.want)
		// Forward from the start, too.
		sameLines(t, tc.name+" forward", listLines(t, s, store.LogFilter{Project: projA, Function: tc.function, Statuses: tc.statuses, AfterSeq: 1}), tc.want)
	}
}

func testListLogsGrep(t *testing.T, s store.Store) {
	r := invocation(projA, "f", 1, 0)
	for i, line := range []string{"GET /users 200", "get /users 404", "100%_done", "100 done", "ünïcode ✓", "", "tab\there"} {
		r.Logs = append(r.Logs, function.LogLine{Time: r.Start.Add(time.Duration(i) * time.Microsecond), Stream: "stdout", Line: line})
	}
	other := invocation(projA, "f", 2, 2)
	insert(t, s, r, other)
	lines := linesOf(r)
	for _, tc := range []struct {
		grep string
		want []function.LogLine
	}{
		{"/users", lines[0:2]},
		{"GET", lines[0:1]}, // case-sensitive
		{"%_", lines[2:3]},  // no LIKE wildcards
		{"0 d", lines[3:4]}, // the text, not its metadata
		{"ï", lines[4:5]},   // UTF-8 as bytes
		{"\t", lines[6:7]},  // any byte but a newline
		{"nowhere", nil},    // none
		{"doneü", nil},      // never across two lines
		{"f 2 line", linesOf(other)},
	} {
		sameLines(t, fmt.Sprintf("grep %q", tc.grep), listLines(t, s, store.LogFilter{Project: projA, Grep: tc.grep}), tc.want)
	}
}

func testListLogsSince(t *testing.T, s store.Store) {
	all := logFixture(t, s) // invocation i's line j at base + i ms + j µs
	for _, tc := range []struct {
		name  string
		since time.Time
		want  []function.LogLine
	}{
		{"from a line on", base.Add(2*time.Millisecond + 2*time.Microsecond), all[10:]},
		{"between lines", base.Add(2*time.Millisecond + 1500*time.Nanosecond), all[10:]},
		{"before everything", base.Add(-time.Hour), all},
		{"after everything", base.Add(time.Hour), nil},
	} {
		p := listLogs(t, s, store.LogFilter{Project: projA, Since: tc.since})
		sameLines(t, tc.name, p.Lines, tc.want)
		if p.Prev != 0 {
			t.Fatalf("%s: Prev = %d, want 0 (nothing older can match)", tc.name, p.Prev)
		}
		sameLines(t, tc.name+" forward", listLines(t, s, store.LogFilter{Project: projA, Since: tc.since, AfterSeq: 1}), tc.want)
	}
	// With a function and a limit: the newest lines since.
	got := listLines(t, s, store.LogFilter{Project: projA, Function: "f", Since: base.Add(time.Millisecond), Limit: 5})
	sameLines(t, "f since, 5", got, slices.Concat(all[11:12], all[16:20]))
}

// testListLogsFilteredFollow: a forward page that matched nothing still
// moves Next past what it examined, so a follower with a rare filter
// doesn't read the same lines again and again.
func testListLogsFilteredFollow(t *testing.T, s store.Store) {
	tail := listLogs(t, s, store.LogFilter{Project: projA, Grep: "needle"})
	all := logFixture(t, s)
	p := listLogs(t, s, store.LogFilter{Project: projA, Grep: "needle", AfterSeq: tail.Next})
	if len(p.Lines) != 0 || p.Next < all[len(all)-1].Seq {
		t.Fatalf("page without a match = %+v; want Next at or past the last line %d", p, all[len(all)-1].Seq)
	}
	r := invocation(projA, "f", 9, 0)
	r.Logs = []function.LogLine{{Time: r.Start, Stream: "stderr", Line: "a needle"}}
	insert(t, s, r)
	p = listLogs(t, s, store.LogFilter{Project: projA, Grep: "needle", AfterSeq: p.Next})
	sameLines(t, "the needle", p.Lines, linesOf(r))
}

// testListLogsBoundedScan: a call reads at most store.MaxLogScan
// invocations' lines; a rare match further away is reached through the
// cursors, and Since ends the walk where its lines end.
func testListLogsBoundedScan(t *testing.T, s store.Store) {
	n := store.MaxLogScan + 50
	recs := make([]function.Invocation, n)
	for i := range recs {
		recs[i] = invocation(projA, "f", i, 1)
	}
	recs[0].Logs[0].Line = "the oldest needle"
	recs[n-1].Logs[0].Line = "the newest pin"
	insert(t, s, recs...)

	// Backward: the first page reads the newest MaxLogScan and stops short.
	p := listLogs(t, s, store.LogFilter{Project: projA, Grep: "needle", Limit: 10})
	if len(p.Lines) != 0 || p.Prev == 0 {
		t.Fatalf("first page = %d lines, Prev %d; want none and a Prev", len(p.Lines), p.Prev)
	}
	p = listLogs(t, s, store.LogFilter{Project: projA, Grep: "needle", Limit: 10, BeforeSeq: p.Prev})
	sameLines(t, "the needle", p.Lines, linesOf(recs[0]))
	if p.Prev != 0 {
		t.Fatalf("Prev = %d after the oldest line", p.Prev)
	}
	// Forward: the same from the oldest line.
	p = listLogs(t, s, store.LogFilter{Project: projA, Grep: "pin", AfterSeq: p.Lines[0].Seq})
	if len(p.Lines) != 0 || !p.More {
		t.Fatalf("first forward page = %d lines, More %v; want none and More", len(p.Lines), p.More)
	}
	p = listLogs(t, s, store.LogFilter{Project: projA, Grep: "pin", AfterSeq: p.Next})
	sameLines(t, "the pin", p.Lines, linesOf(recs[n-1]))
	if p.More {
		t.Fatal("More after the newest line")
	}

	// Since: lines written later than all of the above; the walk back ends
	// where they end, without reading the older ones.
	var later []function.Invocation
	for i := range 3 {
		r := invocation(projA, "f", i, 2)
		r.ID = function.NewID(base.Add(time.Hour + time.Duration(i)*time.Millisecond))
		for j := range r.Logs {
			r.Logs[j].Time = r.Logs[j].Time.Add(time.Hour)
		}
		later = append(later, r)
	}
	insert(t, s, later...)
	p = listLogs(t, s, store.LogFilter{Project: projA, Since: base.Add(30 * time.Minute)})
	sameLines(t, "since", p.Lines, linesOf(later...))
	if p.Prev != 0 {
		t.Fatalf("since: Prev = %d, want 0", p.Prev)
	}
}

// testListLogsManyLines: a record with more lines than one chunk holds
// keeps them all, in order.
func testListLogsManyLines(t *testing.T, s store.Store) {
	const n = 70000
	r := invocation(projA, "f", 1, 0)
	r.Logs = make([]function.LogLine, n)
	for i := range r.Logs {
		r.Logs[i] = function.LogLine{Time: r.Start.Add(time.Duration(i) * time.Microsecond), Stream: "stdout", Line: fmt.Sprint("line ", i)}
	}
	insert(t, s, r, invocation(projA, "f", 2, 1))
	got, err := s.GetInvocation(context.Background(), projA, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Logs) != n || got.Logs[n-1].Line != "line 69999" || got.Logs[65535].Line != "line 65535" {
		t.Fatalf("GetInvocation: %d lines", len(got.Logs))
	}
	want := linesOf(r)
	var paged []function.LogLine
	after := int64(1)
	for {
		p := listLogs(t, s, store.LogFilter{Project: projA, Function: "f", AfterSeq: after, Limit: 1000})
		paged = append(paged, p.Lines...)
		after = p.Next
		if !p.More {
			break
		}
	}
	if len(paged) != n+1 {
		t.Fatalf("%d lines paged, want %d", len(paged), n+1)
	}
	sameLines(t, "paged", paged[:n], want)
}

// trimFixture inserts 10 records of projA, 3 lines each, in two batches,
// and an old one of projB without lines.
func trimFixture(t *testing.T, s store.Store) []function.Invocation {
	var recs []function.Invocation
	for i := range 10 {
		recs = append(recs, invocation(projA, "f", i, 3))
	}
	insert(t, s, recs[:4]...)
	insert(t, s, recs[4:]...)
	insert(t, s, invocation(projB, "g", 0, 0))
	return recs
}

func logBytes(t *testing.T, s store.Store) int64 {
	t.Helper()
	n, err := s.LogBytes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func trim(t *testing.T, s store.Store, r store.Retention) store.Trimmed {
	t.Helper()
	got, err := s.TrimTelemetry(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func testTrimAge(t *testing.T, s store.Store) {
	ctx := context.Background()
	if got := trim(t, s, store.Retention{Before: base.Add(time.Hour), MaxLogBytes: 1}); got != (store.Trimmed{}) {
		t.Fatalf("trim of an empty store = %+v", got)
	}
	recs := trimFixture(t, s)
	var oldBytes int64
	for _, r := range recs[:6] {
		oldBytes += chunkBytes(r)
	}
	// Records 0-5 started before the cutoff; their last lines were logged
	// before it too (at 5 ms + 2 µs for record 5).
	before := base.Add(5*time.Millisecond + 500*time.Microsecond)
	got := trim(t, s, store.Retention{Before: before})
	if want := (store.Trimmed{Records: 7, LogLines: 18, LogBytes: oldBytes}); got != want {
		t.Fatalf("trimmed %+v, want %+v", got, want)
	}
	left, err := s.ListInvocations(ctx, store.InvocationFilter{Project: projA})
	if err != nil {
		t.Fatal(err)
	}
	want := ids(recs[6:])
	slices.Reverse(want)
	if !slices.Equal(ids(left), want) {
		t.Fatalf("records left %v, want %v", ids(left), want)
	}
	if left, _ := s.ListInvocations(ctx, store.InvocationFilter{Project: projB}); len(left) != 0 {
		t.Fatalf("project B's old record is left: %v", ids(left))
	}
	_, err = s.GetInvocation(ctx, projA, recs[0].ID)
	wantNotFound(t, "GetInvocation of a trimmed record", err)
	sameLines(t, "lines left", listLines(t, s, store.LogFilter{Project: projA}), linesOf(recs[6:]...))
	if again := trim(t, s, store.Retention{Before: before}); again != (store.Trimmed{}) {
		t.Fatalf("a second trim deleted %+v", again)
	}
}

// chunkBytes is what a record's lines count towards MaxLogBytes.
func chunkBytes(r function.Invocation) int64 { return logchunk.Encode(r.Logs).Bytes() }

func testTrimSize(t *testing.T, s store.Store) {
	recs := trimFixture(t, s)
	var total, newest4 int64
	for i, r := range recs {
		total += chunkBytes(r)
		if i >= 6 {
			newest4 += chunkBytes(r)
		}
	}
	if got := logBytes(t, s); got != total {
		t.Fatalf("LogBytes = %d, want %d", got, total)
	}
	if got := trim(t, s, store.Retention{MaxLogBytes: total}); got != (store.Trimmed{}) {
		t.Fatalf("trim at the cap deleted %+v", got)
	}
	got := trim(t, s, store.Retention{MaxLogBytes: newest4 + 1})
	if want := (store.Trimmed{LogLines: 18, LogBytes: total - newest4}); got != want {
		t.Fatalf("trimmed %+v, want %+v", got, want)
	}
	if got := logBytes(t, s); got != newest4 {
		t.Fatalf("LogBytes after the trim = %d, want %d", got, newest4)
	}
	sameLines(t, "lines left", listLines(t, s, store.LogFilter{Project: projA}), linesOf(recs[6:]...))
	// Records go by age only.
	if left, _ := s.ListInvocations(context.Background(), store.InvocationFilter{Project: projA}); len(left) != 10 {
		t.Fatalf("%d records left, want 10", len(left))
	}
	// A cap below the newest invocation's lines deletes them all.
	trim(t, s, store.Retention{MaxLogBytes: 1})
	if got := logBytes(t, s); got != 0 {
		t.Fatalf("LogBytes = %d after trimming everything", got)
	}
}

// testTrimCursors: after the oldest lines, or all of them, are deleted,
// new lines get larger seqs than any before: a follower's cursor stays
// good.
func testTrimCursors(t *testing.T, s store.Store) {
	trimFixture(t, s)
	tail := listLogs(t, s, store.LogFilter{Project: projA})
	trim(t, s, store.Retention{MaxLogBytes: 1})
	if got := listLines(t, s, store.LogFilter{Project: projA}); len(got) != 0 {
		t.Fatalf("%d lines left", len(got))
	}
	r := invocation(projA, "f", 20, 2)
	insert(t, s, r)
	sameLines(t, "followed", listLines(t, s, store.LogFilter{Project: projA, AfterSeq: tail.Next}), linesOf(r))
	if got, want := logBytes(t, s), chunkBytes(r); got != want {
		t.Fatalf("LogBytes = %d, want %d", got, want)
	}
}

// OldLogs are the records and lines a store's migration test writes in the
// schema of before log chunks, a row per line, for MigratedLogs to find.
func OldLogs() []function.Invocation {
	recs := []function.Invocation{invocation(projA, "f", 1, 3), invocation(projA, "g", 2, 0), invocation(projB, "f", 3, 2), invocation(projA, "f", 4, 4)}
	recs[0].Logs[1].Line = "a line\nwith a newline, and ✓"
	recs[0].Logs[2].Line = ""
	recs[2].Status = function.StatusTimeout
	recs[3].Logs[0].Stream = "platform"
	recs[3].Logs[1].Stream = "odd,(name)%"
	for i := range recs {
		recs[i].ID = function.IDFloor(recs[i].Start) // the same on every call
	}
	return recs
}

// MigratedLogs checks that a store migrated from OldLogs lists and trims
// their lines as if it had stored them itself.
func MigratedLogs(t *testing.T, s store.Store) {
	ctx := context.Background()
	recs := OldLogs()
	for _, r := range recs {
		got, err := s.GetInvocation(ctx, r.Project, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		for i := range got.Logs {
			got.Logs[i].InvocationID, got.Logs[i].Function, got.Logs[i].Version = r.ID, r.Function, r.Version
		}
		sameLines(t, "GetInvocation "+r.ID, got.Logs, linesOf(r))
	}
	sameLines(t, "project A", listLines(t, s, store.LogFilter{Project: projA}), linesOf(recs[0], recs[3]))
	sameLines(t, "timeouts of B", listLines(t, s, store.LogFilter{Project: projB, Statuses: []string{function.StatusTimeout}}), linesOf(recs[2]))
	sameLines(t, "since", listLines(t, s, store.LogFilter{Project: projA, Since: base.Add(4 * time.Millisecond)}), linesOf(recs[3]))
	var total int64
	for _, r := range recs {
		total += chunkBytes(r)
	}
	if got := logBytes(t, s); got != total {
		t.Fatalf("LogBytes = %d, want %d", got, total)
	}
	trim(t, s, store.Retention{MaxLogBytes: chunkBytes(recs[3])})
	sameLines(t, "after a trim", listLines(t, s, store.LogFilter{Project: projA}), linesOf(recs[3]))
	tail := listLogs(t, s, store.LogFilter{Project: projA})
	r := invocation(projA, "f", 9, 2)
	insert(t, s, r)
	sameLines(t, "followed", listLines(t, s, store.LogFilter{Project: projA, AfterSeq: tail.Next}), linesOf(r))
}
