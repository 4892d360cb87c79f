package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hostless/hostless/internal/apierror"
	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
)

// Bounds of GET /v1/logs.
const (
	defaultLogLimit = 100
	maxGrepBytes    = 256
	maxSince        = 10 * 365 * 24 * time.Hour
	// logPageBudget is how long one page may go on reading for matches
	// (each store call reads a bounded number of rows); past it the page
	// comes back short, with its cursors.
	logPageBudget = 2 * time.Second
)

// Variables for tests.
var (
	followPoll      = time.Second      // how often a stream looks for lines other nodes stored
	followKeepalive = 15 * time.Second // how often an idle stream says it is alive
)

// FailedStatuses are what status=error stands for: every way an
// invocation fails.
var FailedStatuses = []string{function.StatusError, function.StatusTimeout, function.StatusOOM, function.StatusThrottled}

// logQuery is a parsed GET /v1/logs.
type logQuery struct {
	filter store.LogFilter
	follow bool
}

// parseLogQuery reads and bounds the parameters of GET /v1/logs; now is
// what a since duration counts back from.
func parseLogQuery(q url.Values, lastEventID string, now time.Time) (logQuery, error) {
	lq := logQuery{filter: store.LogFilter{Project: function.DefaultProject, Limit: defaultLogLimit}}
	f := &lq.filter
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return lq, apierror.BadRequest("limit=%q: want a number of lines from 1 to %d", function.Short(s), store.MaxLimit)
		}
		if n > 0 {
			f.Limit = min(n, store.MaxLimit)
		}
	}
	if fn := q.Get("function"); fn != "" {
		if err := function.ValidName(fn); err != nil {
			return lq, apierror.BadRequest("function=%q: not a function name", function.Short(fn))
		}
		f.Function = fn
	}
	after, before := q.Get("after"), q.Get("before")
	if lastEventID != "" {
		after = lastEventID // a reconnecting EventSource resumes where it left off
	}
	if after != "" && before != "" {
		return lq, apierror.BadRequest("after and before: give one or the other")
	}
	for _, c := range []struct {
		name, s string
		dst     *int64
	}{{"after", after, &f.AfterSeq}, {"before", before, &f.BeforeSeq}} {
		if c.s == "" {
			continue
		}
		n, err := strconv.ParseInt(c.s, 10, 64)
		if err != nil || n < 0 {
			return lq, apierror.BadRequest("%s=%q: want a log sequence number (a line's seq, or a page's next or prev)", c.name, function.Short(c.s))
		}
		*c.dst = n
	}
	if s := q.Get("since"); s != "" {
		t, err := parseSince(s, now)
		if err != nil {
			return lq, err
		}
		f.Since = t
	}
	if s := q.Get("status"); s != "" {
		st, err := parseStatuses(s)
		if err != nil {
			return lq, err
		}
		f.Statuses = st
	}
	if g := q.Get("grep"); g != "" {
		switch {
		case len(g) > maxGrepBytes:
			return lq, apierror.BadRequest("grep: at most %d bytes", maxGrepBytes)
		case !utf8.ValidString(g) || strings.ContainsAny(g, "\n\x00"):
			return lq, apierror.BadRequest("grep: want text of one line (UTF-8, without newlines or NUL)")
		}
		f.Grep = g
	}
	switch s := q.Get("follow"); s {
	case "", "false", "0":
	case "true", "1":
		if f.BeforeSeq > 0 {
			return lq, apierror.BadRequest("follow and before: a stream goes forward; give after, or neither")
		}
		lq.follow = true
	default:
		return lq, apierror.BadRequest("follow=%q: want true or false", function.Short(s))
	}
	return lq, nil
}

// parseSince reads since: a duration back from now (30m, 24h, 7d) or an
// RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	bad := apierror.BadRequest("since=%q: want a duration back from now such as 30m, 24h or 7d, or an RFC 3339 time such as 2026-03-01T12:00:00Z", function.Short(s))
	if len(s) > 64 {
		return time.Time{}, bad
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 || n > int(maxSince/(24*time.Hour)) {
			return time.Time{}, bad
		}
		return now.Add(-time.Duration(n) * 24 * time.Hour), nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 || d > maxSince {
			return time.Time{}, bad
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, bad
	}
	return t, nil
}

