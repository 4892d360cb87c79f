package app

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/client"
	"github.com/hostless/hostless/internal/config"
	"github.com/hostless/hostless/internal/function"
)

// postgresConfig returns a config whose store is a fresh schema of the
// server named by HOSTLESS_TEST_POSTGRES, dropped when the test ends, or
// skips the test. The schema is made with psql: only store/postgres
// imports pgx.
func postgresConfig(t *testing.T) config.Config {
	t.Helper()
	base := os.Getenv("HOSTLESS_TEST_POSTGRES")
	if base == "" {
		t.Skip("HOSTLESS_TEST_POSTGRES is not set (e.g. postgres://root@127.0.0.1:5432/test?sslmode=disable)")
	}
	if _, err := exec.LookPath("psql"); err != nil {
		t.Fatalf("HOSTLESS_TEST_POSTGRES is set but psql is not installed: %v", err)
	}
	schema := "hl_app_" + randomSuffix()
	psql := func(sql string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "psql", base, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql).CombinedOutput()
		if err != nil {
			return fmt.Errorf("psql %q: %v: %s", sql, err, out)
		}
		return nil
	}
	if err := psql("CREATE SCHEMA " + schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := psql("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Error(err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	cfg := newConfig(t)
	cfg.Postgres = u.String()
	return cfg
}

// TestBackends runs the core scenario (deploy, invoke, records, logs, a
// restart) on SQLite, and on PostgreSQL when HOSTLESS_TEST_POSTGRES is set.
func TestBackends(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  func(t *testing.T) config.Config
	}{
		{name: "sqlite", cfg: newConfig},
		{name: "postgres", cfg: postgresConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			coreScenario(t, tt.cfg(t))
		})
	}
}

// invoke calls a function URL and returns the status, body and invocation ID.
func (a *testApp) invoke(method, path string, body []byte) (int, string, string) {
	a.t.Helper()
	resp, b := a.do(method, path, body, nil)
	return resp.StatusCode, string(b), resp.Header.Get("X-Hostless-Invocation-Id")
}

