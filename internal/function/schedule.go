package function

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// MinEvery bounds how often a schedule may fire.
const MinEvery = time.Second

// maxScheduleLen bounds a schedule's text.
const maxScheduleLen = 128

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Schedule is a parsed cron schedule in its time zone.
type Schedule struct {
	sched cron.Schedule
	loc   *time.Location
}

// ParseSchedule parses a standard five-field cron expression ("*/5 * * * *"),
// a descriptor (@hourly, @daily, @weekly, @monthly, @yearly) or "@every
// <duration>" (at least MinEvery), with the ticks of the first two taken in
// tz (an IANA zone name; empty is UTC).
func ParseSchedule(expr, tz string) (*Schedule, error) {
	if len(expr) > maxScheduleLen {
		return nil, fmt.Errorf("%w: schedule is longer than %d characters", ErrInvalid, maxScheduleLen)
	}
	loc := time.UTC
	if tz != "" {
		l, err := time.LoadLocation(tz)
		if err != nil || len(tz) > maxScheduleLen {
			return nil, fmt.Errorf("%w: timezone %q is not an IANA time zone such as Europe/Paris", ErrInvalid, tz)
		}
		loc = l
	}
	if d, ok := strings.CutPrefix(expr, "@every "); ok {
		// The parser rounds what is shorter than a second up to one.
		if every, err := time.ParseDuration(d); err == nil && every < MinEvery {
			return nil, fmt.Errorf("%w: schedule %q fires more often than every %s", ErrInvalid, expr, MinEvery)
		}
	}
	s, err := cronParser.Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("%w: schedule %q: %v (accepted: five cron fields such as \"*/5 * * * *\", @hourly, @daily, or \"@every 30s\")", ErrInvalid, expr, err)
	}
	return &Schedule{sched: s, loc: loc}, nil
}

// Next returns the first tick strictly after t. "@every d" ticks at the
// multiples of d since the Unix epoch, so that every node computes the same
// ticks whenever it started.
func (s *Schedule) Next(t time.Time) time.Time {
	if every, ok := s.sched.(cron.ConstantDelaySchedule); ok {
		d := every.Delay
		return time.Unix(0, (t.UnixNano()/int64(d)+1)*int64(d))
	}
	return s.sched.Next(t.In(s.loc))
}
