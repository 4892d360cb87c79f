package storetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
)

var usageTests = []struct {
	name string
	run  func(t *testing.T, s store.Store)
}{
	{"Usage/sums", testUsageSums},
	{"Usage/duplicates-counted-once", testUsageDuplicates},
	{"Usage/peaks", testUsagePeaks},
	{"Usage/durations", testUsageDurations},
	{"Usage/filter", testUsageFilter},
}

// usageRec is a record for usage tests: billed is in milliseconds.
func usageRec(project, fn string, start time.Time, d time.Duration, billed int64, memMB int, status string, cold bool, bytes int64) function.Invocation {
	return function.Invocation{ID: function.NewID(start), Project: project, Function: fn, Version: 1, Trigger: "http",
		Start: start.UTC(), Duration: d, BilledMS: billed, MemoryMB: memMB, Cold: cold, Status: status, ResponseBytes: bytes}
}

// readUsage returns the rows of f.
func readUsage(t *testing.T, s store.Store, f store.UsageFilter) []store.UsageHour {
	t.Helper()
	var rows []store.UsageHour
	if err := s.ReadUsage(context.Background(), f, func(h *store.UsageHour) error {
		rows = append(rows, *h)
		return nil
	}); err != nil {
		t.Fatalf("ReadUsage: %v", err)
	}
	return rows
}

// row finds the row of fn in hour, or fails.
func row(t *testing.T, rows []store.UsageHour, fn string, hour time.Time) store.UsageHour {
	t.Helper()
	for _, r := range rows {
		if r.Function == fn && r.Hour.Equal(hour) {
			return r
		}
	}
	t.Fatalf("no usage row of %q at %s in %d rows", fn, hour, len(rows))
	return store.UsageHour{}
}