func coreScenario(t *testing.T, cfg config.Config) {
	g := buildGuests(t)
	a := startApp(t, cfg)
	for _, d := range []struct {
		name, path string
		spec       function.Spec
	}{
		{"hello", g.hello, function.Spec{Contract: function.ContractSDK, MemoryMB: 64, Env: map[string]string{"GREETING": "Hello"}}},
		{"env", g.env, function.Spec{Contract: function.ContractCGI, MemoryMB: 32}},
		{"rec", g.sdk, function.Spec{}}, // contract detected
	} {
		if res := a.deploy(d.name, d.path, d.spec); res.Action != "created" || res.Version.Number != 1 {
			t.Fatalf("deploy %s: %s version %d", d.name, res.Action, res.Version.Number)
		}
	}

	// Invocations: rec cold, warm, and through the API.
	status, body, id1 := a.invoke("GET", "/fn/rec/log?n=3", nil)
	if status != 200 || body != "logged" || id1 == "" {
		t.Fatalf("rec /log: %d %q id %q", status, body, id1)
	}
	// IDs order by millisecond only: calls a few milliseconds apart list
	// in a known order.
	time.Sleep(2 * time.Millisecond)
	status, body, id2 := a.invoke("POST", "/fn/rec/echo?x=y", []byte("hi"))
	if status != 201 || body != "POST /echo?x=y hi" {
		t.Fatalf("rec /echo: %d %q", status, body)
	}
	time.Sleep(2 * time.Millisecond)
	res, err := a.c.Invoke(t.Context(), "rec", []byte(`{"k":"v"}`))
	if err != nil || res.HTTP != 200 || res.Status != function.StatusOK || res.ID == "" {
		t.Fatalf("api invoke: %+v %v", res, err)
	}
	id3 := res.ID
	if status, body, _ := a.invoke("GET", "/fn/hello?name=Ada", nil); status != 200 || body != "Hello, Ada!\n" {
		t.Fatalf("hello: %d %q", status, body)
	}
	if status, body, _ := a.invoke("GET", "/fn/env/x?q=1", nil); status != 200 || !strings.Contains(body, "PATH_INFO=/x") || !strings.Contains(body, "QUERY_STRING=q=1") {
		t.Fatalf("env: %d %q", status, body)
	}

	t.Run("records newest first", func(t *testing.T) {
		a.records("rec", 3)
		var page struct {
			Invocations []map[string]any `json:"invocations"`
			Next        string           `json:"next"`
		}
		a.getJSON("/v1/invocations?function=rec", &page)
		if len(page.Invocations) != 3 {
			t.Fatalf("%d records, want 3", len(page.Invocations))
		}
		var ids []string
		for _, r := range page.Invocations {
			for _, f := range []string{"id", "function", "version", "start", "duration_ns", "billed_ms", "memory_mb", "cold", "status", "trigger"} {
				if _, ok := r[f]; !ok {
					t.Errorf("record lacks %q: %v", f, r)
				}
			}
			if r["function"] != "rec" || r["version"] != 1.0 || r["status"] != "ok" || r["memory_mb"] != 128.0 {
				t.Errorf("record %v", r)
			}
			if d, _ := r["duration_ns"].(float64); d <= 0 {
				t.Errorf("duration_ns %v", r["duration_ns"])
			}
			if b, _ := r["billed_ms"].(float64); b < 1 {
				t.Errorf("billed_ms %v", r["billed_ms"])
			}
			if _, ok := r["logs"]; ok {
				t.Errorf("a listed record carries logs: %v", r)
			}
			ids = append(ids, r["id"].(string))
		}
		if want := []string{id3, id2, id1}; !slices.Equal(ids, want) {
			t.Errorf("ids %v, want newest first %v", ids, want)
		}
		if page.Next != "" {
			t.Errorf("next %q on the last page", page.Next)
		}
		colds := []any{page.Invocations[2]["cold"], page.Invocations[1]["cold"], page.Invocations[0]["cold"]}
		if !slices.Equal(colds, []any{true, false, false}) {
			t.Errorf("cold, oldest first: %v; want true, false, false", colds)
		}
		triggers := []any{page.Invocations[2]["trigger"], page.Invocations[0]["trigger"]}
		if !slices.Equal(triggers, []any{"http", "api"}) {
			t.Errorf("triggers %v", triggers)
		}
	})

	t.Run("records paging", func(t *testing.T) {
		recs, next, err := a.c.ListInvocations(t.Context(), "rec", 2, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 2 || recs[0].ID != id3 || recs[1].ID != id2 || next != id2 {
			t.Fatalf("page 1: %d records, next %q", len(recs), next)
		}
		recs, next, err = a.c.ListInvocations(t.Context(), "rec", 2, next)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 1 || recs[0].ID != id1 || next != "" {
			t.Fatalf("page 2: %+v, next %q", recs, next)
		}
		a.records("hello", 1)
		a.records("env", 1)
		all, _, err := a.c.ListInvocations(t.Context(), "", 0, "")
		if err != nil || len(all) != 5 {
			t.Errorf("unfiltered list: %d records, want 5 (%v)", len(all), err)
		}
		for _, s := range []scenario{
			{name: "bad limit", path: "/v1/invocations?limit=x", headers: authHeader(testKey), status: 400, code: "bad_request"},
			{name: "negative limit", path: "/v1/invocations?limit=-1", headers: authHeader(testKey), status: 400, code: "bad_request"},
			{name: "unknown id", path: "/v1/invocations/nope", headers: authHeader(testKey), status: 404, code: "invocation_not_found"},
			{name: "unknown function", path: "/v1/invocations?function=nope", headers: authHeader(testKey), status: 200,
				contains: []string{`"invocations":[]`}},
		} {
			t.Run(s.name, func(t *testing.T) { s.run(t, a) })
		}
	})

	wantLogs := []string{"stderr: line 0", "stderr: line 1", "stderr: line 2", "stdout: to stdout", "stderr: no newline at end"}
	t.Run("invocation logs", func(t *testing.T) {
		rec := a.record(id1)
		if rec.ID != id1 || rec.Function != "rec" || !rec.Cold || rec.HTTPStatus != 200 {
			t.Errorf("record %+v", rec)
		}
		var got []string
		for _, l := range rec.Logs {
			got = append(got, l.Stream+": "+l.Line)
		}
		// stdout and stderr are separate pipes: compare each stream's order.
		if !sameLines(got, wantLogs) {
			t.Errorf("logs %q, want %q", got, wantLogs)
		}
	})

	t.Run("logs endpoint", func(t *testing.T) {
		var out struct {
			Lines []function.LogLine `json:"lines"`
			Next  int64              `json:"next"`
		}
		a.getJSON("/v1/logs?function=rec", &out)
		var got []string
		for _, l := range out.Lines {
			if l.InvocationID != id1 || l.Function != "rec" || l.Version != 1 || l.Seq <= 0 {
				t.Errorf("line %+v", l)
			}
			got = append(got, l.Stream+": "+l.Line)
		}
		if !sameLines(got, wantLogs) {
			t.Errorf("lines %q, want %q", got, wantLogs)
		}
		if len(out.Lines) == 0 || out.Next < out.Lines[len(out.Lines)-1].Seq {
			t.Fatalf("next %d, want at or after the last seq", out.Next)
		}
		p, err := a.c.Logs(t.Context(), client.LogQuery{Function: "rec", After: out.Next})
		if err != nil || len(p.Lines) != 0 || p.Next != out.Next {
			t.Errorf("after the last line: %+v err %v", p, err)
		}
		p, err = a.c.Logs(t.Context(), client.LogQuery{Function: "rec", Limit: 2})
		if err != nil || len(p.Lines) != 2 || p.Lines[1].Seq != out.Lines[len(out.Lines)-1].Seq {
			t.Errorf("limit 2: %+v %v; want the newest two", p.Lines, err)
		}
		hello, err := a.c.Logs(t.Context(), client.LogQuery{Function: "hello"})
		if err != nil || len(hello.Lines) != 1 || !strings.Contains(hello.Lines[0].Line, "greeting Ada") {
			t.Errorf("hello's logs: %+v %v", hello, err)
		}
		s := scenario{name: "bad after", path: "/v1/logs?after=-1", headers: authHeader(testKey), status: 400, code: "bad_request"}
		s.run(t, a)
	})

	t.Run("restart keeps everything", func(t *testing.T) {
		a.records("env", 1)
		a.records("hello", 1)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Fatalf("shutdown: %v", err)
		}
		b := startApp(t, cfg)
		// Shutdown flushed the records: no polling here.
		rec, err := b.c.GetInvocation(t.Context(), id1)
		if err != nil {
			t.Fatalf("record after restart: %v", err)
		}
		var got []string
		for _, l := range rec.Logs {
			got = append(got, l.Stream+": "+l.Line)
		}
		if !sameLines(got, wantLogs) {
			t.Errorf("logs after restart %q", got)
		}
		recs, _, err := b.c.ListInvocations(t.Context(), "", 0, "")
		if err != nil || len(recs) != 5 {
			t.Errorf("%d records after restart, want 5 (%v)", len(recs), err)
		}
		fns, err := b.c.ListFunctions(t.Context())
		if err != nil || len(fns) != 3 {
			t.Fatalf("functions after restart: %+v %v", fns, err)
		}
		if status, body, _ := b.invoke("GET", "/fn/hello?name=again", nil); status != 200 || body != "Hello, again!\n" {
			t.Errorf("hello after restart: %d %q", status, body)
		}
		_, _, id := b.invoke("GET", "/fn/rec/echo", nil)
		if rec := b.record(id); !rec.Cold {
			t.Errorf("first call after a restart is not cold: %+v", rec)
		}
		// An unchanged redeploy after a restart stays at version 1.
		if res := b.deploy("hello", g.hello, function.Spec{Contract: function.ContractSDK, MemoryMB: 64, Env: map[string]string{"GREETING": "Hello"}}); res.Action != "unchanged" || res.Version.Number != 1 {
			t.Errorf("redeploy after restart: %s version %d", res.Action, res.Version.Number)
		}
	})
}

