package storetest

import (
	"fmt"
	"time"

	"github.com/hostless/hostless/internal/function"
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
