package storage_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// captured is a request as an aws-sdk-go-v2 client sent it.
type captured struct {
	method, uri, host string
	header            http.Header
	body              []byte
}

// captureRequests records the requests that do(c) makes with a client
// configured as the benchmarks' are, answering each as the S3 API would.
func captureRequests(b *testing.B, do func(c *s3.Client) error) []captured {
	var mu sync.Mutex
	var out []captured
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		out = append(out, captured{method: r.Method, uri: r.URL.RequestURI(), host: r.Host, header: r.Header.Clone(), body: body})
		mu.Unlock()
		w.Header().Set("ETag", `"x"`)
		if r.Method == http.MethodGet {
			w.Header().Set("Content-Length", "0")
		}
	}))
	defer srv.Close()
	c := s3.New(s3.Options{
		Region: testRegion, Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return testCreds, nil }),
		BaseEndpoint: aws.String(srv.URL), UsePathStyle: true, RetryMaxAttempts: 1,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	if err := do(c); err != nil {
		b.Fatal(err)
	}
	return out
}

func (c captured) request() *http.Request {
	r := httptest.NewRequest(c.method, c.uri, bytes.NewReader(c.body))
	r.Host = c.host
	r.Header = c.header.Clone()
	r.ContentLength = int64(len(c.body))
	return r
}

// BenchmarkHandler4KB is the server's side alone of BenchmarkObjects4KB:
// requests that an aws-sdk-go-v2 client signed beforehand, served by the
// Handler on this goroutine, without a network or a client. ns/op is the
// server's cost of one request (with an httptest.ResponseRecorder, which
// has no deadlines to set). Its files go where BenchmarkObjects4KB's do.
func BenchmarkHandler4KB(b *testing.B) {
	root := benchDir(b)
	body := make([]byte, 4096)
	_, _ = rand.Read(body)
	key := func(i int) *string { return aws.String(fmt.Sprintf("obj/%06d", i)) }
	requests := func(b *testing.B, n int, get bool) []*http.Request {
		reqs := captureRequests(b, func(c *s3.Client) error {
			for i := range n {
				var err error
				if get {
					_, err = c.GetObject(b.Context(), &s3.GetObjectInput{Bucket: aws.String("bench"), Key: key(i)})
				} else {
					_, err = c.PutObject(b.Context(), &s3.PutObjectInput{Bucket: aws.String("bench"), Key: key(i), Body: bytes.NewReader(body)})
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
		out := make([]*http.Request, len(reqs))
		for i, c := range reqs {
			out[i] = c.request()
		}
		return out
	}
	serve := func(b *testing.B, srv *server, reqs []*http.Request) {
		for _, r := range reqs {
			w := httptest.NewRecorder()
			srv.h.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				b.Fatalf("%s %s: %d %s", r.Method, r.URL, w.Code, w.Body)
			}
		}
	}
	setup := func(b *testing.B) *server {
		dir, _ := measureDir(b, root, "handler")
		srv := newServer(b, serverOptions{dir: dir})
		if _, err := srv.awsClient(testCreds).CreateBucket(b.Context(), &s3.CreateBucketInput{Bucket: aws.String("bench")}); err != nil {
			b.Fatal(err)
		}
		return srv
	}
	b.Run("put", func(b *testing.B) {
		srv := setup(b)
		reqs := requests(b, b.N, false)
		b.ReportAllocs()
		b.ResetTimer()
		serve(b, srv, reqs)
	})
	b.Run("get", func(b *testing.B) {
		srv := setup(b)
		serve(b, srv, requests(b, b.N, false))
		reqs := requests(b, b.N, true)
		b.ReportAllocs()
		b.ResetTimer()
		serve(b, srv, reqs)
	})
}
