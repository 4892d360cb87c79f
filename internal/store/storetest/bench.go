package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
)

// BenchBatchMixed makes size invocation records of 2 log lines each,
// counting them in n, as a busy platform's recorder batches them: ten
// functions, calls from 1 to 300 ms, starts spread over the second before
// now, a few cold starts and errors.
func BenchBatchMixed(n *int, size int) []function.Invocation {
	recs := make([]function.Invocation, size)
	now := time.Now().UTC()
	for i := range recs {
		*n++
		start := now.Add(-time.Duration(size-i) * time.Second / time.Duration(size))
		d := time.Duration(1+(i*37)%300)*time.Millisecond + 123*time.Microsecond
		status := function.StatusOK
		if i%50 == 49 {
			status = function.StatusError
		}
		recs[i] = function.Invocation{
			ID: function.NewID(start), Project: function.DefaultProject, Function: fmt.Sprintf("fn%d", i%10), Version: 1,
			Trigger: "http", Start: start, Duration: d, BilledMS: function.BilledMillis(d), MemoryMB: 128 << (i % 3),
			Cold: i%20 == 0, Status: status, HTTPStatus: 200, ResponseBytes: int64(100 + i),
			Logs: []function.LogLine{
				{Time: start, Stream: "stdout", Line: "handling request GET /"},
				{Time: start, Stream: "stderr", Line: "done"},
			},
		}
	}
	return recs
}

// FillYear inserts a year of records into s, in batches as a busy
// recorder writes them: ten functions called twelve times an hour each,
// 1,051,200 records of 1 to 300 ms. It returns the span they cover, from
// the start of its first hour.
func FillYear(b *testing.B, s store.Store) (from, to time.Time) {
	b.Helper()
	const (
		fns     = 10
		perHour = 12
		batch   = 4096
	)
	to = time.Now().UTC().Truncate(time.Hour)
	from = to.Add(-365 * 24 * time.Hour)
	ctx := context.Background()
	recs := make([]function.Invocation, 0, batch)
	i := 0
	for h := from; h.Before(to); h = h.Add(time.Hour) {
		for call := range perHour {
			for fn := range fns {
				start := h.Add(time.Duration(call)*5*time.Minute + time.Duration(fn)*time.Second)
				d := time.Duration(1+(i*37)%300)*time.Millisecond + 123*time.Microsecond
				status := function.StatusOK
				if i%50 == 49 {
					status = function.StatusError
				}
				recs = append(recs, function.Invocation{
					ID: function.NewID(start), Project: function.DefaultProject, Function: fmt.Sprintf("fn%d", fn), Version: 1,
					Trigger: "http", Start: start, Duration: d, BilledMS: function.BilledMillis(d), MemoryMB: 128 << (fn % 3),
					Cold: i%20 == 0, Status: status, HTTPStatus: 200, ResponseBytes: int64(100 + i%1000),
				})
				i++
				if len(recs) == batch {
					if err := s.InsertInvocations(ctx, recs); err != nil {
						b.Fatal(err)
					}
					recs = recs[:0]
				}
			}
		}
	}
	if err := s.InsertInvocations(ctx, recs); err != nil {
		b.Fatal(err)
	}
	return from, to
}
