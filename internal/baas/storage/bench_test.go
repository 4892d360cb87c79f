package storage_test

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// benchDir returns a new directory for a benchmark's files, removed when
// the benchmark ends: under $HOSTLESS_BENCH_DIR when set, else under the
// system's temporary directory. The disk is part of what is measured, so
// a directory on tmpfs skips the benchmark.
//
// On ext4 without a journal (this VM's disk), each file created in the
// minutes after many were deleted in its block group scans past the
// deleted inodes (recently_deleted in the kernel's inode allocator): a
// file create cost 0.5-3 ms of CPU instead of 30 us right after an earlier
// run's clean-up, more than the rest of a 4 KB PUT. So the directory's
// subdirectories (one per measurement, see measureDir) are spread over
// block groups, as the root's are, and sub-benchmarks share their
// parent's directory, removed once they have all run.
func benchDir(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	if root := os.Getenv("HOSTLESS_BENCH_DIR"); root != "" {
		var err error
		if dir, err = os.MkdirTemp(root, "bench-"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
	}
	if fsType(dir) == "tmpfs" {
		b.Skipf("%s is on tmpfs: set HOSTLESS_BENCH_DIR to a directory on the disk", dir)
	}
	spreadSubdirs(dir)
	return dir
}

// measureDir returns a new subdirectory of root (a benchDir) for one
// measurement, and what creating an empty file in it costs (wall time,
// the median of 200). It tries up to 8 directories, each in a block group
// ext4 picks, for one where a create costs under 200 us: not in a group
// where thousands of files were just deleted (see benchDir), which would
// make every PUT, the bare handler's too, cost up to 3 ms more.
func measureDir(b *testing.B, root, name string) (string, time.Duration) {
	var dir string
	var cost time.Duration
	for range 8 {
		var err error
		if dir, err = os.MkdirTemp(root, name+"-"); err != nil {
			b.Fatal(err)
		}
		probe := filepath.Join(dir, "probe")
		if err := os.Mkdir(probe, 0o700); err != nil {
			b.Fatal(err)
		}
		times := make([]time.Duration, 200)
		for i := range times {
			start := time.Now()
			f, err := os.Create(filepath.Join(probe, strconv.Itoa(i)))
			if err != nil {
				b.Fatal(err)
			}
			times[i] = time.Since(start)
			f.Close()
		}
		slices.Sort(times)
		if cost = times[len(times)/2]; cost < 200*time.Microsecond {
			break
		}
	}
	return dir, cost
}

// fsType returns the type of the file system that holds dir, from
// /proc/self/mounts ("" where there is none).
func fsType(dir string) string {
	mounts, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return ""
	}
	dir, _ = filepath.EvalSymlinks(dir)
	best, typ := "", ""
	for line := range strings.SplitSeq(string(mounts), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		mp := f[1]
		if (dir == mp || strings.HasPrefix(dir, strings.TrimSuffix(mp, "/")+"/")) && len(mp) >= len(best) {
			best, typ = mp, f[2]
		}
	}
	return typ
}

// bareHandler does the work of a PUT and a GET of an object with nothing
// else: write the body to a temporary file, (with sync: fsync,) rename
// (with sync: and fsync the directory), or read a file back. Keys map to
// flat file names.
func bareHandler(dir string, sync bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := filepath.Join(dir, hex.EncodeToString([]byte(r.URL.Path)))
		switch r.Method {
		case http.MethodPut:
			f, err := os.CreateTemp(dir, ".tmp-*")
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			_, err = io.Copy(f, r.Body)
			if err == nil && sync {
				err = f.Sync()
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err == nil {
				err = os.Rename(f.Name(), name)
			}
			if err == nil && sync {
				var d *os.File
				if d, err = os.Open(dir); err == nil {
					err = d.Sync()
					d.Close()
				}
			}
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			w.Header().Set("ETag", `"x"`)
		case http.MethodGet:
			f, err := os.Open(name)
			if err != nil {
				http.Error(w, err.Error(), 404)
				return
			}
			defer f.Close()
			fi, _ := f.Stat()
			w.Header().Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
			_, _ = io.Copy(w, f)
		}
	})
}

// nullHandler answers PUT and GET of size-byte objects without storing
// anything: what the client and HTTP cost alone, the ceiling of any server
// measured with the same client.
func nullHandler(size int) http.Handler {
	body := make([]byte, size)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("ETag", `"x"`)
		if r.Method == http.MethodGet {
			w.Header().Set("Content-Length", strconv.Itoa(size))
			_, _ = w.Write(body)
		}
	})
}

