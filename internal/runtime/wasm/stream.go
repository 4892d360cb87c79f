package wasm

import (
	"context"
	"errors"
	"fmt"

	"github.com/tetratelabs/wazero/api"

	"github.com/hostless/hostless/internal/function"
)

var _ function.StreamInstance = (*sdkInstance)(nil)

// Results of response_flush besides 0 (sent).
const (
	// flushBuffered: the call isn't streaming; the guest keeps buffering.
	flushBuffered = -1
	// flushFailed: the response is cut short (the client went away, or
	// the guest's encoding was bad); the guest's writes fail from now on.
	flushFailed = -2
)

// streaming is the state of response_flush for one streaming invocation.
type streaming struct {
	w      function.StreamWriter
	maxOut int
	// started is set once the status and headers went out.
	started bool
	// err is why the response was cut short.
	err error
}

type streamKey struct{}

func withStreaming(ctx context.Context, s *streaming) context.Context {
	return context.WithValue(ctx, streamKey{}, s)
}

// responseFlush is the host function response_flush(ptr, len i32) i32: it
// sends a part of the response to the client. The first part is the
// response encoding of the ABI (status, headers, and the body written so
// far); every later one is body bytes alone. It returns 0 when sent,
// flushBuffered when the call does not stream, flushFailed when the
// response can go no further.
func responseFlush(ctx context.Context, mod api.Module, stack []uint64) {
	ptr, size := uint32(stack[0]), uint32(stack[1])
	s, _ := ctx.Value(streamKey{}).(*streaming)
	switch {
	case s == nil:
		stack[0] = uint64(api.EncodeI32(flushBuffered))
		return
	case s.err != nil:
		stack[0] = uint64(api.EncodeI32(flushFailed))
		return
	}
	if int64(size) > int64(s.maxOut) {
		s.err = fmt.Errorf("%w: a flushed part of %d bytes (limit %d)", function.ErrResponseTooLarge, size, s.maxOut)
		stack[0] = uint64(api.EncodeI32(flushFailed))
		return
	}
	b, ok := mod.Memory().Read(ptr, size)
	if !ok {
		s.err = fmt.Errorf("%w: flushed response out of bounds", function.ErrFunction)
		stack[0] = uint64(api.EncodeI32(flushFailed))
		return
	}
	if err := s.send(b, true); err != nil {
		s.err = err
		stack[0] = uint64(api.EncodeI32(flushFailed))
		return
	}
	stack[0] = 0
}

// send writes one part of the response: the whole encoding before the
// headers went out (first), body bytes after. b is guest memory: the
// writer must not keep it, as an http.ResponseWriter doesn't.
func (s *streaming) send(b []byte, partial bool) error {
	if s.started {
		if !partial {
			// The final part is an encoding too; its status and headers
			// came too late to count.
			resp, err := decodeResponse(b)
			if err != nil {
				return fmt.Errorf("%w: %v", function.ErrFunction, err)
			}
			b = resp.Body
		}
		if len(b) > 0 {
			if _, err := s.w.Write(b); err != nil {
				return clientGone(err)
			}
		}
		if err := s.w.Flush(); err != nil {
			return clientGone(err)
		}
		return nil
	}
	resp, err := decodeResponse(b)
	if err != nil {
		return fmt.Errorf("%w: %v", function.ErrFunction, err)
	}
	if err := finalStatus(resp); err != nil {
		return err
	}
	s.started = true
	if err := s.w.WriteHeader(resp.Status, resp.Header); err != nil {
		return clientGone(err)
	}
	if len(resp.Body) > 0 {
		if _, err := s.w.Write(resp.Body); err != nil {
			return clientGone(err)
		}
	}
	if err := s.w.Flush(); err != nil {
		return clientGone(err)
	}
	return nil
}

// errClientGone is a streamed response the client stopped reading.
var errClientGone = errors.New("the client went away while the response streamed")

func clientGone(err error) error { return fmt.Errorf("%w: %w", errClientGone, err) }

// InvokeStream runs one request through hostless_handle, as Invoke does,
// with response_flush sending what the guest flushes to w. A guest that
// never flushes (or predates response_flush) answers whole, at the end.
func (i *sdkInstance) InvokeStream(ctx context.Context, req *function.Request, logs function.Logs, w function.StreamWriter) error {
	s := &streaming{w: w, maxOut: i.maxOut}
	b, err := i.call(withStreaming(ctx, s), req, logs)
	if s.err != nil {
		// A client gone stops the guest at its next flush or write; what it
		// answered after that is dropped.
		i.broken = i.broken || !errors.Is(s.err, errClientGone)
		return s.err
	}
	if err != nil {
		return err
	}
	if err := s.send(b, false); err != nil {
		if !errors.Is(err, errClientGone) {
			i.broken = true
		}
		return err
	}
	return nil
}
