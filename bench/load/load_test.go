package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestHistogramBuckets(t *testing.T) {
	t.Parallel()
	// Every bucket's lower bound maps back to that bucket, and bounds grow.
	prev := uint64(0)
	for i := 0; i < numBuckets; i++ {
		lb := lowerBound(i)
		if got := bucketOf(lb); got != i {
			t.Fatalf("bucketOf(lowerBound(%d) = %d) = %d", i, lb, got)
		}
		if i > 0 && lb <= prev {
			t.Fatalf("lowerBound(%d) = %d, not above lowerBound(%d) = %d", i, lb, i-1, prev)
		}
		prev = lb
	}
	if got := bucketOf(math.MaxUint64); got != numBuckets-1 {
		t.Fatalf("bucketOf(max) = %d, want the last bucket %d", got, numBuckets-1)
	}
	// Above the linear range, a value's bucket starts within 0.1 % below it.
	for _, v := range []uint64{linearLimit, linearLimit + 1, 50_000, 1_000_003, 5_000_000, maxMicros} {
		lb := lowerBound(bucketOf(v))
		if lb > v || float64(v-lb) > float64(v)/subBuckets {
			t.Errorf("value %d µs: bucket starts at %d", v, lb)
		}
	}
}

func TestHistogramPercentiles(t *testing.T) {
	t.Parallel()
	us := time.Microsecond
	tests := []struct {
		name   string
		values func(h *histogram)
		q      float64
		want   time.Duration
		relTol float64 // 0: exact
	}{
		{"uniform 1..1000 µs p50", uniform(1, 1000, us), 0.50, 500 * us, 0},
		{"uniform 1..1000 µs p90", uniform(1, 1000, us), 0.90, 900 * us, 0},
		{"uniform 1..1000 µs p99", uniform(1, 1000, us), 0.99, 990 * us, 0},
		{"uniform 1..1000 µs p100", uniform(1, 1000, us), 1, 1000 * us, 0},
		{"uniform 1..1000 µs p0 is the min", uniform(1, 1000, us), 0, 1 * us, 0},
		{"uniform 1..100000 µs p50", uniform(1, 100_000, us), 0.50, 50_000 * us, 0.001},
		{"uniform 1..100000 µs p99", uniform(1, 100_000, us), 0.99, 99_000 * us, 0.001},
		{"constant 250 µs p99", constant(250*us, 10_000), 0.99, 250 * us, 0},
		{"sub-microsecond values truncate", constant(700*time.Nanosecond, 10), 0.5, 0, 0},
		{"bimodal 99 % at 100 µs p50", bimodal(100*us, 50*time.Millisecond, 990, 10), 0.50, 100 * us, 0},
		{"bimodal 99 % at 100 µs p99", bimodal(100*us, 50*time.Millisecond, 990, 10), 0.99, 100 * us, 0},
		{"bimodal 99 % at 100 µs p99.9", bimodal(100*us, 50*time.Millisecond, 990, 10), 0.999, 50 * time.Millisecond, 0.001},
		{"huge value clamps but max is exact", constant(time.Hour, 3), 1, time.Hour, 0},
		{"negative counts as zero", constant(-time.Second, 3), 0.5, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHistogram()
			tc.values(h)
			got := h.percentile(tc.q)
			if tc.relTol == 0 {
				if got != tc.want {
					t.Fatalf("percentile(%v) = %v, want %v", tc.q, got, tc.want)
				}
				return
			}
			if diff := math.Abs(float64(got - tc.want)); diff > tc.relTol*float64(tc.want) {
				t.Fatalf("percentile(%v) = %v, want %v within %.1f %%", tc.q, got, tc.want, tc.relTol*100)
			}
		})
	}
}

func TestHistogramMergeAndEmpty(t *testing.T) {
	t.Parallel()
	empty := newHistogram()
	if p, m := empty.percentile(0.5), empty.mean(); p != 0 || m != 0 {
		t.Fatalf("empty histogram: p50 %v, mean %v, want 0", p, m)
	}
	// Two halves merged give the percentiles of the whole.
	a, b, whole := newHistogram(), newHistogram(), newHistogram()
	for v := 1; v <= 2000; v++ {
		d := time.Duration(v) * time.Microsecond
		whole.record(d)
		if v%2 == 0 {
			a.record(d)
		} else {
			b.record(d)
		}
	}
	merged := newHistogram()
	merged.merge(a)
	merged.merge(b)
	merged.merge(empty)
	for _, q := range []float64{0, 0.5, 0.9, 0.99, 1} {
		if got, want := merged.percentile(q), whole.percentile(q); got != want {
			t.Errorf("merged percentile(%v) = %v, want %v", q, got, want)
		}
	}
	if merged.n != 2000 || merged.min != time.Microsecond || merged.max != 2000*time.Microsecond {
		t.Errorf("merged n %d min %v max %v", merged.n, merged.min, merged.max)
	}
	if got, want := merged.mean(), whole.mean(); got != want {
		t.Errorf("merged mean %v, want %v", got, want)
	}
}