// startLike starts h on a server of the same kind as the S3 API's (HTTP,
// or HTTPS with its certificate).
func startLike(b *testing.B, srv *server, h http.Handler) *httptest.Server {
	s := httptest.NewUnstartedServer(h)
	if srv.TLS != nil {
		s.TLS = &tls.Config{Certificates: srv.TLS.Certificates}
		s.StartTLS()
	} else {
		s.Start()
	}
	b.Cleanup(s.Close)
	return s
}

// cpuTime is the CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rate is one target's measurement: operations per second of wall time,
// and the CPU time of the whole process (client and server) per
// operation.
type rate struct {
	perSec float64
	cpu    time.Duration
}

// measure does operations 0..n-1 on each target with workers goroutines,
// in segments that alternate the order of the targets (ABC CBA ABC CBA),
// so that a drift of the machine (other users, the file system's state)
// weighs on each alike.
func measure(b *testing.B, n, workers int, targets int, op func(t, i int) error) []rate {
	const segments = 4
	wall := make([]time.Duration, targets)
	cpu := make([]time.Duration, targets)
	for s := range segments {
		lo, hi := n*s/segments, n*(s+1)/segments
		for k := range targets {
			t := k
			if s%2 == 1 {
				t = targets - 1 - k
			}
			c0, w0 := cpuTime(), time.Now()
			run(b, lo, hi, workers, func(i int) error { return op(t, i) })
			wall[t] += time.Since(w0)
			cpu[t] += cpuTime() - c0
		}
	}
	out := make([]rate, targets)
	for t := range out {
		out[t] = rate{perSec: float64(n) / wall[t].Seconds(), cpu: cpu[t] / time.Duration(n)}
	}
	return out
}

