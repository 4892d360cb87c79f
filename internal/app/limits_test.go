package app

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/hostless/hostless/internal/function"
)

// A function's own concurrency limit from its spec (the manifest's
// concurrency:) holds, whatever the platform's default: at the limit, calls
// wait the function's queue timeout, then get 429 with Retry-After.
func TestFunctionConcurrencyLimit(t *testing.T) {
	t.Parallel()
	g := buildGuests(t)
	cfg := newConfig(t)
	cfg.MaxConcurrency = 100       // the platform would let all calls run
	cfg.QueueTimeout = time.Minute // and would queue them a long time
	a := startApp(t, cfg)
	a.deploy("limited", g.sdk, function.Spec{
		Contract:    function.ContractSDK,
		Timeout:     function.Duration(10 * time.Second),
		Concurrency: function.Concurrency{Max: 2, QueueTimeout: function.Duration(100 * time.Millisecond)},
	})
	// Warm two instances, so the slow calls below hold their slots from
	// the start.
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.invoke("GET", "/fn/limited/echo", nil)
		}()
	}
	wg.Wait()

	const calls = 8
	var (
		mu        sync.Mutex
		statuses  = map[int]int{}
		retryless int
		peak      int
	)
	for range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := a.do("GET", "/fn/limited/sleep?d=1s", nil, nil)
			mu.Lock()
			defer mu.Unlock()
			statuses[resp.StatusCode]++
			if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
				retryless++
			}
		}()
	}
	// Watch the instances while the calls run: never more than 2 busy.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for watching := true; watching; {
		select {
		case <-done:
			watching = false
		case <-time.After(5 * time.Millisecond):
			if b := a.sched.Stats().Busy; b > peak {
				peak = b
			}
		}
	}
	if statuses[200] != 2 || statuses[http.StatusTooManyRequests] != calls-2 {
		t.Errorf("statuses = %v, want 2 x 200 and %d x 429", statuses, calls-2)
	}
	if retryless > 0 {
		t.Errorf("%d responses with 429 lack Retry-After", retryless)
	}
	if peak > 2 {
		t.Errorf("%d instances ran at once, beyond the function's limit of 2", peak)
	}
}

