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
	"net"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/hostless/hostless/internal/function"
)

// Defaults of Config.
const (
	DefaultIdleTimeout    = 5 * time.Minute
	DefaultMaxConcurrency = 64
	DefaultQueueTimeout   = 10 * time.Second
	// DefaultMaxTotalConcurrency caps the invocations of all functions at once.
	DefaultMaxTotalConcurrency = 1000
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
	// MaxTotalConcurrency caps the concurrent invocations of all versions
	// together: the platform's own backpressure.
	MaxTotalConcurrency int
	// MaxMemoryMB caps the memory limits of all started instances together,
	// idle or busy; 0 sets no cap. At the cap, a cold start first stops
	// the least recently used idle instances of any version, then is
	// throttled.
	MaxMemoryMB int
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
	// total holds a token per running invocation across versions.
	total chan struct{}
	// memUsed sums the memory limits of started instances (MB).
	memMu   sync.Mutex
	memUsed int
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
	if cfg.MaxTotalConcurrency <= 0 {
		cfg.MaxTotalConcurrency = DefaultMaxTotalConcurrency
	}
	return &Scheduler{cfg: cfg, rt: rt, pool: map[poolKey]*pool{}, total: make(chan struct{}, cfg.MaxTotalConcurrency)}
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
	// min instances are kept started (idle or busy); Warm sets it for a
	// version that serves, Drain clears it. Guarded by mu.
	min     int
	warming bool // a top-up to min runs; guarded by mu
	// draining: no alias serves the version; the reaper drops the pool
	// once it has no instance. Guarded by mu.
	draining bool
	version  *function.Version // what the pool starts, for top-ups
	s        *Scheduler
	// limiter and perIP are the version's rate_limit; nil without one.
	limiter *rate.Limiter
	perIP   map[string]*rate.Limiter // guarded by mu
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
		version:      v,
		s:            s,
	}
	if r := v.Spec.RateLimit; r.RPS > 0 {
		p.limiter = rate.NewLimiter(rate.Limit(r.RPS), cmp.Or(r.Burst, max(1, int(r.RPS))))
	}
	if v.Spec.RateLimit.PerIPRPS > 0 {
		p.perIP = map[string]*rate.Limiter{}
	}
	return p
}

// maxClients bounds the per-IP rate limiters of one version.
const maxClients = 10000

// Allow applies v's rate_limit to one call from remote (the caller's
// "ip:port", or an IP), before it takes a concurrency slot: refused calls
// return a function.ThrottleError with reason rate or rate_ip, at once.
// Without a rate limit it costs one branch.
func (s *Scheduler) Allow(v *function.Version, remote string) error {
	r := v.Spec.RateLimit
	if r.RPS == 0 && r.PerIPRPS == 0 {
		return nil
	}
	p, err := s.poolFor(v)
	if err != nil {
		return err
	}
	// Per client first: a client past its own limit must not use up the
	// version's tokens that other clients need.
	if err := p.allowClient(clientIP(remote), r); err != nil {
		return err
	}
	if p.limiter != nil && !p.limiter.Allow() {
		return &function.ThrottleError{Reason: function.ThrottleRate, RetryAfter: nextToken(p.limiter),
			Msg: fmt.Sprintf("%s is at its rate limit of %g calls per second", v.Function, r.RPS)}
	}
	return nil
}

// clientIP is the host of a RemoteAddr ("ip:port"), or all of it.
func clientIP(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}

// allowClient applies the per-IP bucket of one client.
func (p *pool) allowClient(client string, r function.RateLimit) error {
	if p.perIP == nil {
		return nil
	}
	now := time.Now()
	p.mu.Lock()
	l := p.perIP[client]
	if l == nil {
		if len(p.perIP) >= maxClients {
			p.sweepClients(now)
		}
		l = rate.NewLimiter(rate.Limit(r.PerIPRPS), cmp.Or(r.PerIPBurst, max(1, int(r.PerIPRPS))))
		p.perIP[client] = l
	}
	ok := l.AllowN(now, 1)
	var wait time.Duration
	if !ok {
		wait = nextToken(l)
	}
	p.mu.Unlock()
	if !ok {
		return &function.ThrottleError{Reason: function.ThrottleRateIP, RetryAfter: wait,
			Msg: fmt.Sprintf("this client is at %s's rate limit of %g calls per second", p.version.Function, r.PerIPRPS)}
	}
	return nil
}