func uniform(from, to int, unit time.Duration) func(*histogram) {
	return func(h *histogram) {
		for v := from; v <= to; v++ {
			h.record(time.Duration(v) * unit)
		}
	}
}

func constant(d time.Duration, n int) func(*histogram) {
	return func(h *histogram) {
		for range n {
			h.record(d)
		}
	}
}

func bimodal(low, high time.Duration, nLow, nHigh int) func(*histogram) {
	return func(h *histogram) {
		constant(low, nLow)(h)
		constant(high, nHigh)(h)
	}
}

func TestCheckTarget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		url     string
		ok      bool
		notLoop bool // the error is errNotLoopback
	}{
		{name: "IPv4 loopback", url: "http://127.0.0.1:18080/fn/hello?name=Ada", ok: true},
		{name: "elsewhere in 127/8", url: "http://127.1.2.3:80/", ok: true},
		{name: "IPv6 loopback", url: "http://[::1]:18080/fn/hello", ok: true},
		{name: "localhost", url: "http://localhost:18080/", ok: true},
		{name: "LOCALHOST any case", url: "https://LocalHost/", ok: true},
		{name: "mapped IPv4 loopback", url: "http://[::ffff:127.0.0.1]:80/", ok: true},
		{name: "private address", url: "http://10.0.0.1/", notLoop: true},
		{name: "host's own address style", url: "http://192.168.1.10:8080/", notLoop: true},
		{name: "unspecified address", url: "http://0.0.0.0:18080/", notLoop: true},
		{name: "link-local metadata", url: "http://169.254.169.254/", notLoop: true},
		{name: "public name", url: "http://example.com/", notLoop: true},
		{name: "name ending in localhost", url: "http://evil.localhost.example.com/", notLoop: true},
		{name: "localhost prefix", url: "http://localhost.example.com/", notLoop: true},
		{name: "IPv6 not loopback", url: "http://[2001:db8::1]/", notLoop: true},
		{name: "userinfo does not hide the host", url: "http://127.0.0.1@10.0.0.1/", notLoop: true},
		{name: "short IPv4 form", url: "http://127.1/", notLoop: true},
		{name: "no scheme", url: "127.0.0.1:18080/fn/hello"},
		{name: "other scheme", url: "ftp://127.0.0.1/"},
		{name: "no host", url: "http:///fn/hello"},
		{name: "unparsable", url: "http://[::1/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := checkTarget(tc.url)
			if tc.ok {
				if err != nil {
					t.Fatalf("checkTarget(%q): %v", tc.url, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("checkTarget(%q) accepted it", tc.url)
			}
			if got := errors.Is(err, errNotLoopback); got != tc.notLoop {
				t.Fatalf("checkTarget(%q) = %v; errNotLoopback %v, want %v", tc.url, err, got, tc.notLoop)
			}
		})
	}
}

func TestDialerRefusesNonLoopback(t *testing.T) {
	t.Parallel()
	d := &loopbackDialer{}
	for _, addr := range []string{"10.0.0.1:80", "[2001:db8::1]:80", "0.0.0.0:80"} {
		c, err := d.DialContext(context.Background(), "tcp", addr)
		if c != nil {
			c.Close()
		}
		if !errors.Is(err, errNotLoopback) {
			t.Errorf("DialContext(%s) = %v, want errNotLoopback", addr, err)
		}
	}
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		wantErr string
		check   func(t *testing.T, c *config)
	}{
		{name: "defaults", args: []string{"-url", "http://127.0.0.1:1/"}, check: func(t *testing.T, c *config) {
			if c.opts.clients != 16 || c.opts.duration != 10*time.Second || c.opts.warmup != 2*time.Second ||
				c.opts.timeout != 5*time.Second || string(c.opts.expect) != "Hello, Ada!\n" {
				t.Errorf("defaults: %+v", c.opts)
			}
		}},
		{name: "repeated and comma separated", args: []string{"-url", "http://127.0.0.1:1/a,http://[::1]:2/b", "-url", "http://localhost:3/c"},
			check: func(t *testing.T, c *config) {
				if len(c.urls) != 3 || c.urls[2] != "http://localhost:3/c" {
					t.Errorf("urls %q", c.urls)
				}
			}},
		{name: "escaped expect", args: []string{"-url", "http://127.0.0.1:1/", "-expect", `Hi, "Ada"!\n`}, check: func(t *testing.T, c *config) {
			if string(c.opts.expect) != "Hi, \"Ada\"!\n" {
				t.Errorf("expect %q", c.opts.expect)
			}
		}},
		{name: "empty expect checks nothing", args: []string{"-url", "http://127.0.0.1:1/", "-expect", ""}, check: func(t *testing.T, c *config) {
			if c.opts.expect != nil {
				t.Errorf("expect %q, want nil", c.opts.expect)
			}
		}},
		{name: "no url", args: nil, wantErr: "no target"},
		{name: "remote url", args: []string{"-url", "http://127.0.0.1:1/,http://example.com/"}, wantErr: "not a loopback host"},
		{name: "zero clients", args: []string{"-url", "http://127.0.0.1:1/", "-c", "0"}, wantErr: "-c 0"},
		{name: "over the run bound", args: []string{"-url", "http://127.0.0.1:1/", "-d", "11m"}, wantErr: "more than -max-run"},
		{name: "bad expect escape", args: []string{"-url", "http://127.0.0.1:1/", "-expect", `\q`}, wantErr: "-expect"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := parseFlags(tc.args, io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseFlags(%q) = %v, want an error containing %q", tc.args, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseFlags(%q): %v", tc.args, err)
			}
			tc.check(t, c)
		})
	}
}

