package app

import (
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/function"
)

// metricValue returns the value of the sample whose line starts with
// prefix (name and labels as Prometheus writes them), or -1.
func metricValue(body, prefix string) float64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(prefix) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	g := buildGuests(t)
	cfg := newConfig(t)
	cfg.MaxConcurrency = 1
	cfg.QueueTimeout = 100 * time.Millisecond
	a := startApp(t, cfg)
	a.deploy("metered", g.sdk, function.Spec{Contract: function.ContractSDK, Timeout: function.Duration(5 * time.Second)})
	for range 3 {
		if status, _, _ := a.invoke("GET", "/fn/metered/echo", nil); status != 201 {
			t.Fatalf("invoke: %d", status)
		}
	}
	if status, _, _ := a.invoke("GET", "/fn/metered/panic", nil); status != 502 {
		t.Fatalf("panic: %d", status)
	}
	// Hold the one slot, and be throttled beside it.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.invoke("GET", "/fn/metered/sleep?d=1s", nil)
	}()
	waitFor(t, "the slow call to hold the slot", func() bool { return a.sched.Stats().Busy > 0 })
	if status, _, _ := a.invoke("GET", "/fn/metered/echo", nil); status != http.StatusTooManyRequests {
		t.Errorf("beside a busy slot: %d, want 429", status)
	}

	if resp, _ := a.do("GET", "/metrics", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/metrics without the key: %d, want 401", resp.StatusCode)
	}
	resp, b := a.do("GET", "/metrics", nil, authHeader(testKey))
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	body := string(b)
	for _, tc := range []struct {
		sample string
		want   float64
	}{
		{`hostless_invocations_total{function="metered",status="ok",version="1"}`, 3},
		{`hostless_invocations_total{function="metered",status="error",version="1"}`, 1},
		{`hostless_invocations_total{function="metered",status="throttled",version="1"}`, 1},
		{`hostless_throttles_total{function="metered",reason="concurrency"}`, 1},
		{`hostless_cold_starts_total{function="metered"}`, 1}, // the first call; the slow one still runs
		{`hostless_instances{state="busy"}`, 1},
		{`hostless_records_dropped_total`, 0},
	} {
		if got := metricValue(body, tc.sample); got != tc.want {
			t.Errorf("%s = %v, want %v", tc.sample, got, tc.want)
		}
	}
	if got := metricValue(body, `hostless_invocation_duration_seconds_count{function="metered"}`); got != 4 {
		t.Errorf("duration observations = %v, want 4 (3 ok, 1 error)", got)
	}
	if got := metricValue(body, `hostless_queue_wait_seconds_count{function="metered"}`); got != 1 {
		t.Errorf("queue waits = %v, want 1: the throttled call waited out the queue timeout", got)
	}
	wg.Wait()
	_, b = a.do("GET", "/metrics", nil, authHeader(testKey))
	body = string(b)
	if got := metricValue(body, `hostless_cold_starts_total{function="metered"}`); got != 2 {
		t.Errorf("cold starts after the slow call = %v, want 2 (it needed a new instance after the panic)", got)
	}
	if got := metricValue(body, `hostless_instances{state="busy"}`); got != 0 {
		t.Errorf("busy instances when idle = %v", got)
	}
}
