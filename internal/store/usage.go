package store

import (
	"context"
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/hostless/hostless/internal/function"
)

// TotalFunction is the Function of the usage rows that count all of a
// project's functions together. No function has this name (names are DNS
// labels), and a total row is the only place the peak of all functions
// together is kept: the sum of each function's peak is not it.
const TotalFunction = ""

// UsageSecondsKept is how long per-second usage is kept for peaks: a record
// arrives when its invocation ends, at most a timeout (15 minutes) after
// it started, plus a batch's wait. A second's row is pruned after this;
// a record that still arrives later starts that second's count afresh,
// which can only understate its hour's peak.
const UsageSecondsKept = 2 * time.Hour

// UsageHour is the usage of one function (or, with TotalFunction, of all a
// project's functions) in one clock hour (UTC), summed from invocation
// records as InsertInvocations writes them, so it outlives the records.
type UsageHour struct {
	Project  string
	Function string
	Hour     time.Time // the hour's start, UTC
	// Invocations counts the calls that ran: every record but the
	// throttled ones, which are counted in Throttles.
	Invocations int64
	// Errors counts the calls that ran and failed (error, timeout, oom).
	Errors     int64
	Throttles  int64
	ColdStarts int64
	// MBMillis sums billed milliseconds times memory MB (GB-seconds times
	// 1000 × 1024, in integers).
	MBMillis int64
	// DurationNS sums the durations of the calls that ran.
	DurationNS int64
	// ResponseBytes sums the response bodies' sizes: data out.
	ResponseBytes int64
	// PeakMBMillis is, for the hour's busiest second, the memory of the
	// calls running in it times the milliseconds they ran in it: the
	// average memory in use over that second, in MB, times 1000.
	// PeakBusyMillis is the same for the milliseconds run, ignoring
	// memory: the calls running at once, times 1000.
	PeakMBMillis, PeakBusyMillis int64
	// Durations counts the calls that ran by duration.
	Durations Histogram
}

// UsageSecond is the busy time of one function (or of all, with
// TotalFunction) in one second, for peaks.
type UsageSecond struct {
	Project  string
	Function string
	Second   int64 // Unix seconds
	// MBMillis sums, over the calls running in the second, memory MB times
	// the milliseconds each ran in it; BusyMillis sums those milliseconds.
	MBMillis, BusyMillis int64
}

// UsageFilter selects hourly usage rows.
type UsageFilter struct {
	Project string
	// Function selects one function's rows; empty selects every
	// function's and the project's total rows (Function TotalFunction).
	Function string
	// From and To select the hours that start at From or later and
	// before To.
	From, To time.Time
}

// Usage reads the hourly usage that InsertInvocations keeps: every
// implementation sums the records it inserts (not the duplicates it
// skips) into hourly rows in the same transaction, so usage stays right
// when raw records are deleted.
type Usage interface {
	// ReadUsage calls fn with each row of f, ordered by hour, then
	// function; the row is fn's only for the call. An error of fn stops
	// the read and is returned.
	ReadUsage(ctx context.Context, f UsageFilter, fn func(*UsageHour) error) error
}

// failed says whether a status counts as an error.
func failed(status string) bool {
	return status == function.StatusError || status == function.StatusTimeout || status == function.StatusOOM
}

// maxBusy bounds the time one record is spread over (a corrupt billed
// duration must not make millions of rows); invocations last at most
// function.MaxTimeout.
const maxBusy = time.Hour

