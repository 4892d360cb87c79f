package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/client"
	"github.com/hostless/hostless/internal/config"
	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/wasmtest"
)

// BenchmarkLogging measures what logging costs a warm function: the same
// SDK function called through the whole HTTP path, from 16 clients, in the
// same run, writing 10 log lines per call or none. Rounds of the variants
// alternate, so all see the same machine; each round ends when the recorder
// has stored every record and line of its calls, so storing them counts in
// the round that made them. It reports the throughput of each variant and
// its ratio to the silent one (the goal: at least 0.9):
//   - silent: /lines?n=0
//   - logging: /lines?n=10, each line one write of a ready string
//   - logging-fmt: /lines?n=10&fmt=1, each line formatted with fmt.Fprintf,
//     which costs a Go guest in wasm several times the write itself
func BenchmarkLogging(b *testing.B) {
	dir := b.TempDir()
	shareCompilationCache(b, dir)
	a := New(config.Config{Addr: "127.0.0.1:0", DataDir: dir, AdminKey: benchKey}, nil)
	if err := a.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = a.Shutdown(context.Background()) })
	c := client.New(a.URL(), benchKey)
	ref, err := c.UploadArtifact(context.Background(), wasmtest.Build(b, "internal/runtime/wasm/testdata/guests", "./sdk", true))
	if err != nil {
		b.Fatal(err)
	}
	spec := function.Spec{Runtime: "wasm", Code: ref, MemoryMB: 64, Timeout: function.Duration(time.Minute)}
	if _, err := c.PutFunction(context.Background(), "lines", spec); err != nil {
		b.Fatal(err)
	}
	variants := []struct{ name, url string }{
		{"silent", a.URL() + "/fn/lines/lines?n=0"},
		{"logging", a.URL() + "/fn/lines/lines?n=10"},
		{"logging-fmt", a.URL() + "/fn/lines/lines?n=10&fmt=1"},
	}

	tr := &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	get := func(url string) error {
		resp, err := hc.Get(url)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != 200 || string(body) != "ok" {
			return fmt.Errorf("got %d %q", resp.StatusCode, body)
		}
		return nil
	}
	const clients = 16
	// round calls url n times from the clients, waits for the records to
	// be stored, and returns how long it all took.
	var ms runtime.MemStats
	allocated := func() uint64 { runtime.ReadMemStats(&ms); return ms.TotalAlloc }
	alloc := make(map[string]uint64)
	round := func(url string, n int) (time.Duration, time.Duration) {
		start, cpu, a0 := time.Now(), cpuTime(), allocated()
		defer func() { alloc[url] += allocated() - a0 }()
		var left atomic.Int64
		left.Store(int64(n))
		var wg sync.WaitGroup
		for range clients {
			wg.Go(func() {
				for left.Add(-1) >= 0 {
					if err := get(url); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		if err := a.rec.Flush(context.Background()); err != nil {
			b.Fatal(err)
		}
		return time.Since(start), cpuTime() - cpu
	}
	// Warm 16 instances, the connections and the store.
	for _, v := range variants {
		round(v.url, 2000)
	}

	clear(alloc)

	const rounds = 6
	per := max(b.N/rounds/len(variants), 100)
	took := make([]time.Duration, len(variants))
	cpu := make([]time.Duration, len(variants))
	b.ResetTimer()
	for i := range rounds {
		for j := range variants {
			k := (i + j) % len(variants) // each variant goes first in turn
			d, c := round(variants[k].url, per)
			took[k] += d
			cpu[k] += c
		}
	}
	b.StopTimer()
	calls := float64(per * rounds)
	silent := calls / took[0].Seconds()
	for k, v := range variants {
		rate := calls / took[k].Seconds()
		b.ReportMetric(rate, v.name+"-calls/s")
		// CPU time per call (of this process: server and clients) is
		// steadier than throughput on a machine shared with other work.
		b.ReportMetric(float64(cpu[k].Microseconds())/calls, v.name+"-cpu-µs/call")
		b.ReportMetric(float64(alloc[v.url])/calls, v.name+"-B/call")
		if k > 0 {
			b.ReportMetric(rate/silent, v.name+"-ratio")
			b.ReportMetric(float64(cpu[0])/float64(cpu[k]), v.name+"-cpu-ratio")
		}
	}
	if d := a.rec.Dropped(); d > 0 {
		b.Errorf("the recorder dropped %d records", d)
	}
}

// cpuTime is the CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
