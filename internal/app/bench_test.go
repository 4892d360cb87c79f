package app

import (
	"context"
	"fmt"
	"io"
	"log"
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

const benchKey = "bench-admin-key-0123456789abcdef"

// benchApp starts a platform with the example hello function deployed and
// warmed up.
func benchApp(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	shareCompilationCache(b, dir) // measure calls, not the first compile
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
	spec := function.Spec{Runtime: "wasm", Code: ref, MemoryMB: 64, Env: map[string]string{"GREETING": "Hello"}}
	if _, err := c.PutFunction(context.Background(), "hello", spec); err != nil {
		b.Fatal(err)
	}
	return a.URL() + "/fn/hello?name=Ada"
}

// bareServer serves the same work as the hello function with a plain
// net/http handler: read the query, log a line, write the greeting.
func bareServer(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	logger := log.New(io.Discard, "", 0)
	calls := 0
	var mu sync.Mutex
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Query().Get("name")
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		logger.Printf("greeting %s (call %d of this instance)", name, n)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "%s, %s!\n", "Hello", name)
	})}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/fn/hello?name=Ada"
}

// drive calls url from 16 concurrent clients for b.N requests and reports
// latency percentiles.
func drive(b *testing.B, url string) { driveExpect(b, url, 200, "Hello, Ada!\n") }

// driveExpect is drive for a function that answers status and body.
func driveExpect(b *testing.B, url string, status int, want string) {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	get := func() error {
		resp, err := hc.Get(url)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != status || string(body) != want {
			return fmt.Errorf("got %d %q", resp.StatusCode, body)
		}
		return nil
	}
	// Warm 16 instances and connections, as many as the clients below.
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if err := get(); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism(8) // 8 x GOMAXPROCS(2) = 16 clients here
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		local := make([]time.Duration, 0, 1024)
		for pb.Next() {
			t := time.Now()
			if err := get(); err != nil {
				b.Error(err)
				return
			}
			local = append(local, time.Since(t))
		}
		mu.Lock()
		lat = append(lat, local...)
		mu.Unlock()
	})
	b.StopTimer()
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	}
}

// BenchmarkWarmCall compares a warm SDK function call through the whole
// HTTP path (gateway, invoker, scheduler, wasm, record) with a bare
// net/http handler doing the same work, in the same run. Compare the two
// ns/op (throughput ratio) and p50-µs (added latency).
func BenchmarkWarmCall(b *testing.B) {
	b.Run("bare-net-http", func(b *testing.B) { drive(b, bareServer(b)) })
	b.Run("hostless-sdk", func(b *testing.B) { drive(b, benchApp(b)) })
}
