package process

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/hostless/hostless/internal/function"
)

var _ function.StreamInstance = (*instance)(nil)

// Lambda response streaming, as the Runtime API has it and aws-lambda-go
// speaks it.
const (
	headerResponseMode = "Lambda-Runtime-Function-Response-Mode"
	// contentTypeHTTPIntegration is a response of a JSON prelude (status,
	// headers, cookies), eight NUL bytes, then the body.
	contentTypeHTTPIntegration = "application/vnd.awslambda.http-integration-response"
	// Trailers of a function that fails after it started streaming.
	trailerErrorType = "Lambda-Runtime-Function-Error-Type"
	trailerErrorBody = "Lambda-Runtime-Function-Error-Body"
	// maxPrelude bounds the JSON prelude.
	maxPrelude = 64 << 10
)

// errStreamClosed is a write after the invocation gave up its writer.
var errStreamClosed = errors.New("the streamed response is closed")

// guardedStream is a call's StreamWriter: the Runtime API's handler writes
// through it, and the invocation closes it before it returns, so nothing
// writes to the client's response after that.
type guardedStream struct {
	mu      sync.Mutex
	w       function.StreamWriter
	closed  bool
	started bool
}

func (g *guardedStream) WriteHeader(status int, h http.Header) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return errStreamClosed
	}
	g.started = true
	return g.w.WriteHeader(status, h)
}

func (g *guardedStream) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return 0, errStreamClosed
	}
	return g.w.Write(p)
}

func (g *guardedStream) Flush() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return errStreamClosed
	}
	return g.w.Flush()
}

// close waits for a write in progress, and refuses the ones after.
func (g *guardedStream) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// InvokeStream runs one request as Invoke does; a response the function
// posts in Lambda's streaming mode goes to w as it arrives, and one it
// posts whole goes to w whole.
func (i *instance) InvokeStream(ctx context.Context, req *function.Request, logs function.Logs, w function.StreamWriter) error {
	if req.Event {
		resp, err := i.Invoke(ctx, req, logs)
		if err != nil {
			return err
		}
		return writeWhole(w, resp)
	}
	g := &guardedStream{w: w}
	resp, err := i.invoke(ctx, req, logs, g)
	g.close()
	if err != nil || resp == nil {
		return err
	}
	return writeWhole(w, resp)
}

func writeWhole(w function.StreamWriter, resp *function.Response) error {
	if err := w.WriteHeader(resp.Status, resp.Header); err != nil {
		return err
	}
	if _, err := w.Write(resp.Body); err != nil {
		return err
	}
	return w.Flush()
}

// streamResponse copies a response posted in streaming mode to the
// call's stream as it arrives, and returns the result to deliver.
func (i *instance) streamResponse(c *call, r *http.Request) result {
	s := c.stream
	br := bufio.NewReaderSize(r.Body, 32<<10)
	status, header := http.StatusOK, http.Header{}
	// As handleResponse tells it: by its media type, parameters aside.
	if ct := r.Header.Get("Content-Type"); mediaType(ct) == contentTypeHTTPIntegration {
		prelude, err := readPrelude(br)
		if err != nil {
			return result{err: err}
		}
		var hr httpResult
		if err := json.Unmarshal(prelude, &hr); err != nil {
			return result{err: fmt.Errorf("%w: the streamed response's prelude is not JSON: %v", function.ErrFunction, err)}
		}
		if hr.StatusCode == nil {
			code := http.StatusOK
			hr.StatusCode = &code
		}
		hr.Body = nil
		resp, err := shapedResponse(&hr)
		if err != nil {
			return result{err: err}
		}
		status, header = resp.Status, resp.Header
	} else if ct != "" {
		header.Set("Content-Type", ct)
	}
	if err := s.WriteHeader(status, header); err != nil {
		return result{err: err, streamed: true}
	}
	if err := s.Flush(); err != nil {
		return result{err: err, streamed: true}
	}
	buf := make([]byte, 32<<10)
	for {
		n, rerr := br.Read(buf)
		if n > 0 {
			if _, err := s.Write(buf[:n]); err != nil {
				return result{err: err, streamed: true}
			}
			// A read returns what has arrived: send it now.
			if err := s.Flush(); err != nil {
				return result{err: err, streamed: true}
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return result{err: fmt.Errorf("%w: reading the function's streamed response: %v", function.ErrFunction, rerr), streamed: true}
		}
	}
	if typ := r.Trailer.Get(trailerErrorType); typ != "" {
		body, _ := base64.StdEncoding.DecodeString(r.Trailer.Get(trailerErrorBody))
		p := parseError(body, typ)
		out, _ := json.Marshal(p)
		return result{body: out, failed: true, errType: p.ErrorType, streamed: true}
	}
	return result{streamed: true}
}

// integrationResponse is a whole response of the HTTP integration type:
// the status and headers from its prelude, the rest the body.
func integrationResponse(b []byte) (*function.Response, error) {
	prelude, body, ok := bytes.Cut(b, make([]byte, 8))
	if !ok || len(prelude) > maxPrelude {
		return nil, fmt.Errorf("%w: the response of the HTTP integration type has no prelude", function.ErrFunction)
	}
	var hr httpResult
	if err := json.Unmarshal(prelude, &hr); err != nil {
		return nil, fmt.Errorf("%w: the response's prelude is not JSON: %v", function.ErrFunction, err)
	}
	if hr.StatusCode == nil {
		code := http.StatusOK
		hr.StatusCode = &code
	}
	hr.Body = nil
	resp, err := shapedResponse(&hr)
	if err != nil {
		return nil, err
	}
	resp.Body = body
	return resp, nil
}

// readPrelude reads up to the eight NUL bytes that end the prelude.
func readPrelude(br *bufio.Reader) ([]byte, error) {
	sep := make([]byte, 8)
	var prelude []byte
	for {
		b, err := br.ReadByte()
		if err != nil {
			return nil, fmt.Errorf("%w: the streamed response ended inside its prelude", function.ErrFunction)
		}
		prelude = append(prelude, b)
		if bytes.HasSuffix(prelude, sep) {
			return prelude[:len(prelude)-8], nil
		}
		if len(prelude) > maxPrelude {
			return nil, fmt.Errorf("%w: the streamed response's prelude is over %d bytes", function.ErrFunction, maxPrelude)
		}
	}
}
