package app

import (
	"bufio"
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/client"
	"github.com/hostless/hostless/internal/function"
)

// logsPage is GET /v1/logs's answer.
type logsPage struct {
	Lines []function.LogLine `json:"lines"`
	Next  int64              `json:"next"`
	Prev  int64              `json:"prev"`
}

// TestLogFilters: GET /v1/logs filters by status, time and text, pages
// back with prev, and answers 400 naming a bad parameter.
func TestLogFilters(t *testing.T) {
	t.Parallel()
	g := buildGuests(t)
	a := startApp(t, newConfig(t))
	a.deploy("api", g.sdk, function.Spec{Contract: function.ContractSDK})
	a.deploy("other", g.sdk, function.Spec{Contract: function.ContractSDK})

	_, _, okID := a.invoke("GET", "/fn/api/log?n=3", nil)
	_, _, panicID := a.invoke("GET", "/fn/api/panic", nil)
	time.Sleep(5 * time.Millisecond)
	between := time.Now()
	time.Sleep(5 * time.Millisecond)
	_, _, laterID := a.invoke("GET", "/fn/api/log?n=1", nil)
	a.invoke("GET", "/fn/other/log?n=2", nil)
	if err := a.rec.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if rec := a.record(panicID); rec.Status != function.StatusError {
		t.Fatalf("the panic's record: %+v", rec)
	}

	get := func(t *testing.T, query string) logsPage {
		t.Helper()
		var p logsPage
		a.getJSON("/v1/logs?"+query, &p)
		return p
	}
	only := func(t *testing.T, p logsPage, ids ...string) {
		t.Helper()
		if len(p.Lines) == 0 {
			t.Fatal("no lines")
		}
		for _, l := range p.Lines {
			if !strings.Contains(strings.Join(ids, " "), l.InvocationID) || l.Function != "api" {
				t.Fatalf("line %+v is not of %v", l, ids)
			}
		}
	}
	t.Run("status error", func(t *testing.T) {
		p := get(t, "function=api&status=error")
		only(t, p, panicID)
		if !strings.Contains(p.Lines[0].Line, "panic: boom") {
			t.Errorf("first line of the panic: %q", p.Lines[0].Line)
		}
	})
	t.Run("status ok", func(t *testing.T) {
		only(t, get(t, "function=api&status=ok"), okID, laterID)
	})
	t.Run("grep", func(t *testing.T) {
		p := get(t, "function=api&grep="+url.QueryEscape("line 2"))
		if len(p.Lines) != 1 || p.Lines[0].Line != "line 2" || p.Lines[0].InvocationID != okID {
			t.Fatalf("grep %q: %+v", "line 2", p.Lines)
		}
	})
	t.Run("since", func(t *testing.T) {
		only(t, get(t, "function=api&since="+url.QueryEscape(between.Format(time.RFC3339Nano))), laterID)
		if p := get(t, "function=api&since=1h"); len(p.Lines) < 8 {
			t.Errorf("since 1h: %d lines", len(p.Lines))
		}
	})
	t.Run("pages back", func(t *testing.T) {
		all := get(t, "function=api")
		var paged []function.LogLine
		p := get(t, "function=api&limit=2")
		for p.Prev != 0 {
			paged = append(p.Lines, paged...)
			p = get(t, "function=api&limit=2&before="+strconv.FormatInt(p.Prev, 10))
		}
		paged = append(p.Lines, paged...)
		if len(paged) != len(all.Lines) || paged[0].Seq != all.Lines[0].Seq || paged[len(paged)-1].Seq != all.Lines[len(all.Lines)-1].Seq {
			t.Fatalf("paged back %d lines, want the %d of one page", len(paged), len(all.Lines))
		}
	})
	for _, s := range []scenario{
		{name: "bad since", path: "/v1/logs?since=yesterday", headers: authHeader(testKey), status: 400, code: "bad_request", contains: []string{"since="}},
		{name: "bad status", path: "/v1/logs?status=failed", headers: authHeader(testKey), status: 400, code: "bad_request", contains: []string{"status=", "any failure"}},
		{name: "long grep", path: "/v1/logs?grep=" + strings.Repeat("x", 300), headers: authHeader(testKey), status: 400, code: "bad_request", contains: []string{"256"}},
		{name: "after and before", path: "/v1/logs?after=1&before=2", headers: authHeader(testKey), status: 400, code: "bad_request"},
		{name: "bad function", path: "/v1/logs?function=NOPE", headers: authHeader(testKey), status: 400, code: "bad_request"},
		{name: "no key", path: "/v1/logs?status=error", status: 401, code: "unauthorized"},
	} {
		t.Run(s.name, func(t *testing.T) { s.run(t, a) })
	}
}

// TestFollowLogsFiltered: a live stream passes only the lines its filters
// let through.
func TestFollowLogsFiltered(t *testing.T) {
	t.Parallel()
	g := buildGuests(t)
	a := startApp(t, newConfig(t))
	a.deploy("tail", g.sdk, function.Spec{Contract: function.ContractSDK})

	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	lines := make(chan function.LogLine, 100)
	go func() {
		defer close(lines)
		_ = a.c.FollowLogs(ctx, client.LogQuery{Function: "tail", Grep: "line 1", Status: "ok"}, func(l function.LogLine) { lines <- l })
	}()
	// The stream may start after the first call: call until a line comes.
	deadline := time.After(10 * time.Second)
	var first function.LogLine
	for got := false; !got; {
		a.invoke("GET", "/fn/tail/log?n=3", nil)
		select {
		case first = <-lines:
			got = true
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatal("no line on the stream")
		}
	}
	a.invoke("GET", "/fn/tail/panic", nil) // fails: filtered out
	_, _, id := a.invoke("GET", "/fn/tail/log?n=2", nil)
	for {
		select {
		case l := <-lines:
			if l.Line != "line 1" {
				t.Fatalf("the stream passed %+v", l)
			}
			if l.InvocationID == id {
				return
			}
		case <-deadline:
			t.Fatalf("no line of %s after %+v", id, first)
		}
	}
}

// TestFollowLogsSSE: the stream's events carry ids that a reconnecting
// EventSource resumes from.
func TestFollowLogsSSE(t *testing.T) {
	t.Parallel()
	g := buildGuests(t)
	a := startApp(t, newConfig(t))
	a.deploy("tail", g.sdk, function.Spec{Contract: function.ContractSDK})
	a.invoke("GET", "/fn/tail/log?n=1", nil)
	if err := a.rec.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", a.base+"/v1/logs?function=tail&follow=true&grep=to+stdout", nil)
	req.Header = authHeader(testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	var id string
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
			id = v
		}
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			if !strings.Contains(d, `"line":"to stdout"`) || id == "" {
				t.Fatalf("event id %q data %s", id, d)
			}
			return
		}
	}
	t.Fatalf("stream ended: %v", sc.Err())
}
