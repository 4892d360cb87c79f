package app

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/client"
	"github.com/hostless/hostless/internal/config"
	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/sandbox"
	"github.com/hostless/hostless/internal/wasmtest"
)

var discardLog = log.New(io.Discard, "", 0)

const greetWant = "Hello, Ada! (from greet, a Lambda function)\n"

// bareGreetServer serves what examples/lambda's greet handler does (read
// the name, log a line, answer a greeting) from a plain net/http handler.
func bareGreetServer(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	calls := 0
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++ // racy as a count, as cheap as the handler's own
		name := r.URL.Query().Get("name")
		discardLog.Printf("greeting %s (request %s, call %d of this instance)", name, "id", calls)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "%s, %s! (from %s, a Lambda function)\n", "Hello", name, "greet")
	})}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/fn/greet?name=Ada"
}

// greetApp runs a platform with examples/lambda's greet (aws-lambda-go)
// deployed, sandboxed, network none.
func greetApp(b *testing.B) string {
	b.Helper()
	if err := sandbox.Check(); err != nil {
		b.Skip("needs a host that can sandbox: ", err)
	}
	dir := b.TempDir()
	a := New(config.Config{Addr: "127.0.0.1:0", DataDir: dir, AdminKey: benchKey}, nil)
	if err := a.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = a.Shutdown(context.Background()) })
	c := client.New(a.URL(), benchKey)
	ref, err := c.UploadArtifact(context.Background(), zipCodeB(b, wasmtest.LambdaExample(b)))
	if err != nil {
		b.Fatal(err)
	}
	spec := function.Spec{Runtime: function.RuntimeProcess, Code: ref, MemoryMB: 128, Network: function.NetworkNone,
		Timeout: function.Duration(10 * time.Second), Env: map[string]string{"GREETING": "Hello"}}
	if _, err := c.PutFunction(context.Background(), "greet", spec); err != nil {
		b.Fatal(err)
	}
	return a.URL() + "/fn/greet?name=Ada"
}

// BenchmarkWarmCallLambda compares warm calls of an aws-lambda-go function
// (examples/lambda) in its sandbox through the whole HTTP path (gateway,
// invoker, scheduler, Runtime API, record) with a bare net/http handler
// doing the same work, in the same run, with 16 clients.
func BenchmarkWarmCallLambda(b *testing.B) {
	b.Run("bare-net-http", func(b *testing.B) { driveExpect(b, bareGreetServer(b), 200, greetWant) })
	b.Run("hostless-lambda", func(b *testing.B) { driveExpect(b, greetApp(b), 200, greetWant) })
}

// BenchmarkLambdaLatency is the same with one client at a time: the p50
// difference is the platform's own overhead on a warm call.
func BenchmarkLambdaLatency(b *testing.B) {
	b.Run("bare-net-http", func(b *testing.B) { sequential(b, bareGreetServer(b)) })
	b.Run("hostless-lambda", func(b *testing.B) { sequential(b, greetApp(b)) })
}

func sequential(b *testing.B, url string) {
	hc := &http.Client{Timeout: 10 * time.Second}
	get := func() {
		resp, err := hc.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != greetWant {
			b.Fatalf("%d %q", resp.StatusCode, body)
		}
	}
	for range 50 {
		get()
	}
	lat := make([]time.Duration, 0, 4096)
	b.ResetTimer()
	for b.Loop() {
		t := time.Now()
		get()
		lat = append(lat, time.Since(t))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
}