// sameLines reports whether got has the lines of want with each stream's
// lines in order (stdout and stderr interleave freely).
func sameLines(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for _, stream := range []string{"stdout: ", "stderr: "} {
		var g, w []string
		for _, l := range got {
			if strings.HasPrefix(l, stream) {
				g = append(g, l)
			}
		}
		for _, l := range want {
			if strings.HasPrefix(l, stream) {
				w = append(w, l)
			}
		}
		if !slices.Equal(g, w) {
			return false
		}
	}
	return true
}

// TestFollowLogs reads lines from a live SSE stream as a function logs them,
// resumes with Last-Event-ID, and sees the stream end when the server drains.
func TestFollowLogs(t *testing.T) {
	t.Parallel()
	g := buildGuests(t)
	a := startApp(t, newConfig(t))
	a.deploy("tail", g.sdk, function.Spec{Contract: function.ContractSDK})

	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", a.base+"/v1/logs?function=tail&follow=true", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = authHeader(testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("follow: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	// next returns the next data line, skipping ids, events and keepalives.
	next := func() (function.LogLine, bool) {
		t.Helper()
		timeout := time.After(5 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					return function.LogLine{}, false
				}
				data, ok := strings.CutPrefix(l, "data: ")
				if !ok {
					continue
				}
				var line function.LogLine
				if err := json.Unmarshal([]byte(data), &line); err != nil {
					t.Fatalf("data %q: %v", data, err)
				}
				return line, true
			case <-timeout:
				t.Fatal("no log line on the stream within 5s")
			}
		}
	}

	_, _, id := a.invoke("GET", "/fn/tail/log?n=2", nil)
	var got []function.LogLine
	for range 4 { // line 0, line 1, to stdout, no newline at end
		l, ok := next()
		if !ok {
			t.Fatal("stream ended early")
		}
		if l.InvocationID != id || l.Function != "tail" {
			t.Errorf("line %+v, want invocation %s", l, id)
		}
		got = append(got, l)
	}
	if !slices.ContainsFunc(got, func(l function.LogLine) bool { return l.Line == "line 1" && l.Stream == "stderr" }) {
		t.Errorf("stream lacks line 1: %+v", got)
	}
	// A second invocation reaches the same stream.
	_, _, id2 := a.invoke("GET", "/fn/tail/log?n=0", nil)
	if l, ok := next(); !ok || l.InvocationID != id2 {
		t.Errorf("second invocation's line: %+v %v", l, ok)
	}

	// Last-Event-ID resumes after a line.
	h := authHeader(testKey)
	h.Set("Last-Event-ID", fmt.Sprint(got[0].Seq))
	r, body := a.do("GET", "/v1/logs?function=tail", nil, h)
	var resumed struct{ Lines []function.LogLine }
	if err := json.Unmarshal(body, &resumed); err != nil || r.StatusCode != 200 {
		t.Fatalf("resume: %d %s", r.StatusCode, body)
	}
	if len(resumed.Lines) == 0 || resumed.Lines[0].Seq <= got[0].Seq {
		t.Errorf("resumed lines %+v start at or before %d", resumed.Lines, got[0].Seq)
	}

	// Draining ends the stream, so Shutdown does not wait for the follower.
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	start := time.Now()
	if err := a.Shutdown(sctx); err != nil {
		t.Fatalf("shutdown with a follower: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown took %s with a follower", d)
	}
	for {
		select {
		case _, ok := <-lines:
			if !ok {
				return
			}
		case <-time.After(5 * time.Second):
			t.Fatal("stream still open 5s after shutdown")
		}
	}
}

