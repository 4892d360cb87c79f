package app

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hostless/hostless/internal/api"
	"github.com/hostless/hostless/internal/async"
	"github.com/hostless/hostless/internal/client"
	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/gateway"
	"github.com/hostless/hostless/internal/wasmtest"
)

var eventHeader = http.Header{"X-Hostless-Invocation-Type": {"Event"}}

// enqueue calls path asynchronously and returns the invocation ID of its 202.
func (a *testApp) enqueue(path string, body []byte, header http.Header) string {
	a.t.Helper()
	h := eventHeader.Clone()
	for k, vs := range header {
		h[k] = vs
	}
	resp, b := a.do(http.MethodPost, path, body, h)
	if resp.StatusCode != http.StatusAccepted {
		a.t.Fatalf("POST %s (Event): %d %s, want 202", path, resp.StatusCode, b)
	}
	var acc gateway.Accepted
	if err := json.Unmarshal(b, &acc); err != nil || acc.ID == "" || acc.Status != "queued" {
		a.t.Fatalf("POST %s (Event): %s: %v", path, b, err)
	}
	if got := resp.Header.Get("X-Hostless-Invocation-Id"); got != acc.ID {
		a.t.Fatalf("X-Hostless-Invocation-Id %q, body id %q", got, acc.ID)
	}
	if got := resp.Header.Get("Location"); got != "/v1/invocations/"+acc.ID {
		a.t.Fatalf("Location %q", got)
	}
	return acc.ID
}

// asyncState reads an async invocation's state; ok is false while it is
// not stored yet.
func (a *testApp) asyncState(id string) (api.AsyncState, bool) {
	a.t.Helper()
	resp, b := a.do(http.MethodGet, "/v1/invocations/"+id, nil, authHeader(testKey))
	if resp.StatusCode == http.StatusNotFound {
		return api.AsyncState{}, false
	}
	if resp.StatusCode != http.StatusOK {
		a.t.Fatalf("GET invocation %s: %d %s", id, resp.StatusCode, b)
	}
	var st api.AsyncState
	if err := json.Unmarshal(b, &st); err != nil || !st.Async {
		a.t.Fatalf("GET invocation %s: %s (%v)", id, b, err)
	}
	return st, true
}

// awaitAsync waits until an async invocation reaches one of the statuses.
func (a *testApp) awaitAsync(id string, timeout time.Duration, statuses ...string) api.AsyncState {
	a.t.Helper()
	deadline := time.Now().Add(timeout)
	var st api.AsyncState
	for {
		var ok bool
		st, ok = a.asyncState(id)
		if ok {
			for _, s := range statuses {
				if st.Status == s {
					return st
				}
			}
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("async invocation %s: status %q after %s, want one of %v", id, st.Status, timeout, statuses)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAsyncInvoke: an event is answered 202 at once, is queued, runs with
// the request the sync path would have given, and its outcome is kept.
func TestAsyncInvoke(t *testing.T) {
	g := buildGuests(t)
	a := startApp(t, newConfig(t))
	a.deploy("sdk", g.sdk, function.Spec{})

	id := a.enqueue("/fn/sdk/echo?x=1", []byte("hello"), http.Header{"X-Test": {"kept"}})
	st := a.awaitAsync(id, 30*time.Second, function.StatusOK)
	if st.Function != "sdk" || st.Trigger != function.TriggerAsync || st.Attempts != 1 || st.Result == nil {
		t.Fatalf("state %+v", st)
	}
	if st.Result.Status != 201 || st.Result.Body != "POST /echo?x=1 hello" || st.Result.Header.Get("X-Header") != "kept" {
		t.Errorf("result %+v, want what the sync call answers", st.Result)
	}
	// The attempt left a record of its own, named by the state.
	rec := a.record(st.LastAttempt)
	if rec.Trigger != function.TriggerAsync || rec.Status != function.StatusOK {
		t.Errorf("attempt record %+v", rec)
	}
	// An event's body is bounded by limits.event: 256 KiB by default, as
	// Lambda's; up to the request limit (6 MiB) when the function says so.
	resp, b := a.do(http.MethodPost, "/fn/sdk/echo", bytes.Repeat([]byte("b"), 256<<10+1), eventHeader)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), "limits.event") {
		t.Errorf("an event of 256 KiB + 1: %d %s, want 413 naming limits.event", resp.StatusCode, b)
	}
	a.deploy("bigevents", g.sdk, function.Spec{Limits: function.Limits{Event: 6 << 20}})
	big := bytes.Repeat([]byte("b"), 5<<20)
	st = a.awaitAsync(a.enqueue("/fn/bigevents/echo", big, nil), 30*time.Second, function.StatusOK)
	if want := "POST /echo? " + string(big); st.Result.Body != want {
		t.Errorf("a 5 MiB event's result is %d bytes, want %d", len(st.Result.Body), len(want))
	}
	// The control API's invoke takes the same header.
	resp, b = a.do(http.MethodPost, "/v1/functions/sdk/invoke", []byte("x"), func() http.Header {
		h := authHeader(testKey)
		h.Set("X-Hostless-Invocation-Type", "Event")
		return h
	}())
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("invoke (Event): %d %s", resp.StatusCode, b)
	}
	a.awaitAsync(resp.Header.Get("X-Hostless-Invocation-Id"), 30*time.Second, function.StatusOK)

	// Bad input is refused before anything is queued.
	for _, c := range []struct {
		path   string
		header http.Header
		status int
	}{
		{"/fn/nope", eventHeader, http.StatusNotFound},
		{"/fn/sdk@9", eventHeader, http.StatusNotFound},
		{"/fn/sdk", http.Header{"X-Hostless-Invocation-Type": {"Later"}}, http.StatusBadRequest},
		{"/fn/sdk", http.Header{"X-Hostless-Invocation-Type": {"Event"}, "Idempotency-Key": {strings.Repeat("k", 300)}}, http.StatusBadRequest},
	} {
		resp, b := a.do(http.MethodPost, c.path, nil, c.header)
		if resp.StatusCode != c.status {
			t.Errorf("POST %s %v: %d %s, want %d", c.path, c.header, resp.StatusCode, b, c.status)
		}
	}
	if _, ok := a.asyncState("0000000000000000000000000z"); ok {
		t.Error("an unknown ID has a state")
	}
}

