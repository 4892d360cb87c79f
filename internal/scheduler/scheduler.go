// Package scheduler keeps pools of instances per version: it hands out a
// warm instance or starts one (a cold start), bounds how many run at once
// per function, queues callers for a bounded time and then throttles them,
// and stops instances that stay idle (scale to zero).
//
// It knows runtimes only through function.Runtime, and nothing of HTTP or
// stores.
package scheduler

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hostless/hostless/internal/function"
)

// Defaults of Config.
const (
	DefaultIdleTimeout    = 5 * time.Minute
	DefaultMaxConcurrency = 64
	DefaultQueueTimeout   = 10 * time.Second
)

// Config bounds the scheduler. The zero value of each field means its default.
type Config struct {
	// IdleTimeout stops an instance idle for this long.
	IdleTimeout time.Duration
	// MaxConcurrency caps the concurrent invocations of one version.
	MaxConcurrency int
	// QueueTimeout is how long a call waits for a free slot before it is
	// throttled.
	QueueTimeout time.Duration
}

// Scheduler owns the pools. Create it with New, then Start the reaper.
type Scheduler struct {
	cfg  Config
	rt   function.Runtime
	mu   sync.Mutex
	pool map[poolKey]*pool
	stop chan struct{}
	done chan struct{}
	// warmers are the reaper's top-ups to min_instances; Close waits for them.
	warmers sync.WaitGroup
}

// New allocates a scheduler over a runtime.
func New(rt function.Runtime, cfg Config) *Scheduler {
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxConcurrency <= 0 {
		cfg.MaxConcurrency = DefaultMaxConcurrency
	}
	if cfg.QueueTimeout <= 0 {
		cfg.QueueTimeout = DefaultQueueTimeout
	}
	return &Scheduler{cfg: cfg, rt: rt, pool: map[poolKey]*pool{}}
}

// poolKey names a version without allocating on the hot path. The creation
// time tells apart a function deleted and created again, whose numbering
// starts afresh.
type poolKey struct {
	project, function string
	number            int
	created           int64
}

func keyOf(v *function.Version) poolKey {
	return poolKey{v.Project, v.Function, v.Number, v.CreatedAt.UnixNano()}
}

type idle struct {
	inst function.Instance
	at   time.Time
}

type pool struct {
	slots chan struct{} // one token per running invocation
	// queueTimeout and idleTimeout are the version's own, or the defaults.
	queueTimeout, idleTimeout time.Duration
	// min instances are kept started (idle or busy) while the pool lives.
	min     int
	warming bool              // a top-up to min runs; guarded by mu
	version *function.Version // what the pool starts, for top-ups
	mu      sync.Mutex
	idle    []idle // a stack: the most recently used is warmest
	retired bool
}

// Lease is an instance checked out of its pool for one invocation.
type Lease struct {
	Instance function.Instance
	// Cold is set when the instance was started for this call.
	Cold bool
	Info function.StartInfo
	// Wait is how long the call queued for a concurrency slot.
	Wait time.Duration
	pool *pool
}

// ErrClosed is returned after Close.
var ErrClosed = errors.New("scheduler closed")

func (s *Scheduler) poolFor(v *function.Version) (*pool, error) {
	key := keyOf(v)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pool == nil {
		return nil, ErrClosed
	}
	p, ok := s.pool[key]
	if !ok {
		p = s.newPool(v)
		s.pool[key] = p
	}
	return p, nil
}

// newPool sizes a pool by the version's own limits, falling back on the
// platform's.
func (s *Scheduler) newPool(v *function.Version) *pool {
	c := v.Spec.Concurrency
	p := &pool{
		slots:        make(chan struct{}, cmp.Or(c.Max, s.cfg.MaxConcurrency)),
		queueTimeout: cmp.Or(time.Duration(c.QueueTimeout), s.cfg.QueueTimeout),
		idleTimeout:  cmp.Or(time.Duration(v.Spec.IdleTimeout), s.cfg.IdleTimeout),
		min:          v.Spec.MinInstances,
		version:      v,
	}
	return p
}

// Warm starts instances of v until it has its min_instances, idle or busy,
// and returns once they run (or the first start fails). The reaper keeps
// them: idle time never takes a pool below its minimum, and it tops up a
// pool that fell below (an instance failed or was recycled).
func (s *Scheduler) Warm(ctx context.Context, v *function.Version) error {
	if v.Spec.MinInstances <= 0 {
		return nil
	}
	p, err := s.poolFor(v)
	if err != nil {
		return err
	}
	return s.warmPool(ctx, p)
}

// warmPool starts instances of p until it has its minimum; a retired pool
// gets none.
func (s *Scheduler) warmPool(ctx context.Context, p *pool) error {
	p.mu.Lock()
	if p.warming {
		p.mu.Unlock()
		return nil
	}
	p.warming = true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.warming = false
		p.mu.Unlock()
	}()
	for {
		p.mu.Lock()
		short := !p.retired && len(p.idle)+len(p.slots) < p.min
		p.mu.Unlock()
		if !short {
			return nil
		}
		// A warm-up takes a slot like a call, so it never runs the version
		// past its concurrency limit; at the limit, the pool is busy enough.
		select {
		case p.slots <- struct{}{}:
		default:
			return nil
		}
		inst, _, err := s.rt.Start(ctx, p.version)
		if err != nil {
			<-p.slots
			return err
		}
		(&Lease{Instance: inst, pool: p}).Release()
	}
}