// TestGracefulDrain shuts down while an invocation runs: it completes.
func TestGracefulDrain(t *testing.T) {
	t.Parallel()
	g := buildGuests(t)
	cfg := newConfig(t)
	a := startApp(t, cfg)
	a.deploy("sleepy", g.sdk, function.Spec{Contract: function.ContractSDK})
	if status, _, _ := a.invoke("GET", "/fn/sleepy/echo", nil); status != 201 {
		t.Fatalf("warm up: %d", status)
	}
	type result struct {
		status int
		body   string
		id     string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.Get(a.base + "/fn/sleepy/sleep?d=1s")
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, err = bufio.NewReader(resp.Body).WriteTo(&b)
		done <- result{status: resp.StatusCode, body: b.String(), id: resp.Header.Get("X-Hostless-Invocation-Id"), err: err}
	}()
	waitFor(t, "the invocation to be in flight", func() bool { return a.sched.Stats().Busy > 0 })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := a.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	took := time.Since(start)
	var r result
	select {
	case r = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the in-flight request did not finish")
	}
	if r.err != nil || r.status != 200 || r.body != "slept" {
		t.Fatalf("in-flight request: %d %q %v", r.status, r.body, r.err)
	}
	if took < 500*time.Millisecond {
		t.Errorf("shutdown returned after %s, before the 1s invocation could finish", took)
	}
	if _, err := http.Get(a.base + "/healthz"); err == nil {
		t.Error("the server still answers after shutdown")
	}
	// The drained invocation's record was flushed before the store closed.
	b := startApp(t, cfg)
	rec, err := b.c.GetInvocation(t.Context(), r.id)
	if err != nil || rec.Status != function.StatusOK || rec.Duration < time.Second {
		t.Errorf("record of the drained invocation: %+v %v", rec, err)
	}
}

