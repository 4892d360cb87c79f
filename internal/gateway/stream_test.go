package gateway_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/gateway"
)

// streamingInvoker is a stream-mode function that writes until its writer
// fails, and says when it returned.
type streamingInvoker struct {
	fakeInvoker
	timeout time.Duration
	done    chan error
}

func (f *streamingInvoker) Lookup(_ context.Context, _, name, _ string, _ int) (*function.Version, error) {
	return &function.Version{Function: name, Number: 1,
		Spec: function.Spec{InvokeMode: function.InvokeStream, Timeout: function.Duration(f.timeout)}}, nil
}

func (f *streamingInvoker) InvokeVersionStream(_ context.Context, _, _ string, _ int, _ string, _ *function.Request, w function.StreamWriter) (*function.Invocation, error) {
	err := w.WriteHeader(http.StatusOK, http.Header{"Content-Type": {"text/plain"}})
	chunk := []byte(strings.Repeat("x", 64<<10))
	for err == nil {
		if _, err = w.Write(chunk); err == nil {
			err = w.Flush()
		}
	}
	f.done <- err
	return &function.Invocation{ID: "inv1"}, err
}

// A client that stops reading a streamed response (without closing) does
// not hold the invocation, and so its instance and concurrency slot,
// past the function's timeout: a write blocked on its connection fails.
func TestStreamToAClientThatStopsReading(t *testing.T) {
	inv := &streamingInvoker{timeout: 300 * time.Millisecond, done: make(chan error, 1)}
	mux := http.NewServeMux()
	gateway.New(inv, nil, 0).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.(*net.TCPConn).SetReadBuffer(4 << 10)
	if _, err := c.Write([]byte("GET /fn/s@1 HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	// Never read.
	select {
	case err := <-inv.done:
		if err == nil {
			t.Fatal("the stream ended without an error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the invocation is still writing to a client that doesn't read, long after its 300ms timeout")
	}
}
