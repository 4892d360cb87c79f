package function

import "testing"

func TestParseBytes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"6MB", 6 << 20, true}, {"6 MB", 6 << 20, true}, {"256KB", 256 << 10, true}, {"1GiB", 1 << 30, true},
		{"100", 100, true}, {"100B", 100, true}, {"0", 0, true},
		{"1.5MB", 0, false}, {"-1", 0, false}, {"6TB", 0, false}, {"MB", 0, false}, {"", 0, false},
		{"99999999999999999999", 0, false}, {"9999999999GB", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseBytes(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestLimitsValidate(t *testing.T) {
	t.Parallel()
	for _, l := range []Limits{{}, {Request: 1}, {Request: MaxPayloadBytes, Response: MaxPayloadBytes}} {
		if err := l.Validate(); err != nil {
			t.Errorf("%+v: %v", l, err)
		}
	}
	for _, l := range []Limits{{Request: -1}, {Response: MaxPayloadBytes + 1}} {
		if err := l.Validate(); err == nil {
			t.Errorf("%+v: valid", l)
		}
	}
	if got := FormatBytes(6 << 20); got != "6 MiB" {
		t.Errorf("FormatBytes: %q", got)
	}
}
