package hostless

import (
	"net/http"
	"strings"
	"testing"
)

// fakeHost stands in for response_flush: it answers result and keeps
// copies of what it was sent.
type fakeHost struct {
	result int32
	parts  [][]byte
}

func (h *fakeHost) flush(p []byte) int32 {
	h.parts = append(h.parts, append([]byte(nil), p...))
	return h.result
}

// withHost replaces the host's response_flush for one test (not parallel).
func withHost(t *testing.T, result int32) *fakeHost {
	t.Helper()
	h := &fakeHost{result: result}
	old := flushHost
	flushHost = h.flush
	t.Cleanup(func() { flushHost = old })
	return h
}

func TestFlush(t *testing.T) {
	chunks := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, s := range []string{"one", "two"} {
			w.Write([]byte(s))
			w.(http.Flusher).Flush()
		}
		w.Write([]byte("three"))
	}
	t.Run("streaming", func(t *testing.T) {
		h := withHost(t, 0)
		var w responseWriter
		w.reset()
		chunks(&w, nil)
		if len(h.parts) != 2 {
			t.Fatalf("%d parts flushed, want 2", len(h.parts))
		}
		first, err := decodeResponse(h.parts[0])
		if err != nil || first.status != 200 || first.body != "one" || first.header.Get("Content-Type") != "text/event-stream" {
			t.Errorf("first part = %+v, %v; want 200, the headers and \"one\"", first, err)
		}
		if string(h.parts[1]) != "two" {
			t.Errorf("second part = %q, want the bare body \"two\"", h.parts[1])
		}
		last, err := decodeResponse(w.encode())
		if err != nil || last.body != "three" || len(last.header) != 0 {
			t.Errorf("final response = %+v, %v; want what remains, without headers", last, err)
		}
	})
	t.Run("buffered", func(t *testing.T) {
		h := withHost(t, -1)
		var w responseWriter
		w.reset()
		chunks(&w, nil)
		if len(h.parts) != 1 {
			t.Errorf("%d calls to the host, want 1: a buffered call stops asking", len(h.parts))
		}
		last, err := decodeResponse(w.encode())
		if err != nil || last.body != "onetwothree" || last.header.Get("Content-Type") != "text/event-stream" {
			t.Errorf("response = %+v, %v; want all of it, buffered", last, err)
		}
	})
	t.Run("cut short", func(t *testing.T) {
		withHost(t, -2)
		var w responseWriter
		w.reset()
		w.Write([]byte("a"))
		w.Flush()
		if _, err := w.Write([]byte("b")); err != errResponseCut {
			t.Errorf("Write after a cut = %v, want errResponseCut", err)
		}
		w.reset()
		if _, err := w.Write([]byte("next request")); err != nil {
			t.Errorf("the next request's Write = %v", err)
		}
	})
	t.Run("large writes flush themselves", func(t *testing.T) {
		h := withHost(t, 0)
		var w responseWriter
		w.reset()
		w.Write([]byte(strings.Repeat("x", autoFlush+1)))
		if len(h.parts) != 1 {
			t.Errorf("%d parts flushed, want 1", len(h.parts))
		}
	})
}