// testUsageSums: every record inserted is counted in the hour it started,
// for its function and for its project's total, and nothing of another
// project's.
func testUsageSums(t *testing.T, s store.Store) {
	h0 := base.Truncate(time.Hour)
	h1 := h0.Add(time.Hour)
	ms := time.Millisecond
	insert(t, s,
		usageRec(projA, "a", h0.Add(1*time.Second), 1500*time.Microsecond, 2, 128, function.StatusOK, true, 100),
		usageRec(projA, "a", h0.Add(2*time.Second), 40*ms, 40, 128, function.StatusError, false, 10),
		usageRec(projA, "a", h0.Add(3*time.Second), 5*ms, 0, 128, function.StatusThrottled, false, 0),
		usageRec(projA, "b", h0.Add(10*time.Second), 999*time.Microsecond, 1, 256, function.StatusTimeout, false, 0),
		usageRec(projA, "a", h1.Add(5*time.Second), 3*ms, 3, 128, function.StatusOOM, true, 7),
		usageRec(projA, "b", h1.Add(6*time.Second), 999500*time.Microsecond, 1000, 1024, function.StatusOK, false, 1<<20),
		usageRec(projB, "a", h0.Add(time.Second), ms, 1, 128, function.StatusOK, false, 5),
	)
	got := readUsage(t, s, store.UsageFilter{Project: projA, From: h0, To: h1.Add(time.Hour)})
	hist := func(ds ...time.Duration) store.Histogram {
		var h store.Histogram
		for _, d := range ds {
			h.Add(d)
		}
		return h
	}
	want := []store.UsageHour{
		{Function: store.TotalFunction, Hour: h0, Invocations: 3, Errors: 2, Throttles: 1, ColdStarts: 1,
			MBMillis: 2*128 + 40*128 + 1*256, DurationNS: int64(1500*time.Microsecond + 40*ms + 999*time.Microsecond),
			ResponseBytes: 110, PeakMBMillis: 40 * 128, PeakBusyMillis: 40,
			Durations: hist(1500*time.Microsecond, 40*ms, 999*time.Microsecond)},
		{Function: "a", Hour: h0, Invocations: 2, Errors: 1, Throttles: 1, ColdStarts: 1,
			MBMillis: 2*128 + 40*128, DurationNS: int64(1500*time.Microsecond + 40*ms),
			ResponseBytes: 110, PeakMBMillis: 40 * 128, PeakBusyMillis: 40,
			Durations: hist(1500*time.Microsecond, 40*ms)},
		{Function: "b", Hour: h0, Invocations: 1, Errors: 1, MBMillis: 256, DurationNS: int64(999 * time.Microsecond),
			PeakMBMillis: 256, PeakBusyMillis: 1, Durations: hist(999 * time.Microsecond)},
		{Function: store.TotalFunction, Hour: h1, Invocations: 2, Errors: 1, ColdStarts: 1,
			MBMillis: 3*128 + 1000*1024, DurationNS: int64(3*ms + 999500*time.Microsecond),
			ResponseBytes: 7 + 1<<20, PeakMBMillis: 1000 * 1024, PeakBusyMillis: 1000,
			Durations: hist(3*ms, 999500*time.Microsecond)},
		{Function: "a", Hour: h1, Invocations: 1, Errors: 1, ColdStarts: 1, MBMillis: 3 * 128, DurationNS: int64(3 * ms),
			ResponseBytes: 7, PeakMBMillis: 3 * 128, PeakBusyMillis: 3, Durations: hist(3 * ms)},
		{Function: "b", Hour: h1, Invocations: 1, MBMillis: 1000 * 1024, DurationNS: int64(999500 * time.Microsecond),
			ResponseBytes: 1 << 20, PeakMBMillis: 1000 * 1024, PeakBusyMillis: 1000, Durations: hist(999500 * time.Microsecond)},
	}
	if len(got) != len(want) {
		t.Fatalf("ReadUsage returned %d rows, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		want[i].Project = projA
		wantUTC(t, "Hour", got[i].Hour)
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("row %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	// GB-seconds as the budgets count them agree with the rollups.
	byFn, err := s.UsageSince(context.Background(), projA, h0)
	if err != nil {
		t.Fatal(err)
	}
	if byFn["a"] != want[1].MBMillis+want[4].MBMillis || byFn["b"] != want[2].MBMillis+want[5].MBMillis {
		t.Errorf("UsageSince = %v, disagrees with the hourly rows", byFn)
	}
}

// testUsageDuplicates: a redelivered batch, or a record twice in one
// batch, is counted once, as it is stored once.
func testUsageDuplicates(t *testing.T, s store.Store) {
	h0 := base.Truncate(time.Hour)
	r1 := usageRec(projA, "a", h0.Add(time.Second), time.Millisecond, 1, 128, function.StatusOK, true, 10)
	r2 := usageRec(projA, "a", h0.Add(2*time.Second), time.Millisecond, 1, 128, function.StatusOK, false, 10)
	r3 := usageRec(projA, "a", h0.Add(3*time.Second), time.Millisecond, 1, 128, function.StatusOK, false, 10)
	insert(t, s, r1, r2)
	insert(t, s, r1, r2, r3, r3)
	insert(t, s, r1)
	got := row(t, readUsage(t, s, store.UsageFilter{Project: projA, Function: "a", From: h0, To: h0.Add(time.Hour)}), "a", h0)
	if got.Invocations != 3 || got.ColdStarts != 1 || got.MBMillis != 3*128 || got.ResponseBytes != 30 || got.Durations.Count() != 3 {
		t.Errorf("after redelivered batches: %+v, want 3 invocations, 1 cold start, 384 MB-ms, 30 bytes", got)
	}
}

// testUsagePeaks: an hour's peak is its busiest second, summed across
// batches; a call is spread over the seconds it ran, into the next hour
// when it runs past its own; the project's peak is its busiest second of
// all functions together, not the sum of each function's peak.
func testUsagePeaks(t *testing.T, s store.Store) {
	// Seconds are kept for peaks only store.UsageSecondsKept: use the hour
	// before this one.
	p := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	sec := func(n float64) time.Time { return p.Add(time.Duration(n * float64(time.Second))) }
	ok := function.StatusOK
	insert(t, s,
		usageRec(projA, "a", sec(10), time.Second, 1000, 128, ok, true, 0),
		usageRec(projA, "a", sec(10), time.Second, 1000, 128, ok, true, 0),
		usageRec(projA, "b", sec(20), 500*time.Millisecond, 500, 1024, ok, true, 0),
	)
	// Another batch: half of it in second 10, half in second 11.
	insert(t, s, usageRec(projA, "a", sec(10.5), time.Second, 1000, 128, ok, false, 0))
	// Past the hour: 500 ms in the hour's last second, 1000 and 500 in
	// the next hour's first two.
	insert(t, s, usageRec(projA, "a", sec(3599.5), 2*time.Second, 2000, 128, ok, false, 0))

	rows := readUsage(t, s, store.UsageFilter{Project: projA, From: p, To: p.Add(2 * time.Hour)})
	tests := []struct {
		name              string
		fn                string
		hour              time.Time
		invocations       int64
		peakBusy, peakMem int64
	}{
		{"a's busiest second: 2 calls and half of another", "a", p, 4, 2500, 2500 * 128},
		{"b's one call", "b", p, 1, 500, 500 * 1024},
		{"all: the busiest second by time and by memory", store.TotalFunction, p, 5, 2500, 500 * 1024},
		{"a's call past the hour", "a", p.Add(time.Hour), 0, 1000, 1000 * 128},
		{"all: a's call past the hour", store.TotalFunction, p.Add(time.Hour), 0, 1000, 1000 * 128},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := row(t, rows, tc.fn, tc.hour)
			if got.Invocations != tc.invocations || got.PeakBusyMillis != tc.peakBusy || got.PeakMBMillis != tc.peakMem {
				t.Errorf("%q at %s: %d invocations, peak %d busy ms, %d MB-ms; want %d, %d, %d", tc.fn, tc.hour.Format(time.TimeOnly),
					got.Invocations, got.PeakBusyMillis, got.PeakMBMillis, tc.invocations, tc.peakBusy, tc.peakMem)
			}
		})
	}
}

// testUsageDurations: the duration histograms of batches add up, and the
// quantiles read from them are within 9% of the true ones.
func testUsageDurations(t *testing.T, s store.Store) {
	h0 := base.Truncate(time.Hour)
	for batch := range 2 {
		var recs []function.Invocation
		for i := range 50 {
			d := time.Millisecond
			if i%10 == 9 {
				d = 100 * time.Millisecond
			}
			start := h0.Add(time.Duration(batch*100+i) * time.Second)
			recs = append(recs, usageRec(projA, "a", start, d, function.BilledMillis(d), 128, function.StatusOK, false, 0))
		}
		insert(t, s, recs...)
	}
	got := row(t, readUsage(t, s, store.UsageFilter{Project: projA, From: h0, To: h0.Add(time.Hour)}), store.TotalFunction, h0)
	if n := got.Durations.Count(); n != 100 {
		t.Fatalf("histogram counts %d durations, want 100", n)
	}
	if n := got.Durations[store.HistogramBucket(time.Millisecond)]; n != 90 {
		t.Errorf("bucket of 1ms holds %d, want 90", n)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, time.Millisecond}, {0.9, time.Millisecond}, {0.95, 100 * time.Millisecond}, {0.99, 100 * time.Millisecond}} {
		q := got.Durations.Quantile(tc.q)
		if math.Abs(float64(q-tc.want)) > 0.09*float64(tc.want) {
			t.Errorf("p%v = %v, want %v within 9%%", tc.q*100, q, tc.want)
		}
	}
}

