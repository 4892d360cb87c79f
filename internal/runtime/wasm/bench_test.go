package wasm

import (
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/wasmtest"
)

type discardLogs struct{}

func (discardLogs) Line(string, []byte) {}

func helloVersion(b *testing.B, mods *wasmtest.Modules) *function.Version {
	ref := mods.Add(wasmtest.ReadFile(b, wasmtest.Build(b, "examples/hello", "./hello", true)))
	return version("hello", ref, 64, map[string]string{"GREETING": "Hello"})
}

// BenchmarkSDKWarmInvoke is one warm call of the example hello function,
// runtime only: encode, guest handler, decode.
func BenchmarkSDKWarmInvoke(b *testing.B) {
	mods := &wasmtest.Modules{}
	v := helloVersion(b, mods)
	rt := New(Config{CacheDir: wasmtest.CompilationCacheDir(b), Artifacts: mods.Get})
	if err := rt.Open(); err != nil {
		b.Fatal(err)
	}
	defer rt.Close(context.Background())
	inst, _, err := rt.Start(context.Background(), v)
	if err != nil {
		b.Fatal(err)
	}
	r := &function.Request{Method: "GET", Path: "/", RawQuery: "name=Ada", Host: "127.0.0.1:8080",
		RemoteAddr: "127.0.0.1:5000", Header: http.Header{"User-Agent": {"Go-http-client/1.1"}, "Accept-Encoding": {"gzip"}}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := inst.Invoke(ctx, r, discardLogs{})
		if err != nil || resp.Status != 200 {
			b.Fatal(err)
		}
		if !inst.Reusable() { // recycle past the memory high-water mark, as the scheduler does
			inst.Close(ctx)
			if inst, _, err = rt.Start(ctx, v); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkColdStart measures the two cold starts for a Go SDK guest and
// for a tiny hand-written module:
//   - code-cold: compiled code is not in memory; it loads from the on-disk
//     compilation cache, then an instance starts.
//   - instance-cold: compiled code is in memory; a new instance starts.
//
// For the tiny CGI module a start is followed by its one invocation, since
// a command module runs when it is instantiated.
func BenchmarkColdStart(b *testing.B) {
	ctx := context.Background()
	mods := &wasmtest.Modules{}
	goV := helloVersion(b, mods)
	tinyV := version("tiny", mods.Add(wasmtest.Tiny("Content-Type: text/plain\n\ntiny\n")), 1, nil)
	rt := New(Config{CacheDir: wasmtest.CompilationCacheDir(b), Artifacts: mods.Get})
	if err := rt.Open(); err != nil {
		b.Fatal(err)
	}
	defer rt.Close(ctx)
	r := &function.Request{Method: "GET", Path: "/", Header: http.Header{}}
	run := func(b *testing.B, v *function.Version, evict bool) {
		if err := rt.Prepare(ctx, v); err != nil { // fill the disk cache
			b.Fatal(err)
		}
		var load, init time.Duration
		for b.Loop() {
			if evict {
				rt.Evict(ctx)
			}
			inst, info, err := rt.Start(ctx, v)
			if err != nil {
				b.Fatal(err)
			}
			if info.CodeCold != evict {
				b.Fatalf("CodeCold = %v, want %v", info.CodeCold, evict)
			}
			load += info.Load
			init += info.Init
			if _, ok := inst.(*cgiInstance); ok {
				if _, err := inst.Invoke(ctx, r, discardLogs{}); err != nil {
					b.Fatal(err)
				}
			}
			inst.Close(ctx)
		}
		b.ReportMetric(float64(load.Microseconds())/float64(b.N), "load-µs/op")
		b.ReportMetric(float64(init.Microseconds())/float64(b.N), "init-µs/op")
	}
	// baseline is the guest's own start-up: raw wazero instantiating the
	// same compiled code with a minimal config (and running the tiny
	// module's _start). instance-cold minus baseline is the platform's cost.
	baseline := func(b *testing.B, v *function.Version, start string) {
		c, _, err := rt.load(ctx, v)
		if err != nil {
			b.Fatal(err)
		}
		wrt, err := rt.runtimeFor(ctx, c.key.pages)
		if err != nil {
			b.Fatal(err)
		}
		cfg := wazero.NewModuleConfig().WithName("").WithStartFunctions(start).WithStdout(io.Discard)
		for b.Loop() {
			mod, err := wrt.InstantiateModule(ctx, c.compiled, cfg)
			if err != nil {
				b.Fatal(err)
			}
			mod.Close(ctx)
		}
	}
	b.Run("go-sdk/code-cold", func(b *testing.B) { run(b, goV, true) })
	b.Run("go-sdk/instance-cold", func(b *testing.B) { run(b, goV, false) })
	b.Run("go-sdk/guest-startup-baseline", func(b *testing.B) { baseline(b, goV, "_initialize") })
	b.Run("tiny/code-cold", func(b *testing.B) { run(b, tinyV, true) })
	b.Run("tiny/instance-cold", func(b *testing.B) { run(b, tinyV, false) })
	b.Run("tiny/guest-startup-baseline", func(b *testing.B) { baseline(b, tinyV, "_start") })
}

// BenchmarkOutbound compares an outbound HTTP GET from a wasm guest (the
// SDK's Transport through http_send, with http.Get) with the same GET from
// native Go, to the same local server. Each iteration times a batch of
// outboundCalls from each, interleaved so that both see the same machine
// load; wasm-us/call minus native-us/call is the cost the platform adds
// (added-us/call).
func BenchmarkOutbound(b *testing.B) {
	const outboundCalls = 20
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("hello from upstream"))
	}))
	defer srv.Close()
	c := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	native := func() {
		for range outboundCalls {
			resp, err := c.Get(srv.URL)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	mods := &wasmtest.Modules{}
	ref := mods.Add(wasmtest.ReadFile(b, wasmtest.Build(b, "internal/runtime/wasm/testdata/guests", "./sdk", true)))
	rt := New(Config{CacheDir: wasmtest.CompilationCacheDir(b), Artifacts: mods.Get})
	if err := rt.Open(); err != nil {
		b.Fatal(err)
	}
	defer rt.Close(context.Background())
	v := version("fetch", ref, 64, nil)
	v.Spec.AllowedHosts = []string{strings.TrimPrefix(srv.URL, "http://")}
	ctx := context.Background()
	inst, _, err := rt.Start(ctx, v)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { inst.Close(ctx) }()
	r := &function.Request{Method: "GET", Path: "/fetch", RawQuery: url.Values{"url": {srv.URL}, "n": {strconv.Itoa(outboundCalls)}}.Encode(), Header: http.Header{}}
	wasm := func() {
		resp, err := inst.Invoke(ctx, r, discardLogs{})
		if err != nil || resp.Status != 200 || string(resp.Body) != "hello from upstream" {
			b.Fatal(err, resp)
		}
		if !inst.Reusable() { // as the scheduler does
			inst.Close(ctx)
			if inst, _, err = rt.Start(ctx, v); err != nil {
				b.Fatal(err)
			}
		}
	}
	// One warm-up call of each: connections, the guest's first allocations.
	native()
	wasm()
	// The host function's own part, called from Go: what the platform adds
	// on the host, apart from the guest's.
	o := &outbound{allowed: parseAllowedHosts(v.Spec.AllowedHosts), logs: discardLogs{}}
	enc := appendU32(appendU32(appendStr(appendStr(nil, "GET"), srv.URL), 0), 0)
	enc = appendU32(enc, 0)
	host := func() {
		for range outboundCalls {
			if out := rt.outbound.send(ctx, o, enc); binary.LittleEndian.Uint32(out) != 200 {
				b.Fatalf("%q", out)
			}
		}
	}
	base := &function.Request{Method: "GET", Path: "/", Header: http.Header{}}
	var tNative, tWasm, tInvoke, tHost time.Duration
	for b.Loop() {
		t0 := time.Now()
		native()
		t1 := time.Now()
		wasm()
		t2 := time.Now()
		if _, err := inst.Invoke(ctx, base, discardLogs{}); err != nil { // an invocation's own cost
			b.Fatal(err)
		}
		t3 := time.Now()
		host()
		tNative += t1.Sub(t0)
		tWasm += t2.Sub(t1)
		tInvoke += t3.Sub(t2)
		tHost += time.Since(t3)
	}
	calls := float64(b.N * outboundCalls)
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	b.ReportMetric(us(tNative)/calls, "native-us/call")
	b.ReportMetric(us(tHost)/calls, "host-us/call")
	b.ReportMetric((us(tWasm)-us(tInvoke))/calls, "wasm-us/call")
	b.ReportMetric((us(tWasm)-us(tInvoke)-us(tNative))/calls, "added-us/call")
}

// BenchmarkLogWrites is the guest's side of BenchmarkLogging (in
// internal/app): the same warm SDK function called in the runtime alone,
// silent or writing 10 lines to stderr that the host splits into lines
// and discards. Calls of the two alternate; it reports the CPU time (this
// process's) per call of each and their difference: what the writes
// themselves cost a Go guest, before the platform keeps a line.
func BenchmarkLogWrites(b *testing.B) {
	mods := &wasmtest.Modules{}
	ref := mods.Add(wasmtest.ReadFile(b, wasmtest.Build(b, "internal/runtime/wasm/testdata/guests", "./sdk", true)))
	rt := New(Config{CacheDir: wasmtest.CompilationCacheDir(b), Artifacts: mods.Get})
	if err := rt.Open(); err != nil {
		b.Fatal(err)
	}
	defer rt.Close(context.Background())
	inst, _, err := rt.Start(context.Background(), version("lines", ref, 64, nil))
	if err != nil {
		b.Fatal(err)
	}
	defer inst.Close(context.Background())
	ctx := context.Background()
	call := func(query string) {
		r := &function.Request{Method: "GET", Path: "/lines", RawQuery: query, Host: "127.0.0.1:8080", RemoteAddr: "127.0.0.1:5000"}
		resp, err := inst.Invoke(ctx, r, discardLogs{})
		if err != nil || resp.Status != 200 {
			b.Fatal(resp, err)
		}
	}
	for range 100 { // warm the guest's heap
		call("n=0")
		call("n=10")
	}
	var silent, logging time.Duration
	b.ResetTimer()
	for i := range b.N {
		if i%2 == 0 {
			c := cpuTime()
			call("n=0")
			silent += cpuTime() - c
		} else {
			c := cpuTime()
			call("n=10")
			logging += cpuTime() - c
		}
	}
	n := float64(b.N / 2)
	b.ReportMetric(float64(silent.Nanoseconds())/1e3/n, "silent-cpu-µs/call")
	b.ReportMetric(float64(logging.Nanoseconds())/1e3/n, "10-lines-cpu-µs/call")
	b.ReportMetric(float64((logging-silent).Nanoseconds())/1e3/n, "added-cpu-µs/call")
}

// cpuTime is the CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
