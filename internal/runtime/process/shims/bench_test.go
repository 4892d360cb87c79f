package shims

import (
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkColdStart starts a shim with a hello handler, as a cold start
// does (without the sandbox), and reports two times from just before the
// process is started: until its first GET /next reaches the Runtime API
// (the interpreter starting, the shim loading the handler), and until the
// hello response is posted (the first invocation too). ns/op is the latter
// plus the Runtime API's set-up. cpu-ms is the CPU time the process used
// until then (user and system): on a shared machine, a steadier figure
// than the wall clock.
func BenchmarkColdStart(b *testing.B) {
	benchmarks := []struct {
		name, runtime, handler string
		code                   map[string]string
	}{
		{"nodejs-cjs", NodeJS, "index.handler",
			map[string]string{"index.js": `exports.handler = async (event) => ({hello: event.name});`}},
		{"nodejs-esm", NodeJS, "index.handler",
			map[string]string{"index.mjs": `export const handler = async (event) => ({hello: event.name});`}},
		{"python", Python, "app.handler",
			map[string]string{"app.py": "def handler(event, context):\n    return {'hello': event['name']}\n"}},
	}
	for _, bm := range benchmarks {
		b.Run(bm.name, func(b *testing.B) {
			s, shimDir, root := setup(b, bm.runtime, bm.code)
			var toNext, toResponse, cpu time.Duration
			for i := 0; i < b.N; i++ {
				api := newFakeAPI(b)
				api.Invoke(`{"name":"Ada"}`)
				t0 := time.Now()
				inst := start(b, s, shimDir, api, root, bm.handler)
				var nextAt time.Time
				select {
				case nextAt = <-api.nexts:
				case <-time.After(10 * time.Second):
					b.Fatalf("no GET next in 10s\n%s", inst.logs())
				}
				o := api.Outcome(inst)
				if o.Kind != "response" {
					b.Fatalf("%s %s\n%s", o.Kind, o.Body, inst.logs())
				}
				toNext += nextAt.Sub(t0)
				toResponse += o.At.Sub(t0)
				b.StopTimer()
				inst.Stop()
				api.Close()
				cpu += inst.cmd.ProcessState.UserTime() + inst.cmd.ProcessState.SystemTime()
				b.StartTimer()
			}
			b.ReportMetric(ms(toNext, b.N), "ms-to-next")
			b.ReportMetric(ms(toResponse, b.N), "ms-to-response")
			b.ReportMetric(ms(cpu, b.N), "cpu-ms")
		})
	}
}

// BenchmarkInterpreterStart is the floor under BenchmarkColdStart: the
// interpreter, with the shim's flags and the function's environment,
// running an empty file to its exit. The environment matters: with
// NODE_EXTRA_CA_CERTS set (as on our development machines) Node reads the
// CA bundle at start, about 80 ms of CPU, so an instance must never inherit
// the platform's environment.
func BenchmarkInterpreterStart(b *testing.B) {
	for _, bm := range []struct{ name, runtime, file string }{
		{"nodejs", NodeJS, "empty.cjs"},
		{"python", Python, "empty.py"},
	} {
		b.Run(bm.name, func(b *testing.B) {
			s, _, root := setup(b, bm.runtime, map[string]string{bm.file: ""})
			argv := s.Argv("", 128)
			argv[len(argv)-1] = filepath.Join(root, bm.file)
			var cpu time.Duration
			for i := 0; i < b.N; i++ {
				cmd := exec.Command(argv[0], argv[1:]...)
				cmd.Env = functionEnv
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("%v: %v\n%s", argv, err, out)
				}
				cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
			}
			b.ReportMetric(ms(cpu, b.N), "cpu-ms")
		})
	}
}

// ms is the mean of a total over n, in milliseconds.
func ms(total time.Duration, n int) float64 {
	return float64(total.Microseconds()) / 1e3 / float64(n)
}
