package sigv4_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/hostless/hostless/internal/sigv4"
)

// The test key pair, and a second secret that is not it.
const (
	testKeyID  = "AKIDEXAMPLE"
	testSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	wrongSecre = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ"
	testRegion = "us-east-1"
)

var testCreds = aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret}

func lookup(id string) (string, bool) {
	switch id {
	case testKeyID:
		return testSecret, true
	case "AKIDSECOND":
		return "second-secret", true
	}
	return "", false
}

func credsProvider(c aws.Credentials) aws.CredentialsProviderFunc {
	return func(context.Context) (aws.Credentials, error) { return c, nil }
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// outcome is what the test server saw of one request.
type outcome struct {
	code    string // the *sigv4.Error's code, "" on success
	status  int
	err     *sigv4.Error
	auth    *sigv4.Auth
	body    []byte
	trailer http.Header
	// readErr is a non-sigv4 error reading the body.
	readErr error
}

// harness is a real HTTP server whose handler verifies each request with
// v, reads its whole body, and records what happened: the verifier sees
// requests exactly as net/http parses them off the wire.
type harness struct {
	*httptest.Server
	v   *sigv4.Verifier
	now func() time.Time

	mu       sync.Mutex
	outcomes []outcome
}

func newHarness(t *testing.T, v *sigv4.Verifier, now func() time.Time, useTLS bool) *harness {
	t.Helper()
	h := &harness{v: v, now: now}
	if h.now == nil {
		h.now = time.Now
	}
	if useTLS {
		h.Server = httptest.NewTLSServer(h)
	} else {
		h.Server = httptest.NewServer(h)
	}
	t.Cleanup(h.Close)
	return h
}

func (h *harness) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var o outcome
	auth, err := h.v.Verify(r, h.now())
	if err == nil {
		o.auth = auth
		o.body, err = io.ReadAll(r.Body)
		o.trailer = auth.Trailer()
	}
	if err != nil {
		if !errors.As(err, &o.err) {
			o.readErr = err
			o.status = http.StatusInternalServerError
		} else {
			o.code, o.status = o.err.Code, o.err.Status
		}
	} else {
		o.status = http.StatusOK
	}
	h.mu.Lock()
	h.outcomes = append(h.outcomes, o)
	h.mu.Unlock()

	if o.status != http.StatusOK {
		// Lambda's error shape; the S3 clients only need the status.
		w.Header().Set("X-Amzn-ErrorType", o.code)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(o.status)
		io.WriteString(w, `{"message":"denied"}`)
		return
	}
	w.Header().Set("ETag", `"`+sha256Hex(o.body)[:32]+`"`)
	w.Header().Set("X-Amz-Executed-Version", "$LATEST")
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"ok":true}`)
}

// last returns the outcome of the last request, failing if there was none.
func (h *harness) last(t *testing.T) outcome {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.outcomes) == 0 {
		t.Fatal("the server saw no request")
	}
	return h.outcomes[len(h.outcomes)-1]
}

func (h *harness) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.outcomes)
}

// do sends req and returns the server's outcome.
func (h *harness) do(t *testing.T, req *http.Request) outcome {
	t.Helper()
	resp, err := h.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	o := h.last(t)
	if resp.StatusCode != o.status {
		t.Fatalf("response status %d; the handler recorded %d", resp.StatusCode, o.status)
	}
	return o
}

// want checks an outcome: success when code is "", else that code and
// that the error is the sentinel kind.
func want(t *testing.T, o outcome, kind *sigv4.Error) {
	t.Helper()
	if o.readErr != nil {
		t.Fatalf("reading the body failed with a non-sigv4 error: %v", o.readErr)
	}
	if kind == nil {
		if o.err != nil {
			t.Fatalf("rejected: %v (canonical request:\n%s)", o.err, o.err.CanonicalRequest)
		}
		return
	}
	if o.err == nil {
		t.Fatalf("accepted; want %s", kind.Code)
	}
	if !errors.Is(o.err, kind) {
		t.Fatalf("got %v (status %d); want %s: %q", o.err, o.status, kind.Code, kind.Message)
	}
	if o.status != kind.Status {
		t.Fatalf("status %d; want %d", o.status, kind.Status)
	}
	checkNoSecrets(t, o.err)
}

// checkNoSecrets fails if an error shows the secret (in any form) or a
// signature the server computed.
func checkNoSecrets(t *testing.T, e *sigv4.Error) {
	t.Helper()
	all := e.Error() + e.CanonicalRequest + e.StringToSign
	for _, s := range []string{testSecret, wrongSecre, "second-secret", hex.EncodeToString([]byte(testSecret))} {
		if bytes.Contains([]byte(all), []byte(s)) {
			t.Fatalf("error %q shows a secret", e)
		}
	}
	if hexRun(e.Error()) >= 32 {
		t.Fatalf("error message %q shows a long hex string (a signature?)", e.Message)
	}
}

// hexRun returns the length of the longest run of hex digits in s.
func hexRun(s string) int {
	longest, run := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return longest
}
