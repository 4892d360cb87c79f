package metering

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/hostless/hostless/internal/store"
)

// Periods of a usage report.
const (
	PeriodHour = "hour"
	PeriodDay  = "day"
)

// GiB is the gigabyte of memory and of data out: 2^30 bytes, as Lambda
// counts a GB of memory as 1024 MB.
const GiB = 1 << 30

// Prices is the price table a usage report is costed with, in any one
// currency. The operator sets their own costs; the defaults (in config)
// are AWS Lambda's public list prices, so the report says what the same
// workload would cost there.
type Prices struct {
	// GBSecond is the price of a GB-second: a second of billed duration
	// at 1024 MB of memory.
	GBSecond float64 `json:"gb_second"`
	// MillionRequests is the price of a million invocations.
	MillionRequests float64 `json:"million_requests"`
	// GBOut is the price of a GB (2^30 bytes) of data out: response bodies.
	GBOut float64 `json:"gb_out"`
	// ServerHour is the price of an hour of one always-on server, of
	// ServerMemoryMB of memory, for the comparison.
	ServerHour     float64 `json:"server_hour"`
	ServerMemoryMB int     `json:"server_memory_mb"`
}

// Usage is what one function, or all, used over a span.
type Usage struct {
	// Invocations counts the calls that ran; throttled ones are counted in
	// Throttles only.
	Invocations int64 `json:"invocations"`
	// Errors counts the calls that ran and failed: error, timeout, oom.
	Errors     int64 `json:"errors"`
	Throttles  int64 `json:"throttles"`
	ColdStarts int64 `json:"cold_starts"`
	// GBSeconds sums memory (GB) times billed duration (seconds, each call
	// rounded up to the millisecond).
	GBSeconds float64 `json:"gb_seconds"`
	// DataOutBytes sums the response bodies' sizes.
	DataOutBytes int64 `json:"data_out_bytes"`
	// Duration is the calls' durations in milliseconds: the mean, and
	// percentiles read from a histogram of four buckets per doubling,
	// within 9% of the true ones.
	Duration Durations `json:"duration_ms"`
	// PeakConcurrency and PeakMemoryGB describe the busiest second: the
	// calls running at once, and the GB of memory they had (GB-seconds per
	// second), each averaged over that second.
	PeakConcurrency float64 `json:"peak_concurrency"`
	PeakMemoryGB    float64 `json:"peak_memory_gb"`
}

// Durations are call durations in milliseconds.
type Durations struct {
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
}

// FunctionUsage is one function's usage over the report's span, and its
// cost at the price table.
type FunctionUsage struct {
	Function string `json:"function"`
	Usage
	Cost float64 `json:"cost"`
}

// PeriodUsage is the usage of one period (an hour or a UTC day).
type PeriodUsage struct {
	Start time.Time `json:"start"`
	Usage
}

// Cost is what a report's usage costs at its price table, and what an
// always-on server sized for its peak would cost over the same span.
type Cost struct {
	Prices   Prices   `json:"prices"`
	Compute  float64  `json:"compute"`  // GB-seconds × GBSecond
	Requests float64  `json:"requests"` // invocations / 1e6 × MillionRequests
	DataOut  float64  `json:"data_out"` // data out in GB × GBOut
	Total    float64  `json:"total"`
	AlwaysOn AlwaysOn `json:"always_on"`
}

// AlwaysOn is the cost of the same workload on always-on servers sized for
// its peak: enough servers of Prices.ServerMemoryMB for the peak memory in
// use (at least one), running every hour of the span, sending the same
// data out at the same price.
type AlwaysOn struct {
	Servers int     `json:"servers"` // max(1, ceil(peak memory GB / server memory GB))
	Hours   float64 `json:"hours"`   // the span's hours
	Compute float64 `json:"compute"` // servers × hours × ServerHour
	DataOut float64 `json:"data_out"`
	Total   float64 `json:"total"`
}

// Report is the usage of a span, per period and per function, and its cost.
type Report struct {
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Period string    `json:"period"`
	// Function, when set, is the one function the report is about: Total
	// and Periods are its usage. Otherwise they are all functions'.
	Function  string          `json:"function,omitempty"`
	Total     Usage           `json:"total"`
	Periods   []PeriodUsage   `json:"periods"`
	Functions []FunctionUsage `json:"functions"`
	Cost      Cost            `json:"cost"`
}

// sums accumulates hourly rows.
type sums struct {
	invocations, errors, throttles, colds int64
	mbMillis, durationNS, bytes           int64
	peakMB, peakBusy                      int64
	durations                             store.Histogram
}

