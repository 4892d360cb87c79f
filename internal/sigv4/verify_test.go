package sigv4_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/hostless/hostless/internal/sigv4"
)

// signTime is when the tests' requests are signed; servers run at it
// unless a test moves their clock.
var signTime = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

func at(t time.Time) func() time.Time { return func() time.Time { return t } }

const invokePayload = `{"name":"world","n":42}`

// TestVerifyHeaderAuth signs requests with aws-sdk-go-v2's v4.Signer
// (SignHTTP), changes them (or not) on the way, and checks what a real
// server does with them.
func TestVerifyHeaderAuth(t *testing.T) {
	t.Parallel()
	type request struct {
		method, path, query string
		header              http.Header
		body                string
		// payloadHash is what the client signs; "" is the body's hash.
		payloadHash string
		// contentSHA256 sends X-Amz-Content-Sha256 (set before signing).
		contentSHA256 string
	}
	invoke := request{
		method: "POST", path: "/2015-03-31/functions/hello/invocations",
		header: http.Header{"Content-Type": {"application/json"}, "X-Amz-Invocation-Type": {"RequestResponse"}},
		body:   invokePayload,
	}
	with := func(r request, f func(*request)) request {
		r.header = r.header.Clone()
		f(&r)
		return r
	}
	tests := []struct {
		name    string
		s3      bool
		region  string
		creds   aws.Credentials
		service string // signed for; default the verifier's
		region2 string // signed for; default us-east-1
		signAt  time.Time
		req     request
		// tamper changes the signed request before it is sent.
		tamper func(*http.Request)
		want   *sigv4.Error
	}{
		{name: "lambda invoke", req: invoke},
		{name: "empty body GET", req: request{method: "GET", path: "/2015-03-31/functions/hello"}},
		{name: "function ARN in the path is double-encoded", req: with(invoke, func(r *request) {
			r.path = "/2015-03-31/functions/" + url.PathEscape("arn:aws:lambda:us-east-1:123456789012:function:hello") + "/invocations"
		})},
		{name: "path with spaces, percent and unicode", req: with(invoke, func(r *request) { r.path = "/a%20b/%25c/%C3%A9/d~e_f.g-h" })},
		{name: "query sorted after encoding", req: with(invoke, func(r *request) {
			r.query = "Qualifier=%24LATEST&b=a%2Fb&b=a-b&a=x%20y&empty=&c=%2B&%C3%A9=1"
		})},
		{name: "query key without value", req: with(invoke, func(r *request) { r.query = "acl" })},
		{name: "header values trimmed and folded", req: with(invoke, func(r *request) {
			r.header.Set("X-Amz-Client-Context", "  a   b  c ")
			r.header.Set("X-Custom", "\tx  y\t")
		})},
		{name: "repeated header", req: with(invoke, func(r *request) { r.header["X-Multi"] = []string{"one", " two  2 ", "three"} })},
		{name: "literal X-Amz-Content-Sha256", req: with(invoke, func(r *request) { r.contentSHA256 = sha256Hex([]byte(invokePayload)) })},
		{name: "any region by default", region2: "eu-west-3", req: invoke},
		{name: "expected region", region: "us-east-1", req: invoke},
		{name: "an unsigned header added on the way is fine", req: invoke, tamper: func(r *http.Request) { r.Header.Set("X-Forwarded-For", "10.0.0.1") }},
		{name: "signed 14 minutes ago", signAt: signTime.Add(-14 * time.Minute), req: invoke},
		{name: "signed 14 minutes ahead", signAt: signTime.Add(14 * time.Minute), req: invoke},
		{name: "second key", creds: aws.Credentials{AccessKeyID: "AKIDSECOND", SecretAccessKey: "second-secret"}, req: invoke},

		{name: "tampered method", req: invoke, tamper: func(r *http.Request) { r.Method = "PUT" }, want: sigv4.ErrSignatureDoesNotMatch},
		{name: "tampered path", req: invoke, tamper: func(r *http.Request) { r.URL.Path = "/2015-03-31/functions/other/invocations" }, want: sigv4.ErrSignatureDoesNotMatch},
		{name: "tampered query value", req: with(invoke, func(r *request) { r.query = "Qualifier=1" }), tamper: func(r *http.Request) { r.URL.RawQuery = "Qualifier=2" }, want: sigv4.ErrSignatureDoesNotMatch},
		{name: "query parameter added", req: invoke, tamper: func(r *http.Request) { r.URL.RawQuery = "Qualifier=2" }, want: sigv4.ErrSignatureDoesNotMatch},
		{name: "tampered signed header", req: invoke, tamper: func(r *http.Request) { r.Header.Set("X-Amz-Invocation-Type", "Event") }, want: sigv4.ErrSignatureDoesNotMatch},
		{name: "signed header dropped", req: invoke, tamper: func(r *http.Request) { r.Header.Del("X-Amz-Invocation-Type") }, want: sigv4.ErrSignatureDoesNotMatch},
		{name: "tampered host", req: invoke, tamper: func(r *http.Request) { r.Host = "evil.example" }, want: sigv4.ErrSignatureDoesNotMatch},
		{name: "tampered body of the same length", req: invoke, tamper: func(r *http.Request) { setBody(r, strings.Replace(invokePayload, "42", "43", 1)) }, want: sigv4.ErrSignatureDoesNotMatch},
		{name: "tampered body of a literal hash", req: with(invoke, func(r *request) { r.contentSHA256 = sha256Hex([]byte(invokePayload)) }),
			tamper: func(r *http.Request) { setBody(r, strings.Replace(invokePayload, "42", "43", 1)) }, want: sigv4.ErrContentSHA256Mismatch},
		{name: "literal hash of another body", req: with(invoke, func(r *request) { r.contentSHA256 = sha256Hex([]byte("other")) }), want: sigv4.ErrContentSHA256Mismatch},
		{name: "tampered date", req: invoke, tamper: func(r *http.Request) {
			r.Header.Set("X-Amz-Date", signTime.Add(time.Second).Format("20060102T150405Z"))
		}, want: sigv4.ErrSignatureDoesNotMatch},
		{name: "tampered signature", req: invoke, tamper: func(r *http.Request) {
			a := r.Header.Get("Authorization")
			r.Header.Set("Authorization", a[:len(a)-1]+string("10"[strings.IndexByte("01", a[len(a)-1])&1]))
		}, want: sigv4.ErrSignatureDoesNotMatch},
		{name: "wrong secret", creds: aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: wrongSecre}, req: invoke, want: sigv4.ErrSignatureDoesNotMatch},
		{name: "unknown access key", creds: aws.Credentials{AccessKeyID: "AKIDNOBODY", SecretAccessKey: testSecret}, req: invoke, want: sigv4.ErrInvalidAccessKeyID},
		{name: "signed 16 minutes ago", signAt: signTime.Add(-16 * time.Minute), req: invoke, want: sigv4.ErrTimeTooSkewed},
		{name: "signed 16 minutes ahead", signAt: signTime.Add(16 * time.Minute), req: invoke, want: sigv4.ErrTimeTooSkewed},
		{name: "no X-Amz-Date", req: invoke, tamper: func(r *http.Request) { r.Header.Del("X-Amz-Date") }, want: sigv4.ErrInvalidDate},
		{name: "bad X-Amz-Date", req: invoke, tamper: func(r *http.Request) { r.Header.Set("X-Amz-Date", "2026-03-14T15:09:26Z") }, want: sigv4.ErrInvalidDate},
		{name: "signed for another service", service: "s3", req: invoke, want: sigv4.ErrMalformedHeader},
		{name: "signed for another region", region: "us-east-1", region2: "eu-west-1", req: invoke, want: sigv4.ErrMalformedHeader},
		{name: "no Authorization", req: invoke, tamper: func(r *http.Request) { r.Header.Del("Authorization") }, want: sigv4.ErrMissingAuth},
		{name: "signature version 2", req: invoke, tamper: func(r *http.Request) { r.Header.Set("Authorization", "AWS AKIDEXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=") }, want: sigv4.ErrUnsupportedAuth},
		{name: "UNSIGNED-PAYLOAD outside S3", req: with(invoke, func(r *request) { r.contentSHA256, r.payloadHash = sigv4.UnsignedPayload, sigv4.UnsignedPayload }), want: sigv4.ErrInvalidArgument},
		{name: "streaming outside S3", req: with(invoke, func(r *request) { r.contentSHA256, r.payloadHash = sigv4.StreamingPayload, sigv4.StreamingPayload }), want: sigv4.ErrInvalidArgument},
		{name: "bad X-Amz-Content-Sha256", req: with(invoke, func(r *request) { r.contentSHA256, r.payloadHash = "abc", "abc" }), want: sigv4.ErrInvalidArgument},
		{name: "body over MaxBodyBytes", req: with(invoke, func(r *request) { r.body = strings.Repeat("x", 1<<16+1) }), want: sigv4.ErrBodyTooLarge},

		// S3 rules.
		{name: "s3: path encoded once", s3: true, service: "s3", req: request{
			method: "PUT", path: "/bucket/a%20b/%2Bc%25d/%C3%A9~", body: "data", contentSHA256: sha256Hex([]byte("data")),
		}},
		{name: "s3: UNSIGNED-PAYLOAD", s3: true, service: "s3", req: request{
			method: "PUT", path: "/bucket/key", body: "data", contentSHA256: sigv4.UnsignedPayload, payloadHash: sigv4.UnsignedPayload,
		}, tamper: func(r *http.Request) { setBody(r, "DATA") }},
		{name: "s3: literal hash, body tampered", s3: true, service: "s3", req: request{
			method: "PUT", path: "/bucket/key", body: "data", contentSHA256: sha256Hex([]byte("data")),
		}, tamper: func(r *http.Request) { setBody(r, "DATA") }, want: sigv4.ErrContentSHA256Mismatch},
		{name: "s3: literal hash of an empty body", s3: true, service: "s3", req: request{
			method: "GET", path: "/bucket/key", contentSHA256: sha256Hex(nil),
		}},
		{name: "s3: wrong hash of an empty body", s3: true, service: "s3", req: request{
			method: "GET", path: "/bucket/key", contentSHA256: sha256Hex([]byte("x")), payloadHash: sha256Hex([]byte("x")),
		}, want: sigv4.ErrContentSHA256Mismatch},
		{name: "s3: a double-encoded path does not match", s3: true, service: "s3", req: request{
			method: "GET", path: "/bucket/a%20b", contentSHA256: sha256Hex(nil),
		}, tamper: func(r *http.Request) { r.URL.RawPath = "/bucket/a%2520b"; r.URL.Path = "/bucket/a%20b" }, want: sigv4.ErrSignatureDoesNotMatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			service := "lambda"
			if tt.s3 {
				service = "s3"
			}
			v := &sigv4.Verifier{Service: service, Region: tt.region, S3: tt.s3, Lookup: lookup, MaxBodyBytes: 1 << 16}
			h := newHarness(t, v, at(signTime), false)

			u := h.URL + tt.req.path
			var body io.Reader
			if tt.req.body != "" {
				body = strings.NewReader(tt.req.body)
			}
			req, err := http.NewRequest(tt.req.method, u, body)
			if err != nil {
				t.Fatal(err)
			}
			if tt.req.query != "" {
				req.URL.RawQuery = tt.req.query
			}
			for k, vs := range tt.req.header {
				req.Header[k] = vs
			}
			hash := tt.req.payloadHash
			if tt.req.contentSHA256 != "" {
				req.Header.Set("X-Amz-Content-Sha256", tt.req.contentSHA256)
				if hash == "" {
					hash = tt.req.contentSHA256
				}
			}
			if hash == "" {
				hash = sha256Hex([]byte(tt.req.body))
			}
			creds := testCreds
			if tt.creds.AccessKeyID != "" {
				creds = tt.creds
			}
			signService, signRegion, when := service, testRegion, signTime
			if tt.service != "" {
				signService = tt.service
			}
			if tt.region2 != "" {
				signRegion = tt.region2
			}
			if !tt.signAt.IsZero() {
				when = tt.signAt
			}
			err = v4.NewSigner().SignHTTP(context.Background(), creds, req, hash, signService, signRegion, when, func(o *v4.SignerOptions) {
				o.DisableURIPathEscaping = tt.s3
			})
			if err != nil {
				t.Fatal(err)
			}
			if tt.tamper != nil {
				tt.tamper(req)
			}
			o := h.do(t, req)
			want(t, o, tt.want)
			if tt.want != nil {
				return
			}
			if o.auth.AccessKeyID != creds.AccessKeyID || o.auth.Service != service || o.auth.Region != signRegion || !o.auth.Time.Equal(when) || o.auth.Presigned {
				t.Errorf("auth = %+v", o.auth)
			}
			if got := string(o.body); got != tt.req.body && tt.tamper == nil {
				t.Errorf("handler read body %q; want %q", got, tt.req.body)
			}
		})
	}
}

