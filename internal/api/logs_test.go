package api

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestParseLogQuery(t *testing.T) {
	t.Parallel()
	base := store.LogFilter{Project: function.DefaultProject, Limit: 100}
	with := func(change func(f *store.LogFilter)) store.LogFilter {
		f := base
		change(&f)
		return f
	}
	tests := []struct {
		name        string
		query       string
		lastEventID string
		want        store.LogFilter
		follow      bool
		err         string // a fragment of the 400's message; empty: valid
	}{
		{name: "nothing", want: base},
		{name: "function and limit", query: "function=api&limit=20", want: with(func(f *store.LogFilter) { f.Function, f.Limit = "api", 20 })},
		{name: "limit 0 is the default", query: "limit=0", want: base},
		{name: "limit capped", query: "limit=5000", want: with(func(f *store.LogFilter) { f.Limit = 1000 })},
		{name: "after", query: "after=65540", want: with(func(f *store.LogFilter) { f.AfterSeq = 65540 })},
		{name: "before", query: "before=65540", want: with(func(f *store.LogFilter) { f.BeforeSeq = 65540 })},
		{name: "Last-Event-ID resumes", query: "follow=true", lastEventID: "77", follow: true, want: with(func(f *store.LogFilter) { f.AfterSeq = 77 })},
		{name: "since minutes", query: "since=30m", want: with(func(f *store.LogFilter) { f.Since = now.Add(-30 * time.Minute) })},
		{name: "since days", query: "since=7d", want: with(func(f *store.LogFilter) { f.Since = now.Add(-7 * 24 * time.Hour) })},
		{name: "since a time", query: "since=2026-02-28T10:00:00.5%2B01:00", want: with(func(f *store.LogFilter) {
			f.Since = time.Date(2026, 2, 28, 9, 0, 0, 5e8, time.UTC)
		})},
		{name: "status error is every failure", query: "status=error", want: with(func(f *store.LogFilter) {
			f.Statuses = []string{"error", "oom", "throttled", "timeout"}
		})},
		{name: "statuses", query: "status=ok,%20timeout,timeout", want: with(func(f *store.LogFilter) { f.Statuses = []string{"ok", "timeout"} })},
		{name: "grep", query: "grep=GET%20/users%25", want: with(func(f *store.LogFilter) { f.Grep = "GET /users%" })},
		{name: "follow", query: "follow=1&function=api", follow: true, want: with(func(f *store.LogFilter) { f.Function = "api" })},

		{name: "bad limit", query: "limit=x", err: "limit="},
		{name: "negative limit", query: "limit=-1", err: "limit="},
		{name: "bad function", query: "function=Not_A_Name", err: "function="},
		{name: "bad after", query: "after=-1", err: "after="},
		{name: "bad before", query: "before=x", err: "before="},
		{name: "after and before", query: "after=1&before=2", err: "one or the other"},
		{name: "since bad", query: "since=yesterday", err: "since="},
		{name: "since negative", query: "since=-5m", err: "since="},
		{name: "since zero", query: "since=0s", err: "since="},
		{name: "since too far", query: "since=100000h", err: "since="},
		{name: "since 0 days", query: "since=0d", err: "since="},
		{name: "since too long", query: "since=" + strings.Repeat("1", 100) + "s", err: "since="},
		{name: "status unknown", query: "status=failed", err: "status="},
		{name: "status empty part", query: "status=ok,", err: "status="},
		{name: "grep too long", query: "grep=" + strings.Repeat("x", 257), err: "at most 256 bytes"},
		{name: "grep newline", query: "grep=a%0Ab", err: "one line"},
		{name: "grep NUL", query: "grep=a%00b", err: "one line"},
		{name: "grep not UTF-8", query: "grep=%FF", err: "one line"},
		{name: "follow bad", query: "follow=yes", err: "follow="},
		{name: "follow backwards", query: "follow=true&before=9", err: "follow and before"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseLogQuery(q, tt.lastEventID, now)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), "bad_request") {
					t.Fatalf("err = %v, want a bad request naming %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !got.filter.Since.Equal(tt.want.Since) {
				t.Fatalf("since = %v, want %v", got.filter.Since, tt.want.Since)
			}
			got.filter.Since, tt.want.Since = time.Time{}, time.Time{}
			if !reflect.DeepEqual(got.filter, tt.want) || got.follow != tt.follow {
				t.Fatalf("parsed %+v follow %v, want %+v follow %v", got.filter, got.follow, tt.want, tt.follow)
			}
		})
	}
}

// FuzzParseLogQuery: no query string crashes the parser, and what it
// accepts is within bounds.
func FuzzParseLogQuery(f *testing.F) {
	for _, seed := range []string{"", "function=api&limit=20&since=30m&status=error&grep=x", "since=7d", "after=1&before=2",
		"since=2026-02-28T10:00:00Z&status=ok,timeout", "grep=%FF", "limit=99999999999999999999"} {
		f.Add(seed, "")
	}
	f.Fuzz(func(t *testing.T, raw, lastEventID string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		lq, err := parseLogQuery(q, lastEventID, now)
		if err != nil {
			return
		}
		fl := lq.filter
		if fl.Limit < 1 || fl.Limit > store.MaxLimit || fl.AfterSeq < 0 || fl.BeforeSeq < 0 || fl.AfterSeq > 0 && fl.BeforeSeq > 0 {
			t.Fatalf("out of bounds: %+v", fl)
		}
		if len(fl.Grep) > maxGrepBytes || !utf8.ValidString(fl.Grep) || strings.ContainsAny(fl.Grep, "\n\x00") {
			t.Fatalf("grep %q", fl.Grep)
		}
		if fl.Function != "" && function.ValidName(fl.Function) != nil {
			t.Fatalf("function %q", fl.Function)
		}
		for _, s := range fl.Statuses {
			if s != function.StatusOK && !strings.Contains(strings.Join(FailedStatuses, ","), s) {
				t.Fatalf("status %q", s)
			}
		}
	})
}
