package invoker

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
)

// routeKey names an alias of a function without allocating on the hot path.
type routeKey struct{ project, name, alias string }

type pinKey struct {
	project, name string
	version       int
}

// route is what an alias points at, resolved to versions.
type route struct {
	v      *function.Version
	canary *function.Version // nil without a canary
	weight int               // percent of the calls that go to canary
}

// pick chooses the version for one call: the canary with probability
// weight/100, else the version. math/rand/v2's top-level source is per
// thread and lock-free, so a split costs a few nanoseconds.
func (r *route) pick() *function.Version {
	if r.canary != nil && rand.IntN(100) < r.weight {
		return r.canary
	}
	return r.v
}

type entry struct {
	r       *route    // nil: not found
	err     error     // for not-found entries: the answer
	expires time.Time // for not-found entries
}

// maxPinned bounds the versions cached by number.
const maxPinned = 4096

// Resolve returns the version that serves the next call of a function
// through its live alias: with a canary, the canary or the version, by
// weight.
func (iv *Invoker) Resolve(ctx context.Context, project, name string) (*function.Version, error) {
	return iv.ResolveAlias(ctx, project, name, function.LiveAlias)
}

// ResolveAlias returns the version that serves the next call through an
// alias of a function, from memory when it can. A function that doesn't
// exist is store.ErrNotFound; an alias it lacks (or a name no alias can
// have), an error matching function.ErrAliasNotFound.
func (iv *Invoker) ResolveAlias(ctx context.Context, project, name, alias string) (*function.Version, error) {
	r, err := iv.route(ctx, project, name, alias)
	if err != nil {
		return nil, err
	}
	return r.pick(), nil
}

func (iv *Invoker) route(ctx context.Context, project, name, alias string) (*route, error) {
	if alias != function.LiveAlias && function.ValidAliasName(alias) != nil {
		// No such alias can exist; the function may not either, and that is
		// the answer then (through the cache of unknown names).
		if _, err := iv.route(ctx, project, name, function.LiveAlias); err != nil {
			return nil, err
		}
		return nil, &function.AliasNotFoundError{Function: name, Alias: alias}
	}
	key := routeKey{project, name, alias}
	iv.mu.RLock()
	e, ok := iv.cache[key]
	gen := iv.gen
	iv.mu.RUnlock()
	if ok {
		if e.r != nil {
			return e.r, nil
		}
		if time.Now().Before(e.expires) {
			return nil, e.err
		}
	}
	a, err := iv.fns.GetAlias(ctx, project, name, alias)
	switch {
	case errors.Is(err, function.ErrAliasNotFound):
		err = &function.AliasNotFoundError{Function: name, Alias: alias}
		iv.remember(key, gen, entry{err: err, expires: time.Now().Add(negativeTTL)})
		return nil, err
	case errors.Is(err, store.ErrNotFound):
		iv.remember(key, gen, entry{err: store.ErrNotFound, expires: time.Now().Add(negativeTTL)})
		return nil, store.ErrNotFound
	case err != nil:
		return nil, err
	}
	// Versions are immutable: only the alias can be stale, and a change
	// bumps gen, so a resolve that raced one doesn't cache.
	v, err := iv.fns.GetVersion(ctx, project, name, a.Version)
	if err != nil {
		return nil, err // ErrNotFound: deleted between the reads
	}
	r := &route{v: &v}
	if a.HasCanary() {
		c, err := iv.fns.GetVersion(ctx, project, name, a.CanaryVersion)
		if err != nil {
			return nil, err
		}
		r.canary, r.weight = &c, a.CanaryWeight
	}
	iv.remember(key, gen, entry{r: r})
	return r, nil
}

// remember caches what a resolve found, unless a function changed since
// the resolve began: then what it read may be stale. (One generation for
// all functions: a deploy makes concurrent resolves of other functions
// skip caching once, which costs a store read, never a wrong answer.)
func (iv *Invoker) remember(key routeKey, gen uint64, e entry) {
	iv.mu.Lock()
	defer iv.mu.Unlock()
	if iv.gen != gen {
		return
	}
	if e.r == nil {
		if iv.negative >= maxNegative {
			for k, old := range iv.cache {
				if old.r == nil {
					delete(iv.cache, k)
				}
			}
			iv.negative = 0
		}
		if old, ok := iv.cache[key]; !ok || old.r != nil {
			iv.negative++
		}
	} else if old, ok := iv.cache[key]; ok && old.r == nil {
		iv.negative--
	}
	iv.cache[key] = e
}

// resolvePinned returns a version asked for by number. The function is
// resolved first, through the cache that keeps floods of unknown names
// away from the store; a version it lacks is function.ErrVersionNotFound.
func (iv *Invoker) resolvePinned(ctx context.Context, project, name string, version int) (*function.Version, error) {
	live, err := iv.route(ctx, project, name, function.LiveAlias)
	if err != nil {
		return nil, err
	}
	if live.v.Number == version {
		return live.v, nil
	}
	if live.canary != nil && live.canary.Number == version {
		return live.canary, nil
	}
	key := pinKey{project, name, version}
	iv.mu.RLock()
	v, ok := iv.pinned[key]
	gen := iv.gen
	iv.mu.RUnlock()
	if ok {
		if v == nil {
			return nil, &function.VersionNotFoundError{Function: name, Version: version}
		}
		return v, nil
	}
	got, err := iv.fns.GetVersion(ctx, project, name, version)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	var found *function.Version
	if err == nil {
		found = &got
	}
	iv.mu.Lock()
	if iv.gen == gen { // not changed meanwhile
		if len(iv.pinned) >= maxPinned {
			clear(iv.pinned)
		}
		iv.pinned[key] = found // nil remembers a missing version until the next change
	}
	iv.mu.Unlock()
	if found == nil {
		return nil, &function.VersionNotFoundError{Function: name, Version: version}
	}
	return found, nil
}

