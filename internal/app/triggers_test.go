package app

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/wasmtest"
)

// logsOf joins a record's log lines.
func logsOf(a *testApp, id string) string {
	var b strings.Builder
	for _, l := range a.record(id).Logs {
		b.WriteString(l.Line + "\n")
	}
	return b.String()
}

// TestTriggers: a Lambda function on a NATS subject gets SQS-shaped
// batches; a message it reports failed (batchItemFailures) is retried alone,
// then dead-lettered; a function on platform events runs when another is
// deployed; /readyz and /metrics show the triggers.
func TestTriggers(t *testing.T) {
	needSandbox(t)
	g := buildGuests(t)
	a := startApp(t, newConfig(t))
	one := 1
	a.deploy("consumer", zipCode(t, wasmtest.LambdaFn(t)), function.Spec{Runtime: function.RuntimeProcess,
		Timeout: function.Duration(5 * time.Second), MemoryMB: 64, Network: function.NetworkNone,
		Retry: function.Retry{MaxAttempts: &one, Backoff: function.Duration(100 * time.Millisecond)},
		Triggers: []function.Trigger{{Type: function.TriggerNATS, Subject: "orders.>", BatchSize: 3,
			BatchWindow: function.Duration(500 * time.Millisecond)}}})
	a.deploy("watcher", g.cgi, function.Spec{Triggers: []function.Trigger{{Type: function.TriggerEvents, Events: []string{"function.deployed"}}}})

	nc := a.App.bus.Conn()
	waitFor(t, "the NATS trigger to subscribe", func() bool { return a.triggerConnected("consumer", "nats", true) })
	for _, body := range []string{"ok-1", "fail-2", "ok-3"} {
		if err := nc.Publish("orders.new", []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	recs := waitRecords(t, a, "consumer", 2, 30*time.Second)
	first, retry := recs[len(recs)-1], recs[len(recs)-2]
	if first.Trigger != function.TriggerNATS || first.Status != function.StatusOK {
		t.Fatalf("first batch: %+v", first)
	}
	logs := logsOf(a, first.ID)
	for _, want := range []string{"ok-1 attempt=1", "fail-2 attempt=1", "ok-3 attempt=1"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the first batch's logs lack %q:\n%s", want, logs)
		}
	}
	if logs := logsOf(a, retry.ID); !strings.Contains(logs, "fail-2 attempt=2") || strings.Contains(logs, "ok-") {
		t.Errorf("the retry should hold the failed message alone, on its 2nd attempt:\n%s", logs)
	}
	var dl struct {
		DeadLetters []struct {
			Trigger  string `json:"trigger"`
			Attempts int    `json:"attempts"`
			Reason   string `json:"reason"`
		} `json:"dead_letters"`
	}
	waitFor(t, "the failed message in the dead-letter queue", func() bool {
		a.getJSON("/v1/functions/consumer/dlq", &dl)
		return len(dl.DeadLetters) == 1
	})
	if d := dl.DeadLetters[0]; d.Trigger != function.TriggerNATS || d.Attempts != 2 {
		t.Errorf("dead letter %+v", d)
	}
	// Its ID has a state, and a redrive runs it again as an async event:
	// the function fails it again, so it is dead-lettered again.
	var dlID struct {
		DeadLetters []struct {
			ID string `json:"id"`
		} `json:"dead_letters"`
	}
	a.getJSON("/v1/functions/consumer/dlq", &dlID)
	id := dlID.DeadLetters[0].ID
	if st, ok := a.asyncState(id); !ok || st.Status != function.StatusDeadLettered || st.Trigger != function.TriggerNATS {
		t.Fatalf("the dead letter's state: %+v %v", st, ok)
	}
	resp, b := a.do(http.MethodPost, "/v1/functions/consumer/dlq/redrive", nil, authHeader(testKey))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"redriven":1`) {
		t.Fatalf("redrive: %d %s", resp.StatusCode, b)
	}
	waitFor(t, "the redriven message to fail again", func() bool {
		st, _ := a.asyncState(id)
		return st.Status == function.StatusDeadLettered && st.Attempts >= 3
	})
	if m := a.metrics(); !strings.Contains(m, `hostless_trigger_messages_total{function="consumer",outcome="dead_lettered",trigger="0",type="nats"} 1`) {
		t.Errorf("metrics lack the dead-lettered message:\n%s", grepLines(m, "hostless_trigger"))
	}

	// A Lambda function on a schedule gets EventBridge's Scheduled Event.
	a.deploy("ticker", zipCode(t, wasmtest.LambdaFn(t)), function.Spec{Runtime: function.RuntimeProcess,
		Timeout: function.Duration(5 * time.Second), MemoryMB: 64, Network: function.NetworkNone, Schedule: "@every 1s"})
	tick := waitRecords(t, a, "ticker", 1, 10*time.Second)[0]
	if logs := logsOf(a, tick.ID); tick.Trigger != function.TriggerCron || !strings.Contains(logs, "scheduled aws.events ") {
		t.Errorf("tick %+v, logs:\n%s", tick, logs)
	}

	// Platform events: a deploy runs the watcher.
	a.deploy("other", g.cgi, function.Spec{})
	recs = waitRecords(t, a, "watcher", 1, 10*time.Second)
	if recs[0].Trigger != function.TriggerEvents || recs[0].Status != function.StatusOK {
		t.Errorf("watcher record %+v", recs[0])
	}
}

// TestRedisTrigger: a wasm function on a Redis stream (the real server)
// runs for each entry, with CloudEvents.
func TestRedisTrigger(t *testing.T) {
	url := os.Getenv("HOSTLESS_TEST_REDIS")
	if url == "" {
		t.Skip("HOSTLESS_TEST_REDIS is not set (redis://127.0.0.1:6379/0 in CI)")
	}
	g := buildGuests(t)
	a := startApp(t, newConfig(t))
	stream := "hostless-app-test-" + randomSuffix()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opt)
	defer rc.Close()
	t.Cleanup(func() { rc.Del(context.Background(), stream) })
	a.deploy("rfn", g.cgi, function.Spec{Triggers: []function.Trigger{{Type: function.TriggerRedis, URL: url, Stream: stream, BatchSize: 10}}})
	waitFor(t, "the Redis trigger to connect", func() bool { return a.triggerConnected("rfn", "redis", true) })
	for i := range 3 {
		if err := rc.XAdd(context.Background(), &redis.XAddArgs{Stream: stream, Values: map[string]any{"data": "entry " + string(rune('a'+i))}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the entries to be acknowledged", func() bool {
		p, err := rc.XPending(context.Background(), stream, "").Result()
		if err != nil {
			// The group is named by the trigger; read it from the stream.
			groups, gerr := rc.XInfoGroups(context.Background(), stream).Result()
			if gerr != nil || len(groups) != 1 {
				return false
			}
			p, err = rc.XPending(context.Background(), stream, groups[0].Name).Result()
			if err != nil {
				return false
			}
		}
		recs, _, _ := a.c.ListInvocations(context.Background(), "rfn", 100, "")
		n := 0
		for _, r := range recs {
			if r.Trigger == function.TriggerRedis && r.Status == function.StatusOK {
				n++
			}
		}
		return p.Count == 0 && n >= 1
	})
}

// triggerConnected reports whether /metrics says a function's first
// trigger is (or is not, for want false) connected.
func (a *testApp) triggerConnected(fn, typ string, want bool) bool {
	v := "0"
	if want {
		v = "1"
	}
	return strings.Contains(a.metrics(), `hostless_trigger_connected{function="`+fn+`",trigger="0",type="`+typ+`"} `+v)
}

func (a *testApp) readyz() string {
	_, b := a.do(http.MethodGet, "/readyz", nil, nil)
	return string(b)
}

func (a *testApp) metrics() string {
	_, b := a.do(http.MethodGet, "/metrics", nil, authHeader(testKey))
	return string(b)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestTriggerDeployChecks: a bad trigger is refused at deploy with what to
// fix; a broker's password never comes back from the API or /readyz.
func TestTriggerDeployChecks(t *testing.T) {
	g := buildGuests(t)
	a := startApp(t, newConfig(t))
	ctx := context.Background()
	ref, err := a.c.UploadArtifact(ctx, g.cgi)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		trigger function.Trigger
		want    string
	}{
		{function.Trigger{Type: "kafka"}, "triggers[0].type"},
		{function.Trigger{Type: function.TriggerAMQP, URL: "amqp://127.0.0.1:5672/"}, "triggers[0].queue"},
		{function.Trigger{Type: function.TriggerNATS, Subject: "a", BatchSize: 5000}, "triggers[0].batch_size"},
		{function.Trigger{Type: function.TriggerEvents, Events: []string{"secrets.changed"}}, "triggers[0].events"},
	} {
		_, err := a.c.PutFunction(ctx, "bad", function.Spec{Runtime: function.RuntimeWasm, Code: ref, Triggers: []function.Trigger{c.trigger}})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want a 400 naming %s", c.trigger, err, c.want)
		}
	}
	// Nothing listens on port 1: the trigger stays disconnected, the deploy is fine.
	const secret = "s3cr3t-pa55"
	a.deploy("rabbit", g.cgi, function.Spec{Triggers: []function.Trigger{{Type: function.TriggerAMQP,
		URL: "amqp://app:" + secret + "@127.0.0.1:1/", Queue: "orders"}}})
	view, err := a.c.GetFunction(ctx, "rabbit")
	if err != nil {
		t.Fatal(err)
	}
	if u := view.Spec.Triggers[0].URL; strings.Contains(u, secret) || !strings.Contains(u, "app:") {
		t.Errorf("the spec's URL %q", u)
	}
	_, versions := a.do(http.MethodGet, "/v1/functions/rabbit/versions", nil, authHeader(testKey))
	waitFor(t, "the trigger's state in /readyz", func() bool { return strings.Contains(a.readyz(), "triggers: 0 connected, 1 disconnected") })
	if !a.triggerConnected("rabbit", "amqp", false) {
		t.Error("/metrics does not say the trigger is disconnected")
	}
	for what, body := range map[string]string{"versions": string(versions), "readyz": a.readyz(), "metrics": a.metrics()} {
		if strings.Contains(body, secret) {
			t.Errorf("%s shows the broker's password", what)
		}
	}
}
