package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// maxBody bounds what one response body may hold: a larger one counts as an
// error and its connection is dropped.
const maxBody = 1 << 20

// errorPause is how long a client waits after a transport error, so a target
// that refuses connections is not hammered in a tight loop.
const errorPause = 10 * time.Millisecond

// options is what every target is run with.
type options struct {
	clients  int
	warmup   time.Duration
	duration time.Duration
	timeout  time.Duration
	// expect is the body every response must have; nil checks nothing.
	expect []byte
}

// result is what one target measured. Only requests that started after the
// warm-up and completed before the end of the window count.
type result struct {
	URL      string
	Requests uint64 // completed in the window, successful or not
	OK       uint64 // status 200 and the expected body
	Errors   uint64 // transport errors and timeouts
	Status   uint64 // completed with a status other than 200
	Mismatch uint64 // status 200 with another body
	Conns    int64  // connections opened, warm-up included
	Window   time.Duration
	Hist     *histogram // latencies of the OK requests
	// FirstErrors holds the first message of each kind of failure.
	FirstErrors []string
}

// failed reports whether any request of the window failed.
func (r *result) failed() uint64 { return r.Errors + r.Status + r.Mismatch }

// throughput returns successful requests per second of the window.
func (r *result) throughput() float64 {
	if r.Window <= 0 {
		return 0
	}
	return float64(r.OK) / r.Window.Seconds()
}

// clientStats is one client's share of a result, merged at the end, so the
// hot loop takes no lock.
type clientStats struct {
	requests, ok, errors, status, mismatch uint64
	hist                                   *histogram
	firstErr, firstStatus, firstMismatch   string
}

// runTarget drives target with o.clients closed-loop clients: each sends a
// request, waits for the whole response, and sends the next, over its own
// keep-alive connection. It returns when the warm-up and the window are over
// or ctx is done.
func runTarget(ctx context.Context, target string, o options) (*result, error) {
	if _, err := checkTarget(target); err != nil {
		return nil, err
	}
	var conns atomic.Int64
	dialer := &loopbackDialer{
		dialer:   net.Dialer{Timeout: o.timeout, KeepAlive: 30 * time.Second},
		resolver: net.DefaultResolver,
		dials:    func() { conns.Add(1) },
	}
	tr := &http.Transport{
		// No proxy: a proxy from the environment would send the traffic
		// off this machine.
		Proxy:               nil,
		DialContext:         dialer.DialContext,
		MaxIdleConns:        o.clients,
		MaxIdleConnsPerHost: o.clients,
		MaxConnsPerHost:     o.clients,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
		TLSHandshakeTimeout: o.timeout,
		// Loopback benchmark servers use throwaway certificates.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // loopback only
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport: tr,
		Timeout:   o.timeout,
		// A redirect could point anywhere: never follow one.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	start := time.Now()
	measureStart := start.Add(o.warmup)
	measureEnd := measureStart.Add(o.duration)
	ctx, cancel := context.WithDeadline(ctx, measureEnd)
	defer cancel()

	stats := make([]clientStats, o.clients)
	var wg sync.WaitGroup
	for i := range stats {
		stats[i].hist = newHistogram()
		wg.Add(1)
		go func(s *clientStats) {
			defer wg.Done()
			drive(ctx, client, target, o.expect, measureStart, measureEnd, s)
		}(&stats[i])
	}
	wg.Wait()

	r := &result{URL: target, Hist: newHistogram(), Window: o.duration, Conns: conns.Load()}
	var firstErr, firstStatus, firstMismatch string
	for i := range stats {
		s := &stats[i]
		r.Requests += s.requests
		r.OK += s.ok
		r.Errors += s.errors
		r.Status += s.status
		r.Mismatch += s.mismatch
		r.Hist.merge(s.hist)
		firstErr = firstNonEmpty(firstErr, s.firstErr)
		firstStatus = firstNonEmpty(firstStatus, s.firstStatus)
		firstMismatch = firstNonEmpty(firstMismatch, s.firstMismatch)
	}
	for _, m := range []string{firstErr, firstStatus, firstMismatch} {
		if m != "" {
			r.FirstErrors = append(r.FirstErrors, m)
		}
	}
	// A window cut short by ctx (the whole run's bound) is not the full one.
	if now := time.Now(); now.Before(measureEnd) {
		r.Window = max(now.Sub(measureStart), 0)
	}
	return r, nil
}

// firstNonEmpty returns a unless it is empty, else b.
func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// drive is one client's closed loop.
func drive(ctx context.Context, client *http.Client, target string, expect []byte, measureStart, measureEnd time.Time, s *clientStats) {
	buf := bytes.NewBuffer(make([]byte, 0, 512))
	for ctx.Err() == nil {
		t0 := time.Now()
		status, err := get(ctx, client, target, buf)
		t1 := time.Now()
		if ctx.Err() != nil || t1.After(measureEnd) {
			return // cut by the end of the window: counts for nothing
		}
		counted := !t0.Before(measureStart)
		if counted {
			s.requests++
		}
		switch {
		case err != nil:
			if counted {
				s.errors++
				if s.firstErr == "" {
					s.firstErr = "error: " + err.Error()
				}
			}
			pause(ctx, errorPause)
		case status != http.StatusOK:
			if counted {
				s.status++
				if s.firstStatus == "" {
					s.firstStatus = fmt.Sprintf("status %d: %q", status, truncate(buf.Bytes(), 200))
				}
			}
		case expect != nil && !bytes.Equal(buf.Bytes(), expect):
			if counted {
				s.mismatch++
				if s.firstMismatch == "" {
					s.firstMismatch = fmt.Sprintf("body mismatch: got %q, want %q", truncate(buf.Bytes(), 200), expect)
				}
			}
		default:
			if counted {
				s.ok++
				s.hist.record(t1.Sub(t0))
			}
		}
	}
}

// errBodyTooLarge marks a body over maxBody.
var errBodyTooLarge = errors.New("body larger than 1 MiB")

// get sends one GET and reads the whole body into buf, so the connection goes
// back to the pool for the next request.
func get(ctx context.Context, client *http.Client, target string, buf *bytes.Buffer) (int, error) {
	buf.Reset()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := buf.ReadFrom(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("read body: %w", err)
	}
	if n > maxBody {
		return resp.StatusCode, errBodyTooLarge
	}
	return resp.StatusCode, nil
}

func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
