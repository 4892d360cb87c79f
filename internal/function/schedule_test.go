package function

import (
	"errors"
	"testing"
	"time"
)

func TestParseSchedule(t *testing.T) {
	at := time.Date(2026, 3, 29, 0, 59, 10, 0, time.UTC) // the night Paris goes to summer time
	for _, c := range []struct {
		expr, tz string
		want     time.Time
	}{
		{"*/5 * * * *", "", time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC)},
		{"@hourly", "", time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC)},
		{"@every 30s", "", time.Date(2026, 3, 29, 0, 59, 30, 0, time.UTC)},
		{"@every 1m30s", "", time.Unix((at.Unix()/90+1)*90, 0)},
		// 03:00 Paris time on 29 March 2026 is 01:00 UTC (02:00 local never happens).
		{"0 3 * * *", "Europe/Paris", time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC)},
	} {
		s, err := ParseSchedule(c.expr, c.tz)
		if err != nil {
			t.Fatalf("%s: %v", c.expr, err)
		}
		if got := s.Next(at); !got.Equal(c.want) {
			t.Errorf("%s (%s): next after %s = %s, want %s", c.expr, c.tz, at, got.UTC(), c.want)
		}
	}
}

func TestParseScheduleInvalid(t *testing.T) {
	for _, c := range []struct{ expr, tz string }{
		{"* * *", ""}, {"61 * * * *", ""}, {"@every 10ms", ""}, {"@sometimes", ""},
		{"* * * * *", "Mars/Olympus"}, {"* * * * * *", ""},
	} {
		if _, err := ParseSchedule(c.expr, c.tz); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q %q: err = %v, want ErrInvalid", c.expr, c.tz, err)
		}
	}
}
