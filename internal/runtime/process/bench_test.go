package process

import (
	"context"
	"net/http"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/sandbox"
	"github.com/hostless/hostless/internal/wasmtest"
)

type discard struct{}

func (discard) Line(string, []byte) {}

// BenchmarkColdStart is a cold start of a hello function: sandbox (from a
// ready slot), process start, Runtime API handshake, and the first
// invocation's response. Slots are made ahead in the background, off the
// timer, as a server does between cold starts. The Go function is
// examples/lambda (aws-lambda-go); the Node.js and Python ones are the
// handlers beside it, through the shims.
func BenchmarkColdStart(b *testing.B) {
	cases := []struct{ name, runtime, network, handler string }{
		{"go/network=none", function.RuntimeProcess, function.NetworkNone, ""},
		{"go/network=outbound", function.RuntimeProcess, function.NetworkOutbound, ""},
		{"nodejs/network=none", function.RuntimeNodeJS, function.NetworkNone, "index.handler"},
		{"python/network=none", function.RuntimePython, function.NetworkNone, "app.handler"},
	}
	for _, c := range cases {
		network := c.network
		b.Run(c.name, func(b *testing.B) {
			e := newEnv(b, sandbox.IsolationSandbox)
			code := wasmtest.LambdaExample(b)
			switch c.runtime {
			case function.RuntimeNodeJS:
				code = filepath.Join(wasmtest.Root(b), "examples", "lambda", "node")
			case function.RuntimePython:
				code = filepath.Join(wasmtest.Root(b), "examples", "lambda", "python")
			}
			v := e.version(b, zipDir(b, e.a, code), func(s *function.Spec) {
				s.Runtime, s.Network, s.Handler = c.runtime, network, c.handler
				s.Env = map[string]string{"GREETING": "Hello"}
			})
			ctx := context.Background()
			if err := e.rt.Prepare(ctx, v); err != nil {
				b.Fatal(err)
			}
			req := &function.Request{Method: "GET", Path: "/", RawQuery: "name=b", Header: http.Header{}}
			var times []time.Duration
			for b.Loop() {
				b.StopTimer()
				waitSpare(e.sb, network)
				b.StartTimer()
				t0 := time.Now()
				inst, _, err := e.rt.Start(ctx, v)
				if err != nil {
					b.Fatal(err)
				}
				resp, err := inst.Invoke(ctx, req, discard{})
				if err != nil || resp.Status != 200 {
					b.Fatal(err, resp)
				}
				times = append(times, time.Since(t0))
				b.StopTimer()
				inst.Close(ctx)
				b.StartTimer()
			}
			sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
			b.ReportMetric(float64(times[len(times)/2].Microseconds()), "p50-us")
		})
	}
}

// waitSpare waits (briefly) until the manager has its spare slots.
func waitSpare(m *sandbox.Manager, network string) {
	deadline := time.Now().Add(2 * time.Second)
	for m.SpareReady(network) < 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkWarmInvoke is one warm invocation of examples/lambda's greet,
// straight to the instance: the Runtime API round trip.
func BenchmarkWarmInvoke(b *testing.B) {
	e := newEnv(b, sandbox.IsolationSandbox)
	v := e.version(b, zipDir(b, e.a, wasmtest.LambdaExample(b)), func(s *function.Spec) { s.Env = map[string]string{"GREETING": "Hello"} })
	inst := start(b, e, v)
	ctx := context.Background()
	req := &function.Request{Method: "GET", Path: "/", RawQuery: "name=b", Header: http.Header{}}
	for b.Loop() {
		if _, err := inst.Invoke(ctx, req, discard{}); err != nil {
			b.Fatal(err)
		}
	}
}