// nextToken is how long until l has a token again.
func nextToken(l *rate.Limiter) time.Duration {
	missing := 1 - l.Tokens()
	if missing <= 0 || l.Limit() <= 0 {
		return 0
	}
	return time.Duration(missing / float64(l.Limit()) * float64(time.Second))
}

// sweepClients makes room among the per-IP limiters: a full bucket is the
// same as none, so those go first; if every client is still mid-burst,
// arbitrary ones go (they may burst again: memory stays bounded).
func (p *pool) sweepClients(now time.Time) {
	for ip, l := range p.perIP {
		if l.TokensAt(now) >= float64(l.Burst()) {
			delete(p.perIP, ip)
		}
	}
	for ip := range p.perIP {
		if len(p.perIP) < maxClients*9/10 {
			break
		}
		delete(p.perIP, ip)
	}
}

// Warm keeps v's min_instances started, idle or busy: call it for a
// version that serves. It returns once they run (or the first start
// fails). The reaper keeps them: idle time never takes a pool below its
// minimum, and it tops up a pool that fell below (an instance failed or
// was recycled). A pool that only Acquire made keeps no minimum: calls to
// a version by number don't make it keep instances.
func (s *Scheduler) Warm(ctx context.Context, v *function.Version) error {
	if v.Spec.MinInstances <= 0 {
		return nil
	}
	for {
		p, err := s.poolFor(v)
		if err != nil {
			return err
		}
		p.mu.Lock()
		if p.retired { // the reaper dropped it just now: take the next one
			p.mu.Unlock()
			continue
		}
		p.min, p.draining = v.Spec.MinInstances, false
		p.mu.Unlock()
		return s.warmPool(ctx, p)
	}
}

