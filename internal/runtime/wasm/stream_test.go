package wasm

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/function"
)

// part is one flush a streamWriter saw: the body written since the last.
type part struct {
	status int
	header http.Header
	body   string
}

// streamWriter records a streamed response; each Flush becomes a part on
// parts, and the first Flush waits for release, so a test sees the first
// part while the invocation is certainly still running. failAt makes the
// write of that part (1-based) fail, as a client gone does.
type streamWriter struct {
	mu      sync.Mutex
	status  int
	header  http.Header
	buf     strings.Builder
	flushes int
	failAt  int
	parts   chan part
	release chan struct{}
}

func newStreamWriter() *streamWriter {
	return &streamWriter{parts: make(chan part, 100), release: make(chan struct{})}
}

func (w *streamWriter) WriteHeader(status int, h http.Header) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.status, w.header = status, h
	return nil
}

func (w *streamWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failAt > 0 && w.flushes+1 >= w.failAt {
		return 0, errors.New("broken pipe")
	}
	return w.buf.Write(p)
}

func (w *streamWriter) Flush() error {
	w.mu.Lock()
	w.flushes++
	p := part{status: w.status, header: w.header, body: w.buf.String()}
	w.buf.Reset()
	first := w.flushes == 1
	w.mu.Unlock()
	w.parts <- p
	if first {
		<-w.release
	}
	return nil
}

func TestSDKStreams(t *testing.T) {
	f := newFixture(t)
	inst, _, err := f.rt.Start(context.Background(), version("stream", f.sdkRef, 64, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(context.Background())
	si := inst.(function.StreamInstance)

	t.Run("parts arrive as flushed", func(t *testing.T) {
		w := newStreamWriter()
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			done <- si.InvokeStream(ctx, req("GET", "/stream", "n=3&d=10ms", ""), &logs{}, w)
		}()
		first := <-w.parts
		if first.status != 202 || first.header.Get("Content-Type") != "text/event-stream" || first.body != "data: 0\n\n" {
			t.Errorf("first part = %+v, want 202, text/event-stream, chunk 0", first)
		}
		select {
		case err := <-done:
			t.Fatalf("the invocation ended (%v) before its first part was released", err)
		default:
		}
		close(w.release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		close(w.parts)
		var rest []string
		for p := range w.parts {
			rest = append(rest, p.body)
		}
		if got := strings.Join(rest, "|"); got != "data: 1\n\n|data: 2\n\n|end" {
			t.Errorf("later parts = %q, want chunks 1, 2 and the end apart", got)
		}
	})

	t.Run("buffered call of the same code", func(t *testing.T) {
		resp, _, err := invoke(t, inst, req("GET", "/stream", "n=3", ""), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != 202 || string(resp.Body) != "data: 0\n\ndata: 1\n\ndata: 2\n\nend" {
			t.Errorf("buffered response = %d %q", resp.Status, resp.Body)
		}
	})

	t.Run("a client gone stops the guest", func(t *testing.T) {
		w := newStreamWriter()
		w.failAt = 2
		close(w.release)
		l := &logs{}
		err := si.InvokeStream(context.Background(), req("GET", "/stream", "n=100&d=1ms", ""), l, w)
		if !errors.Is(err, errClientGone) {
			t.Fatalf("err = %v, want the client gone", err)
		}
		if !strings.Contains(strings.Join(l.lines, "\n"), "stopped at chunk 2") {
			t.Errorf("the guest's writes did not fail after the cut: logs %q", l.lines)
		}
		if !inst.Reusable() {
			t.Error("an instance whose client went away should stay reusable")
		}
	})

	t.Run("cancel stops the guest", func(t *testing.T) {
		w := newStreamWriter()
		close(w.release)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- si.InvokeStream(ctx, req("GET", "/stream", "n=3&d=1h", ""), &logs{}, w) }()
		<-w.parts
		cancel()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "cancelled") {
				t.Errorf("err = %v, want the invocation cancelled", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the guest kept running after its context was cancelled")
		}
	})
}

// TestStreamWithoutFlushes: a handler that never flushes (as a guest
// built before response_flush) still answers a streaming call, whole.
func TestStreamWithoutFlushes(t *testing.T) {
	f := newFixture(t)
	inst, _, err := f.rt.Start(context.Background(), version("plain", f.sdkRef, 64, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(context.Background())
	w := newStreamWriter()
	close(w.release)
	if err := inst.(function.StreamInstance).InvokeStream(context.Background(), req("POST", "/echo", "", "hi"), &logs{}, w); err != nil {
		t.Fatal(err)
	}
	p := <-w.parts
	if p.status != 201 || p.body != "POST /echo? hi" || p.header.Get("X-Method") != "POST" {
		t.Errorf("part = %+v", p)
	}
}