// testUsageFilter: rows by function and by hour (From inclusive, To
// exclusive), ordered by hour then function, and an error of the callback
// stops the read.
func testUsageFilter(t *testing.T, s store.Store) {
	h0 := base.Truncate(time.Hour)
	var recs []function.Invocation
	for hour := range 3 {
		for _, fn := range []string{"b", "a"} {
			recs = append(recs, usageRec(projA, fn, h0.Add(time.Duration(hour)*time.Hour+time.Minute), time.Millisecond, 1, 128, function.StatusOK, false, 0))
		}
	}
	recs = append(recs, usageRec(projB, "a", h0.Add(time.Hour+time.Minute), time.Millisecond, 1, 128, function.StatusOK, false, 0))
	insert(t, s, recs...)
	key := func(rows []store.UsageHour) []string {
		var out []string
		for _, r := range rows {
			out = append(out, fmt.Sprintf("%s %q %d", r.Hour.Sub(h0), r.Function, r.Invocations))
		}
		return out
	}
	tests := []struct {
		name string
		f    store.UsageFilter
		want []string
	}{
		{"all of the middle hour", store.UsageFilter{Project: projA, From: h0.Add(time.Hour), To: h0.Add(2 * time.Hour)},
			[]string{`1h0m0s "" 2`, `1h0m0s "a" 1`, `1h0m0s "b" 1`}},
		{"one function from the middle hour on", store.UsageFilter{Project: projA, Function: "a", From: h0.Add(30 * time.Minute), To: h0.Add(5 * time.Hour)},
			[]string{`1h0m0s "a" 1`, `2h0m0s "a" 1`}},
		{"another project", store.UsageFilter{Project: projB, From: h0, To: h0.Add(5 * time.Hour)},
			[]string{`1h0m0s "" 1`, `1h0m0s "a" 1`}},
		{"a function without usage", store.UsageFilter{Project: projA, Function: "none", From: h0, To: h0.Add(5 * time.Hour)}, nil},
		{"an empty span", store.UsageFilter{Project: projA, From: h0.Add(time.Hour), To: h0.Add(time.Hour)}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := key(readUsage(t, s, tc.f)); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("rows = %q, want %q", got, tc.want)
			}
		})
	}
	stop := errors.New("stop")
	calls := 0
	err := s.ReadUsage(context.Background(), store.UsageFilter{Project: projA, From: h0, To: h0.Add(5 * time.Hour)}, func(*store.UsageHour) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("ReadUsage with a failing callback: %v after %d calls, want stop after 1", err, calls)
	}
}

