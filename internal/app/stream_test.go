package app

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/wasmtest"
)

// TestStreamingResponse: a function with invoke_mode stream reaches its
// client chunk by chunk, a buffered one whole; a client that goes away
// cancels the invocation, whose record is still written.
func TestStreamingResponse(t *testing.T) {
	g := buildGuests(t)
	a := startApp(t, newConfig(t))
	a.deploy("streamer", g.sdk, function.Spec{InvokeMode: function.InvokeStream})
	a.deploy("buffered", g.sdk, function.Spec{})

	t.Run("chunks arrive as flushed", func(t *testing.T) {
		// The guest sleeps 300ms after each chunk.
		resp := wantStreamed(t, a, "/fn/streamer/stream?n=3&d=300ms", 202, "text/event-stream", "data: 0\n", "\ndata: 1\n\ndata: 2\n\nend")
		rec := a.record(resp.Header.Get("X-Hostless-Invocation-Id"))
		if rec.Status != function.StatusOK || rec.HTTPStatus != 202 || rec.Duration < 900*time.Millisecond {
			t.Errorf("record = %s %d in %s, want ok 202 in 900ms or more", rec.Status, rec.HTTPStatus, rec.Duration)
		}
	})

	t.Run("buffered function", func(t *testing.T) {
		resp, body := a.do("GET", "/fn/buffered/stream?n=3", nil, nil)
		if resp.StatusCode != 202 || resp.ContentLength != int64(len(body)) || string(body) != "data: 0\n\ndata: 1\n\ndata: 2\n\nend" {
			t.Errorf("got %d length %d %q", resp.StatusCode, resp.ContentLength, body)
		}
	})

	t.Run("errors before the first flush render as usual", func(t *testing.T) {
		resp, body := a.do("GET", "/fn/streamer/panic", nil, nil)
		if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "function_error") || resp.Header.Get("X-Hostless-Invocation-Id") == "" {
			t.Errorf("got %d %s", resp.StatusCode, body)
		}
	})

	t.Run("disconnect cancels", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", a.base+"/fn/streamer/stream?n=1000&d=50ms", nil)
		resp, err := a.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		id := resp.Header.Get("X-Hostless-Invocation-Id")
		if line, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil || line != "data: 0\n" {
			t.Fatalf("first line = %q, %v", line, err)
		}
		cancel()
		resp.Body.Close()
		rec := a.record(id)
		t.Logf("record of the cancelled call: %s %q in %s", rec.Status, rec.Error, rec.Duration)
		if rec.Status == function.StatusOK || rec.Duration > 20*time.Second {
			t.Errorf("record = %s %q in %s, want the invocation stopped when the client left", rec.Status, rec.Error, rec.Duration)
		}
		if !strings.Contains(rec.Error, "cancelled") && !strings.Contains(rec.Error, "client went away") {
			t.Errorf("record error = %q, want the call cancelled", rec.Error)
		}
	})
}

// TestProcessStreamingResponse: an unchanged aws-lambda-go function that
// returns a LambdaFunctionURLStreamingResponse streams through the gateway
// when the function's invoke_mode is stream.
func TestProcessStreamingResponse(t *testing.T) {
	needSandbox(t)
	a := startApp(t, newConfig(t))
	a.deploy("lstream", zipCode(t, wasmtest.LambdaFn(t)), function.Spec{Runtime: function.RuntimeProcess,
		Timeout: function.Duration(5 * time.Second), MemoryMB: 64, Network: function.NetworkNone, InvokeMode: function.InvokeStream})
	wantStreamed(t, a, "/fn/lstream/stream", 201, "text/plain", "chunk 0\n", "chunk 1\nchunk 2\n")
}

// wantStreamed gets path and checks that its response is chunked, with
// status and content type, and that its first line comes at least 400ms
// before the rest (a buffered response would come whole).
func wantStreamed(t *testing.T, a *testApp, path string, status int, contentType, first, rest string) *http.Response {
	t.Helper()
	resp, err := a.hc.Get(a.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != status || resp.Header.Get("Content-Type") != contentType || resp.ContentLength != -1 {
		t.Fatalf("got %d %q length %d, want %d %s, chunked", resp.StatusCode, resp.Header.Get("Content-Type"), resp.ContentLength, status, contentType)
	}
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != first {
		t.Fatalf("first line = %q, %v; want %q", line, err, first)
	}
	t0 := time.Now()
	got, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d < 400*time.Millisecond {
		t.Errorf("the rest came %s after the first chunk: the response was buffered", d)
	}
	if string(got) != rest {
		t.Errorf("rest = %q, want %q", got, rest)
	}
	return resp
}
