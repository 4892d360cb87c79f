package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
)

// usageMigrations build the usage rollups, in a set of their own: the
// size of each response (data out), the hourly rows per function and per
// project (store.TotalFunction), and the busy seconds that peaks are read from.
// The last one sums what records were stored before the rollups existed;
// it can't spread a call over the seconds it ran, so for those records a
// call counts, up to a second of it, in the second it started. Hours are
// computed from Unix time, never in the session's time zone.
var usageMigrations = []string{
	`ALTER TABLE invocations ADD COLUMN response_bytes bigint NOT NULL DEFAULT 0`,
	`CREATE TABLE usage_hours (
		project        text        NOT NULL,
		function       text        COLLATE "C" NOT NULL,
		hour           timestamptz NOT NULL,
		invocations    bigint      NOT NULL,
		errors         bigint      NOT NULL,
		throttles      bigint      NOT NULL,
		cold_starts    bigint      NOT NULL,
		mb_ms          bigint      NOT NULL,
		duration_ns    bigint      NOT NULL,
		response_bytes bigint      NOT NULL,
		peak_mb_ms     bigint      NOT NULL,
		peak_busy_ms   bigint      NOT NULL,
		durations      jsonb       NOT NULL,
		PRIMARY KEY (project, hour, function)
	)`,
	`CREATE INDEX usage_hours_function ON usage_hours (project, function, hour)`,
	`CREATE TABLE usage_seconds (
		second   bigint NOT NULL,
		project  text   NOT NULL,
		function text   NOT NULL,
		mb_ms    bigint NOT NULL,
		busy_ms  bigint NOT NULL,
		PRIMARY KEY (second, project, function)
	)`,
	`INSERT INTO usage_hours (project, function, hour, invocations, errors, throttles, cold_starts, mb_ms,
		duration_ns, response_bytes, peak_mb_ms, peak_busy_ms, durations)
	WITH recs AS (
		SELECT project, function, floor(extract(epoch FROM started_at) / 3600)::bigint * 3600 AS hour,
			floor(extract(epoch FROM started_at))::bigint AS second,
			status, cold, billed_ms, memory_mb, duration_ns, response_bytes FROM invocations
		UNION ALL
		SELECT project, '', floor(extract(epoch FROM started_at) / 3600)::bigint * 3600,
			floor(extract(epoch FROM started_at))::bigint,
			status, cold, billed_ms, memory_mb, duration_ns, response_bytes FROM invocations
	),
	sums AS (
		SELECT project, function, hour,
			COUNT(*) FILTER (WHERE status <> 'throttled') AS invocations,
			COUNT(*) FILTER (WHERE status IN ('error', 'timeout', 'oom')) AS errors,
			COUNT(*) FILTER (WHERE status = 'throttled') AS throttles,
			COUNT(*) FILTER (WHERE cold AND status <> 'throttled') AS cold_starts,
			SUM(billed_ms * memory_mb)::bigint AS mb_ms,
			COALESCE(SUM(duration_ns) FILTER (WHERE status <> 'throttled'), 0)::bigint AS duration_ns,
			COALESCE(SUM(response_bytes) FILTER (WHERE status <> 'throttled'), 0)::bigint AS response_bytes
		FROM recs GROUP BY project, function, hour
	),
	seconds AS (
		SELECT project, function, hour, SUM(LEAST(billed_ms, 1000) * memory_mb) AS mb_ms, SUM(LEAST(billed_ms, 1000)) AS busy_ms
		FROM recs GROUP BY project, function, hour, second
	),
	peaks AS (
		SELECT project, function, hour, MAX(mb_ms)::bigint AS mb_ms, MAX(busy_ms)::bigint AS busy_ms
		FROM seconds GROUP BY project, function, hour
	),
	buckets AS (
		SELECT project, function, hour,
			CASE WHEN duration_ns < 1000 THEN 0 ELSE LEAST(127, floor(4 * log(2, duration_ns / 1000.0))::integer) END AS bucket,
			COUNT(*) AS n
		FROM recs WHERE status <> 'throttled' GROUP BY project, function, hour, bucket
	),
	hists AS (
		SELECT project, function, hour, jsonb_object_agg(bucket::text, n) AS durations
		FROM buckets GROUP BY project, function, hour
	)
	SELECT s.project, s.function, to_timestamp(s.hour), s.invocations, s.errors, s.throttles, s.cold_starts, s.mb_ms,
		s.duration_ns, s.response_bytes, p.mb_ms, p.busy_ms, COALESCE(h.durations, '{}')
	FROM sums s JOIN peaks p USING (project, function, hour) LEFT JOIN hists h USING (project, function, hour)`,
}

