package logchunk

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
)

// Bounds are what a store knows of its chunks when a ListLogs call starts.
type Bounds struct {
	Min, Max int64 // the oldest and the newest chunk's seq; 0 and 0 when there is none
	// Floor, for a filter with Since, is a seq such that every line of the
	// chunks up to it was logged before Since (see FirstAtLeast); 0 else.
	Floor int64
}

// Row is a stored chunk as a ListLogs query reads it.
type Row struct {
	Seq          int64
	InvocationID string
	Function     string
	Version      int
	Base         int64 // first_at
	Meta, Text   string
}

// Scan is one ListLogs call's walk over chunks, the part the stores share.
// A store reads the chunks with a seq from Lo to Hi (newest first when
// Desc) that pass the filter's project, function, statuses, Since (on
// their latest line) and Grep (on their text) in SQL; hands them to Add
// until it returns false; and answers Page. The range holds at most
// store.MaxLogScan chunks.
type Scan struct {
	Lo, Hi int64
	Desc   bool

	f      store.LogFilter
	b      Bounds
	limit  int
	lowest int64 // the oldest chunk that can hold a matching line
	// Forward: chunk a's lines up to index ai were seen. Backward: chunk
	// top's lines from index topIdx on are not asked for.
	a, top     int64
	ai, topIdx int

	lines    []function.LogLine
	full     bool
	last     int64 // the last chunk added
	lastN    int   // its number of lines
	newestN  int   // backward: the number of lines of chunk b.Max, if it was added
	newestIn bool
}

// NewScan plans the walk of one ListLogs call.
func NewScan(f store.LogFilter, b Bounds) *Scan {
	s := &Scan{f: f, b: b, limit: store.Limit(f.Limit), lowest: max(b.Min, b.Floor+1), Lo: 1}
	if f.AfterSeq > 0 {
		s.a, s.ai = Split(f.AfterSeq)
		s.Lo = s.a
		if s.ai >= Whole {
			s.Lo = s.a + 1
		}
		s.Lo = max(s.Lo, s.lowest)
		s.Hi = min(b.Max, s.Lo+store.MaxLogScan-1)
		return s
	}
	s.Desc = true
	s.top, s.topIdx = b.Max, Whole+1
	if f.BeforeSeq > 0 {
		if c, ci := Split(f.BeforeSeq); c <= b.Max {
			s.top, s.topIdx = c, ci
		}
	}
	if s.topIdx == 0 {
		s.top, s.topIdx = s.top-1, Whole+1
	}
	s.Hi = s.top
	s.Lo = max(s.lowest, s.Hi-store.MaxLogScan+1)
	return s
}

// Empty reports that there is nothing to read.
func (s *Scan) Empty() bool { return s.Lo > s.Hi || s.b.Max == 0 }

// Add takes the next chunk read and reports whether the page wants more.
func (s *Scan) Add(r Row) (bool, error) {
	lines, err := Decode(r.Base, r.Meta, r.Text)
	if err != nil {
		return false, err
	}
	s.last, s.lastN = r.Seq, len(lines)
	if s.Desc && r.Seq == s.b.Max {
		s.newestIn, s.newestN = true, len(lines)
	}
	keep := func(i int) bool {
		l := &lines[i]
		if !s.f.Since.IsZero() && l.Time.Before(s.f.Since) || s.f.Grep != "" && !strings.Contains(l.Line, s.f.Grep) {
			return false
		}
		l.Seq, l.InvocationID, l.Function, l.Version = Seq(r.Seq, i), r.InvocationID, r.Function, r.Version
		s.lines = append(s.lines, *l)
		s.full = len(s.lines) >= s.limit
		return true
	}
	if !s.Desc {
		for i := range lines {
			if r.Seq == s.a && i <= s.ai {
				continue
			}
			if keep(i) && s.full {
				return false, nil
			}
		}
		return true, nil
	}
	for i := len(lines) - 1; i >= 0; i-- {
		if r.Seq == s.top && i >= s.topIdx {
			continue
		}
		if keep(i) && s.full {
			return false, nil
		}
	}
	return true, nil
}