// run does operations lo..hi-1 with workers goroutines.
func run(b *testing.B, lo, hi, workers int, op func(i int) error) {
	var next atomic.Int64
	next.Store(int64(lo))
	var wg sync.WaitGroup
	var failed atomic.Value
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= hi {
					return
				}
				if err := op(i); err != nil {
					failed.Store(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
}

// objectsCase is a configuration of BenchmarkObjects4KB.
type objectsCase struct {
	name string
	// sync: serve --data-sync-always, against a bare handler that fsyncs
	// too.
	sync bool
	// tls: HTTPS, where aws-sdk-go-v2 sends a seekable body as
	// UNSIGNED-PAYLOAD (TLS protects it) with its CRC32 in a header.
	tls bool
	// unsigned: the client sends UNSIGNED-PAYLOAD instead of the body's
	// SHA-256 (over plain HTTP).
	unsigned bool
	// mode is the X-Amz-Content-Sha256 the S3 API must see on PUTs.
	mode string
}

// BenchmarkObjects4KB: PUT then GET of 4 KB objects by 16 concurrent
// aws-sdk-go-v2 clients, on the S3 API, on the bare handler and on the
// null handler, in the same run with the same client. Run with
// -benchtime=1x: each iteration is a whole measurement. The client is
// configured as a performance-minded user would: an http.Transport that
// keeps 64 idle connections per host (net/http's default of 2 makes 14
// of 16 clients open a connection per request), response checksums
// validated only when an operation requires it, no retries.
func BenchmarkObjects4KB(b *testing.B) {
	dir := benchDir(b)
	for _, c := range []objectsCase{
		{name: "default", mode: "signed"},
		{name: "sync-always", sync: true, mode: "signed"},
		{name: "unsigned-payload", unsigned: true, mode: "UNSIGNED-PAYLOAD"},
		{name: "https", tls: true, mode: "UNSIGNED-PAYLOAD"},
	} {
		b.Run(c.name, func(b *testing.B) { benchObjects(b, c, dir) })
	}
}

func benchObjects(b *testing.B, c objectsCase, root string) {
	const workers = 16
	n := 4000
	if testing.Short() {
		n = 400
	}
	body := make([]byte, 4096)
	_, _ = rand.Read(body)
	for range b.N {
		dir, create := measureDir(b, root, c.name)
		b.ReportMetric(float64(create.Microseconds()), "file-create-us")
		srv := newServer(b, serverOptions{sync: c.sync, tls: c.tls, dir: filepath.Join(dir, "s3")})
		if err := os.Mkdir(filepath.Join(dir, "bare"), 0o700); err != nil {
			b.Fatal(err)
		}
		bare := startLike(b, srv, bareHandler(filepath.Join(dir, "bare"), c.sync))
		null := startLike(b, srv, nullHandler(len(body)))
		var opts []func(*s3.Options)
		if c.unsigned {
			opts = append(opts, s3.WithAPIOptions(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware))
		}
		client := func(url string) *s3.Client {
			return s3.New(srv.awsClient(testCreds).Options(), append(opts, func(o *s3.Options) { o.BaseEndpoint = aws.String(url) })...)
		}
		clients := []*s3.Client{client(srv.URL), client(bare.URL), client(null.URL)}
		if _, err := clients[0].CreateBucket(b.Context(), &s3.CreateBucketInput{Bucket: aws.String("bench")}); err != nil {
			b.Fatal(err)
		}
		key := func(i int) *string { return aws.String(fmt.Sprintf("obj/%06d", i)) }
		put := measure(b, n, workers, len(clients), func(t, i int) error {
			_, err := clients[t].PutObject(b.Context(), &s3.PutObjectInput{Bucket: aws.String("bench"), Key: key(i), Body: bytes.NewReader(body)})
			return err
		})
		get := measure(b, n, workers, len(clients), func(t, i int) error {
			out, err := clients[t].GetObject(b.Context(), &s3.GetObjectInput{Bucket: aws.String("bench"), Key: key(i)})
			if err != nil {
				return err
			}
			defer out.Body.Close()
			m, err := io.Copy(io.Discard, out.Body)
			if err == nil && m != int64(len(body)) {
				err = fmt.Errorf("read %d bytes", m)
			}
			return err
		})
		if !srv.sawMode(c.mode) {
			b.Fatalf("the S3 API saw no PUT with X-Amz-Content-Sha256 %s: %v", c.mode, srv.modes)
		}
		for _, m := range []struct {
			name string
			r    []rate
		}{{"put", put}, {"get", get}} {
			b.ReportMetric(m.r[0].perSec, m.name+"/s")
			b.ReportMetric(m.r[1].perSec, "bare-"+m.name+"/s")
			b.ReportMetric(m.r[2].perSec, "null-"+m.name+"/s")
			b.ReportMetric(m.r[0].perSec/m.r[1].perSec, m.name+"-ratio")
			b.ReportMetric(float64(m.r[0].cpu.Microseconds()), m.name+"-cpu-us")
			b.ReportMetric(float64(m.r[1].cpu.Microseconds()), "bare-"+m.name+"-cpu-us")
			b.ReportMetric(float64(m.r[2].cpu.Microseconds()), "null-"+m.name+"-cpu-us")
		}
	}
}

// pattern is a seekable body of size bytes that repeats a random block,
// so a large upload needs neither memory nor a source file.
type pattern struct {
	block     []byte
	size, off int64
}

func newPattern(size int64) *pattern {
	p := &pattern{block: make([]byte, 1<<20), size: size}
	_, _ = rand.Read(p.block)
	return p
}

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.size {
		return 0, io.EOF
	}
	i := p.off % int64(len(p.block))
	n := copy(b[:min(int64(len(b)), p.size-p.off)], p.block[i:])
	p.off += int64(n)
	return n, nil
}

func (p *pattern) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += p.off
	case io.SeekEnd:
		offset += p.size
	}
	if offset < 0 {
		return 0, errors.New("negative offset")
	}
	p.off = offset
	return offset, nil
}

// Write checks that bytes written in order are the pattern's.
func (p *pattern) Write(b []byte) (int, error) {
	for n := 0; n < len(b); {
		i := p.off % int64(len(p.block))
		m := min(len(b)-n, len(p.block)-int(i))
		if p.off+int64(m) > p.size || !bytes.Equal(b[n:n+m], p.block[i:i+int64(m)]) {
			return n, fmt.Errorf("byte %d differs from what was put", p.off)
		}
		n += m
		p.off += int64(m)
	}
	return len(b), nil
}

// diskWrite writes size bytes of src to a new file in dir, 1 MiB at a
// time, and fsyncs it (dd bs=1M conv=fsync): the disk's sequential write
// speed in bytes/s.
func diskWrite(b *testing.B, dir string, src io.Reader, size int64) float64 {
	f, err := os.CreateTemp(dir, "disk-*")
	if err != nil {
		b.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	start := time.Now()
	if _, err := io.CopyBuffer(struct{ io.Writer }{f}, io.LimitReader(src, size), make([]byte, 1<<20)); err != nil {
		b.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	return float64(size) / time.Since(start).Seconds()
}

// peakMemory samples the heap while it runs, and reads the process's peak
// resident set (VmHWM, reset at the start where Linux allows it).
type peakMemory struct {
	heap atomic.Uint64
	stop chan struct{}
	done chan struct{}
}

func watchMemory() *peakMemory {
	runtime.GC()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // resets VmHWM
	m := &peakMemory{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > m.heap.Load() {
				m.heap.Store(v)
			}
			select {
			case <-m.stop:
				return
			case <-t.C:
			}
		}
	}()
	return m
}

// end stops sampling and returns the peak heap and resident set in bytes
// (rss 0 where /proc is not there).
func (m *peakMemory) end() (heap, rss uint64) {
	close(m.stop)
	<-m.done
	status, _ := os.ReadFile("/proc/self/status")
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			rss = kb << 10
		}
	}
	return m.heap.Load(), rss
}