func (s *sums) add(h *store.UsageHour) {
	s.invocations += h.Invocations
	s.errors += h.Errors
	s.throttles += h.Throttles
	s.colds += h.ColdStarts
	s.mbMillis += h.MBMillis
	s.durationNS += h.DurationNS
	s.bytes += h.ResponseBytes
	s.peakMB = max(s.peakMB, h.PeakMBMillis)
	s.peakBusy = max(s.peakBusy, h.PeakBusyMillis)
	s.durations.Merge(&h.Durations)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (s *sums) usage() Usage {
	u := Usage{
		Invocations: s.invocations, Errors: s.errors, Throttles: s.throttles, ColdStarts: s.colds,
		GBSeconds:       float64(s.mbMillis) / 1000 / 1024,
		DataOutBytes:    s.bytes,
		PeakConcurrency: float64(s.peakBusy) / 1000,
		PeakMemoryGB:    float64(s.peakMB) / 1000 / 1024,
	}
	if n := s.durations.Count(); n > 0 {
		u.Duration = Durations{
			Mean: float64(s.durationNS) / float64(s.invocations) / float64(time.Millisecond),
			P50:  ms(s.durations.Quantile(0.50)),
			P95:  ms(s.durations.Quantile(0.95)),
			P99:  ms(s.durations.Quantile(0.99)),
		}
	}
	return u
}

// ReportBuilder sums the hourly rows of a span into a Report.
type ReportBuilder struct {
	from, to  time.Time
	period    string
	function  string
	prices    Prices
	total     sums
	periods   []sums
	functions map[string]*sums
	order     []string
}

// NewReport starts a report of the span from..to (from at the start of a
// period) in periods of an hour or a UTC day, of one function or, when
// function is empty, of all.
func NewReport(from, to time.Time, period, function string, prices Prices) *ReportBuilder {
	from, to = from.UTC(), to.UTC()
	b := &ReportBuilder{from: from, to: to, period: period, function: function, prices: prices, functions: map[string]*sums{}}
	n := 0
	for t := from; t.Before(to); t = b.next(t) {
		n++
	}
	b.periods = make([]sums, n)
	return b
}

func (b *ReportBuilder) span() time.Duration {
	if b.period == PeriodDay {
		return 24 * time.Hour
	}
	return time.Hour
}

func (b *ReportBuilder) next(t time.Time) time.Time { return t.Add(b.span()) }

// Filter is what the report reads from the store.
func (b *ReportBuilder) Filter(project string) store.UsageFilter {
	return store.UsageFilter{Project: project, Function: b.function, From: b.from, To: b.to}
}

// Add counts one hourly row; store.Usage's ReadUsage calls it.
func (b *ReportBuilder) Add(h *store.UsageHour) error {
	if h.Hour.Before(b.from) || !h.Hour.Before(b.to) {
		return nil
	}
	// The rows of the report's subject: the project's total, or the one
	// function's; the others are the breakdown by function.
	if h.Function == b.function {
		b.total.add(h)
		b.periods[int(h.Hour.Sub(b.from)/b.span())].add(h)
	}
	if h.Function == store.TotalFunction {
		return nil
	}
	s := b.functions[h.Function]
	if s == nil {
		s = &sums{}
		b.functions[h.Function] = s
		b.order = append(b.order, h.Function)
	}
	s.add(h)
	return nil
}

// Report returns the report of the rows added, functions by their cost,
// highest first, then by name.
func (b *ReportBuilder) Report() Report {
	r := Report{From: b.from, To: b.to, Period: b.period, Function: b.function, Total: b.total.usage(),
		Periods: make([]PeriodUsage, len(b.periods)), Functions: make([]FunctionUsage, 0, len(b.order))}
	t := b.from
	for i := range b.periods {
		r.Periods[i] = PeriodUsage{Start: t, Usage: b.periods[i].usage()}
		t = b.next(t)
	}
	for _, fn := range b.order {
		u := b.functions[fn].usage()
		r.Functions = append(r.Functions, FunctionUsage{Function: fn, Usage: u, Cost: b.prices.cost(u).Total})
	}
	slices.SortFunc(r.Functions, func(a, b FunctionUsage) int {
		if c := cmp.Compare(b.Cost, a.Cost); c != 0 {
			return c
		}
		return strings.Compare(a.Function, b.Function)
	})
	r.Cost = b.prices.cost(r.Total)
	r.Cost.AlwaysOn = b.prices.alwaysOn(b.total.peakMB, b.to.Sub(b.from), r.Cost.DataOut)
	return r
}

// cost prices usage: compute, requests and data out.
func (p Prices) cost(u Usage) Cost {
	c := Cost{
		Prices:   p,
		Compute:  u.GBSeconds * p.GBSecond,
		Requests: float64(u.Invocations) / 1e6 * p.MillionRequests,
		DataOut:  float64(u.DataOutBytes) / GiB * p.GBOut,
	}
	c.Total = c.Compute + c.Requests + c.DataOut
	return c
}

// alwaysOn prices always-on servers over span, sized for a peak of
// peakMBMillis (MB in use × 1000).
func (p Prices) alwaysOn(peakMBMillis int64, span time.Duration, dataOut float64) AlwaysOn {
	a := AlwaysOn{Servers: 1, Hours: span.Hours(), DataOut: dataOut}
	if server := int64(p.ServerMemoryMB) * 1000; server > 0 {
		a.Servers = int(max(1, (peakMBMillis+server-1)/server))
	}
	a.Compute = float64(a.Servers) * a.Hours * p.ServerHour
	a.Total = a.Compute + a.DataOut
	return a
}
