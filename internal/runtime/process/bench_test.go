package process

import (
	"context"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/sandbox"
)

type discard struct{}

func (discard) Line(string, []byte) {}

// BenchmarkColdStart is a cold start of an aws-lambda-go hello function:
// sandbox (from a ready slot), process start, Runtime API handshake, and
// the first invocation's response. Slots are made ahead in the
// background, off the timer, as a server does between cold starts.
func BenchmarkColdStart(b *testing.B) {
	for _, network := range []string{function.NetworkNone, function.NetworkOutbound} {
		b.Run("network="+network, func(b *testing.B) {
			e := newEnv(b, sandbox.IsolationSandbox)
			v := e.version(b, zipDir(b, e.a, lambdaFn(b)), func(s *function.Spec) { s.Network = network })
			ctx := context.Background()
			if err := e.rt.Prepare(ctx, v); err != nil {
				b.Fatal(err)
			}
			req := &function.Request{Method: "GET", Path: "/hello", RawQuery: "name=b", Header: http.Header{}}
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
				if err != nil || resp.Status != 201 {
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

// BenchmarkWarmInvoke is one warm invocation of the hello function.
func BenchmarkWarmInvoke(b *testing.B) {
	e := newEnv(b, sandbox.IsolationSandbox)
	v := e.version(b, zipDir(b, e.a, lambdaFn(b)), nil)
	inst := start(b, e, v)
	ctx := context.Background()
	req := &function.Request{Method: "GET", Path: "/hello", RawQuery: "name=b", Header: http.Header{}}
	for b.Loop() {
		if _, err := inst.Invoke(ctx, req, discard{}); err != nil {
			b.Fatal(err)
		}
	}
}