// setBody replaces a request's body, keeping its length when it is the same.
func setBody(r *http.Request, s string) {
	r.Body = io.NopCloser(strings.NewReader(s))
	r.ContentLength = int64(len(s))
	r.GetBody = nil
}

// TestVerifyErrorDetails checks what a SignatureDoesNotMatch carries: the
// canonical request and string to sign that AWS also returns, and nothing
// secret.
func TestVerifyErrorDetails(t *testing.T) {
	t.Parallel()
	v := &sigv4.Verifier{Service: "lambda", Lookup: lookup}
	h := newHarness(t, v, at(signTime), false)
	req, _ := http.NewRequest("POST", h.URL+"/2015-03-31/functions/hello/invocations?Qualifier=prod", strings.NewReader(invokePayload))
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: wrongSecre}, req, sha256Hex([]byte(invokePayload)), "lambda", testRegion, signTime); err != nil {
		t.Fatal(err)
	}
	o := h.do(t, req)
	want(t, o, sigv4.ErrSignatureDoesNotMatch)
	e := o.err
	wantCR := "POST\n/2015-03-31/functions/hello/invocations\nQualifier=prod\n"
	if !strings.HasPrefix(e.CanonicalRequest, wantCR) || !strings.HasSuffix(e.CanonicalRequest, sha256Hex([]byte(invokePayload))) {
		t.Errorf("canonical request:\n%s", e.CanonicalRequest)
	}
	if !strings.HasPrefix(e.StringToSign, "AWS4-HMAC-SHA256\n20260314T150926Z\n20260314/us-east-1/lambda/aws4_request\n") {
		t.Errorf("string to sign:\n%s", e.StringToSign)
	}
	if e.AccessKeyID != testKeyID {
		t.Errorf("AccessKeyID = %q", e.AccessKeyID)
	}
	signature := req.Header.Get("Authorization")[strings.LastIndex(req.Header.Get("Authorization"), "=")+1:]
	if strings.Contains(e.Error(), signature) {
		t.Error("the error shows the client's signature")
	}
}

