package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/client"
	"github.com/hostless/hostless/internal/config"
	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/wasmtest"
)

// heapMB is the live heap after a full collection, in MB.
func heapMB() float64 {
	runtime.GC()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapAlloc) / (1 << 20)
}

// rssMB is the process's resident memory, in MB.
func rssMB() float64 {
	b, _ := os.ReadFile("/proc/self/status")
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return float64(kb) / 1024
		}
	}
	return 0
}

// BenchmarkIdleFunctions deploys 1,000 functions (each its own module),
// calls each once, waits until every instance stopped (scale to zero), and
// reports what they add to the server's memory (live heap and RSS), with
// their compiled code kept or evicted, and the cost of the next call to
// the first function: code-cold (from wazero's disk cache) when its code
// was evicted. Run with -benchtime 1x.
func BenchmarkIdleFunctions(b *testing.B) {
	// Compiled code kept (the default budget), or evicted (a 1 KB budget
	// holds a few tiny modules): then a call loads its code again.
	b.Run("code-kept", func(b *testing.B) { idleFunctions(b, 0) })
	b.Run("code-evicted", func(b *testing.B) { idleFunctions(b, 1<<10) })
}

func idleFunctions(b *testing.B, codeBudget int64) {
	const n = 1000
	for b.Loop() {
		dir := b.TempDir()
		shareCompilationCache(b, dir)
		cfg := config.Config{Addr: "127.0.0.1:0", DataDir: dir, AdminKey: benchKey, IdleTimeout: time.Second,
			CodeCacheBytes: codeBudget}
		a := New(cfg, nil)
		if err := a.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		c := client.New(a.URL(), benchKey)
		ctx := context.Background()
		hc := &http.Client{Timeout: 30 * time.Second}
		call := func(name string) time.Duration {
			t := time.Now()
			resp, err := hc.Get(a.URL() + "/fn/" + name)
			if err != nil {
				b.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "fn-") {
				b.Fatalf("%s: %d %q", name, resp.StatusCode, body)
			}
			return time.Since(t)
		}
		before, rssBefore := heapMB(), rssMB()
		for i := range n {
			name := fmt.Sprintf("fn-%04d", i)
			p := filepath.Join(dir, name+".wasm")
			if err := os.WriteFile(p, wasmtest.Tiny("Content-Type: text/plain\n\n"+name+"\n"), 0o644); err != nil {
				b.Fatal(err)
			}
			ref, err := c.UploadArtifact(ctx, p)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := c.PutFunction(ctx, name, function.Spec{Runtime: function.RuntimeWasm, Code: ref, MemoryMB: 1}); err != nil {
				b.Fatal(err)
			}
		}
		for i := range n {
			call(fmt.Sprintf("fn-%04d", i))
		}
		deadline := time.Now().Add(30 * time.Second)
		for st := a.sched.Stats(); st.Idle+st.Busy > 0; st = a.sched.Stats() {
			if time.Now().After(deadline) {
				b.Fatalf("instances still running: %+v", st)
			}
			time.Sleep(100 * time.Millisecond)
		}
		after, rssAfter := heapMB(), rssMB()
		// With a small budget fn-0000's code was evicted long ago: code-cold.
		cold := call("fn-0000")
		warmAgain := call("fn-0000")
		b.ReportMetric(after-before, "heap-MB/1000fn")
		b.ReportMetric(rssAfter-rssBefore, "rss-MB/1000fn")
		b.ReportMetric(float64(cold.Microseconds()), "first-call-µs")
		b.ReportMetric(float64(warmAgain.Microseconds()), "then-µs")
		_ = a.Shutdown(context.Background())
	}
}
