package storage_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// bareServer does the work of a PUT and a GET of an object with nothing
// else: write the body to a temporary file, (with sync: fsync,) rename
// (with sync: and fsync the directory), or read a file back. Keys map to
// flat file names.
func bareServer(b *testing.B, sync bool) *httptest.Server {
	dir := b.TempDir()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
			w.Header().Set("Content-Length", fmt.Sprint(fi.Size()))
			_, _ = io.Copy(w, f)
		}
	}))
	b.Cleanup(srv.Close)
	return srv
}

// run does n operations with workers goroutines and returns operations/s.
func run(b *testing.B, n, workers int, op func(i int) error) float64 {
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
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
	return float64(n) / time.Since(start).Seconds()
}

// BenchmarkObjects4KB: PUT then GET of 4 KB objects by 16 concurrent
// aws-sdk-go-v2 clients (plain HTTP, the payload's SHA-256 signed), on the
// S3 API and on the bare handler, in the same run. Run with
// -benchtime=1x: each iteration is a whole measurement.
func BenchmarkObjects4KB(b *testing.B) {
	b.Run("default", func(b *testing.B) { benchObjects(b, false) })
	b.Run("sync-always", func(b *testing.B) { benchObjects(b, true) })
}

// benchObjects measures with each write fsync'd (sync, serve
// --data-sync-always, against a bare handler that fsyncs too) or not (the
// default, against a bare handler that doesn't).
func benchObjects(b *testing.B, sync bool) {
	const workers = 16
	n := 3000
	if testing.Short() {
		n = 500
	}
	body := make([]byte, 4096)
	_, _ = rand.Read(body)
	for range b.N {
		srv := newServer(b, serverOptions{sync: sync})
		c := srv.awsClient(testCreds)
		if _, err := c.CreateBucket(b.Context(), &s3.CreateBucketInput{Bucket: aws.String("bench")}); err != nil {
			b.Fatal(err)
		}
		bare := bareServer(b, sync)
		bc := s3.New(s3.Options{
			Region: testRegion, Credentials: c.Options().Credentials, HTTPClient: srv.httpClient(),
			BaseEndpoint: aws.String(bare.URL), UsePathStyle: true, RetryMaxAttempts: 1,
			ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		})
		put := func(c *s3.Client) func(int) error {
			return func(i int) error {
				_, err := c.PutObject(b.Context(), &s3.PutObjectInput{Bucket: aws.String("bench"), Key: aws.String(fmt.Sprintf("obj/%06d", i)), Body: bytes.NewReader(body)})
				return err
			}
		}
		get := func(c *s3.Client) func(int) error {
			return func(i int) error {
				out, err := c.GetObject(b.Context(), &s3.GetObjectInput{Bucket: aws.String("bench"), Key: aws.String(fmt.Sprintf("obj/%06d", i))})
				if err != nil {
					return err
				}
				defer out.Body.Close()
				m, err := io.Copy(io.Discard, out.Body)
				if err == nil && m != int64(len(body)) {
					err = fmt.Errorf("read %d bytes", m)
				}
				return err
			}
		}
		barePut := run(b, n, workers, put(bc))
		s3Put := run(b, n, workers, put(c))
		bareGet := run(b, n, workers, get(bc))
		s3Get := run(b, n, workers, get(c))
		b.ReportMetric(s3Put, "put/s")
		b.ReportMetric(barePut, "bare-put/s")
		b.ReportMetric(s3Put/barePut, "put-ratio")
		b.ReportMetric(s3Get, "get/s")
		b.ReportMetric(bareGet, "bare-get/s")
		b.ReportMetric(s3Get/bareGet, "get-ratio")
		if strings.Contains(os.Getenv("HOSTLESS_BENCH_VERBOSE"), "1") {
			b.Logf("put %.0f/s (bare %.0f/s), get %.0f/s (bare %.0f/s)", s3Put, barePut, s3Get, bareGet)
		}
	}
}