// Drain is told which versions of a function its aliases serve after a
// change. The pools of the other versions drain: their idle instances stop
// now and min_instances are no longer kept; busy ones finish their call
// and go back to the pool, so calls by version number keep working, and
// the reaper stops them when idle and then drops the pool.
func (s *Scheduler) Drain(project, name string, served []*function.Version) {
	keep := make(map[poolKey]bool, len(served))
	for _, v := range served {
		keep[keyOf(v)] = true
	}
	var pools []*pool
	s.mu.Lock()
	for k, p := range s.pool {
		if k.project == project && k.function == name && !keep[k] {
			pools = append(pools, p)
		}
	}
	s.mu.Unlock()
	for _, p := range pools {
		p.mu.Lock()
		p.min, p.draining = 0, true
		idle := p.idle
		p.idle = nil
		p.mu.Unlock()
		for _, i := range idle {
			p.closeInstance(i.inst)
		}
	}
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
		select {
		case s.total <- struct{}{}:
		default:
			<-p.slots
			return nil
		}
		if !s.reserve(p) {
			p.free()
			return nil // the platform's memory is full of busy instances
		}
		inst, _, err := s.rt.Start(ctx, p.version)
		if err != nil {
			s.unreserve(p)
			p.free()
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
	queued := time.Now()
	wait, err := take(ctx, p.slots, p.queueTimeout)
	if err != nil {
		if errors.Is(err, errQueueTimeout) {
			err = &function.ThrottleError{Reason: function.ThrottleConcurrency,
				Msg: fmt.Sprintf("%s is at its limit of %d", v.Function, cap(p.slots))}
		}
		return nil, err
	}
	// The rest of the queue timeout for the platform-wide cap.
	if w, err := take(ctx, s.total, p.queueTimeout-time.Since(queued)); err != nil {
		<-p.slots
		if errors.Is(err, errQueueTimeout) {
			err = &function.ThrottleError{Reason: function.ThrottlePlatformConcurrency,
				Msg: fmt.Sprintf("the platform runs its limit of %d invocations", cap(s.total))}
		}
		return nil, err
	} else if w > 0 {
		wait = time.Since(queued)
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
	if !s.reserve(p) {
		p.free()
		return nil, &function.ThrottleError{Reason: function.ThrottlePlatformMemory,
			Msg: fmt.Sprintf("the platform's instances use its memory limit of %d MB", s.cfg.MaxMemoryMB)}
	}
	inst, info, err := s.rt.Start(ctx, v)
	if err != nil {
		s.unreserve(p)
		p.free()
		return nil, err
	}
	return &Lease{Instance: inst, Cold: true, Info: info, Wait: wait, pool: p}, nil
}

// errQueueTimeout: take waited its whole timeout.
var errQueueTimeout = errors.New("queue timeout")

// take puts a token into ch, waiting up to timeout for room; it returns
// how long it waited (0 when there was room at once).
func take(ctx context.Context, ch chan struct{}, timeout time.Duration) (time.Duration, error) {
	select {
	case ch <- struct{}{}:
		return 0, nil
	default:
	}
	if timeout <= 0 {
		return 0, errQueueTimeout
	}
	start := time.Now()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case ch <- struct{}{}:
		return time.Since(start), nil
	case <-t.C:
		return time.Since(start), errQueueTimeout
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// free gives back a call's slots: its version's and the platform's.
func (p *pool) free() {
	<-p.slots
	<-p.s.total
}

// reserve accounts for the memory of an instance p is about to start,
// stopping the least recently used idle instances of any version while the
// platform's cap would be passed. It reports false when even that can't
// make room.
func (s *Scheduler) reserve(p *pool) bool {
	mb := p.version.Spec.MemoryMB
	for {
		s.memMu.Lock()
		if s.cfg.MaxMemoryMB <= 0 || s.memUsed+mb <= s.cfg.MaxMemoryMB {
			s.memUsed += mb
			s.memMu.Unlock()
			return true
		}
		s.memMu.Unlock()
		if !s.evictOldestIdle() {
			return false
		}
	}
}

// unreserve gives back the memory of an instance of p that stopped (or
// never started).
func (s *Scheduler) unreserve(p *pool) {
	s.memMu.Lock()
	s.memUsed -= p.version.Spec.MemoryMB
	s.memMu.Unlock()
}

// closeInstance stops an instance of p and gives back its memory.
func (p *pool) closeInstance(inst function.Instance) {
	_ = inst.Close(context.Background())
	p.s.unreserve(p)
}

// evictOldestIdle stops the idle instance, of any version, that has been
// idle longest, keeping min_instances; false if there is none.
func (s *Scheduler) evictOldestIdle() bool {
	s.mu.Lock()
	var oldest *pool
	var at time.Time
	for _, p := range s.pool {
		p.mu.Lock()
		if len(p.idle) > 0 && len(p.idle)+len(p.slots) > p.min && (oldest == nil || p.idle[0].at.Before(at)) {
			oldest, at = p, p.idle[0].at
		}
		p.mu.Unlock()
	}
	s.mu.Unlock()
	if oldest == nil {
		return false
	}
	oldest.mu.Lock()
	if len(oldest.idle) == 0 { // taken meanwhile: look again
		oldest.mu.Unlock()
		return true
	}
	inst := oldest.idle[0].inst
	oldest.idle = append(oldest.idle[:0], oldest.idle[1:]...)
	oldest.mu.Unlock()
	oldest.closeInstance(inst)
	return true
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
		p.closeInstance(l.Instance)
	}
	p.free()
}

// Retire ends a version's pool at once: its idle instances stop, busy ones
// stop when they are released, and a later call starts a new pool. (A
// change of what aliases serve uses Drain, which lets calls by number keep
// the busy instances warm.)
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
		p.closeInstance(i.inst)
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

// reap stops instances idle longer than the idle timeout, and drops the
// pools of drained versions that have no instance left.
func (s *Scheduler) reap(now time.Time) {
	s.mu.Lock()
	pools := make([]*pool, 0, len(s.pool))
	for k, p := range s.pool {
		p.mu.Lock()
		if p.draining && !p.warming && len(p.idle) == 0 && len(p.slots) == 0 {
			// A caller that took the pool just before sees it retired and
			// closes its instance after its call.
			p.retired = true
			delete(s.pool, k)
		} else {
			pools = append(pools, p)
		}
		p.mu.Unlock()
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
			p.closeInstance(i.inst)
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

// Pools returns how many versions have a pool: one that runs, keeps or
// limits instances (a drained version's pool goes once its instances do).
func (s *Scheduler) Pools() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pool)
}

// MemoryMB returns the memory limits of all started instances together.
func (s *Scheduler) MemoryMB() int {
	s.memMu.Lock()
	defer s.memMu.Unlock()
	return s.memUsed
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

// DefaultConcurrency is the concurrency limit of a version whose spec sets
// none (Config.MaxConcurrency, with its default).
func (s *Scheduler) DefaultConcurrency() int { return s.cfg.MaxConcurrency }