// parseStatuses reads status: statuses separated by commas, where error
// stands for every failed one (FailedStatuses).
func parseStatuses(s string) ([]string, error) {
	bad := apierror.BadRequest("status=%q: want ok, error (any failure: error, timeout, oom or throttled), timeout, oom or throttled, or several comma-separated", function.Short(s))
	if len(s) > 64 {
		return nil, bad
	}
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		switch part = strings.TrimSpace(part); part {
		case function.StatusError:
			out = append(out, FailedStatuses...)
		case function.StatusOK, function.StatusTimeout, function.StatusOOM, function.StatusThrottled:
			out = append(out, part)
		default:
			return nil, bad
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// logs lists log lines across invocations, filtered and paged (see the
// README's Control API); with follow=true it streams them as Server-Sent
// Events as they are stored.
func (a *API) logs(w http.ResponseWriter, r *http.Request) error {
	lq, err := parseLogQuery(r.URL.Query(), r.Header.Get("Last-Event-ID"), time.Now())
	if err != nil {
		return err
	}
	if lq.follow {
		return a.follow(w, r, lq.filter)
	}
	p, err := a.page(r, lq.filter)
	if err != nil {
		return err
	}
	if p.Lines == nil {
		p.Lines = []function.LogLine{}
	}
	out := map[string]any{"lines": p.Lines, "next": p.Next}
	if p.Prev != 0 {
		out["prev"] = p.Prev
	}
	return writeJSON(w, http.StatusOK, out)
}

// page reads a page of up to f.Limit lines: the store reads a bounded
// number of rows per call, so a filter that matches little takes several
// calls, for up to logPageBudget.
func (a *API) page(r *http.Request, f store.LogFilter) (store.LogPage, error) {
	limit, deadline := f.Limit, time.Now().Add(logPageBudget)
	var out store.LogPage
	for first := true; ; first = false {
		p, err := a.cfg.Store.ListLogs(r.Context(), f)
		if err != nil {
			return store.LogPage{}, err
		}
		if f.AfterSeq > 0 { // forward: newer lines follow
			out.Lines = append(out.Lines, p.Lines...)
			out.Next = p.Next
			if !p.More || len(out.Lines) >= limit || time.Now().After(deadline) {
				return out, nil
			}
			f.AfterSeq = p.Next
		} else { // backward: older lines come before
			out.Lines = append(p.Lines, out.Lines...)
			if first {
				out.Next = p.Next
			}
			out.Prev = p.Prev
			if p.Prev == 0 || len(out.Lines) >= limit || time.Now().After(deadline) {
				return out, nil
			}
			f.BeforeSeq = p.Prev
		}
		f.Limit = limit - len(out.Lines)
	}
}

// follow streams lines as they are stored: first the newest f.Limit (or
// those after f.AfterSeq), then each new one that passes the filter. It
// looks when this node's recorder stores records, and every followPoll for
// those other nodes store.
func (a *API) follow(w http.ResponseWriter, r *http.Request, f store.LogFilter) error {
	flusher, ok := w.(http.Flusher)
	if !ok {
		return apierror.New(http.StatusInternalServerError, "streaming_unsupported", "this connection can't stream")
	}
	signal, stop := a.cfg.Followers.Subscribe()
	defer stop()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	flusher.Flush()
	poll := time.NewTicker(followPoll)
	defer poll.Stop()
	keepalive := time.NewTicker(followKeepalive)
	defer keepalive.Stop()
	var sent int64 // the last id the client was given
	for {
		p, err := a.page(r, f)
		switch {
		case err != nil && r.Context().Err() != nil:
			return nil
		case err != nil:
			a.cfg.Log.WarnContext(r.Context(), "follow logs", "err", err)
		default:
			for _, l := range p.Lines {
				b, _ := json.Marshal(l)
				fmt.Fprintf(w, "id: %d\nevent: log\ndata: %s\n\n", l.Seq, b)
				sent = l.Seq
			}
			if len(p.Lines) > 0 {
				flusher.Flush()
			}
			f.AfterSeq, f.BeforeSeq = p.Next, 0
			if len(p.Lines) >= f.Limit {
				continue // more are waiting
			}
			// Caught up: what follows is newer, and since has done its work
			// (each call with it would look for where it starts).
			f.Since = time.Time{}
		}
		select {
		case <-r.Context().Done():
			return nil
		case <-a.cfg.Draining:
			return nil
		case <-signal:
		case <-poll.C:
		case <-keepalive.C:
			if f.AfterSeq > sent {
				// An event of an id alone moves a reconnecting EventSource's
				// Last-Event-ID past lines the filter skipped.
				fmt.Fprintf(w, "id: %d\n\n", f.AfterSeq)
				sent = f.AfterSeq
			} else {
				fmt.Fprint(w, ": keepalive\n\n")
			}
			flusher.Flush()
		}
	}
}
