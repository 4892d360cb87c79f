package scheduler_test

import (
	"slices"
	"testing"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/scheduler"
)

// TestRecycle: the versions a match selects lose their instances (idle
// now, busy on release); others keep theirs; min-instance ones are
// returned to be warmed again.
func TestRecycle(t *testing.T) {
	t.Parallel()
	s, v := newScheduler(t, scheduler.Config{})
	v.Spec.Secrets = []string{"TOKEN"}
	other := version(t.Name()+"-other", v.Spec.Code)
	idle, busy, kept := acquire(t, s, v), acquire(t, s, v), acquire(t, s, other)
	idle.Release()
	kept.Release()

	warm := s.Recycle(func(v *function.Version) bool { return slices.Contains(v.Spec.Secrets, "TOKEN") })
	if len(warm) != 0 {
		t.Errorf("Recycle returned %d versions to warm, want none", len(warm))
	}
	if idle.Instance.Reusable() {
		t.Error("Recycle did not close the idle instance")
	}
	if !kept.Instance.Reusable() {
		t.Error("Recycle closed an instance of a version it did not select")
	}
	busy.Release()
	if busy.Instance.Reusable() {
		t.Error("a busy instance released after Recycle was not closed")
	}
	next := acquire(t, s, v)
	defer next.Release()
	if !next.Cold {
		t.Error("the call after Recycle reused an instance")
	}
	again := acquire(t, s, other)
	defer again.Release()
	if again.Cold {
		t.Error("a version Recycle did not select lost its warm instance")
	}
}