// TestVerifyPresigned presigns requests with v4.Signer.PresignHTTP.
func TestVerifyPresigned(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		s3       bool
		method   string
		body     string
		expires  string
		signAt   time.Time
		hash     string // signed payload hash; default UNSIGNED-PAYLOAD for S3, the body's otherwise
		tamper   func(u *url.URL, r *http.Request)
		want     *sigv4.Error
		wantBody string
	}{
		{name: "s3 GET", s3: true, method: "GET", expires: "300"},
		{name: "s3 PUT with an unsigned body", s3: true, method: "PUT", body: "hello", expires: "300", wantBody: "hello"},
		{name: "s3 literal X-Amz-Content-Sha256 in the query", s3: true, method: "PUT", body: "hello", expires: "300", hash: sha256Hex([]byte("hello")), wantBody: "hello"},
		{name: "lambda POST signs the body", method: "POST", body: invokePayload, expires: "60", wantBody: invokePayload},
		{name: "valid until the last second", s3: true, method: "GET", expires: "300", signAt: signTime.Add(-300 * time.Second)},
		{name: "seven days", s3: true, method: "GET", expires: "604800", signAt: signTime.Add(-7*24*time.Hour + time.Second)},
		{name: "signed a little in the future", s3: true, method: "GET", expires: "300", signAt: signTime.Add(10 * time.Minute)},

		{name: "expired", s3: true, method: "GET", expires: "300", signAt: signTime.Add(-301 * time.Second), want: sigv4.ErrExpired},
		{name: "signed far in the future", s3: true, method: "GET", expires: "300", signAt: signTime.Add(16 * time.Minute), want: sigv4.ErrNotYetValid},
		{name: "expires over seven days", s3: true, method: "GET", expires: "604801", want: sigv4.ErrMalformedQuery},
		{name: "expires not a number", s3: true, method: "GET", expires: "1e3", want: sigv4.ErrMalformedQuery},
		{name: "lambda POST with another body", method: "POST", body: invokePayload, expires: "60",
			tamper: func(u *url.URL, r *http.Request) { setBody(r, strings.Replace(invokePayload, "42", "43", 1)) }, want: sigv4.ErrSignatureDoesNotMatch},
		{name: "expires lengthened", s3: true, method: "GET", expires: "300", tamper: func(u *url.URL, r *http.Request) {
			q := u.Query()
			q.Set("X-Amz-Expires", "3000")
			u.RawQuery = q.Encode()
		}, want: sigv4.ErrSignatureDoesNotMatch},
		{name: "parameter added", s3: true, method: "GET", expires: "300", tamper: func(u *url.URL, r *http.Request) { u.RawQuery += "&versionId=2" }, want: sigv4.ErrSignatureDoesNotMatch},
		{name: "method changed", s3: true, method: "GET", expires: "300", tamper: func(u *url.URL, r *http.Request) { r.Method = "DELETE" }, want: sigv4.ErrSignatureDoesNotMatch},
		{name: "signature removed", s3: true, method: "GET", expires: "300", tamper: func(u *url.URL, r *http.Request) {
			q := u.Query()
			q.Del("X-Amz-Signature")
			u.RawQuery = q.Encode()
		}, want: sigv4.ErrMalformedQuery},
		{name: "algorithm changed", s3: true, method: "GET", expires: "300", tamper: func(u *url.URL, r *http.Request) {
			q := u.Query()
			q.Set("X-Amz-Algorithm", "AWS4-HMAC-SHA1")
			u.RawQuery = q.Encode()
		}, want: sigv4.ErrUnsupportedAuth},
		{name: "and an Authorization header", s3: true, method: "GET", expires: "300", tamper: func(u *url.URL, r *http.Request) {
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x")
		}, want: sigv4.ErrInvalidArgument},
		{name: "literal hash, body tampered", s3: true, method: "PUT", body: "hello", expires: "300", hash: sha256Hex([]byte("hello")),
			tamper: func(u *url.URL, r *http.Request) { setBody(r, "HELLO") }, want: sigv4.ErrContentSHA256Mismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			service := "lambda"
			if tt.s3 {
				service = "s3"
			}
			v := &sigv4.Verifier{Service: service, S3: tt.s3, Lookup: lookup}
			h := newHarness(t, v, at(signTime), false)
			path := "/2015-03-31/functions/hello/invocations"
			if tt.s3 {
				path = "/bucket/photos/2026/a%20b.jpg"
			}
			req, _ := http.NewRequest(tt.method, h.URL+path+"?response-content-type=image%2Fjpeg&X-Amz-Expires="+tt.expires, strings.NewReader(tt.body))
			hash := tt.hash
			if hash == "" {
				hash = sha256Hex([]byte(tt.body))
				if tt.s3 {
					hash = sigv4.UnsignedPayload
				}
			} else {
				q := req.URL.Query()
				q.Set("X-Amz-Content-Sha256", hash)
				req.URL.RawQuery = q.Encode()
			}
			when := signTime
			if !tt.signAt.IsZero() {
				when = tt.signAt
			}
			signed, header, err := v4.NewSigner().PresignHTTP(context.Background(), testCreds, req, hash, service, testRegion, when, func(o *v4.SignerOptions) {
				o.DisableURIPathEscaping = tt.s3
			})
			if err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(signed)
			if err != nil {
				t.Fatal(err)
			}
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			get, _ := http.NewRequest(tt.method, "", body)
			for k, vs := range header {
				if k != "Host" {
					get.Header[k] = vs
				}
			}
			if tt.tamper != nil {
				tt.tamper(u, get)
			}
			get.URL = u
			get.Host = u.Host
			o := h.do(t, get)
			want(t, o, tt.want)
			if tt.want != nil {
				return
			}
			if !o.auth.Presigned || o.auth.AccessKeyID != testKeyID || !o.auth.Expires.Equal(when.Add(mustSeconds(tt.expires))) {
				t.Errorf("auth = %+v", o.auth)
			}
			if string(o.body) != tt.wantBody {
				t.Errorf("body %q; want %q", o.body, tt.wantBody)
			}
		})
	}
}