// Page is the page the chunks added make.
func (s *Scan) Page() store.LogPage {
	p := store.LogPage{Lines: s.lines}
	if !s.Desc {
		switch {
		case s.full:
			p.Next = s.lines[len(s.lines)-1].Seq
			p.More = true
		case s.Empty():
			p.Next = s.f.AfterSeq
		case s.last == s.Hi && s.lastN > 0:
			p.Next = Seq(s.Hi, s.lastN-1)
		default:
			p.Next = Seq(s.Hi, Whole)
		}
		p.Next = max(p.Next, s.f.AfterSeq)
		p.More = p.More || !s.Empty() && s.Hi < s.b.Max
		return p
	}
	slices.Reverse(p.Lines)
	switch {
	case s.f.BeforeSeq > 0:
		p.Next = s.f.BeforeSeq - 1
	case s.newestIn && s.newestN > 0:
		p.Next = Seq(s.b.Max, s.newestN-1)
	default:
		p.Next = Seq(s.b.Max, Whole)
	}
	switch {
	case s.full:
		p.Prev = p.Lines[0].Seq
	case !s.Empty() && s.Lo > s.lowest:
		p.Prev = Seq(s.Lo, 0)
	}
	return p
}

// Probe returns the first chunk at or after seq and its value of a column
// that never decreases as seq grows (written_at, total_bytes - bytes), with
// ok false when there is none.
type Probe func(ctx context.Context, seq int64) (s, value int64, ok bool, err error)

// FirstAtLeast returns the smallest seq from lo to hi whose chunk's value
// is at least v, or 0 when there is none. It probes about log2(hi-lo)
// times.
func FirstAtLeast(ctx context.Context, lo, hi, v int64, probe Probe) (int64, error) {
	first := int64(0)
	for lo <= hi {
		mid := lo + (hi-lo)/2
		s, value, ok, err := probe(ctx, mid)
		if err != nil {
			return 0, err
		}
		switch {
		case !ok || s > hi: // nothing from mid to hi
			hi = mid - 1
		case value >= v:
			first, hi = s, mid-1
		default:
			lo = s + 1
		}
	}
	return first, nil
}

// Floor returns the newest chunk from lo to hi written before t: every
// line of it and of the chunks before it was logged before t. written
// probes written_at, the latest line time up to a chunk, which a store
// keeps with each.
func Floor(ctx context.Context, lo, hi int64, t time.Time, written Probe) (int64, error) {
	first, err := FirstAtLeast(ctx, lo, hi, t.UnixNano(), written)
	if err != nil || first == 0 {
		return hi, err // (all of them, if there is no error)
	}
	return first - 1, nil
}

// TrimUpTo returns the newest chunk that r deletes (below lo for none),
// given the chunks from lo to hi, the newest one's running total of bytes,
// and probes of written_at and of total_bytes - bytes (the running total
// before a chunk).
func TrimUpTo(ctx context.Context, lo, hi, newestTotal int64, r store.Retention, written, totalBefore Probe) (int64, error) {
	upTo := lo - 1
	if hi == 0 {
		return upTo, nil
	}
	if !r.Before.IsZero() {
		f, err := Floor(ctx, lo, hi, r.Before, written)
		if err != nil {
			return 0, err
		}
		upTo = f
	}
	if r.MaxLogBytes > 0 {
		// Keep the chunks from the first whose running total before it is
		// at least newest - max: they add up to max at most.
		first, err := FirstAtLeast(ctx, lo, hi, newestTotal-r.MaxLogBytes, totalBefore)
		if err != nil {
			return 0, err
		}
		if first == 0 {
			first = hi + 1 // the newest alone is over the cap
		}
		upTo = max(upTo, first-1)
	}
	return upTo, nil
}
