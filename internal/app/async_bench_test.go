package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/client"
	"github.com/hostless/hostless/internal/config"
	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/wasmtest"
)

// postDrive sends b.N POSTs from 16 clients and checks each answer's status.
func postDrive(b *testing.B, url string, header http.Header, status int) {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	body := []byte(`{"order":42}`)
	b.SetParallelism(8) // 8 x GOMAXPROCS(2) = 16 clients here
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
			for k, v := range header {
				req.Header[k] = v
			}
			resp, err := hc.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != status {
				b.Errorf("status %d, want %d", resp.StatusCode, status)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "accepted/s")
}

// bareAcceptServer does what an accept does without storing anything: read
// the body, make an ID, answer 202 with it.
func bareAcceptServer(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(io.LimitReader(r.Body, 6<<20))
		id := function.NewID(time.Now())
		w.Header().Set("X-Hostless-Invocation-Id", id)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, `{"id":%q,"status":"queued","status_url":"/v1/invocations/%s"}`+"\n", id, id)
	})}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/fn/hello"
}

// asyncBenchApp runs a platform with the hello example deployed, one
// instance at a time: the events run meanwhile, on the same cores, without
// taking most of them.
func asyncBenchApp(b *testing.B, cfg config.Config) string {
	b.Helper()
	cfg.Addr, cfg.DataDir, cfg.AdminKey = "127.0.0.1:0", b.TempDir(), benchKey
	shareCompilationCache(b, cfg.DataDir)
	a := New(cfg, nil)
	if err := a.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = a.Shutdown(context.Background()) })
	c := client.New(a.URL(), benchKey)
	ref, err := c.UploadArtifact(context.Background(), wasmtest.Build(b, "examples/hello", "./hello", true))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.PutFunction(context.Background(), "hello", function.Spec{Runtime: function.RuntimeWasm, Code: ref, Timeout: function.Duration(time.Minute),
		Concurrency: function.Concurrency{Max: 1}}); err != nil {
		b.Fatal(err)
	}
	return a.URL() + "/fn/hello"
}

// BenchmarkAsyncAccept measures async invocations accepted per second over
// HTTP with 16 clients: each answered 202 only once stored in JetStream
// (embedded, default sync policy, and SyncAlways), against a bare net/http
// handler that reads the body and answers 202 with an ID, in the same run.
// The function (hello, one instance) runs the events meanwhile.
func BenchmarkAsyncAccept(b *testing.B) {
	event := http.Header{"X-Hostless-Invocation-Type": {"Event"}}
	b.Run("bare-net-http", func(b *testing.B) { postDrive(b, bareAcceptServer(b), event, http.StatusAccepted) })
	b.Run("hostless", func(b *testing.B) { postDrive(b, asyncBenchApp(b, config.Config{}), event, http.StatusAccepted) })
	b.Run("hostless-sync-always", func(b *testing.B) {
		postDrive(b, asyncBenchApp(b, config.Config{BusSyncAlways: true}), event, http.StatusAccepted)
	})
}

// BenchmarkNATSToFunction measures the time from a message published on a
// NATS subject (the platform's bus) to the invocation of a warm wasm
// function starting, one message at a time.
func BenchmarkNATSToFunction(b *testing.B) {
	dir := b.TempDir()
	shareCompilationCache(b, dir)
	a := New(config.Config{Addr: "127.0.0.1:0", DataDir: dir, AdminKey: benchKey}, nil)
	if err := a.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = a.Shutdown(context.Background()) })
	c := client.New(a.URL(), benchKey)
	ref, err := c.UploadArtifact(context.Background(), wasmtest.Build(b, "examples/hello", "./hello", true))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.PutFunction(context.Background(), "hello", function.Spec{Runtime: function.RuntimeWasm, Code: ref,
		Timeout: function.Duration(time.Minute), Triggers: []function.Trigger{{Type: function.TriggerNATS, Subject: "bench.in"}}}); err != nil {
		b.Fatal(err)
	}
	// Warm the instance, and know when each invocation starts.
	var (
		mu     sync.Mutex
		starts []time.Time
		got    = make(chan struct{}, 1)
	)
	a.inv.WithObserver(observerFunc(func(rec *function.Invocation) {
		mu.Lock()
		starts = append(starts, rec.Start)
		mu.Unlock()
		got <- struct{}{}
	}))
	nc := a.bus.Conn()
	publish := func() time.Time {
		t := time.Now()
		if err := nc.Publish("bench.in", []byte(`{"n":1}`)); err != nil {
			b.Fatal(err)
		}
		select {
		case <-got:
		case <-time.After(30 * time.Second):
			b.Fatal("the function did not run")
		}
		return t
	}
	for range 20 {
		publish()
	}
	mu.Lock()
	starts = starts[:0]
	mu.Unlock()
	sent := make([]time.Time, 0, b.N)
	b.ResetTimer()
	for range b.N {
		sent = append(sent, publish())
	}
	b.StopTimer()
	lat := make([]time.Duration, len(sent))
	for i := range sent {
		lat[i] = starts[i].Sub(sent[i])
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-us")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-us")
}

// observerFunc sees finished invocations.
type observerFunc func(*function.Invocation)

func (f observerFunc) Observe(rec *function.Invocation)     { f(rec) }
func (observerFunc) ObserveQueueWait(string, time.Duration) {}
func (observerFunc) ObserveThrottle(string, string)         {}
func (observerFunc) Forget(string)                          {}