// usagePruneEvery is how often an insert deletes the busy seconds older
// than store.UsageSecondsKept.
const usagePruneEvery = 10 * time.Minute

// usageStatement returns the statement, and its arguments, that adds
// inserted records to the usage rollups: their busy seconds first, then
// their hours, whose peaks it reads from the seconds' sums. It is one
// statement, so it goes in the insert's round trip, and its sums are added
// in SQL (histograms bucket by bucket), so concurrent inserts of other
// nodes add up without a read before the write.
func usageStatement(recs []function.Invocation) (string, []any) {
	hours, seconds := store.Rollup(recs)
	n := len(seconds)
	secs, sProjects, sFns, sMB, sBusy := make([]int64, n), make([]string, n), make([]string, n), make([]int64, n), make([]int64, n)
	for i, s := range seconds {
		secs[i], sProjects[i], sFns[i], sMB[i], sBusy[i] = s.Second, s.Project, s.Function, s.MBMillis, s.BusyMillis
	}
	n = len(hours)
	var (
		projects, fns, durations                         = make([]string, n), make([]string, n), make([]string, n)
		starts                                           = make([]time.Time, n)
		invocations, errs, throttles, colds, mbms, durns = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		out                                              = make([]int64, n)
	)
	var buf []byte
	for i := range hours {
		h := &hours[i]
		projects[i], fns[i], starts[i] = h.Project, h.Function, h.Hour
		invocations[i], errs[i], throttles[i], colds[i] = h.Invocations, h.Errors, h.Throttles, h.ColdStarts
		mbms[i], durns[i], out[i] = h.MBMillis, h.DurationNS, h.ResponseBytes
		buf = h.Durations.AppendJSON(buf[:0])
		durations[i] = string(buf)
	}
	return upsertUsage, []any{secs, sProjects, sFns, sMB, sBusy,
		projects, fns, starts, invocations, errs, throttles, colds, mbms, durns, out, durations}
}

