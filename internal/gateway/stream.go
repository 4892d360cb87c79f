package gateway

import (
	"context"
	"net/http"
	"time"

	"github.com/hostless/hostless/internal/apierror"
	"github.com/hostless/hostless/internal/function"
)

// streamer runs an invocation whose response streams (the invoker
// package's Invoker); an Invoker without it answers every call buffered.
type streamer interface {
	InvokeVersionStream(ctx context.Context, project, name string, version int, trigger string, req *function.Request, w function.StreamWriter) (*function.Invocation, error)
}

// httpStream writes a streamed function response to an HTTP client:
// chunked, each Flush sent at once.
type httpStream struct {
	w       http.ResponseWriter
	ctl     *http.ResponseController
	after   func(http.Header) // adjusts the headers (CORS), or nil
	req     *function.Request // its ID is the invocation's, named before the function runs
	started bool
	// stall bounds each write to the client: one that doesn't read can't
	// hold the function (its instance, its concurrency slot) past its
	// timeout, since a write blocked on the connection ignores the
	// invocation's context.
	stall time.Duration
}

// deadline gives the next write to the client at most s.stall.
func (s *httpStream) deadline() {
	if s.stall > 0 {
		_ = s.ctl.SetWriteDeadline(time.Now().Add(s.stall))
	}
}

var _ function.StreamWriter = (*httpStream)(nil)

// WriteHeader sends the status and the function's headers, filtered as a
// buffered response's are, without a Content-Length.
func (s *httpStream) WriteHeader(status int, header http.Header) error {
	s.started = true
	s.deadline()
	h := s.w.Header()
	copyHeaders(h, header, s.after)
	if s.req.ID != "" {
		h.Set("X-Hostless-Invocation-Id", s.req.ID)
	}
	s.w.WriteHeader(status)
	return nil
}

func (s *httpStream) Write(p []byte) (int, error) {
	s.deadline()
	return s.w.Write(p)
}

func (s *httpStream) Flush() error {
	s.deadline()
	return s.ctl.Flush()
}

// serveStream runs version of name with its response streaming to w. An
// error before the function's first flush is rendered as a buffered call's
// is; after it, the response is cut short (chunked, without its end).
func (g *Gateway) serveStream(w http.ResponseWriter, r *http.Request, st streamer, sp *spec, req *function.Request, cors *function.CORS) {
	s := &httpStream{w: w, ctl: http.NewResponseController(w), req: req, stall: time.Duration(sp.Timeout)}
	if s.stall <= 0 {
		s.stall = function.DefaultTimeout
	}
	if cors != nil {
		s.after = func(h http.Header) { applyCORS(h, r, cors) }
	}
	rec, err := st.InvokeVersionStream(r.Context(), function.DefaultProject, sp.name, sp.version, "http", req, s)
	if err == nil {
		return
	}
	if s.started {
		if g.log != nil && r.Context().Err() == nil {
			g.log.WarnContext(r.Context(), "streamed response cut short", "function", sp.name, "err", err)
		}
		return
	}
	if rec != nil {
		w.Header().Set("X-Hostless-Invocation-Id", rec.ID)
	}
	apierror.Write(w, r, g.log, InvokeError(sp.name, err))
}
