package scheduler_test

import (
	"context"
	"testing"

	"github.com/hostless/hostless/internal/scheduler"
)

// BenchmarkAcquireRelease measures checking a warm instance out of its pool
// and back, with every core contending for the same pool (RunParallel), as
// on a busy function: the scheduler's share of a warm call.
func BenchmarkAcquireRelease(b *testing.B) {
	sr := runtime(b)
	s := scheduler.New(sr.rt, scheduler.Config{})
	b.Cleanup(s.Close)
	v := version("bench", sr.sdkRef)
	ctx := context.Background()
	// Warm more instances than goroutines will contend (GOMAXPROCS).
	var leases []*scheduler.Lease
	for range 8 {
		l, err := s.Acquire(ctx, v)
		if err != nil {
			b.Fatal(err)
		}
		leases = append(leases, l)
	}
	for _, l := range leases {
		l.Release()
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l, err := s.Acquire(ctx, v)
			if err != nil {
				b.Error(err)
				return
			}
			l.Release()
		}
	})
}
