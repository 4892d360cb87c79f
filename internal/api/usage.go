package api

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hostless/hostless/internal/apierror"
	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/metering"
)

// Bounds of GET /v1/usage.
const (
	defaultUsageSince = 30 * 24 * time.Hour
	minUsageSince     = time.Hour
	maxUsageSince     = 366 * 24 * time.Hour
	// maxHourlySince is the longest span reported by the hour: 744 rows.
	maxHourlySince = 31 * 24 * time.Hour
	// hourlyUpTo is the longest span reported by the hour when the
	// period isn't asked for.
	hourlyUpTo = 2 * 24 * time.Hour
)

// parseUsageSince reads how far back a usage report goes: whole days ("30d")
// or a Go duration ("12h", "90m", "1h30m"), from 1h to 366d.
func parseUsageSince(s string) (time.Duration, bool) {
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 366 || days == "" || days[0] < '0' || days[0] > '9' {
			return 0, false
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, false
		}
	}
	return d, d >= minUsageSince && d <= maxUsageSince
}

// usage reports the usage of all functions, or of ?function=NAME, over
// ?since (default 30d) by ?period (hour or day; by default hours up to 2
// days, else days), and its cost at the price table.
func (a *API) usage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	since := defaultUsageSince
	if s := q.Get("since"); s != "" {
		var ok bool
		if since, ok = parseUsageSince(s); !ok {
			return apierror.BadRequest("since=%q: want a span back from now like 30d, 12h or 90m, from 1h to 366d", s)
		}
	}
	period := q.Get("period")
	switch period {
	case "":
		period = metering.PeriodDay
		if since <= hourlyUpTo {
			period = metering.PeriodHour
		}
	case metering.PeriodHour:
		if since > maxHourlySince {
			return apierror.BadRequest("period=hour reports at most 31d (since=%s); use period=day", q.Get("since"))
		}
	case metering.PeriodDay:
	default:
		return apierror.BadRequest("period=%q: want hour or day", period)
	}
	fn := q.Get("function")
	if fn != "" && function.ValidName(fn) != nil {
		return apierror.BadRequest("function=%q: not a function name", fn)
	}
	span := time.Hour
	if period == metering.PeriodDay {
		span = 24 * time.Hour
	}
	// Periods are clock hours and UTC days: the report starts at the
	// start of the one since falls in (Truncate counts from the zero
	// time, a UTC midnight).
	now := time.Now().UTC()
	rep := metering.NewReport(now.Add(-since).Truncate(span), now, period, fn, a.cfg.Prices)
	if err := a.cfg.Store.ReadUsage(r.Context(), rep.Filter(function.DefaultProject), rep.Add); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rep.Report())
}