func mustSeconds(s string) time.Duration {
	n, _ := strconv.Atoi(s)
	return time.Duration(n) * time.Second
}

// TestHashReaderWithholdsTheLastRead checks that a handler reading exactly
// Content-Length bytes of a literal-hash body never gets them all when the
// hash is wrong.
func TestHashReaderWithholdsTheLastRead(t *testing.T) {
	t.Parallel()
	v := &sigv4.Verifier{Service: "s3", S3: true, Lookup: lookup}
	body := "0123456789"
	req, _ := http.NewRequest("PUT", "http://example.com/bucket/key", strings.NewReader(body))
	req.Header.Set("X-Amz-Content-Sha256", sha256Hex([]byte(body)))
	if err := v4.NewSigner().SignHTTP(context.Background(), testCreds, req, sha256Hex([]byte(body)), "s3", testRegion, signTime); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, body string
		ok         bool
	}{{"same", body, true}, {"changed", "0123456780", false}} {
		r := req.Clone(context.Background())
		r.Body = io.NopCloser(strings.NewReader(tc.body))
		if _, err := v.Verify(r, signTime); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(body))
		n, err := io.ReadFull(r.Body, buf)
		if tc.ok != (err == nil) || (!tc.ok && n == len(body)) {
			t.Errorf("%s: ReadFull of Content-Length bytes = %d, %v", tc.name, n, err)
		}
		if !tc.ok && !bytes.Contains([]byte(err.Error()), []byte("XAmzContentSHA256Mismatch")) {
			t.Errorf("%s: err %v", tc.name, err)
		}
	}
}