// upsertUsage adds a batch's busy seconds and hours (see usageStatement).
// A second a call ran in past its hour makes a row of the next hour with
// a peak and no counts (the full join). Hours are computed from Unix
// time.
const upsertUsage = `WITH s AS (
		INSERT INTO usage_seconds AS u (second, project, function, mb_ms, busy_ms)
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bigint[])
		ON CONFLICT (second, project, function) DO UPDATE SET
			mb_ms = u.mb_ms + excluded.mb_ms, busy_ms = u.busy_ms + excluded.busy_ms
		RETURNING second, project, function, mb_ms, busy_ms
	),
	peaks AS (
		SELECT project AS p, function AS f, to_timestamp(second - second % 3600) AS h, MAX(mb_ms) AS pm, MAX(busy_ms) AS pb
		FROM s GROUP BY 1, 2, 3
	),
	x AS (
		SELECT * FROM unnest($6::text[], $7::text[], $8::timestamptz[], $9::bigint[], $10::bigint[], $11::bigint[],
			$12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[], $16::text[]) AS x(p, f, h, i, e, t, c, m, d, o, j)
	)
	INSERT INTO usage_hours AS u (project, function, hour, invocations, errors, throttles, cold_starts,
		mb_ms, duration_ns, response_bytes, peak_mb_ms, peak_busy_ms, durations)
	SELECT COALESCE(x.p, peaks.p), COALESCE(x.f, peaks.f), COALESCE(x.h, peaks.h),
		COALESCE(x.i, 0), COALESCE(x.e, 0), COALESCE(x.t, 0), COALESCE(x.c, 0), COALESCE(x.m, 0), COALESCE(x.d, 0), COALESCE(x.o, 0),
		COALESCE(peaks.pm, 0), COALESCE(peaks.pb, 0), COALESCE(x.j, '{}')::jsonb
	FROM x FULL JOIN peaks ON x.p = peaks.p AND x.f = peaks.f AND x.h = peaks.h
	ON CONFLICT (project, hour, function) DO UPDATE SET
		invocations = u.invocations + excluded.invocations,
		errors = u.errors + excluded.errors,
		throttles = u.throttles + excluded.throttles,
		cold_starts = u.cold_starts + excluded.cold_starts,
		mb_ms = u.mb_ms + excluded.mb_ms,
		duration_ns = u.duration_ns + excluded.duration_ns,
		response_bytes = u.response_bytes + excluded.response_bytes,
		peak_mb_ms = GREATEST(u.peak_mb_ms, excluded.peak_mb_ms),
		peak_busy_ms = GREATEST(u.peak_busy_ms, excluded.peak_busy_ms),
		durations = CASE
			WHEN excluded.durations = '{}' THEN u.durations
			WHEN u.durations = '{}' THEN excluded.durations
			ELSE (SELECT jsonb_object_agg(k, n) FROM (
				SELECT key AS k, SUM(value::bigint) AS n FROM (
					SELECT * FROM jsonb_each_text(u.durations)
					UNION ALL SELECT * FROM jsonb_each_text(excluded.durations)) b
				GROUP BY key) m)
		END`

// pruneUsage deletes the busy seconds older than store.UsageSecondsKept,
// at most every usagePruneEvery.
func (db *DB) pruneUsage(ctx context.Context, tx pgx.Tx) error {
	now := time.Now()
	if now.Unix() < db.usagePruneAt.Load() {
		return nil
	}
	if _, err := tx.Exec(ctx, `DELETE FROM usage_seconds WHERE second < $1`, now.Add(-store.UsageSecondsKept).Unix()); err != nil {
		return fmt.Errorf("prune usage seconds: %w", err)
	}
	db.usagePruneAt.Store(now.Add(usagePruneEvery).Unix())
	return nil
}

// ReadUsage calls fn with the hourly rows of f, by hour, then function.
func (db *DB) ReadUsage(ctx context.Context, f store.UsageFilter, fn func(*store.UsageHour) error) error {
	if err := db.readUsage(ctx, f, fn); err != nil {
		return fmt.Errorf("read usage: %w", err)
	}
	return nil
}

func (db *DB) readUsage(ctx context.Context, f store.UsageFilter, fn func(*store.UsageHour) error) error {
	var q query
	q.sql.WriteString(`SELECT function, hour, invocations, errors, throttles, cold_starts, mb_ms, duration_ns,
		response_bytes, peak_mb_ms, peak_busy_ms, durations::text FROM usage_hours WHERE project = ` + q.arg(f.Project))
	if f.Function != "" {
		q.sql.WriteString(` AND function = ` + q.arg(f.Function))
	}
	q.sql.WriteString(` AND hour >= ` + q.arg(f.From) + ` AND hour < ` + q.arg(f.To) + ` ORDER BY hour, function`)
	rows, err := db.pool.Query(ctx, q.sql.String(), q.args...)
	if err != nil {
		return err
	}
	var h store.UsageHour
	var durations string
	_, err = pgx.ForEachRow(rows, []any{&h.Function, &h.Hour, &h.Invocations, &h.Errors, &h.Throttles, &h.ColdStarts,
		&h.MBMillis, &h.DurationNS, &h.ResponseBytes, &h.PeakMBMillis, &h.PeakBusyMillis, &durations}, func() error {
		h.Project, h.Hour, h.Durations = f.Project, h.Hour.UTC(), store.Histogram{}
		if err := h.Durations.AddJSON(durations); err != nil {
			return fmt.Errorf("hour %s of %q: %w", h.Hour.Format(time.RFC3339), h.Function, err)
		}
		return fn(&h)
	})
	return err
}
