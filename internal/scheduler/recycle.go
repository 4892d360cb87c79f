package scheduler

import "github.com/hostless/hostless/internal/function"

// Recycle retires the pool of every version match selects, as Retire
// does: idle instances stop now, busy ones when their call ends, and the
// next call starts fresh instances (which read their configuration anew,
// e.g. the secrets a version names). It returns the versions whose pools
// kept min_instances, for the caller to warm again.
func (s *Scheduler) Recycle(match func(v *function.Version) bool) []*function.Version {
	var pools []*pool
	s.mu.Lock()
	for k, p := range s.pool {
		if match(p.version) {
			pools = append(pools, p)
			delete(s.pool, k)
		}
	}
	s.mu.Unlock()
	var warm []*function.Version
	for _, p := range pools {
		p.mu.Lock()
		if p.min > 0 && !p.draining {
			warm = append(warm, p.version)
		}
		p.mu.Unlock()
		p.retire()
	}
	return warm
}