// TestVerifyKeyCache checks that a derived key cached for one secret is
// not used for another: a key rotated on the server takes effect at once.
func TestVerifyKeyCache(t *testing.T) {
	t.Parallel()
	secret := testSecret
	v := &sigv4.Verifier{Service: "lambda", Lookup: func(id string) (string, bool) { return secret, id == testKeyID }}
	sign := func(s string) *http.Request {
		r, _ := http.NewRequest("GET", "http://example.com/2015-03-31/functions/hello", nil)
		if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: s}, r, sha256Hex(nil), "lambda", testRegion, signTime); err != nil {
			t.Fatal(err)
		}
		return r
	}
	for range 2 {
		if _, err := v.Verify(sign(testSecret), signTime); err != nil {
			t.Fatal(err)
		}
	}
	secret = "rotated"
	if _, err := v.Verify(sign(testSecret), signTime); !errorsIs(err, sigv4.ErrSignatureDoesNotMatch) {
		t.Fatalf("old secret after rotation: %v", err)
	}
	if _, err := v.Verify(sign("rotated"), signTime); err != nil {
		t.Fatalf("new secret after rotation: %v", err)
	}
}

func errorsIs(err error, kind *sigv4.Error) bool {
	e, ok := err.(*sigv4.Error)
	return ok && e.Is(kind)
}

