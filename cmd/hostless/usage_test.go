package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/metering"
	"github.com/hostless/hostless/internal/store"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// hourOf is an hour of usage: calls of d, gbs GB-seconds, out bytes,
// a peak of peakMB MB in use and busy calls running.
func hourOf(fn string, hour time.Time, calls, errors int64, d time.Duration, gbs float64, out, peakMB int64, busy float64) *store.UsageHour {
	h := &store.UsageHour{Project: "default", Function: fn, Hour: hour, Invocations: calls, Errors: errors, ColdStarts: calls / 100,
		MBMillis: int64(gbs * 1000 * 1024), DurationNS: calls * int64(d), ResponseBytes: out,
		PeakMBMillis: peakMB * 1000, PeakBusyMillis: int64(busy * 1000)}
	h.Durations[store.HistogramBucket(d)] = calls - calls/20
	h.Durations[store.HistogramBucket(8*d)] = calls / 20
	return h
}

// TestUsageOutput renders reports as `hostless usage` prints them
// (testdata/*.golden; go test -run TestUsageOutput -update rewrites them).
func TestUsageOutput(t *testing.T) {
	prices := metering.Prices{GBSecond: 0.0000166667, MillionRequests: 0.20, GBOut: 0.09, ServerHour: 0.0208, ServerMemoryMB: 2048}
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		from, to time.Time
		period   string
		function string
		rows     []*store.UsageHour
	}{
		{
			name: "all", from: day, to: day.Add(2*24*time.Hour + 90*time.Minute), period: metering.PeriodDay,
			rows: []*store.UsageHour{
				hourOf(store.TotalFunction, day.Add(9*time.Hour), 120_000, 40, 30*time.Millisecond, 1500, 3<<30, 900, 6),
				hourOf("resize", day.Add(9*time.Hour), 20_000, 40, 150*time.Millisecond, 1400, 3<<30, 700, 4),
				hourOf("hello", day.Add(9*time.Hour), 100_000, 0, 2*time.Millisecond, 100, 0, 200, 2),
				hourOf(store.TotalFunction, day.Add(30*time.Hour), 50, 1, 3*time.Millisecond, 0.5, 12_345, 64, 0.2),
				hourOf("hello", day.Add(30*time.Hour), 50, 1, 3*time.Millisecond, 0.5, 12_345, 64, 0.2),
			},
		},
		{
			name: "one-function", from: day.Add(9 * time.Hour), to: day.Add(12*time.Hour + 30*time.Minute), period: metering.PeriodHour, function: "hello",
			rows: []*store.UsageHour{
				hourOf("hello", day.Add(9*time.Hour), 100_000, 0, 2*time.Millisecond, 100, 0, 200, 2),
				hourOf("hello", day.Add(11*time.Hour), 10, 0, 2*time.Millisecond, 0.01, 1000, 1, 0.01),
			},
		},
		{name: "idle", from: day, to: day.Add(3 * time.Hour), period: metering.PeriodHour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := metering.NewReport(tc.from, tc.to, tc.period, tc.function, prices)
			for _, r := range tc.rows {
				if err := b.Add(r); err != nil {
					t.Fatal(err)
				}
			}
			var out bytes.Buffer
			if err := writeUsage(&out, b.Report()); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "usage-"+tc.name+".golden")
			if *update {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Errorf("output differs from %s:\n%s", golden, out.Bytes())
			}
		})
	}
}
