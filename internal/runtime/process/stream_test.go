package process

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/sandbox"
)

// recorder is a StreamWriter that keeps each flushed part; the first
// flush waits for release, so the test sees it while the call runs.
type recorder struct {
	mu      sync.Mutex
	status  int
	header  http.Header
	buf     strings.Builder
	parts   chan string
	release chan struct{}
	first   sync.Once
}

func (r *recorder) WriteHeader(status int, h http.Header) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status, r.header = status, h
	return nil
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.Write(p)
}

func (r *recorder) Flush() error {
	r.mu.Lock()
	p := r.buf.String()
	r.buf.Reset()
	r.mu.Unlock()
	if p == "" {
		return nil
	}
	r.parts <- p
	r.first.Do(func() { <-r.release })
	return nil
}

// TestLambdaResponseStreaming: a function posting its response in the
// Runtime API's streaming mode, with the HTTP integration prelude, reaches
// the stream part by part; posted whole, it reaches it whole.
func TestLambdaResponseStreaming(t *testing.T) {
	e := newEnv(t, sandbox.IsolationSandbox)
	dir := t.TempDir()
	script := `#!/bin/sh
set -eu
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
while true; do
  HEADERS=$(mktemp)
  EVENT=$(curl -sS -LD "$HEADERS" "$API/invocation/next")
  ID=$(grep -Fi Lambda-Runtime-Aws-Request-Id "$HEADERS" | tr -d '[:space:]' | cut -d: -f2)
  case "$EVENT" in
  *'"rawPath":"/whole"'*)
    curl -sS -X POST "$API/invocation/$ID/response" -d '{"statusCode":200,"body":"whole"}' >/dev/null ;;
  *)
    { printf '{"statusCode":201,"headers":{"Content-Type":"text/event-stream"},"cookies":["a=b"]}'
      printf '\0\0\0\0\0\0\0\0'
      printf 'data: 0\n\n'; sleep 0.3; printf 'data: 1\n\n'; } |
    curl -sS -X POST -T - -H 'Lambda-Runtime-Function-Response-Mode: streaming' \
      -H 'Content-Type: application/vnd.awslambda.http-integration-response' \
      "$API/invocation/$ID/response" >/dev/null ;;
  esac
done
`
	if err := os.WriteFile(filepath.Join(dir, "bootstrap"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	inst := start(t, e, e.version(t, zipDir(t, e.a, dir), func(s *function.Spec) { s.Handler = "function.handler" }))
	si := inst.(function.StreamInstance)
	call := func(path string, w *recorder) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return si.InvokeStream(ctx, &function.Request{Method: "GET", Path: path, Header: http.Header{}}, &logs{}, w)
	}

	w := &recorder{parts: make(chan string, 10), release: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- call("/stream", w) }()
	if p := <-w.parts; p != "data: 0\n\n" {
		t.Errorf("first part = %q", p)
	}
	select {
	case err := <-done:
		t.Fatalf("the call ended (%v) before its first part was released", err)
	default:
	}
	close(w.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if w.status != 201 || w.header.Get("Content-Type") != "text/event-stream" || w.header.Get("Set-Cookie") != "a=b" {
		t.Errorf("status %d, header %v", w.status, w.header)
	}
	if p := <-w.parts; p != "data: 1\n\n" {
		t.Errorf("second part = %q", p)
	}

	w = &recorder{parts: make(chan string, 10), release: make(chan struct{})}
	close(w.release)
	if err := call("/whole", w); err != nil {
		t.Fatal(err)
	}
	if p := <-w.parts; w.status != 200 || p != "whole" {
		t.Errorf("whole response = %d %q", w.status, p)
	}
}

// A response of the HTTP integration type with parameters on its
// Content-Type is read as one: its prelude gives the status and headers,
// and never reaches the client as the body.
func TestStreamPreludeWithContentTypeParameters(t *testing.T) {
	w := &recorder{parts: make(chan string, 10), release: make(chan struct{})}
	close(w.release)
	body := `{"statusCode":201,"headers":{"Content-Type":"text/plain"},"cookies":["session=s3cr3t"]}` + "\x00\x00\x00\x00\x00\x00\x00\x00" + "hi"
	r := httptest.NewRequest("POST", "/2018-06-01/runtime/invocation/1/response", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/vnd.awslambda.http-integration-response; charset=utf-8")
	res := (&instance{}).streamResponse(&call{stream: &guardedStream{w: w}}, r)
	if res.err != nil {
		t.Fatal(res.err)
	}
	if p := <-w.parts; w.status != 201 || w.header.Get("Set-Cookie") != "session=s3cr3t" || p != "hi" {
		t.Errorf("status %d, header %v, body %q; want 201, the prelude's headers, \"hi\"", w.status, w.header, p)
	}
}

// goneWriter is a client that went away after the headers.
type goneWriter struct{ recorder }

func (g *goneWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

// A streamed response cut short (the client went away) leaves the
// function in the middle of its response: the instance isn't used again.
func TestStreamCutShortRetiresTheInstance(t *testing.T) {
	e := newEnv(t, sandbox.IsolationSandbox)
	dir := t.TempDir()
	script := `#!/bin/sh
set -eu
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
while true; do
  HEADERS=$(mktemp)
  EVENT=$(curl -sS -LD "$HEADERS" "$API/invocation/next")
  ID=$(grep -Fi Lambda-Runtime-Aws-Request-Id "$HEADERS" | tr -d '[:space:]' | cut -d: -f2)
  { printf 'data: 0\n\n'; sleep 0.2; printf 'data: 1\n\n'; sleep 0.2; printf 'data: 2\n\n'; } |
    curl -sS -X POST -T - -H 'Lambda-Runtime-Function-Response-Mode: streaming' \
      -H 'Content-Type: text/event-stream' "$API/invocation/$ID/response" >/dev/null || true
done
`
	if err := os.WriteFile(filepath.Join(dir, "bootstrap"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	inst := start(t, e, e.version(t, zipDir(t, e.a, dir), func(s *function.Spec) { s.Handler = "function.handler" }))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w := &goneWriter{recorder{parts: make(chan string, 10), release: make(chan struct{})}}
	close(w.release)
	err := inst.(function.StreamInstance).InvokeStream(ctx, &function.Request{Method: "GET", Path: "/", Header: http.Header{}}, &logs{}, w)
	if err == nil {
		t.Fatal("a stream to a client gone succeeded")
	}
	if inst.Reusable() {
		t.Error("the instance is reusable after its streamed response was cut short mid-write")
	}
}

// A function that posts its response in the HTTP integration form (as
// aws-lambda-go's streaming response always does) answers a call that
// doesn't stream (a buffered alias, the control API's invoke) with the
// prelude's status and headers, and never with the prelude as the body.
func TestIntegrationResponseBuffered(t *testing.T) {
	e := newEnv(t, sandbox.IsolationSandbox)
	dir := t.TempDir()
	script := `#!/bin/sh
set -eu
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
while true; do
  HEADERS=$(mktemp)
  EVENT=$(curl -sS -LD "$HEADERS" "$API/invocation/next")
  ID=$(grep -Fi Lambda-Runtime-Aws-Request-Id "$HEADERS" | tr -d '[:space:]' | cut -d: -f2)
  { printf '{"statusCode":201,"headers":{"Content-Type":"text/plain"},"cookies":["session=s3cr3t"]}'
    printf '\0\0\0\0\0\0\0\0'
    printf 'hello'; } |
    curl -sS -X POST -T - -H 'Lambda-Runtime-Function-Response-Mode: streaming' \
      -H 'Content-Type: application/vnd.awslambda.http-integration-response' \
      "$API/invocation/$ID/response" >/dev/null
done
`
	if err := os.WriteFile(filepath.Join(dir, "bootstrap"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	inst := start(t, e, e.version(t, zipDir(t, e.a, dir), func(s *function.Spec) { s.Handler = "function.handler" }))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := inst.Invoke(ctx, &function.Request{Method: "GET", Path: "/", Header: http.Header{}}, &logs{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 201 || resp.Header.Get("Content-Type") != "text/plain" || resp.Header.Get("Set-Cookie") != "session=s3cr3t" || string(resp.Body) != "hello" {
		t.Errorf("buffered answer = %d %v %q; want 201, the prelude's headers, \"hello\"", resp.Status, resp.Header, resp.Body)
	}
}
