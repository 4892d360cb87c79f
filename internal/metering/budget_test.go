package metering

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/function"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func TestFunctionBudgetExhaustionAndReset(t *testing.T) {
	c := &clock{t: time.Date(2026, 11, 25, 10, 59, 0, 0, time.UTC)}
	b := New(Limits{}, c.now)
	budget := function.Budget{GBSecondsPerHour: 1, GBSecondsPerDay: 1.5}
	// 1024 MB for 999 ms is 0.999 GB-s: still under.
	b.Add("f", 999, 1024)
	if err := b.Check("f", budget); err != nil {
		t.Fatalf("under the budget: %v", err)
	}
	b.Add("f", 1, 1024)
	err := b.Check("f", budget)
	var te *function.ThrottleError
	if !errors.As(err, &te) || te.Reason != function.ThrottleBudget || !strings.Contains(te.Msg, "1 GB-seconds this hour") ||
		te.RetryAfter != time.Minute || !strings.Contains(te.Msg, "resets at 2026-11-25T11:00:00Z") {
		t.Fatalf("at the hourly budget: %#v", err)
	}
	if b.Check("g", budget) != nil {
		t.Fatal("another function's usage counted against g")
	}
	// The next hour, the hourly budget is fresh; the daily one holds 1 GB-s.
	c.add(time.Minute)
	if err := b.Check("f", budget); err != nil {
		t.Fatalf("a new hour: %v", err)
	}
	b.Add("f", 500, 1024)
	if err := b.Check("f", budget); !errors.As(err, &te) || !strings.Contains(te.Msg, "this day") ||
		te.RetryAfter != 13*time.Hour {
		t.Fatalf("at the daily budget: %v", err)
	}
	c.add(13 * time.Hour)
	if err := b.Check("f", budget); err != nil {
		t.Fatalf("a new day: %v", err)
	}
}

func TestPlatformBudgetAndSeed(t *testing.T) {
	c := &clock{t: time.Date(2026, 11, 25, 10, 30, 0, 0, time.UTC)}
	b := New(Limits{PerHour: 2}, c.now)
	hour, day := b.Windows()
	// What the store held at start: 1.5 GB-s this hour from two functions.
	b.Seed(hour, map[string]int64{"a": 1000 * 1024, "b": 512 * 1024}, day, nil)
	if h, _ := b.Usage("a"); h != 1 {
		t.Fatalf("seeded usage of a: %v", h)
	}
	if err := b.Check("c", function.Budget{}); err != nil {
		t.Fatalf("under the platform's budget: %v", err)
	}
	b.Add("c", 1000, 512)
	var te *function.ThrottleError
	if err := b.Check("d", function.Budget{}); !errors.As(err, &te) || te.Reason != function.ThrottlePlatformBudget {
		t.Fatalf("at the platform's budget, any function is refused: %v", err)
	}
	// A seed for a window that already rolled is ignored.
	b.Seed(hour.Add(-time.Hour), map[string]int64{"a": 1 << 40}, day, nil)
	if h, _ := b.Usage("a"); h != 1 {
		t.Fatalf("a stale seed counted: %v", h)
	}
}

func TestBudgetsConcurrent(t *testing.T) {
	b := New(Limits{PerDay: 1e9}, nil)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				b.Add("f", 1, 1024)
				_ = b.Check("f", function.Budget{GBSecondsPerHour: 1e9})
			}
		}()
	}
	wg.Wait()
	if h, _ := b.Usage("f"); h < 7.99 || h > 8.01 {
		t.Fatalf("8000 ms at 1 GB: %v GB-s", h)
	}
}

func BenchmarkCheck(b *testing.B) {
	bu := New(Limits{PerHour: 1e9}, nil)
	budget := function.Budget{GBSecondsPerHour: 1e9}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = bu.Check("f", budget)
		}
	})
}
