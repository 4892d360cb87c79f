package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
)

// usageMigrations build the usage rollups in telemetry.db, in a set of
// their own: the size of each response (data out), the hourly rows per
// function and per project (store.TotalFunction), and the busy seconds that
// peaks are read from. The last one sums what records were stored before
// the rollups existed; it can't spread a call over the seconds it ran, so
// for those records a call counts, up to a second of it, in the second it
// started.
var usageMigrations = []string{
	`ALTER TABLE invocations ADD COLUMN response_bytes INTEGER NOT NULL DEFAULT 0`,
	`CREATE TABLE usage_hours (
		project        TEXT    NOT NULL,
		function       TEXT    NOT NULL,
		hour           INTEGER NOT NULL,
		invocations    INTEGER NOT NULL,
		errors         INTEGER NOT NULL,
		throttles      INTEGER NOT NULL,
		cold_starts    INTEGER NOT NULL,
		mb_ms          INTEGER NOT NULL,
		duration_ns    INTEGER NOT NULL,
		response_bytes INTEGER NOT NULL,
		peak_mb_ms     INTEGER NOT NULL,
		peak_busy_ms   INTEGER NOT NULL,
		durations      TEXT    NOT NULL,
		PRIMARY KEY (project, hour, function)
	) WITHOUT ROWID`,
	`CREATE INDEX usage_hours_function ON usage_hours (project, function, hour)`,
	`CREATE TABLE usage_seconds (
		second   INTEGER NOT NULL,
		project  TEXT    NOT NULL,
		function TEXT    NOT NULL,
		mb_ms    INTEGER NOT NULL,
		busy_ms  INTEGER NOT NULL,
		PRIMARY KEY (second, project, function)
	) WITHOUT ROWID`,
	`INSERT INTO usage_hours (project, function, hour, invocations, errors, throttles, cold_starts, mb_ms,
		duration_ns, response_bytes, peak_mb_ms, peak_busy_ms, durations)
	WITH recs AS (
		SELECT project, function, started_at - started_at % 3600000000000 AS hour, started_at / 1000000000 AS second,
			status, cold, billed_ms, memory_mb, duration_ns, response_bytes FROM invocations
		UNION ALL
		SELECT project, '', started_at - started_at % 3600000000000, started_at / 1000000000,
			status, cold, billed_ms, memory_mb, duration_ns, response_bytes FROM invocations
	),
	sums AS (
		SELECT project, function, hour,
			SUM(status <> 'throttled') AS invocations,
			SUM(status IN ('error', 'timeout', 'oom')) AS errors,
			SUM(status = 'throttled') AS throttles,
			SUM(cold AND status <> 'throttled') AS cold_starts,
			SUM(billed_ms * memory_mb) AS mb_ms,
			SUM(CASE WHEN status <> 'throttled' THEN duration_ns ELSE 0 END) AS duration_ns,
			SUM(CASE WHEN status <> 'throttled' THEN response_bytes ELSE 0 END) AS response_bytes
		FROM recs GROUP BY project, function, hour
	),
	seconds AS (
		SELECT project, function, hour, SUM(min(billed_ms, 1000) * memory_mb) AS mb_ms, SUM(min(billed_ms, 1000)) AS busy_ms
		FROM recs GROUP BY project, function, hour, second
	),
	peaks AS (
		SELECT project, function, hour, MAX(mb_ms) AS mb_ms, MAX(busy_ms) AS busy_ms FROM seconds GROUP BY project, function, hour
	),
	buckets AS (
		SELECT project, function, hour,
			CASE WHEN duration_ns < 1000 THEN 0 ELSE min(127, CAST(floor(4 * log2(duration_ns / 1000.0)) AS INTEGER)) END AS bucket,
			COUNT(*) AS n
		FROM recs WHERE status <> 'throttled' GROUP BY project, function, hour, bucket
	),
	hists AS (
		SELECT project, function, hour, json_group_object(CAST(bucket AS TEXT), n) AS durations
		FROM buckets GROUP BY project, function, hour
	)
	SELECT s.project, s.function, s.hour, s.invocations, s.errors, s.throttles, s.cold_starts, s.mb_ms,
		s.duration_ns, s.response_bytes, p.mb_ms, p.busy_ms, COALESCE(h.durations, '{}')
	FROM sums s JOIN peaks p USING (project, function, hour) LEFT JOIN hists h USING (project, function, hour)`,
}

// upsertSecond adds a batch's busy time to a second and returns the sums.
const upsertSecond = `INSERT INTO usage_seconds (second, project, function, mb_ms, busy_ms) VALUES (?, ?, ?, ?, ?)
	ON CONFLICT (second, project, function) DO UPDATE SET
		mb_ms = mb_ms + excluded.mb_ms, busy_ms = busy_ms + excluded.busy_ms
	RETURNING mb_ms, busy_ms`