// TestShutdownAfterTheGrace: when the grace period ends before an
// invocation does, shutdown cancels it, still flushes its record, and a
// second shutdown (the test's cleanup) is harmless.
func TestShutdownAfterTheGrace(t *testing.T) {
	t.Parallel()
	g := buildGuests(t)
	cfg := newConfig(t)
	a := startApp(t, cfg)
	a.deploy("stuck", g.sdk, function.Spec{Contract: function.ContractSDK, Timeout: function.Duration(time.Minute)})
	if status, _, _ := a.invoke("GET", "/fn/stuck/echo", nil); status != 201 {
		t.Fatalf("warm up: %d", status)
	}
	ids := make(chan string, 1)
	go func() {
		resp, err := http.Get(a.base + "/fn/stuck/spin")
		if err != nil {
			ids <- ""
			return
		}
		resp.Body.Close()
		ids <- resp.Header.Get("X-Hostless-Invocation-Id")
	}()
	waitFor(t, "the invocation to be in flight", func() bool { return a.sched.Stats().Busy > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := a.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("shutdown past its grace: err = %v, want the drain's deadline", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("shutdown took %s with a 300ms grace: the spinning call was not cancelled", took)
	}
	<-ids // the client's connection was closed
	b := startApp(t, cfg)
	recs := b.records("stuck", 2)
	if len(recs) != 2 || recs[0].Status != function.StatusError || !strings.Contains(recs[0].Error, "cancel") {
		t.Errorf("records after a cut shutdown: %+v", recs)
	}
}

// TestRedeploy changes a function's env: the next call sees the new value.
func TestRedeploy(t *testing.T) {
	t.Parallel()
	g := buildGuests(t)
	a := startApp(t, newConfig(t))
	spec := func(greeting string) function.Spec {
		return function.Spec{Contract: function.ContractSDK, MemoryMB: 64, Env: map[string]string{"GREETING": greeting}}
	}
	steps := []struct {
		name, greeting string
		wantAction     string
		wantVersion    int
	}{
		{name: "first", greeting: "a", wantAction: "created", wantVersion: 1},
		{name: "changed", greeting: "b", wantAction: "updated", wantVersion: 2},
		{name: "same", greeting: "b", wantAction: "unchanged", wantVersion: 2},
		{name: "back", greeting: "a", wantAction: "updated", wantVersion: 3},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			res := a.deploy("greet", g.hello, spec(s.greeting))
			if res.Action != s.wantAction || res.Version.Number != s.wantVersion {
				t.Fatalf("deploy: %s version %d, want %s %d", res.Action, res.Version.Number, s.wantAction, s.wantVersion)
			}
			for _, name := range []string{"world", "Ada"} {
				path := "/fn/greet"
				if name != "world" {
					path += "?name=" + name
				}
				status, body, id := a.invoke("GET", path, nil)
				if want := s.greeting + ", " + name + "!\n"; status != 200 || body != want {
					t.Errorf("GET %s: %d %q, want %q", path, status, body, want)
				}
				if rec := a.record(id); rec.Version != s.wantVersion {
					t.Errorf("record version %d, want %d", rec.Version, s.wantVersion)
				}
			}
		})
	}
	vs, err := a.c.ListVersions(t.Context(), "greet")
	if err != nil || len(vs) != 3 {
		t.Fatalf("versions: %d %v", len(vs), err)
	}
}