// Rollup sums records into hourly rows and busy seconds, per function and
// for each project's total (TotalFunction). Records count in the hour
// they started in; their busy time is spread over the seconds from their
// start to their start plus their billed duration (a call of 15 minutes
// makes 900 seconds). Hours have no peaks yet: an implementation adds each
// second to what it has stored, then sets the peaks from the sums (with
// Peaks, or the same in SQL).
func Rollup(recs []function.Invocation) ([]UsageHour, []UsageSecond) {
	type hourKey struct {
		project, function string
		hour              int64
	}
	type secondKey struct {
		project, function string
		second            int64
	}
	hours := map[hourKey]*UsageHour{}
	var hourOrder []hourKey
	seconds := map[secondKey]*UsageSecond{}
	var secondOrder []secondKey
	for i := range recs {
		r := &recs[i]
		start := r.Start.UnixMilli()
		hour := start - start%3600_000
		for _, fn := range [2]string{r.Function, TotalFunction} {
			k := hourKey{r.Project, fn, hour}
			h := hours[k]
			if h == nil {
				h = &UsageHour{Project: r.Project, Function: fn, Hour: time.UnixMilli(hour).UTC()}
				hours[k] = h
				hourOrder = append(hourOrder, k)
			}
			if r.Status == function.StatusThrottled {
				h.Throttles++
				continue
			}
			h.Invocations++
			if failed(r.Status) {
				h.Errors++
			}
			if r.Cold {
				h.ColdStarts++
			}
			h.MBMillis += r.BilledMS * int64(r.MemoryMB)
			h.DurationNS += int64(r.Duration)
			h.ResponseBytes += r.ResponseBytes
			h.Durations.Add(r.Duration)
		}
		if r.BilledMS <= 0 {
			continue
		}
		end := start + min(r.BilledMS, maxBusy.Milliseconds())
		for s := floorDiv(start, 1000); s*1000 < end; s++ {
			ms := min(end, (s+1)*1000) - max(start, s*1000)
			for _, fn := range [2]string{r.Function, TotalFunction} {
				k := secondKey{r.Project, fn, s}
				u := seconds[k]
				if u == nil {
					u = &UsageSecond{Project: r.Project, Function: fn, Second: s}
					seconds[k] = u
					secondOrder = append(secondOrder, k)
				}
				u.BusyMillis += ms
				u.MBMillis += ms * int64(r.MemoryMB)
			}
		}
	}
	outH := make([]UsageHour, len(hourOrder))
	for i, k := range hourOrder {
		outH[i] = *hours[k]
	}
	outS := make([]UsageSecond, len(secondOrder))
	for i, k := range secondOrder {
		outS[i] = *seconds[k]
	}
	return outH, outS
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// Peaks sets the peaks of hours from stored seconds (each second's sum
// after the batch's rows were added), adding rows without counts for the
// hours that only a second of reaches (a call that ran past its hour).
func Peaks(hours []UsageHour, stored []UsageSecond) []UsageHour {
	type key struct {
		project, function string
		hour              int64
	}
	idx := make(map[key]int, len(hours))
	for i, h := range hours {
		idx[key{h.Project, h.Function, h.Hour.Unix()}] = i
	}
	for _, s := range stored {
		k := key{s.Project, s.Function, s.Second - s.Second%3600}
		i, ok := idx[k]
		if !ok {
			i = len(hours)
			idx[k] = i
			hours = append(hours, UsageHour{Project: s.Project, Function: s.Function, Hour: time.Unix(k.hour, 0).UTC()})
		}
		h := &hours[i]
		h.PeakMBMillis = max(h.PeakMBMillis, s.MBMillis)
		h.PeakBusyMillis = max(h.PeakBusyMillis, s.BusyMillis)
	}
	return hours
}

// HistogramBuckets is the number of buckets of a Histogram.
const HistogramBuckets = 128

// Histogram counts durations in buckets four to a doubling: bucket i holds
// durations from 2^(i/4) to 2^((i+1)/4) microseconds (bucket 0 also those
// under a microsecond; the last one all longer, from 71 minutes), so a
// quantile read from it is within 9% of the true one. The stores keep it
// as a JSON object of the buckets that aren't empty, {"41":12,"42":3},
// and add two of them in SQL.
type Histogram [HistogramBuckets]int64

// HistogramBucket returns d's bucket. The stores' SQL computes the same,
// from nanoseconds, as floor(4 * log2(ns / 1000)), clamped to 0..127.
func HistogramBucket(d time.Duration) int {
	if d < time.Microsecond {
		return 0
	}
	b := int(math.Floor(4 * math.Log2(float64(d)/1000)))
	return min(max(b, 0), HistogramBuckets-1)
}

// Add counts d.
func (h *Histogram) Add(d time.Duration) { h[HistogramBucket(d)]++ }

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, n := range o {
		h[i] += n
	}
}

// Count returns the number of durations counted.
func (h *Histogram) Count() int64 {
	var n int64
	for _, c := range h {
		n += c
	}
	return n
}

// Quantile returns the q-quantile (0 < q <= 1) of the durations counted,
// as the geometric middle of its bucket, or 0 when none were.
func (h *Histogram) Quantile(q float64) time.Duration {
	total := h.Count()
	if total == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(total)))
	rank = min(max(rank, 1), total)
	var seen int64
	for i, c := range h {
		seen += c
		if seen >= rank {
			us := math.Exp2((float64(i) + 0.5) / 4)
			return time.Duration(us * 1000).Round(time.Microsecond)
		}
	}
	return 0
}

// AppendJSON appends h as the stores keep it: a JSON object of the
// non-empty buckets' counts.
func (h *Histogram) AppendJSON(b []byte) []byte {
	b = append(b, '{')
	first := true
	for i, c := range h {
		if c == 0 {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, '"', ':')
		b = strconv.AppendInt(b, c, 10)
	}
	return append(b, '}')
}

var errHistogram = errors.New("malformed duration histogram")

// AddJSON adds the counts of a histogram as the stores keep it (AppendJSON's
// form; SQLite's and PostgreSQL's JSON output, with or without spaces).
func (h *Histogram) AddJSON(s string) error {
	i := 0
	space := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r') {
			i++
		}
	}
	expect := func(c byte) bool {
		space()
		if i < len(s) && s[i] == c {
			i++
			return true
		}
		return false
	}
	number := func() (int64, bool) {
		space()
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if j == i || i-j > 18 {
			return 0, false
		}
		n, err := strconv.ParseInt(s[j:i], 10, 64)
		return n, err == nil
	}
	if !expect('{') {
		return errHistogram
	}
	if expect('}') {
		space()
		if i != len(s) {
			return errHistogram
		}
		return nil
	}
	for {
		if !expect('"') {
			return errHistogram
		}
		b, ok := number()
		if !ok || b >= HistogramBuckets || !expect('"') || !expect(':') {
			return errHistogram
		}
		n, ok := number()
		if !ok {
			return errHistogram
		}
		h[b] += n
		if expect('}') {
			break
		}
		if !expect(',') {
			return errHistogram
		}
	}
	space()
	if i != len(s) {
		return errHistogram
	}
	return nil
}