// TestAsyncRetriesAndDeadLetters: a failing event is retried as its
// retry policy says, then dead-lettered; a redrive after a fix runs it.
func TestAsyncRetriesAndDeadLetters(t *testing.T) {
	g := buildGuests(t)
	a := startApp(t, newConfig(t))
	one := 1
	a.deploy("flaky", g.sdk, function.Spec{Retry: function.Retry{MaxAttempts: &one, Backoff: function.Duration(200 * time.Millisecond)}})

	id := a.enqueue("/fn/flaky/panic", []byte("payload"), nil)
	st := a.awaitAsync(id, 30*time.Second, function.StatusDeadLettered)
	if st.Attempts != 2 || !strings.Contains(st.Error, "failed 2 times") {
		t.Fatalf("state %+v, want dead-lettered after 2 attempts", st)
	}
	// Both attempts left records; the first was retried after its backoff.
	recs := a.records("flaky", 2)
	if len(recs) != 2 || recs[0].Status != function.StatusError || recs[1].Status != function.StatusError {
		t.Fatalf("records %+v", recs)
	}
	if gap := recs[0].Start.Sub(recs[1].Start); gap < 100*time.Millisecond {
		t.Errorf("second attempt %s after the first, want at least half the 200ms backoff", gap)
	}

	var dl struct {
		DeadLetters []async.DeadLetter `json:"dead_letters"`
	}
	a.getJSON("/v1/functions/flaky/dlq", &dl)
	if len(dl.DeadLetters) != 1 || dl.DeadLetters[0].ID != id || dl.DeadLetters[0].Attempts != 2 || dl.DeadLetters[0].Bytes != len("payload") {
		t.Fatalf("dead letters %+v", dl.DeadLetters)
	}

	// Fix the function (the cgi guest answers every path), then redrive.
	a.deploy("flaky", g.cgi, function.Spec{Retry: function.Retry{MaxAttempts: &one, Backoff: function.Duration(200 * time.Millisecond)}})
	resp, b := a.do(http.MethodPost, "/v1/functions/flaky/dlq/redrive", nil, authHeader(testKey))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"redriven":1`) {
		t.Fatalf("redrive: %d %s", resp.StatusCode, b)
	}
	st = a.awaitAsync(id, 30*time.Second, function.StatusOK)
	if st.Attempts != 3 || st.Result == nil || st.Result.Status != http.StatusOK {
		t.Fatalf("after the redrive: %+v, want ok on the 3rd attempt", st)
	}
	a.getJSON("/v1/functions/flaky/dlq", &dl)
	if len(dl.DeadLetters) != 0 {
		t.Errorf("dead letters after the redrive: %+v", dl.DeadLetters)
	}
	resp, b = a.do(http.MethodPost, "/v1/functions/nope/dlq/redrive", nil, authHeader(testKey))
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("redrive of an unknown function: %d %s", resp.StatusCode, b)
	}
}

// TestAsyncIdempotencyKey: calls with one key make one invocation.
func TestAsyncIdempotencyKey(t *testing.T) {
	g := buildGuests(t)
	a := startApp(t, newConfig(t))
	a.deploy("sdk", g.sdk, function.Spec{})
	key := http.Header{"Idempotency-Key": {"order-42"}}
	first := a.enqueue("/fn/sdk/echo", []byte("a"), key)
	for range 3 {
		if again := a.enqueue("/fn/sdk/echo", []byte("a"), key); again != first {
			t.Fatalf("same key: id %s, want the first's %s", again, first)
		}
	}
	other := a.enqueue("/fn/sdk/echo", []byte("b"), http.Header{"Idempotency-Key": {"order-43"}})
	if other == first {
		t.Fatal("another key got the same id")
	}
	a.awaitAsync(first, 30*time.Second, function.StatusOK)
	a.awaitAsync(other, 30*time.Second, function.StatusOK)
	time.Sleep(200 * time.Millisecond) // a duplicate, if queued, would have run by now
	if recs := a.records("sdk", 2); len(recs) != 2 {
		t.Errorf("%d records, want 2 (one per key)", len(recs))
	}
}

// TestAsyncConcurrencyLimit: events beyond a function's concurrency wait
// their turn rather than fail: all of them run, never more at once than
// the limit.
func TestAsyncConcurrencyLimit(t *testing.T) {
	g := buildGuests(t)
	cfg := newConfig(t)
	cfg.QueueTimeout = 50 * time.Millisecond // throttles come fast: they must not count as attempts
	a := startApp(t, cfg)
	zero := 0
	a.deploy("slow", g.sdk, function.Spec{Concurrency: function.Concurrency{Max: 2}, Retry: function.Retry{MaxAttempts: &zero}})
	var ids []string
	for range 10 {
		ids = append(ids, a.enqueue("/fn/slow/sleep?d=100ms", nil, nil))
	}
	for _, id := range ids {
		if st := a.awaitAsync(id, 60*time.Second, function.StatusOK, function.StatusDeadLettered); st.Status != function.StatusOK {
			t.Fatalf("%s: %+v", id, st)
		}
	}
	// At most 2 ran at once: the 10 runs of 100 ms took at least 5 rounds.
	recs := a.records("slow", 10)
	var ok []function.Invocation
	for _, r := range recs {
		if r.Status == function.StatusOK {
			ok = append(ok, r)
		}
	}
	if len(ok) != 10 {
		t.Fatalf("%d ok records, want 10", len(ok))
	}
	for _, r := range ok {
		running := 0
		for _, o := range ok {
			if !o.Start.After(r.Start) && o.Start.Add(o.Duration).After(r.Start) {
				running++
			}
		}
		if running > 2 {
			t.Fatalf("%d ran at once at %s, want at most 2", running, r.Start)
		}
	}
}

// TestAsyncSurvivesRestart: events accepted before a restart run after it.
func TestAsyncSurvivesRestart(t *testing.T) {
	g := buildGuests(t)
	cfg := newConfig(t)
	a1 := New(cfg, nil)
	if err := a1.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ta := &testApp{App: a1, t: t, cfg: cfg, base: a1.URL(), c: client.New(a1.URL(), testKey), hc: &http.Client{Timeout: 30 * time.Second}}
	ta.deploy("slow", g.sdk, function.Spec{Concurrency: function.Concurrency{Max: 1}})
	var ids []string
	for range 5 {
		ids = append(ids, ta.enqueue("/fn/slow/sleep?d=300ms", nil, nil))
	}
	// Stop before most have run: the grace period is short, so what has not
	// started stays on the bus.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := a1.Shutdown(ctx); err != nil {
		t.Logf("shutdown: %v", err)
	}
	cfg.Addr = "127.0.0.1:0"
	a2 := startApp(t, cfg)
	for _, id := range ids {
		a2.awaitAsync(id, 30*time.Second, function.StatusOK)
	}
}

// TestLambdaEventInvoke: the Lambda Invoke API's Event type answers 202
// with the request ID, and the function gets the payload later.
func TestLambdaEventInvoke(t *testing.T) {
	needSandbox(t)
	cfg := newConfig(t)
	cfg.AWSAccessKeyID, cfg.AWSSecretAccessKey = testAWSKeyID, testAWSSecret
	a := startApp(t, cfg)
	a.deploy("lfn", zipCode(t, wasmtest.LambdaFn(t)), function.Spec{Runtime: function.RuntimeProcess,
		Timeout: function.Duration(5 * time.Second), MemoryMB: 64, Network: function.NetworkNone})
	c := lambdaClient(a.base, testAWSKeyID, testAWSSecret)
	out, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("lfn"),
		Payload: []byte(`{"action":"count"}`), InvocationType: types.InvocationTypeEvent})
	if err != nil {
		t.Fatal(err)
	}
	if out.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d, want 202", out.StatusCode)
	}
	id, ok := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	if !ok || id == "" {
		t.Fatal("no request ID in the 202")
	}
	st := a.awaitAsync(id, 30*time.Second, function.StatusOK)
	if st.Trigger != function.TriggerLambda || st.Result == nil || st.Result.Body != `{"count":1}` {
		t.Errorf("state %+v, want the function's result", st)
	}
}

// TestCron: a function with a schedule runs on its ticks, with a
// CloudEvents envelope (wasm) or EventBridge's Scheduled Event (Lambda);
// removing the schedule stops it.
func TestCron(t *testing.T) {
	g := buildGuests(t)
	a := startApp(t, newConfig(t))
	a.deploy("tick", g.sdk, function.Spec{Schedule: "@every 1s"})
	recs := waitRecords(t, a, "tick", 2, 10*time.Second)
	for _, r := range recs[:2] {
		if r.Trigger != function.TriggerCron || r.Status != function.StatusOK {
			t.Fatalf("record %+v", r)
		}
	}
	// Two ticks a second apart, on whole seconds (the same on every node).
	first, second := recs[1].Start, recs[0].Start
	if d := second.Sub(first); d < 700*time.Millisecond || d > 1500*time.Millisecond {
		t.Errorf("ticks %s apart, want about 1s", d)
	}
	// The tick's state is kept under its ID, and the function got an envelope.
	var st api.AsyncState
	waitFor(t, "a tick's state", func() bool {
		var ok bool
		st, ok = a.asyncState(function.IDAt(first.Truncate(time.Second), "cron/default/tick"))
		if !ok {
			st, ok = a.asyncState(function.IDAt(first.Truncate(time.Second).Add(time.Second), "cron/default/tick"))
		}
		return ok && st.Status == function.StatusOK
	})
	if st.Trigger != function.TriggerCron || st.Result == nil || !strings.HasPrefix(st.Result.Body, "calls=") {
		t.Errorf("tick state %+v", st)
	}
	a.deploy("tick", g.sdk, function.Spec{Env: map[string]string{"NO": "schedule"}})
	n := len(a.records("tick", 1))
	time.Sleep(2500 * time.Millisecond)
	if m := len(a.records("tick", 1)); m > n+1 { // one tick may have been in flight
		t.Errorf("%d more runs after the schedule was removed", m-n)
	}
}

// waitRecords waits up to timeout for n records of fn, newest first.
func waitRecords(t *testing.T, a *testApp, fn string, n int, timeout time.Duration) []function.Invocation {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		recs, _, err := a.c.ListInvocations(context.Background(), fn, 100, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) >= n {
			return recs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d records of %s after %s, want %d", len(recs), fn, timeout, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCronOnceAcrossNodes: two nodes sharing one NATS (each with its own
// store) run a schedule's ticks once between them, not once each.
func TestCronOnceAcrossNodes(t *testing.T) {
	url := os.Getenv("HOSTLESS_TEST_NATS")
	if url == "" {
		t.Skip("HOSTLESS_TEST_NATS is not set (nats://127.0.0.1:4222 in CI)")
	}
	g := buildGuests(t)
	prefix := "hl" + randomSuffix() + "_"
	var nodes []*testApp
	for range 2 {
		cfg := newConfig(t)
		cfg.NATS, cfg.NATSPrefix = url, prefix
		a := startApp(t, cfg)
		a.deploy("tick", g.sdk, function.Spec{Schedule: "@every 1s"})
		nodes = append(nodes, a)
	}
	t.Cleanup(func() { deletePrefixStreams(t, url, prefix) })
	time.Sleep(4500 * time.Millisecond)
	ticks := map[int64]int{}
	for _, a := range nodes {
		recs, _, err := a.c.ListInvocations(context.Background(), "tick", 100, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			ticks[r.Start.Unix()]++
		}
	}
	if len(ticks) < 3 {
		t.Fatalf("%d ticks ran in 4.5 s, want at least 3: %v", len(ticks), ticks)
	}
	for sec, n := range ticks {
		if n != 1 {
			t.Errorf("the tick of second %d ran %d times", sec, n)
		}
	}
}

// deletePrefixStreams deletes the streams (and key-value buckets) of a
// prefix on a shared NATS server.
func deletePrefixStreams(t *testing.T, url, prefix string) {
	nc, err := nats.Connect(url)
	if err != nil {
		t.Errorf("clean up %s: %v", prefix, err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Errorf("clean up %s: %v", prefix, err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var mine []string
	names := js.StreamNames(ctx)
	for n := range names.Name() {
		if strings.HasPrefix(n, prefix) || strings.HasPrefix(n, "KV_"+prefix) {
			mine = append(mine, n)
		}
	}
	for _, n := range mine {
		if err := js.DeleteStream(ctx, n); err != nil {
			t.Errorf("delete stream %s: %v", n, err)
		}
	}
}