// RunUsageBackfill checks what an implementation's migration does for
// records stored before the rollups existed, and that the rollups outlive
// the records. s is an empty store; forget drops its rollups and undoes
// their migration but the first step (the records' response_bytes
// column), then opens the store again, which migrates; deleteRecords
// deletes every invocation record, as retention does.
func RunUsageBackfill(t *testing.T, s store.Store, forget func(t *testing.T) store.Store, deleteRecords func(t *testing.T, s store.Store)) {
	h0 := base.Truncate(time.Hour)
	var recs []function.Invocation
	statuses := []string{function.StatusOK, function.StatusOK, function.StatusError, function.StatusTimeout, function.StatusOOM, function.StatusThrottled}
	for i := range 60 {
		// Each call within its second, so the migration, which counts a
		// call in the second it starts, finds the same peaks.
		start := h0.Add(time.Duration(i*97) * time.Second).Add(time.Duration(i%7) * time.Millisecond)
		d := time.Duration(1+i%5)*time.Millisecond + 300*time.Microsecond
		billed := function.BilledMillis(d)
		status := statuses[i%len(statuses)]
		if status == function.StatusThrottled {
			billed = 0
		}
		fn := []string{"a", "b", "c"}[i%3]
		recs = append(recs, usageRec(projA, fn, start, d, billed, 128<<(i%3), status, i%4 == 0, int64(i*1000)))
		if i%10 == 0 { // a second call in the same second
			recs = append(recs, usageRec(projA, fn, start.Add(time.Millisecond), d, billed, 128, function.StatusOK, false, 1))
		}
	}
	insert(t, s, recs...)
	all := store.UsageFilter{Project: projA, From: h0, To: h0.Add(24 * time.Hour)}
	want := readUsage(t, s, all)
	if len(want) < 6 {
		t.Fatalf("%d rows of usage, want at least 2 hours of 3 functions and their total", len(want))
	}

	s = forget(t)
	sameRows(t, "after the migration, from the records", readUsage(t, s, all), want)
	deleteRecords(t, s)
	if recs, err := s.ListInvocations(context.Background(), store.InvocationFilter{Project: projA}); err != nil || len(recs) != 0 {
		t.Fatalf("records left: %d, %v", len(recs), err)
	}
	sameRows(t, "after the records were deleted", readUsage(t, s, all), want)
}

func sameRows(t *testing.T, when string, got, want []store.UsageHour) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d rows, want %d", when, len(got), len(want))
		return
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("%s: row %d:\n got %+v\nwant %+v", when, i, got[i], want[i])
		}
	}
}