// changeTimeout bounds the store reads that follow a change.
const changeTimeout = 10 * time.Second

// Changed tells the invoker that a function was deployed, deleted, or had
// an alias changed. The next call resolves it again; the versions that no
// alias serves any more drain (their idle instances stop now, busy ones
// after their call; calls by number start them again); the versions that
// serve compile in the background and start their min_instances.
func (iv *Invoker) Changed(project, name string) {
	iv.mu.Lock()
	for k, e := range iv.cache {
		if k.project == project && k.name == name {
			if e.r == nil {
				iv.negative--
			}
			delete(iv.cache, k)
		}
	}
	for k := range iv.pinned {
		if k.project == project && k.name == name { // deleted versions must not serve
			delete(iv.pinned, k)
		}
	}
	iv.gen++
	iv.mu.Unlock()

	served, err := iv.drain(project, name)
	if errors.Is(err, store.ErrNotFound) {
		// Deleted: every version's instances stop, and its metrics go,
		// without waiting behind compiles.
		go func() {
			iv.sched.RetireFunction(project, name)
			if iv.obs != nil {
				iv.obs.Forget(name)
			}
		}()
		return
	}
	if err != nil {
		// The store is down: the first call will say. Instances of versions
		// no longer served stop when idle.
		iv.log.Warn("read what serves after a change", "function", name, "err", err)
		return
	}
	iv.prepare(project, name, served)
}

// drain reads which versions of a function its aliases serve and tells the
// scheduler, which drains the others. A deleted function drains entirely
// and is store.ErrNotFound.
func (iv *Invoker) drain(project, name string) ([]*function.Version, error) {
	iv.changeMu.Lock()
	defer iv.changeMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), changeTimeout)
	defer cancel()
	served, err := iv.served(ctx, project, name)
	if err == nil || errors.Is(err, store.ErrNotFound) {
		iv.sched.Drain(project, name, served)
	}
	return served, err
}

// served returns the versions a function's aliases point at, live's first.
func (iv *Invoker) served(ctx context.Context, project, name string) ([]*function.Version, error) {
	as, err := iv.fns.ListAliases(ctx, project, name)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(as, func(a, b function.Alias) int {
		switch {
		case a.Name == b.Name:
			return 0
		case a.Name == function.LiveAlias:
			return -1
		case b.Name == function.LiveAlias:
			return 1
		}
		return 0
	})
	var numbers []int
	for _, a := range as {
		for _, n := range []int{a.Version, a.CanaryVersion} {
			if n != 0 && !slices.Contains(numbers, n) {
				numbers = append(numbers, n)
			}
		}
	}
	vs := make([]*function.Version, 0, len(numbers))
	for _, n := range numbers {
		v, err := iv.fns.GetVersion(ctx, project, name, n)
		if err != nil {
			return nil, err // ErrNotFound: deleted meanwhile
		}
		vs = append(vs, &v)
	}
	return vs, nil
}

// prepare compiles the versions that serve, in the background, and starts
// their min_instances.
func (iv *Invoker) prepare(project, name string, served []*function.Version) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		select {
		case iv.compiles <- struct{}{}:
			defer func() { <-iv.compiles }()
		case <-iv.stop:
			return
		}
		warmed := false
		for _, v := range served {
			select { // stopped while waiting for a slot, or meanwhile
			case <-iv.stop:
				return
			default:
			}
			if err := iv.rt.Prepare(ctx, v); err != nil {
				iv.log.Warn("compile function", "function", name, "version", v.Number, "err", err)
				continue
			}
			if v.Spec.MinInstances > 0 {
				if err := iv.sched.Warm(ctx, v); err != nil {
					iv.log.Warn("start min instances", "function", name, "version", v.Number, "err", err)
				}
				warmed = true
			}
		}
		// A change that came meanwhile may have stopped serving a version
		// warmed here, after it drained: drain again with what serves now.
		if warmed {
			if _, err := iv.drain(project, name); errors.Is(err, store.ErrNotFound) {
				iv.sched.RetireFunction(project, name)
			}
		}
	}()
}

// WarmAll starts, in the background as a deploy does, the min_instances of
// every version an alias serves in a project, where it has them: at server
// start.
func (iv *Invoker) WarmAll(ctx context.Context, project string) error {
	fns, err := iv.fns.ListFunctions(ctx, project)
	if err != nil {
		return err
	}
	for _, f := range fns {
		served, err := iv.served(ctx, project, f.Name)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return err
		}
		if slices.ContainsFunc(served, func(v *function.Version) bool { return v.Spec.MinInstances > 0 }) {
			iv.prepare(project, f.Name, served)
		}
	}
	return nil
}
