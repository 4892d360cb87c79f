package app

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/client"
	"github.com/hostless/hostless/internal/config"
	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/sandbox"
	"github.com/hostless/hostless/internal/wasmtest"
)

var discardLog = log.New(io.Discard, "", 0)

// bareLambdaServer serves what testdata/lambdafn's hello does (log a line
// to stdout and one to stderr, answer 201 "hello NAME") from a plain
// net/http handler.
func bareLambdaServer(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Query().Get("name")
		discardLog.Println("hello log line")
		discardLog.Println("hello on stderr")
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Fn", "lambdafn")
		w.WriteHeader(201)
		_, _ = w.Write([]byte("hello " + name))
	})}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/fn/lfn/hello?name=Ada"
}

// lambdaApp runs a platform with testdata/lambdafn (aws-lambda-go) deployed.
func lambdaApp(b *testing.B) string {
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
	ref, err := c.UploadArtifact(context.Background(), zipCodeB(b, wasmtest.LambdaFn(b)))
	if err != nil {
		b.Fatal(err)
	}
	spec := function.Spec{Runtime: function.RuntimeProcess, Code: ref, MemoryMB: 128, Network: function.NetworkNone,
		Timeout: function.Duration(10 * time.Second)}
	if _, err := c.PutFunction(context.Background(), "lfn", spec); err != nil {
		b.Fatal(err)
	}
	return a.URL() + "/fn/lfn/hello?name=Ada"
}

// BenchmarkWarmCallLambda compares warm calls of an aws-lambda-go function
// in its sandbox through the whole HTTP path (gateway, invoker, scheduler,
// Runtime API, record) with a bare net/http handler doing the same work,
// in the same run, with 16 clients.
func BenchmarkWarmCallLambda(b *testing.B) {
	b.Run("bare-net-http", func(b *testing.B) { driveExpect(b, bareLambdaServer(b), 201, "hello Ada") })
	b.Run("hostless-lambda", func(b *testing.B) { driveExpect(b, lambdaApp(b), 201, "hello Ada") })
}