func TestVerifierMisconfigured(t *testing.T) {
	t.Parallel()
	r, _ := http.NewRequest("GET", "http://example.com/", nil)
	for _, v := range []*sigv4.Verifier{{Lookup: lookup}, {Service: "s3"}} {
		if _, err := v.Verify(r, signTime); err == nil || errorsIs(err, sigv4.ErrMissingAuth) {
			t.Errorf("Verify with %+v = %v; want a configuration error", v, err)
		}
	}
}

// TestVerifyConcurrent shares one Verifier (and its key cache) between
// goroutines, for the race detector.
func TestVerifyConcurrent(t *testing.T) {
	t.Parallel()
	v := &sigv4.Verifier{Service: "lambda", Lookup: lookup}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 8 {
		wg.Go(func() {
			creds := testCreds
			if i%2 == 1 {
				creds = aws.Credentials{AccessKeyID: "AKIDSECOND", SecretAccessKey: "second-secret"}
			}
			for j := range 20 {
				body := invokePayload + strings.Repeat(" ", j)
				r := httptest.NewRequest("POST", "/2015-03-31/functions/hello/invocations", strings.NewReader(body))
				when := signTime.Add(time.Duration(j) * 24 * time.Hour) // a new signing key each day
				if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, sha256Hex([]byte(body)), "lambda", testRegion, when); err != nil {
					errs <- err
					return
				}
				if _, err := v.Verify(r, when); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestVerifyDateHeader checks that without X-Amz-Date the Date header is
// the request time. (No SDK signs that way any more, so no signature.)
func TestVerifyDateHeader(t *testing.T) {
	t.Parallel()
	v := &sigv4.Verifier{Service: "s3", S3: true, Lookup: lookup}
	auth := "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260314/us-east-1/s3/aws4_request, SignedHeaders=date;host, Signature=" + strings.Repeat("0", 64)
	for _, tc := range []struct {
		date string
		want *sigv4.Error
	}{
		{signTime.Format(http.TimeFormat), sigv4.ErrSignatureDoesNotMatch},
		{signTime.Add(time.Hour).Format(http.TimeFormat), sigv4.ErrTimeTooSkewed},
		{signTime.Add(24 * time.Hour).Format(http.TimeFormat), sigv4.ErrMalformedHeader}, // not the credential's day
		{"yesterday", sigv4.ErrInvalidDate},
	} {
		r := httptest.NewRequest("GET", "/bucket/key", nil)
		r.Header.Set("Authorization", auth)
		r.Header.Set("X-Amz-Content-Sha256", sigv4.UnsignedPayload)
		r.Header.Set("Date", tc.date)
		if _, err := v.Verify(r, signTime); !errorsIs(err, tc.want) {
			t.Errorf("Date %q: %v; want %s", tc.date, err, tc.want.Code)
		}
	}
}
