package sigv4_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"hash"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/minio/minio-go/v7/pkg/signer"

	"github.com/hostless/hostless/internal/sigv4"
)

// invokeRequest returns a Lambda Invoke request as aws-sdk-go-v2's signer
// signs it (the body's hash in the signature, no X-Amz-Content-Sha256),
// rebuilt as net/http's server hands it to a handler.
func invokeRequest(b *testing.B, body []byte) *http.Request {
	c, _ := http.NewRequest("POST", "http://127.0.0.1:8080/2015-03-31/functions/hello/invocations", bytes.NewReader(body))
	c.Header.Set("Content-Type", "application/json")
	c.Header.Set("X-Amz-Invocation-Type", "RequestResponse")
	c.Header.Set("Amz-Sdk-Invocation-Id", "5f1c3c52-5f0e-4e6b-9d7c-0d6f3e1b2a11")
	c.Header.Set("Amz-Sdk-Request", "attempt=1; max=3")
	if err := v4.NewSigner().SignHTTP(context.Background(), testCreds, c, sha256Hex(body), "lambda", testRegion, signTime); err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest("POST", "/2015-03-31/functions/hello/invocations", nil)
	r.Host = c.URL.Host
	r.Header = c.Header
	r.Header.Set("Content-Length", sha256Len(len(body)))
	r.ContentLength = int64(len(body))
	return r
}

func sha256Len(n int) string { return string(appendInt(nil, n)) }

func appendInt(b []byte, n int) []byte {
	if n >= 10 {
		b = appendInt(b, n/10)
	}
	return append(b, byte('0'+n%10))
}

// BenchmarkVerifyLambdaInvoke is the hot path of the Lambda Invoke API: a
// typical signed Invoke with a small JSON payload, the signing key cached.
func BenchmarkVerifyLambdaInvoke(b *testing.B) {
	for _, size := range []int{len(invokePayload), 4 << 10, 256 << 10} {
		b.Run(sizeName(size), func(b *testing.B) {
			body := payload(size)
			r := invokeRequest(b, body)
			v := &sigv4.Verifier{Service: "lambda", Lookup: lookup}
			br := bytes.NewReader(body)
			rc := io.NopCloser(br)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				br.Reset(body)
				r.Body = rc
				auth, err := v.Verify(r, signTime)
				if err != nil {
					b.Fatal(err)
				}
				if len(auth.Body) != size {
					b.Fatal("body not read")
				}
			}
		})
	}
}

// BenchmarkVerifyLambdaInvokeColdKey derives the signing key every time:
// what the first request of an access key on a day costs.
func BenchmarkVerifyLambdaInvokeColdKey(b *testing.B) {
	body := []byte(invokePayload)
	r := invokeRequest(b, body)
	br := bytes.NewReader(body)
	rc := io.NopCloser(br)
	b.ReportAllocs()
	for b.Loop() {
		v := &sigv4.Verifier{Service: "lambda", Lookup: lookup}
		br.Reset(body)
		r.Body = rc
		if _, err := v.Verify(r, signTime); err != nil {
			b.Fatal(err)
		}
	}
}

type stdHasher struct{ hash.Hash }

func (stdHasher) Close() {}

// BenchmarkChunkedSigned decodes a 1 MiB upload that minio-go's signer
// signed chunk by chunk (64 KiB chunks), verifying every chunk.
func BenchmarkChunkedSigned(b *testing.B) {
	data := payload(1 << 20)
	c, _ := http.NewRequest("PUT", "http://127.0.0.1:9000/bucket/obj", bytes.NewReader(data))
	c = signer.StreamingSignV4(c, testKeyID, testSecret, "", testRegion, int64(len(data)), signTime, stdHasher{sha256.New()})
	encoded, err := io.ReadAll(c.Body)
	if err != nil {
		b.Fatal(err)
	}
	v := &sigv4.Verifier{Service: "s3", S3: true, Lookup: lookup}
	br := bytes.NewReader(encoded)
	rc := io.NopCloser(br)
	r := httptest.NewRequest("PUT", "/bucket/obj", nil)
	r.Host = c.URL.Host
	r.Header = c.Header
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		br.Reset(encoded)
		r.Body = rc
		if _, err := v.Verify(r, signTime); err != nil {
			b.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, r.Body); err != nil || n != int64(len(data)) {
			b.Fatal(n, err)
		}
	}
}

func sizeName(n int) string {
	switch {
	case n >= 1<<10:
		return string(appendInt(nil, n>>10)) + "KiB"
	}
	return string(appendInt(nil, n)) + "B"
}
