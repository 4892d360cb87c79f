package telemetry_test

import (
	"testing"
	"time"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/telemetry"
)

// BenchmarkObserve is the metrics' share of every invocation.
func BenchmarkObserve(b *testing.B) {
	m := telemetry.NewMetrics()
	rec := &function.Invocation{Function: "hello", Version: 3, Status: function.StatusOK, Duration: time.Millisecond, BilledMS: 1}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Observe(rec)
		}
	})
}