// BenchmarkObject1GB: one object of 1 GiB (64 MiB with -short) PUT
// through aws-sdk-go-v2 as a single streaming PutObject (not the upload
// manager's multipart upload: one request, one blob), then GET back and
// checked byte for byte, against the disk's sequential write speed
// measured in the same run and directory (the same bytes, 1 MiB writes,
// fsync at the end). It reports MB/s (10^6 bytes), the ratios to the disk,
// and the process's peak heap and peak resident set during the transfers:
// no object is held in memory. The client is BenchmarkObjects4KB's.
// Signed: the client hashes the whole body before it sends it (over plain
// HTTP a payload is signed), so a PUT reads its source twice.
func BenchmarkObject1GB(b *testing.B) {
	dir := benchDir(b)
	for _, c := range []objectsCase{
		{name: "default", mode: "signed"},
		{name: "sync-always", sync: true, mode: "signed"},
		{name: "unsigned-payload", unsigned: true, mode: "UNSIGNED-PAYLOAD"},
	} {
		b.Run(c.name, func(b *testing.B) { benchObject1GB(b, c, dir) })
	}
}

func benchObject1GB(b *testing.B, c objectsCase, root string) {
	size := int64(1 << 30)
	if testing.Short() {
		size = 64 << 20
	}
	src := newPattern(size)
	for range b.N {
		dir, err := os.MkdirTemp(root, c.name+"-")
		if err != nil {
			b.Fatal(err)
		}
		srv := newServer(b, serverOptions{sync: c.sync, tls: c.tls, dir: filepath.Join(dir, "s3")})
		var opts []func(*s3.Options)
		if c.unsigned {
			opts = append(opts, s3.WithAPIOptions(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware))
		}
		client := s3.New(srv.awsClient(testCreds).Options(), opts...)
		if _, err := client.CreateBucket(b.Context(), &s3.CreateBucketInput{Bucket: aws.String("bench")}); err != nil {
			b.Fatal(err)
		}
		syscall.Sync() // no writeback of earlier runs during this one
		_, _ = src.Seek(0, io.SeekStart)
		disk := diskWrite(b, dir, src, size)

		mem := watchMemory()
		_, _ = src.Seek(0, io.SeekStart)
		start := time.Now()
		if _, err := client.PutObject(b.Context(), &s3.PutObjectInput{Bucket: aws.String("bench"), Key: aws.String("big"), Body: src}); err != nil {
			b.Fatal(err)
		}
		put := float64(size) / time.Since(start).Seconds()
		start = time.Now()
		out, err := client.GetObject(b.Context(), &s3.GetObjectInput{Bucket: aws.String("bench"), Key: aws.String("big")})
		if err != nil {
			b.Fatal(err)
		}
		_, _ = src.Seek(0, io.SeekStart)
		n, err := io.CopyBuffer(src, out.Body, make([]byte, 256<<10))
		out.Body.Close()
		if err == nil && n != size {
			err = fmt.Errorf("GET read %d bytes of %d", n, size)
		}
		if err != nil {
			b.Fatal(err)
		}
		get := float64(size) / time.Since(start).Seconds()
		heap, rss := mem.end()
		if _, err := client.DeleteObject(b.Context(), &s3.DeleteObjectInput{Bucket: aws.String("bench"), Key: aws.String("big")}); err != nil {
			b.Fatal(err)
		}
		if !srv.sawMode(c.mode) {
			b.Fatalf("the S3 API saw no PUT with X-Amz-Content-Sha256 %s: %v", c.mode, srv.modes)
		}
		b.ReportMetric(disk/1e6, "disk-MB/s")
		b.ReportMetric(put/1e6, "put-MB/s")
		b.ReportMetric(get/1e6, "get-MB/s")
		b.ReportMetric(put/disk, "put/disk")
		b.ReportMetric(get/disk, "get/disk")
		b.ReportMetric(float64(heap)/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MiB")
	}
}