// TestRunTarget runs the generator's core loop against a local server for a
// short while: one response in five has the wrong body.
func TestRunTarget(t *testing.T) {
	t.Parallel()
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := served.Add(1)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if n%5 == 0 {
			io.WriteString(w, "Hello, Bob!\n")
			return
		}
		io.WriteString(w, "Hello, "+r.URL.Query().Get("name")+"!\n")
	}))
	defer srv.Close()

	const clients = 4
	o := options{clients: clients, warmup: 50 * time.Millisecond, duration: 300 * time.Millisecond,
		timeout: 5 * time.Second, expect: []byte("Hello, Ada!\n")}
	start := time.Now()
	r, err := runTarget(context.Background(), srv.URL+"/fn/hello?name=Ada", o)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("runTarget took %v for 350 ms of work", took)
	}
	if r.Requests == 0 || r.OK == 0 {
		t.Fatalf("requests %d, ok %d: want some", r.Requests, r.OK)
	}
	if r.Mismatch == 0 {
		t.Fatalf("no body mismatch detected in %d requests", r.Requests)
	}
	if r.OK+r.Mismatch+r.Errors+r.Status != r.Requests {
		t.Errorf("ok %d + mismatch %d + errors %d + status %d != requests %d", r.OK, r.Mismatch, r.Errors, r.Status, r.Requests)
	}
	if r.Errors != 0 || r.Status != 0 {
		t.Errorf("errors %d, bad status %d, want 0 (%q)", r.Errors, r.Status, r.FirstErrors)
	}
	// Warm-up requests are served but not counted.
	if uint64(served.Load()) <= r.Requests {
		t.Errorf("served %d, counted %d: the warm-up was counted", served.Load(), r.Requests)
	}
	// About one in five is wrong; allow for the window's edges.
	if ratio := float64(r.Mismatch) / float64(r.Requests); ratio < 0.1 || ratio > 0.3 {
		t.Errorf("mismatch ratio %.2f, want about 0.2", ratio)
	}
	if r.Hist.n != r.OK {
		t.Errorf("histogram holds %d latencies, want one per ok request (%d)", r.Hist.n, r.OK)
	}
	if r.Conns < 1 || r.Conns > clients {
		t.Errorf("%d connections opened, want 1 to %d (keep-alive)", r.Conns, clients)
	}
	if len(r.FirstErrors) != 1 || !strings.Contains(r.FirstErrors[0], "Hello, Bob!") {
		t.Errorf("first errors %q, want the mismatch", r.FirstErrors)
	}
	if got := r.throughput(); got <= 0 {
		t.Errorf("throughput %v", got)
	}
}

// TestRunTargetStatusAndRefused checks that failures are counted and bounded:
// bad statuses, and a closed port (which must not spin).
func TestRunTargetStatusAndRefused(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "throttled", http.StatusTooManyRequests)
	}))
	o := options{clients: 2, duration: 100 * time.Millisecond, timeout: time.Second, expect: []byte("x")}
	r, err := runTarget(context.Background(), srv.URL, o)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status == 0 || r.Status != r.Requests || r.OK != 0 {
		t.Errorf("bad status %d of %d, ok %d", r.Status, r.Requests, r.OK)
	}
	url := srv.URL
	srv.Close()
	r, err = runTarget(context.Background(), url, o)
	if err != nil {
		t.Fatal(err)
	}
	if r.Errors == 0 || r.OK != 0 {
		t.Errorf("closed port: errors %d, ok %d", r.Errors, r.OK)
	}
	// Each client pauses after an error.
	if limit := uint64(2 * (100*time.Millisecond/errorPause + 1)); r.Errors > limit {
		t.Errorf("closed port: %d errors in 100 ms, want at most %d", r.Errors, limit)
	}
}

func TestRunOutput(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "Hello, Ada!\n")
	}))
	defer srv.Close()
	var out, errOut bytes.Buffer
	code := run([]string{"-url", srv.URL + "," + srv.URL, "-c", "2", "-d", "100ms", "-warmup", "0s"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{"target 1:", "target 2:", "throughput", "p50", "p99", "relative to target 1", "p50 diff"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := run([]string{"-url", "http://10.1.2.3/"}, &out, &errOut); code != 2 || out.Len() != 0 {
		t.Errorf("remote target: exit %d, output %q", code, out.String())
	}
}