// Acquire returns a warm instance of v or starts one. It waits up to the
// queue timeout for a slot when v is at its concurrency limit, then
// returns an error matching function.ErrThrottled.
func (s *Scheduler) Acquire(ctx context.Context, v *function.Version) (*Lease, error) {
	p, err := s.poolFor(v)
	if err != nil {
		return nil, err
	}
	var wait time.Duration
	select {
	case p.slots <- struct{}{}:
	default:
		queued := time.Now()
		t := time.NewTimer(p.queueTimeout)
		select {
		case p.slots <- struct{}{}:
			t.Stop()
			wait = time.Since(queued)
		case <-t.C:
			return nil, fmt.Errorf("%w: %s is at its limit of %d", function.ErrThrottled, v.Function, cap(p.slots))
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		inst := p.idle[n-1].inst
		p.idle[n-1] = idle{}
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return &Lease{Instance: inst, Wait: wait, pool: p}, nil
	}
	p.mu.Unlock()
	inst, info, err := s.rt.Start(ctx, v)
	if err != nil {
		<-p.slots
		return nil, err
	}
	return &Lease{Instance: inst, Cold: true, Info: info, Wait: wait, pool: p}, nil
}

// Release returns the instance to its pool, or closes it when it failed,
// can't be reused or its version was retired.
func (l *Lease) Release() {
	p := l.pool
	keep := l.Instance.Reusable()
	if keep {
		p.mu.Lock()
		if p.retired {
			keep = false
		} else {
			p.idle = append(p.idle, idle{inst: l.Instance, at: time.Now()})
		}
		p.mu.Unlock()
	}
	if !keep {
		_ = l.Instance.Close(context.Background())
	}
	<-p.slots
}

// Retire stops the idle instances of a version that no longer serves; busy
// ones stop when they are released.
func (s *Scheduler) Retire(v *function.Version) {
	s.mu.Lock()
	p := s.pool[keyOf(v)]
	delete(s.pool, keyOf(v))
	s.mu.Unlock()
	if p != nil {
		p.retire()
	}
}

// RetireFunction retires the pools of every version of a function: it was
// deleted.
func (s *Scheduler) RetireFunction(project, name string) {
	var pools []*pool
	s.mu.Lock()
	for k, p := range s.pool {
		if k.project == project && k.function == name {
			pools = append(pools, p)
			delete(s.pool, k)
		}
	}
	s.mu.Unlock()
	for _, p := range pools {
		p.retire()
	}
	// A top-up stops after the start it is in: its pool is retired.
	s.warmers.Wait()
}

func (p *pool) retire() {
	p.mu.Lock()
	p.retired = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, i := range idle {
		_ = i.inst.Close(context.Background())
	}
}

// Start runs the reaper that stops idle instances.
func (s *Scheduler) Start() {
	s.stop = make(chan struct{})
	s.done = make(chan struct{})
	// Versions may set shorter idle timeouts than the default: look at
	// least every second.
	every := max(min(s.cfg.IdleTimeout/4, time.Second), 10*time.Millisecond)
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case now := <-t.C:
				s.reap(now)
			}
		}
	}()
}

// reap stops instances idle longer than the idle timeout.
func (s *Scheduler) reap(now time.Time) {
	s.mu.Lock()
	pools := make([]*pool, 0, len(s.pool))
	for _, p := range s.pool {
		pools = append(pools, p)
	}
	s.mu.Unlock()
	for _, p := range pools {
		var stale []idle
		p.mu.Lock()
		// The stack's bottom is the least recently used.
		n := 0
		for n < len(p.idle) && now.Sub(p.idle[n].at) >= p.idleTimeout {
			n++
		}
		// Keep min_instances started; busy ones count.
		n = max(0, min(n, len(p.idle)+len(p.slots)-p.min))
		if n > 0 {
			stale = append(stale, p.idle[:n]...)
			p.idle = append(p.idle[:0], p.idle[n:]...)
		}
		topUp := p.min > 0 && !p.retired && !p.warming && len(p.idle)+len(p.slots) < p.min
		p.mu.Unlock()
		if topUp {
			// An instance failed or was recycled: start another, off the
			// reaper's loop (a start may have to compile first).
			s.warmers.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				_ = s.warmPool(ctx, p)
			})
		}
		for _, i := range stale {
			_ = i.inst.Close(context.Background())
		}
	}
}

// Stats counts instances.
type Stats struct {
	Idle, Busy int
}

// Stats returns instance counts across pools.
func (s *Scheduler) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	var st Stats
	for _, p := range s.pool {
		p.mu.Lock()
		st.Idle += len(p.idle)
		p.mu.Unlock()
		st.Busy += len(p.slots)
	}
	return st
}

// Close stops the reaper and every idle instance. Busy instances close as
// they are released.
func (s *Scheduler) Close() {
	if s.stop != nil {
		close(s.stop)
		<-s.done
		s.stop = nil
	}
	s.mu.Lock()
	pools := s.pool
	s.pool = nil
	s.mu.Unlock()
	for _, p := range pools {
		p.retire()
	}
	// A top-up stops after the start it is in: its pool is retired.
	s.warmers.Wait()
}
