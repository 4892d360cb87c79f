package auth

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Throttle is a token bucket per key (an IP, an account, a user, an API
// key), bounded in how many keys it tracks: when full, it forgets the
// buckets that have refilled (they hold nothing a fresh one wouldn't), and
// if none has, the oldest half of its keys at random, so that a flood of
// new keys costs memory once, not forever.
type Throttle struct {
	limit rate.Limit
	burst int
	max   int

	mu sync.Mutex
	m  map[string]*rate.Limiter
}

// NewThrottle allows burst events at once per key, refilled at perSecond.
// perSecond <= 0 means no limit.
func NewThrottle(perSecond float64, burst, maxKeys int) *Throttle {
	if maxKeys <= 0 {
		maxKeys = 100_000
	}
	if burst < 1 {
		burst = 1
	}
	return &Throttle{limit: rate.Limit(perSecond), burst: burst, max: maxKeys, m: make(map[string]*rate.Limiter)}
}

func (t *Throttle) limiter(key string, now time.Time) *rate.Limiter {
	l, ok := t.m[key]
	if ok {
		return l
	}
	if len(t.m) >= t.max {
		n := 0
		for k, l := range t.m {
			if l.TokensAt(now) >= float64(t.burst) || n%2 == 0 {
				delete(t.m, k)
			}
			n++
		}
	}
	l = rate.NewLimiter(t.limit, t.burst)
	t.m[key] = l
	return l
}

// Allow spends one event of key's bucket, or reports how long until one
// is available.
func (t *Throttle) Allow(key string, now time.Time) (bool, time.Duration) {
	if t == nil || t.limit <= 0 {
		return true, 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.limiter(key, now)
	r := l.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// spend is Allow that also returns a func giving the event back, for an
// event that turns out not to count (a login that succeeded). Spending
// before the work and refunding after, rather than checking before and
// spending after a failure, keeps the limit when many arrive at once.
func (t *Throttle) spend(key string, now time.Time) (bool, time.Duration, func()) {
	if t == nil || t.limit <= 0 {
		return true, 0, func() {}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.limiter(key, now)
	r := l.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d, func() {}
	}
	// CancelAt restores the event only at or before the time it was
	// reserved for: now.
	return true, 0, func() { r.CancelAt(now) }
}

// Has reports whether key's bucket holds an event, without spending it,
// or how long until it does.
func (t *Throttle) Has(key string, now time.Time) (bool, time.Duration) {
	if t == nil || t.limit <= 0 {
		return true, 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	l, ok := t.m[key]
	if !ok {
		return true, 0
	}
	if tok := l.TokensAt(now); tok < 1 {
		return false, time.Duration((1 - tok) / float64(t.limit) * float64(time.Second))
	}
	return true, 0
}
