package app

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/client"
	"github.com/hostless/hostless/internal/config"
	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/metering"
	"github.com/hostless/hostless/internal/wasmtest"
)

// TestUsageAPI: what a user counts from the invocation records is what
// GET /v1/usage reports, costed at the configured price table.
func TestUsageAPI(t *testing.T) {
	t.Parallel()
	cfg := newConfig(t)
	// Prices a user can check by hand; data out is free.
	cfg.Prices = config.Prices{GBSecond: 0.001, MillionRequests: 1000, GBOut: -1, ServerHour: 2, ServerMemoryMB: 1024}
	a := startApp(t, cfg)
	sdk := wasmtest.Build(t, "internal/runtime/wasm/testdata/guests", "./sdk", true)
	a.deploy("sizes", sdk, function.Spec{Contract: function.ContractSDK, MemoryMB: 256})
	a.deploy("other", sdk, function.Spec{Contract: function.ContractSDK})

	for range 3 {
		if resp, body := a.do(http.MethodGet, "/fn/sizes/big?n=1000", nil, nil); resp.StatusCode != http.StatusOK || len(body) != 1000 {
			t.Fatalf("GET /fn/sizes/big: %d, %d bytes", resp.StatusCode, len(body))
		}
	}
	if resp, _ := a.do(http.MethodGet, "/fn/sizes/panic", nil, nil); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("GET /fn/sizes/panic: %d", resp.StatusCode)
	}
	_, otherBody := a.do(http.MethodGet, "/fn/other/", nil, nil)

	// What the records say, as a user would add them up.
	recs := append(a.records("sizes", 4), a.records("other", 1)...)
	var mbMillis, colds int64
	for _, r := range recs {
		mbMillis += r.BilledMS * int64(r.MemoryMB)
		if r.Cold {
			colds++
		}
	}
	gbs := float64(mbMillis) / 1000 / 1024

	var rep metering.Report
	a.getJSON("/v1/usage?since=1h", &rep)
	if rep.Period != metering.PeriodHour || rep.From.Minute() != 0 || time.Since(rep.From) < time.Hour || len(rep.Periods) < 2 {
		t.Errorf("report of 1h: period %q from %s, %d periods; want hours from the start of the hour an hour ago", rep.Period, rep.From, len(rep.Periods))
	}
	tot := rep.Total
	if tot.Invocations != 5 || tot.Errors != 1 || tot.ColdStarts != colds || tot.DataOutBytes != 3000+int64(len(otherBody)) {
		t.Errorf("total = %+v; want 5 invocations, 1 error, %d cold starts, %d bytes out", tot, colds, 3000+len(otherBody))
	}
	if math.Abs(tot.GBSeconds-gbs) > 1e-9 {
		t.Errorf("total GB-seconds %v, the records say %v", tot.GBSeconds, gbs)
	}
	if tot.PeakConcurrency <= 0 || tot.PeakMemoryGB <= 0 || tot.Duration.P50 <= 0 || tot.Duration.P99 < tot.Duration.P50 {
		t.Errorf("peaks and durations = %v calls, %v GB, %+v", tot.PeakConcurrency, tot.PeakMemoryGB, tot.Duration)
	}
	if len(rep.Functions) != 2 || rep.Functions[0].Function != "sizes" || rep.Functions[0].Invocations != 4 ||
		rep.Functions[0].Errors != 1 || rep.Functions[0].DataOutBytes != 3000 || rep.Functions[1].Invocations != 1 {
		t.Errorf("functions = %+v, want sizes (4 calls, 1 error, 3000 bytes out) then other", rep.Functions)
	}

	c := rep.Cost
	if c.Prices.GBOut != 0 || c.Prices.ServerMemoryMB != 1024 {
		t.Errorf("prices = %+v, want the configured ones, data out free", c.Prices)
	}
	if math.Abs(c.Compute-gbs*0.001) > 1e-12 || math.Abs(c.Requests-5.0/1e6*1000) > 1e-12 || c.DataOut != 0 {
		t.Errorf("cost = %+v", c)
	}
	hours := rep.To.Sub(rep.From).Hours()
	if ao := c.AlwaysOn; ao.Servers != 1 || math.Abs(ao.Hours-hours) > 1e-9 || math.Abs(ao.Compute-2*hours) > 1e-9 {
		t.Errorf("always on = %+v, want 1 server of 1024 MB for %.3f hours at 2 an hour", ao, hours)
	}

	one, err := a.c.Usage(context.Background(), client.UsageQuery{Since: "2d", Function: "sizes", Period: "day"})
	if err != nil {
		t.Fatal(err)
	}
	if one.Function != "sizes" || one.Period != metering.PeriodDay || one.Total.Invocations != 4 || len(one.Functions) != 1 {
		t.Errorf("report of sizes = %+v", one)
	}

	t.Run("parameters", func(t *testing.T) {
		key := authHeader(testKey)
		totalOf := func(want int64) func(t *testing.T, _ *http.Response, body []byte) {
			return func(t *testing.T, _ *http.Response, body []byte) {
				var r metering.Report
				if err := json.Unmarshal(body, &r); err != nil {
					t.Fatal(err)
				}
				if r.Total.Invocations != want {
					t.Errorf("total invocations %d, want %d", r.Total.Invocations, want)
				}
			}
		}
		for _, s := range []scenario{
			{name: "no key", path: "/v1/usage", status: http.StatusUnauthorized, code: "unauthorized"},
			{name: "wrong key", path: "/v1/usage", headers: authHeader(testKey[:len(testKey)-1] + "x"), status: http.StatusForbidden, code: "forbidden"},
			{name: "defaults: 30 days by day", path: "/v1/usage", headers: key, status: http.StatusOK,
				contains: []string{`"period":"day"`, `"always_on"`}, check: totalOf(5)},
			{name: "by day over an hour", path: "/v1/usage?since=1h&period=day", headers: key, status: http.StatusOK,
				contains: []string{`"period":"day"`}, check: totalOf(5)},
			{name: "a function without usage", path: "/v1/usage?function=nope", headers: key, status: http.StatusOK, check: totalOf(0)},
			{name: "since not a span", path: "/v1/usage?since=abc", headers: key, status: http.StatusBadRequest, code: "bad_request",
				contains: []string{`since=\"abc\"`, "30d", "1h to 366d"}},
			{name: "since too short", path: "/v1/usage?since=30m", headers: key, status: http.StatusBadRequest, code: "bad_request"},
			{name: "since too long", path: "/v1/usage?since=400d", headers: key, status: http.StatusBadRequest, code: "bad_request"},
			{name: "since zero", path: "/v1/usage?since=0d", headers: key, status: http.StatusBadRequest, code: "bad_request"},
			{name: "unknown period", path: "/v1/usage?period=week", headers: key, status: http.StatusBadRequest, code: "bad_request",
				contains: []string{`period=\"week\"`, "hour or day"}},
			{name: "hours over too long", path: "/v1/usage?period=hour&since=60d", headers: key, status: http.StatusBadRequest, code: "bad_request",
				contains: []string{"at most 31d", "period=day"}},
			{name: "not a function name", path: "/v1/usage?function=Bad_Name", headers: key, status: http.StatusBadRequest, code: "bad_request",
				contains: []string{`function=\"Bad_Name\"`}},
		} {
			t.Run(s.name, func(t *testing.T) { s.run(t, a) })
		}
	})
}
