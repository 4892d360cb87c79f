package metering

import (
	"math"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/store"
)

// lambdaPrices are the defaults the config documents.
var lambdaPrices = Prices{GBSecond: 0.0000166667, MillionRequests: 0.20, GBOut: 0.09, ServerHour: 0.0208, ServerMemoryMB: 2048}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// hourRow is a row of usage: gbs GB-seconds, out bytes, a peak of peakMB
// MB in use and busy calls running, and calls of 10 ms.
func hourRow(fn string, hour time.Time, calls int64, gbs float64, out int64, peakMB int64, busy float64) *store.UsageHour {
	h := &store.UsageHour{Project: "p", Function: fn, Hour: hour, Invocations: calls,
		MBMillis: int64(gbs * 1000 * 1024), DurationNS: calls * int64(10*time.Millisecond), ResponseBytes: out,
		PeakMBMillis: peakMB * 1000, PeakBusyMillis: int64(busy * 1000)}
	h.Durations[store.HistogramBucket(10*time.Millisecond)] = calls
	return h
}

func TestReport(t *testing.T) {
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	b := NewReport(day, day.Add(48*time.Hour), PeriodDay, "", lambdaPrices)
	rows := []*store.UsageHour{
		hourRow(store.TotalFunction, day.Add(10*time.Hour), 1_000_000, 100_000, 10*GiB, 3000, 12.5),
		hourRow("a", day.Add(10*time.Hour), 600_000, 90_000, 10*GiB, 2800, 10),
		hourRow("b", day.Add(10*time.Hour), 400_000, 10_000, 0, 400, 4),
		hourRow(store.TotalFunction, day.Add(29*time.Hour), 2_000, 50, 0, 100, 1),
		hourRow("b", day.Add(29*time.Hour), 2_000, 50, 0, 100, 1),
		hourRow(store.TotalFunction, day.Add(48*time.Hour), 7, 7, 7, 7, 7), // past the span: not counted
	}
	rows[0].Errors, rows[0].Throttles, rows[0].ColdStarts = 10, 5, 3
	for _, r := range rows {
		if err := b.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	r := b.Report()

	if r.Total.Invocations != 1_002_000 || r.Total.Errors != 10 || r.Total.Throttles != 5 || r.Total.ColdStarts != 3 ||
		!near(r.Total.GBSeconds, 100_050) || r.Total.DataOutBytes != 10*GiB {
		t.Errorf("total = %+v", r.Total)
	}
	if r.Total.PeakMemoryGB != 3000.0/1024 || r.Total.PeakConcurrency != 12.5 {
		t.Errorf("peak = %v GB, %v calls; want the total's busiest second, not the sum of the functions'", r.Total.PeakMemoryGB, r.Total.PeakConcurrency)
	}
	if d := r.Total.Duration; !near(d.Mean, 10) || math.Abs(d.P50-10) > 0.9 || math.Abs(d.P99-10) > 0.9 {
		t.Errorf("durations = %+v, want about 10 ms", d)
	}

	if len(r.Periods) != 2 || !r.Periods[0].Start.Equal(day) || !r.Periods[1].Start.Equal(day.Add(24*time.Hour)) {
		t.Fatalf("periods = %+v, want the two days", r.Periods)
	}
	if r.Periods[0].Invocations != 1_000_000 || r.Periods[1].Invocations != 2_000 || !near(r.Periods[1].GBSeconds, 50) {
		t.Errorf("periods = %d, %d invocations", r.Periods[0].Invocations, r.Periods[1].Invocations)
	}

	if len(r.Functions) != 2 || r.Functions[0].Function != "a" || r.Functions[1].Function != "b" {
		t.Fatalf("functions = %+v, want a (the dearest), then b", r.Functions)
	}
	wantA := 90_000*lambdaPrices.GBSecond + 0.6*lambdaPrices.MillionRequests + 10*lambdaPrices.GBOut
	if !near(r.Functions[0].Cost, wantA) || r.Functions[1].Invocations != 402_000 {
		t.Errorf("a costs %v, want %v; b has %d invocations", r.Functions[0].Cost, wantA, r.Functions[1].Invocations)
	}

	c := r.Cost
	if !near(c.Compute, 100_050*0.0000166667) || !near(c.Requests, 1.002*0.20) || !near(c.DataOut, 10*0.09) ||
		!near(c.Total, c.Compute+c.Requests+c.DataOut) {
		t.Errorf("cost = %+v", c)
	}
	// Peak 3000 MB: two servers of 2048 MB, every hour of the 48.
	if a := c.AlwaysOn; a.Servers != 2 || a.Hours != 48 || !near(a.Compute, 2*48*0.0208) || !near(a.DataOut, c.DataOut) ||
		!near(a.Total, a.Compute+a.DataOut) {
		t.Errorf("always on = %+v, want 2 servers × 48 h × 0.0208 plus the same data out", a)
	}
}

func TestReportOneFunction(t *testing.T) {
	hour := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	b := NewReport(hour, hour.Add(3*time.Hour+30*time.Minute), PeriodHour, "b", lambdaPrices)
	for _, r := range []*store.UsageHour{
		hourRow("b", hour, 10, 1, 100, 512, 1),
		hourRow("b", hour.Add(2*time.Hour), 5, 1, 100, 4096, 3),
	} {
		if err := b.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	r := b.Report()
	if r.Function != "b" || r.Total.Invocations != 15 || len(r.Functions) != 1 || r.Functions[0].Invocations != 15 {
		t.Errorf("report of b = %+v", r)
	}
	if len(r.Periods) != 4 || r.Periods[1].Invocations != 0 || r.Periods[2].Invocations != 5 || r.Periods[3].Invocations != 0 {
		t.Errorf("periods = %+v, want 4 hours, the empty ones too", r.Periods)
	}
	if a := r.Cost.AlwaysOn; a.Servers != 2 || a.Hours != 3.5 {
		t.Errorf("always on = %+v, want 2 servers for 4096 MB, over 3.5 hours", a)
	}
}

func TestReportEmpty(t *testing.T) {
	hour := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	r := NewReport(hour, hour.Add(time.Hour), PeriodHour, "", lambdaPrices).Report()
	if r.Total != (Usage{}) || len(r.Functions) != 0 || r.Cost.Total != 0 {
		t.Errorf("empty report = %+v", r)
	}
	// An idle span still costs one always-on server.
	if a := r.Cost.AlwaysOn; a.Servers != 1 || !near(a.Total, 0.0208) {
		t.Errorf("always on, idle = %+v, want one server for an hour", a)
	}
}
