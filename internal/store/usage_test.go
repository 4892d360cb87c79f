package store_test

import (
	"math"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/store"
)

func TestHistogramBucket(t *testing.T) {
	t.Parallel()
	tests := []struct {
		d    time.Duration
		want int
	}{
		{0, 0},
		{999 * time.Nanosecond, 0},
		{time.Microsecond, 0},
		{2 * time.Microsecond, 4},
		{time.Millisecond, 39}, // 4 * log2(1000) = 39.9
		{time.Second, 79},
		{15 * time.Minute, 118},
		{24 * time.Hour, store.HistogramBuckets - 1},
	}
	for _, tc := range tests {
		if got := store.HistogramBucket(tc.d); got != tc.want {
			t.Errorf("HistogramBucket(%v) = %d, want %d", tc.d, got, tc.want)
		}
	}
}

// TestHistogramQuantile: every duration from 1ms to 10s read back as its
// own quantile within 9%.
func TestHistogramQuantile(t *testing.T) {
	t.Parallel()
	var empty store.Histogram
	if q := empty.Quantile(0.5); q != 0 {
		t.Errorf("quantile of nothing = %v, want 0", q)
	}
	for d := time.Millisecond; d <= 10*time.Second; d = d * 11 / 10 {
		var h store.Histogram
		h.Add(d)
		if q := h.Quantile(0.99); math.Abs(float64(q-d)) > 0.09*float64(d) {
			t.Errorf("one call of %v: p99 %v, off by more than 9%%", d, q)
		}
	}
}

func TestHistogramJSON(t *testing.T) {
	t.Parallel()
	var h store.Histogram
	for _, d := range []time.Duration{time.Millisecond, time.Millisecond, time.Second} {
		h.Add(d)
	}
	text := string(h.AppendJSON(nil))
	if text != `{"39":2,"79":1}` {
		t.Fatalf("AppendJSON = %s", text)
	}
	var back store.Histogram
	for _, s := range []string{text, `{"39": 1, "79": 1}`, ` { "39" : 1 } `, `{}`} {
		if err := back.AddJSON(s); err != nil {
			t.Fatalf("AddJSON(%s): %v", s, err)
		}
	}
	if back[39] != 4 || back[79] != 2 || back.Count() != 6 {
		t.Errorf("added back: bucket 39 %d, 79 %d, count %d; want 4, 2, 6", back[39], back[79], back.Count())
	}
	for _, bad := range []string{``, `{`, `{"39":}`, `{"39":1,}`, `{"128":1}`, `{"-1":1}`, `{39:1}`, `{"39":1}x`, `{"39":99999999999999999999}`, `[]`} {
		var b store.Histogram
		if err := b.AddJSON(bad); err == nil {
			t.Errorf("AddJSON(%q) took it: %v", bad, b.Count())
		}
	}
}
