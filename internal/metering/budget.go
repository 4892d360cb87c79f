// Package metering counts what functions use, in GB-seconds (billed
// milliseconds times memory), and enforces budgets: a ceiling per clock
// hour and per UTC day, per function and for the whole platform. Past a
// ceiling, calls are refused until the window ends, so a spike costs at
// most the budget (plus the calls already running when it was reached:
// at most concurrency x timeout x memory).
//
// Usage is counted from every invocation record this server makes, and is
// seeded at start from the records in the store, so a restart doesn't
// reset a budget. Each server counts what it ran plus what the store held
// when it started: in a cluster each node sees the others' usage only
// from its start, until usage is shared through the store on a tick (the
// cluster issue).
//
// Reports (usage.go) sum the hourly usage rows the store keeps into
// periods and functions, and cost them at a price table, beside the cost
// of always-on servers sized for the same workload's peak.
package metering

import (
	"fmt"
	"sync"
	"time"

	"github.com/hostless/hostless/internal/function"
)

// GBSeconds is what one invocation costs.
func GBSeconds(billedMS int64, memoryMB int) float64 {
	return float64(billedMS) / 1000 * float64(memoryMB) / 1024
}

// Limits are GB-seconds per hour and per day; 0 sets no limit.
type Limits struct {
	PerHour float64
	PerDay  float64
}

// window is one clock hour or UTC day of usage.
type window struct {
	span  time.Duration
	start time.Time
	byFn  map[string]float64
	total float64
}

func (w *window) roll(now time.Time) {
	if start := now.UTC().Truncate(w.span); !start.Equal(w.start) {
		w.start, w.byFn, w.total = start, map[string]float64{}, 0
	}
}

// Budgets keeps the usage of the current hour and day.
type Budgets struct {
	platform Limits
	now      func() time.Time

	mu   sync.Mutex
	hour window
	day  window
}

// New returns budgets with the platform's limits; now is the clock (nil:
// time.Now).
func New(platform Limits, now func() time.Time) *Budgets {
	if now == nil {
		now = time.Now
	}
	b := &Budgets{platform: platform, now: now,
		hour: window{span: time.Hour}, day: window{span: 24 * time.Hour}}
	t := now()
	b.hour.roll(t)
	b.day.roll(t)
	return b
}

// Windows returns the starts of the current hour and day, for seeding.
func (b *Budgets) Windows() (hour, day time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.now()
	b.hour.roll(t)
	b.day.roll(t)
	return b.hour.start, b.day.start
}

// Seed adds what the store holds for the windows that start at hour and
// day (billed ms x MB per function, as store.UsageSince returns it).
func (b *Budgets) Seed(hourStart time.Time, hourUsage map[string]int64, dayStart time.Time, dayUsage map[string]int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range []struct {
		w     *window
		start time.Time
		usage map[string]int64
	}{{&b.hour, hourStart, hourUsage}, {&b.day, dayStart, dayUsage}} {
		if !s.w.start.Equal(s.start) {
			continue // the window rolled meanwhile: its usage is stale
		}
		for fn, n := range s.usage {
			gbs := float64(n) / 1000 / 1024
			s.w.byFn[fn] += gbs
			s.w.total += gbs
		}
	}
}

// Add counts an invocation's usage.
func (b *Budgets) Add(fn string, billedMS int64, memoryMB int) {
	if billedMS <= 0 {
		return
	}
	gbs := GBSeconds(billedMS, memoryMB)
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.now()
	for _, w := range []*window{&b.hour, &b.day} {
		w.roll(t)
		w.byFn[fn] += gbs
		w.total += gbs
	}
}

// Check refuses a call of fn when fn's budget or the platform's is spent
// for the current hour or day: a *function.ThrottleError that says which,
// and when it resets.
func (b *Budgets) Check(fn string, budget function.Budget) error {
	if budget == (function.Budget{}) && b.platform == (Limits{}) {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.now()
	b.hour.roll(t)
	b.day.roll(t)
	for _, c := range []struct {
		w     *window
		limit float64
		per   string
	}{{&b.hour, budget.GBSecondsPerHour, "hour"}, {&b.day, budget.GBSecondsPerDay, "day"}} {
		if c.limit > 0 && c.w.byFn[fn] >= c.limit {
			return spent(function.ThrottleBudget, fmt.Sprintf("function %q used its budget of %g GB-seconds this %s", fn, c.limit, c.per), c.w, t)
		}
	}
	for _, c := range []struct {
		w     *window
		limit float64
		per   string
	}{{&b.hour, b.platform.PerHour, "hour"}, {&b.day, b.platform.PerDay, "day"}} {
		if c.limit > 0 && c.w.total >= c.limit {
			return spent(function.ThrottlePlatformBudget, fmt.Sprintf("the platform used its budget of %g GB-seconds this %s", c.limit, c.per), c.w, t)
		}
	}
	return nil
}

func spent(reason, msg string, w *window, now time.Time) error {
	end := w.start.Add(w.span)
	return &function.ThrottleError{Reason: reason, RetryAfter: end.Sub(now),
		Msg: msg + "; it resets at " + end.Format(time.RFC3339)}
}

// Usage returns fn's GB-seconds in the current hour and day.
func (b *Budgets) Usage(fn string) (hour, day float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.now()
	b.hour.roll(t)
	b.day.roll(t)
	return b.hour.byFn[fn], b.day.byFn[fn]
}
