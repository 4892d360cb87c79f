package scheduler

import (
	"testing"
	"time"

	"github.com/hostless/hostless/internal/function"
)

// TestPoolKeys: a function deleted and created again restarts its numbering,
// so its pools must not meet its predecessor's.
func TestPoolKeys(t *testing.T) {
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	v := function.Version{Project: "default", Function: "f", Number: 1, CreatedAt: at}
	again := v
	again.CreatedAt = at.Add(time.Second)
	next := v
	next.Number = 2
	other := v
	other.Function = "g"
	keys := map[poolKey]bool{keyOf(&v): true, keyOf(&again): true, keyOf(&next): true, keyOf(&other): true}
	if len(keys) != 4 {
		t.Errorf("keys collide: %v", keys)
	}
	if same := v; keyOf(&same) != keyOf(&v) {
		t.Error("the key is not stable")
	}
}
