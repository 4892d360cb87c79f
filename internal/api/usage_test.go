package api

import (
	"testing"
	"time"
)

func TestParseSince(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Duration // 0: refused
	}{
		{"30d", 30 * 24 * time.Hour},
		{"1d", 24 * time.Hour},
		{"366d", 366 * 24 * time.Hour},
		{"12h", 12 * time.Hour},
		{"90m", 90 * time.Minute},
		{"1h30m", 90 * time.Minute},
		{"1h", time.Hour},
		{"59m", 0},
		{"0d", 0},
		{"367d", 0},
		{"8785h", 0},
		{"-1d", 0},
		{"+1d", 0},
		{"d", 0},
		{"1.5d", 0},
		{"30", 0},
		{"thirty days", 0},
		{"99999999999999999999d", 0},
		{"", 0},
	}
	for _, tc := range tests {
		got, ok := parseUsageSince(tc.in)
		if ok != (tc.want != 0) || (ok && got != tc.want) {
			t.Errorf("parseUsageSince(%q) = %v, %v; want %v", tc.in, got, ok, tc.want)
		}
	}
}

// FuzzParseSince: whatever a client sends, a span taken is within bounds.
func FuzzParseSince(f *testing.F) {
	for _, s := range []string{"30d", "12h", "1h30m", "-5d", "1e9h", "366d", "9223372036854775807ns"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, ok := parseUsageSince(s); ok && (d < minUsageSince || d > maxUsageSince) {
			t.Fatalf("parseUsageSince(%q) = %v, out of bounds", s, d)
		}
	})
}