// TestGeneratedAdminKey starts without a configured key: one is generated
// once, works, and is not generated again on restart.
func TestGeneratedAdminKey(t *testing.T) {
	t.Parallel()
	cfg := newConfig(t)
	cfg.AdminKey = ""
	a := startApp(t, cfg)
	key := a.GeneratedKey
	if !strings.HasPrefix(key, "hl_") || len(key) < 40 {
		t.Fatalf("generated key %q", key)
	}
	if _, err := client.New(a.base, key).ListFunctions(t.Context()); err != nil {
		t.Fatalf("generated key refused: %v", err)
	}
	_, err := client.New(a.base, testKey).ListFunctions(t.Context())
	var e *client.Error
	if !errors.As(err, &e) || e.Status != http.StatusForbidden {
		t.Fatalf("another key: %v, want 403", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// Only a hash of the key is stored.
	err = filepath.WalkDir(cfg.DataDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), key) {
			return fmt.Errorf("%s holds the key in clear", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	b := startApp(t, cfg)
	if b.GeneratedKey != "" {
		t.Errorf("restart generated another key")
	}
	if _, err := client.New(b.base, key).ListFunctions(t.Context()); err != nil {
		t.Errorf("generated key refused after restart: %v", err)
	}
	if err := b.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	// A configured key replaces the generated one; extra keys work too.
	cfg.AdminKey = testKey
	extra := NewKey()
	c := New(cfg, nil)
	c.ExtraKeys = []string{extra}
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Shutdown(context.Background()) })
	if c.GeneratedKey != "" {
		t.Errorf("generated a key although one is configured")
	}
	for _, k := range []string{testKey, extra} {
		if _, err := client.New(c.URL(), k).ListFunctions(t.Context()); err != nil {
			t.Errorf("key refused: %v", err)
		}
	}
	if _, err := client.New(c.URL(), key).ListFunctions(t.Context()); !errors.As(err, &e) || e.Status != http.StatusForbidden {
		t.Errorf("the generated key with a configured one: %v, want 403", err)
	}
}

// TestStartFails checks that configuration errors stop Start with a message
// naming the field, and that Close works after a failed start.
func TestStartFails(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		modify func(*config.Config)
		want   string
	}{
		{name: "short admin key", modify: func(c *config.Config) { c.AdminKey = "short" }, want: "HOSTLESS_ADMIN_KEY"},
		{name: "bad address", modify: func(c *config.Config) { c.Addr = "nowhere" }, want: "addr"},
		{name: "tls cert without key", modify: func(c *config.Config) { c.TLSCert = "cert.pem" }, want: "tls"},
		{name: "postgres not a URL", modify: func(c *config.Config) { c.Postgres = "mysql://x" }, want: "postgres"},
		{name: "address in use", modify: func(c *config.Config) {}, want: "listen"},
	}
	busy := startApp(t, newConfig(t))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := newConfig(t)
			if tt.name == "address in use" {
				cfg.Addr = strings.TrimPrefix(busy.base, "http://")
			}
			tt.modify(&cfg)
			a := New(cfg, nil)
			err := a.Start(t.Context())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Start: %v, want an error naming %q", err, tt.want)
			}
			if err := a.Close(context.Background()); err != nil {
				t.Errorf("Close after a failed start: %v", err)
			}
		})
	}
}

// TestCompileIsNotBilled: the first call after a deploy may wait for its
// code to compile; the record bills the instance's start and the call, not
// the platform's compile.
func TestCompileIsNotBilled(t *testing.T) {
	t.Parallel()
	g := buildGuests(t)
	cfg := config.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), AdminKey: testKey} // no shared cache
	a := startApp(t, cfg)
	start := time.Now()
	a.deploy("fresh", g.sdk, function.Spec{Contract: function.ContractSDK, Timeout: function.Duration(5 * time.Second)})
	status, _, id := a.invoke("GET", "/fn/fresh/echo", nil)
	wall := time.Since(start)
	if status != 201 {
		t.Fatalf("first call: %d", status)
	}
	rec := a.record(id)
	if !rec.Cold {
		t.Error("the first call should be cold")
	}
	if billed := time.Duration(rec.BilledMS) * time.Millisecond; billed > wall/2 {
		t.Errorf("billed %s of a %s first call that mostly waited for compilation", billed, wall)
	}
}
