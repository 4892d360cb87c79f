package invoker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/scheduler"
	"github.com/hostless/hostless/internal/store"
	"github.com/hostless/hostless/internal/store/sqlite"
)

// pausingStore is a real store whose GetVersion can be held after it read:
// the window between a resolve's reads and its caching.
type pausingStore struct {
	store.Store
	reads           atomic.Int64 // GetFunction and GetVersion calls
	pause           atomic.Bool  // the next GetVersion pauses, once
	reached, resume chan struct{}
}

func (p *pausingStore) GetFunction(ctx context.Context, project, name string) (function.Function, error) {
	p.reads.Add(1)
	return p.Store.GetFunction(ctx, project, name)
}

func (p *pausingStore) GetVersion(ctx context.Context, project, name string, version int) (function.Version, error) {
	p.reads.Add(1)
	fn, err := p.Store.GetVersion(ctx, project, name, version)
	if p.pause.CompareAndSwap(true, false) {
		p.reached <- struct{}{}
		<-p.resume
	}
	return fn, err
}

func newResolver(t testing.TB) (*Invoker, *pausingStore) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ps := &pausingStore{Store: db}
	sched := scheduler.New(nil, scheduler.Config{})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	iv := New(ps, noRuntime{}, sched, nil, log)
	t.Cleanup(func() { _ = iv.Wait(context.Background()) })
	return iv, ps
}

// noRuntime prepares anything and starts nothing: resolving needs no code.
type noRuntime struct{}

func (noRuntime) Prepare(context.Context, *function.Version) error { return nil }
func (noRuntime) Start(context.Context, *function.Version) (function.Instance, function.StartInfo, error) {
	return nil, function.StartInfo{}, errors.New("noRuntime starts nothing")
}

func TestUnknownNamesStayBounded(t *testing.T) {
	iv, _ := newResolver(t)
	for i := range 3 * maxNegative {
		if _, err := iv.Resolve(context.Background(), "default", fmt.Sprintf("nope-%d", i)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("err = %v", err)
		}
	}
	iv.mu.RLock()
	n, neg := len(iv.cache), iv.negative
	iv.mu.RUnlock()
	if n > maxNegative || neg != n {
		t.Errorf("cache holds %d entries (%d counted negative), want at most %d", n, neg, maxNegative)
	}
}

func TestResolveRacingADeleteDoesNotCacheTheOldVersion(t *testing.T) {
	iv, ps := newResolver(t)
	ctx := context.Background()
	spec := function.Spec{Runtime: "wasm", Code: "sha256:" + fmt.Sprintf("%064d", 1)}
	spec.Normalize()
	if _, err := ps.PutFunction(ctx, "default", "f", spec); err != nil {
		t.Fatal(err)
	}
	ps.reached, ps.resume = make(chan struct{}), make(chan struct{})
	ps.pause.Store(true)
	done := make(chan error, 1)
	go func() { _, err := iv.Resolve(ctx, "default", "f"); done <- err }()
	<-ps.reached // the resolve has read version 1
	if err := ps.DeleteFunction(ctx, "default", "f"); err != nil {
		t.Fatal(err)
	}
	iv.Changed("default", "f")
	close(ps.resume)
	<-done
	if err := iv.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := iv.Resolve(ctx, "default", "f"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after delete, Resolve err = %v, want not found", err)
	}
}

// TestWaitRefusesNewInvocations: invocations racing Wait neither panic nor
// slip in after it; once it returned, Invoke answers unavailable.
func TestWaitRefusesNewInvocations(t *testing.T) {
	iv, _ := newResolver(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				_, _, err := iv.Invoke(ctx, "default", "nope", "http", &function.Request{})
				if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, function.ErrUnavailable) {
					t.Errorf("err = %v", err)
					return
				}
			}
		}()
	}
	if err := iv.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	_, _, err := iv.Invoke(ctx, "default", "nope", "http", &function.Request{})
	if !errors.Is(err, function.ErrUnavailable) {
		t.Errorf("after Wait: err = %v, want unavailable", err)
	}
	wg.Wait()
}

// TestPinnedUnknownNamesSpareTheStore: /fn/nope@1 floods meet the cache of
// unknown names, as /fn/nope floods do.
func TestPinnedUnknownNamesSpareTheStore(t *testing.T) {
	iv, ps := newResolver(t)
	for range 100 {
		_, _, err := iv.InvokeVersion(context.Background(), "default", "nope", 1, "http", &function.Request{})
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("err = %v, want not found", err)
		}
	}
	if n := ps.reads.Load(); n > 2 {
		t.Errorf("100 calls of an unknown function by version made %d store reads, want 1", n)
	}
}