// upsertHour adds a batch's sums to an hour, keeps the higher peaks, and
// adds the duration histograms bucket by bucket (SQL, not Go: no read
// before the write).
const upsertHour = `INSERT INTO usage_hours (project, function, hour, invocations, errors, throttles, cold_starts,
		mb_ms, duration_ns, response_bytes, peak_mb_ms, peak_busy_ms, durations)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (project, hour, function) DO UPDATE SET
		invocations = invocations + excluded.invocations,
		errors = errors + excluded.errors,
		throttles = throttles + excluded.throttles,
		cold_starts = cold_starts + excluded.cold_starts,
		mb_ms = mb_ms + excluded.mb_ms,
		duration_ns = duration_ns + excluded.duration_ns,
		response_bytes = response_bytes + excluded.response_bytes,
		peak_mb_ms = max(peak_mb_ms, excluded.peak_mb_ms),
		peak_busy_ms = max(peak_busy_ms, excluded.peak_busy_ms),
		durations = CASE
			WHEN excluded.durations = '{}' THEN durations
			WHEN durations = '{}' THEN excluded.durations
			ELSE (SELECT json_group_object(k, n) FROM (
				SELECT key AS k, SUM(value) AS n FROM (
					SELECT key, value FROM json_each(usage_hours.durations)
					UNION ALL SELECT key, value FROM json_each(excluded.durations))
				GROUP BY key ORDER BY CAST(key AS INTEGER)))
		END`

// usagePruneEvery is how often an insert deletes the busy seconds older
// than store.UsageSecondsKept.
const usagePruneEvery = 10 * time.Minute

// prepareUsage prepares the usage upserts on the telemetry writer, whose
// one connection every insert's transaction runs on.
func (db *DB) prepareUsage(ctx context.Context) error {
	var err error
	if db.usageSecond, err = db.telW.PrepareContext(ctx, upsertSecond); err != nil {
		return fmt.Errorf("prepare usage: %w", err)
	}
	if db.usageHour, err = db.telW.PrepareContext(ctx, upsertHour); err != nil {
		return fmt.Errorf("prepare usage: %w", err)
	}
	return nil
}

// addUsage adds inserted records to the hourly rollups, within the
// insert's transaction.
func (db *DB) addUsage(ctx context.Context, tx *sql.Tx, recs []function.Invocation) error {
	if len(recs) == 0 {
		return nil
	}
	hours, seconds := store.Rollup(recs)
	if len(seconds) > 0 {
		st := tx.StmtContext(ctx, db.usageSecond)
		for i := range seconds {
			s := &seconds[i]
			if err := st.QueryRowContext(ctx, s.Second, s.Project, s.Function, s.MBMillis, s.BusyMillis).Scan(&s.MBMillis, &s.BusyMillis); err != nil {
				return err
			}
		}
	}
	hours = store.Peaks(hours, seconds)
	st := tx.StmtContext(ctx, db.usageHour)
	var buf []byte
	for i := range hours {
		h := &hours[i]
		buf = h.Durations.AppendJSON(buf[:0])
		if _, err := st.ExecContext(ctx, h.Project, h.Function, unixNano(h.Hour), h.Invocations, h.Errors, h.Throttles,
			h.ColdStarts, h.MBMillis, h.DurationNS, h.ResponseBytes, h.PeakMBMillis, h.PeakBusyMillis, string(buf)); err != nil {
			return err
		}
	}
	if now := time.Now(); now.Unix() >= db.usagePruneAt.Load() {
		cutoff := now.Add(-store.UsageSecondsKept).Unix()
		if _, err := tx.ExecContext(ctx, `DELETE FROM usage_seconds WHERE second < ?`, cutoff); err != nil {
			return err
		}
		db.usagePruneAt.Store(now.Add(usagePruneEvery).Unix())
	}
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
	var q strings.Builder
	args := []any{f.Project}
	q.WriteString(`SELECT function, hour, invocations, errors, throttles, cold_starts, mb_ms, duration_ns,
		response_bytes, peak_mb_ms, peak_busy_ms, durations FROM usage_hours WHERE project = ?`)
	if f.Function != "" {
		q.WriteString(` AND function = ?`)
		args = append(args, f.Function)
	}
	q.WriteString(` AND hour >= ? AND hour < ? ORDER BY hour, function`)
	args = append(args, f.From.UnixNano(), f.To.UnixNano())
	rows, err := db.telR.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	var h store.UsageHour
	var hour int64
	var durations string
	for rows.Next() {
		h = store.UsageHour{Project: f.Project}
		if err := rows.Scan(&h.Function, &hour, &h.Invocations, &h.Errors, &h.Throttles, &h.ColdStarts, &h.MBMillis,
			&h.DurationNS, &h.ResponseBytes, &h.PeakMBMillis, &h.PeakBusyMillis, &durations); err != nil {
			return err
		}
		h.Hour = fromUnixNano(hour)
		if err := h.Durations.AddJSON(durations); err != nil {
			return fmt.Errorf("hour %s of %q: %w", h.Hour.Format(time.RFC3339), h.Function, err)
		}
		if err := fn(&h); err != nil {
			return err
		}
	}
	return rows.Err()
}