// min_instances: a deploy starts them before any call, the idle timeout
// doesn't stop them, and the first call is warm.
func TestMinInstancesWarmAfterDeploy(t *testing.T) {
	t.Parallel()
	g := buildGuests(t)
	cfg := newConfig(t)
	cfg.IdleTimeout = 50 * time.Millisecond
	a := startApp(t, cfg)
	a.deploy("kept", g.sdk, function.Spec{Contract: function.ContractSDK, MinInstances: 1})
	deadline := time.Now().Add(60 * time.Second) // the first compile of the guest may come first
	for a.sched.Stats().Idle != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("no instance started after the deploy: %+v", a.sched.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // six idle timeouts
	if got := a.sched.Stats().Idle; got != 1 {
		t.Fatalf("idle instances after the idle timeout = %d, want min_instances 1", got)
	}
	status, _, id := a.invoke("GET", "/fn/kept/echo", nil)
	if status != 201 {
		t.Fatalf("invoke: %d", status)
	}
	var rec function.Invocation
	waitFor(t, "the invocation record", func() bool {
		r, err := a.c.GetInvocation(context.Background(), id)
		rec = r
		return err == nil
	})
	if rec.Cold {
		t.Error("the first call after a deploy with min_instances 1 was cold")
	}
}

// The platform-wide concurrency cap answers 429 for any function once all
// of them together run the cap, and the metric says why.
func TestPlatformConcurrencyCap(t *testing.T) {
	t.Parallel()
	g := buildGuests(t)
	cfg := newConfig(t)
	cfg.MaxTotalConcurrency = 1
	cfg.QueueTimeout = 100 * time.Millisecond
	a := startApp(t, cfg)
	spec := function.Spec{Contract: function.ContractSDK}
	a.deploy("slow", g.sdk, spec)
	a.deploy("other", g.sdk, spec)
	var wg sync.WaitGroup
	wg.Go(func() { a.invoke("GET", "/fn/slow/sleep?d=1s", nil) })
	waitFor(t, "the slow call to run", func() bool { return a.sched.Stats().Busy > 0 })
	resp, _ := a.do("GET", "/fn/other/echo", nil, nil)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("another function beside the platform's one slot: %d (Retry-After %q), want 429 with Retry-After",
			resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	wg.Wait()
	_, b := a.do("GET", "/metrics", nil, authHeader(testKey))
	if got := metricValue(string(b), `hostless_throttles_total{function="other",reason="platform_concurrency"}`); got != 1 {
		t.Errorf("platform_concurrency throttles of other = %v, want 1", got)
	}
	if status, _, _ := a.invoke("GET", "/fn/other/echo", nil); status != 201 {
		t.Errorf("after the slow call: %d, want 201", status)
	}
}

// rate_limit over HTTP: a client past its bucket gets 429 with
// Retry-After, and the metric says rate_ip.
func TestRateLimitPerClient(t *testing.T) {
	t.Parallel()
	g := buildGuests(t)
	a := startApp(t, newConfig(t))
	a.deploy("limited", g.sdk, function.Spec{Contract: function.ContractSDK,
		RateLimit: function.RateLimit{PerIPRPS: 0.01, PerIPBurst: 2}})
	for i := range 2 {
		if status, _, _ := a.invoke("GET", "/fn/limited/echo", nil); status != 201 {
			t.Fatalf("call %d within the burst: %d", i+1, status)
		}
	}
	resp, body := a.do("GET", "/fn/limited/echo", nil, nil)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("third call past a burst of 2: %d (Retry-After %q), want 429 with Retry-After",
			resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// At 0.01 calls per second the next token is about 100 s away.
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 90 || ra > 100 {
		t.Errorf("Retry-After = %q, want about 100 s: the time to the client's next token", resp.Header.Get("Retry-After"))
	}
	if !strings.Contains(string(body), "rate limit of 0.01 calls per second") {
		t.Errorf("the 429 doesn't say which limit: %s", body)
	}
	_, b := a.do("GET", "/metrics", nil, authHeader(testKey))
	if got := metricValue(string(b), `hostless_throttles_total{function="limited",reason="rate_ip"}`); got != 1 {
		t.Errorf("rate_ip throttles = %v, want 1", got)
	}
}

// A budget caps a function's GB-seconds: past it, calls get 429 with the
// reason and the time it resets, a throttled record and a metric; other
// functions go on; and a restart doesn't reset it (usage is counted from
// the stored records).
func TestBudgetExhaustion(t *testing.T) {
	t.Parallel()
	g := buildGuests(t)
	cfg := newConfig(t)
	a := startApp(t, cfg)
	// 1024 MB: every call bills at least 1 ms, 0.001 GB-seconds.
	spec := function.Spec{Contract: function.ContractSDK, MemoryMB: 1024, Timeout: function.Duration(10 * time.Second),
		Budget: function.Budget{GBSecondsPerHour: 0.05}}
	a.deploy("capped", g.sdk, spec)
	a.deploy("free", g.sdk, function.Spec{Contract: function.ContractSDK, MemoryMB: 1024, Timeout: function.Duration(10 * time.Second)})
	var refused *http.Response
	var body []byte
	ok := 0
	for i := 0; i < 200 && refused == nil; i++ {
		resp, b := a.do("GET", "/fn/capped/sleep?d=20ms", nil, nil)
		switch resp.StatusCode {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
			refused, body = resp, b
		default:
			t.Fatalf("call %d: %d %s", i, resp.StatusCode, b)
		}
	}
	// 0.05 GB-s at 1 GB is 50 ms: at most three 20 ms calls (fewer when
	// the first call's cold start, which is billed, takes long).
	if refused == nil || ok < 1 || ok > 3 {
		t.Fatalf("%d calls ran before a refusal (%v)", ok, refused != nil)
	}
	if !strings.Contains(string(body), `used its budget of 0.05 GB-seconds this hour`) || !strings.Contains(string(body), "resets at") {
		t.Fatalf("the 429 doesn't say which budget: %s", body)
	}
	if ra, err := strconv.Atoi(refused.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 3600 {
		t.Fatalf("Retry-After %q: want the seconds to the end of the hour", refused.Header.Get("Retry-After"))
	}
	if rec := a.record(refused.Header.Get("X-Hostless-Invocation-Id")); rec.Status != function.StatusThrottled || rec.BilledMS != 0 {
		t.Fatalf("refused call's record: %+v", rec)
	}
	_, m := a.do("GET", "/metrics", nil, authHeader(testKey))
	if got := metricValue(string(m), `hostless_throttles_total{function="capped",reason="budget"}`); got != 1 {
		t.Fatalf("budget throttles = %v, want 1", got)
	}
	if resp, _ := a.do("GET", "/fn/free/echo", nil, nil); resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		t.Fatalf("another function was refused: %d", resp.StatusCode)
	}

	// After a restart on the same data, the budget is still spent.
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	b := startApp(t, cfg)
	if resp, body := b.do("GET", "/fn/capped/echo", nil, nil); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("after a restart the budget was reset: %d %s", resp.StatusCode, body)
	}
}

// TestRequestLimitOnEveryWay: a function's limits.request holds on the
// control API's invoke and on the Lambda Invoke API, not only on its URL.
func TestRequestLimitOnEveryWay(t *testing.T) {
	t.Parallel()
	g := buildGuests(t)
	cfg := newConfig(t)
	cfg.AWSAccessKeyID, cfg.AWSSecretAccessKey = testAWSKeyID, testAWSSecret
	a := startApp(t, cfg)
	a.deploy("small", g.sdk, function.Spec{Contract: function.ContractSDK, Limits: function.Limits{Request: 1 << 10}})
	big := bytes.Repeat([]byte("x"), 2<<10)
	resp, body := a.do("POST", "/v1/functions/small/invoke", big, authHeader(testKey))
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "limits.request") {
		t.Fatalf("control API: %d %s", resp.StatusCode, body)
	}
	if resp, body := a.do("POST", "/v1/functions/small/invoke", big[:512], authHeader(testKey)); resp.StatusCode != 200 {
		t.Fatalf("control API under the limit: %d %s", resp.StatusCode, body)
	}
	c := lambdaClient(a.base, testAWSKeyID, testAWSSecret)
	payload := []byte(`{"pad":"` + strings.Repeat("x", 2<<10) + `"}`) // the Lambda API takes JSON
	_, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("small"), Payload: payload})
	if code := awsErrorCode(err); code != "RequestTooLargeException" {
		t.Fatalf("Lambda API: %v (code %q)", err, code)
	}
}
