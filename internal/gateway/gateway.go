// Package gateway is the data plane: it routes /fn/{name}/... to the
// invoker, bounds request bodies, and renders function responses and
// errors. It knows nothing of stores or runtimes beyond the function domain.
package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hostless/hostless/internal/apierror"
	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/route"
)

// DefaultMaxRequestBytes is Lambda's synchronous payload limit.
const DefaultMaxRequestBytes = 6 << 20

// BodyReadTimeout bounds how long a client may take to send a request
// body, so a slow sender can't hold a goroutine and a buffer for ever.
const BodyReadTimeout = 30 * time.Second

// Invoker runs invocations (the invoker package's Invoker).
type Invoker interface {
	// Invoke runs a function through its live alias.
	Invoke(ctx context.Context, project, name, trigger string, req *function.Request) (*function.Response, *function.Invocation, error)
	// InvokeVersion runs one version by number; 0 is the live alias.
	InvokeVersion(ctx context.Context, project, name string, version int, trigger string, req *function.Request) (*function.Response, *function.Invocation, error)
	// InvokeAlias runs what an alias picks: its version or its canary.
	InvokeAlias(ctx context.Context, project, name, alias, trigger string, req *function.Request) (*function.Response, *function.Invocation, error)
}

// InvokeRef runs req on what ref names: "name" (its live alias),
// "name@{version}" or "name@{alias}", as function URLs and the control
// API's invoke do. It returns the function's name for messages; errors
// pass through InvokeError, except a version number below 1, which is
// answered at once.
func InvokeRef(ctx context.Context, inv Invoker, project, ref, trigger string, req *function.Request) (*function.Response, *function.Invocation, string, error) {
	name, at, pinned := strings.Cut(ref, "@")
	if !pinned {
		resp, rec, err := inv.Invoke(ctx, project, name, trigger, req)
		return resp, rec, name, err
	}
	alias, version := function.ParseRef(at)
	if alias != "" {
		resp, rec, err := inv.InvokeAlias(ctx, project, name, alias, trigger, req)
		return resp, rec, name, err
	}
	if version < 1 {
		return nil, nil, name, apierror.NotFound("version_not_found",
			"no version %q of function %q: versions are numbered from 1 (or name an alias, such as live)", at, name)
	}
	resp, rec, err := inv.InvokeVersion(ctx, project, name, version, trigger, req)
	return resp, rec, name, err
}

// Gateway serves function URLs.
type Gateway struct {
	inv             Invoker
	log             *slog.Logger
	maxRequestBytes int64
	bufs            sync.Pool
	async           Async         // nil: async calls are refused
	auth            Authenticator // nil: only public functions and routes
	// routes is the custom route table; a new table replaces it whole.
	routes atomic.Pointer[route.Table]
}

// New returns a gateway. maxRequestBytes <= 0 means the default.
func New(inv Invoker, log *slog.Logger, maxRequestBytes int64) *Gateway {
	if maxRequestBytes <= 0 {
		maxRequestBytes = DefaultMaxRequestBytes
	}
	return &Gateway{inv: inv, log: log, maxRequestBytes: maxRequestBytes,
		bufs: sync.Pool{New: func() any { return new(bytes.Buffer) }}}
}

// Register adds the gateway's routes to mux.
func (g *Gateway) Register(mux *http.ServeMux) {
	mux.Handle("/fn/{name}", g)
	mux.Handle("/fn/{name}/{path...}", g)
}

// ServeHTTP invokes the function named in the path: /fn/{name} through its
// live alias, /fn/{name}@{version} one version by number, /fn/{name}@{alias}
// through another alias (an integer is always a version; alias names
// never are). The function's CORS policy, if it has one, applies.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ref := r.PathValue("name")
	req := &function.Request{
		Method: r.Method, Path: "/" + r.PathValue("path"), RawQuery: r.URL.RawQuery,
		Host: r.Host, RemoteAddr: r.RemoteAddr, Header: r.Header,
	}
	spec, err := g.lookup(r, ref)
	if err != nil {
		apierror.Write(w, r, g.log, err)
		return
	}
	g.serve(w, r, ref, req, spec.cors(), spec, true, spec.auth())
}

// SetRoutes replaces the route table; nil empties it. Requests already
// matched keep the table they matched in.
func (g *Gateway) SetRoutes(t *route.Table) { g.routes.Store(t) }

// Routes returns the current route table (nil when none was set).
func (g *Gateway) Routes() *route.Table { return g.routes.Load() }

// Routed returns a handler that serves the requests matching a route of
// the current table, and passes the others to next (the platform's 404).
// Mount it where no platform path matched: at "/" of the server's mux.
func (g *Gateway) Routed(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if function.IsReserved(r.URL.Path) {
			// The platform's own paths, with a method it doesn't serve
			// there: never a route's (a catch-all would get, say, a
			// Prometheus scrape with its admin key).
			next.ServeHTTP(w, r)
			return
		}
		table := g.routes.Load()
		if IsPreflight(r) {
			// A preflight asks about the method to come: the route that
			// will serve it alone decides, as in API Gateway, where a GET
			// route with CORS answers the browser's OPTIONS. Without a
			// policy there, no other route's policy answers for it.
			ask := *r
			ask.Method = r.Header.Get("Access-Control-Request-Method")
			if asked, _, ok := table.Match(&ask); ok {
				cors := asked.CORS
				if cors == nil {
					sp, _ := g.lookup(r, asked.Function)
					cors = sp.cors()
				}
				if cors != nil {
					apierror.Write(w, r, g.log, Preflight(w, r, cors))
					return
				}
				// No policy: the OPTIONS goes to that route's function (which
				// may answer CORS itself), never to another route's.
				if rt, params, ok := table.Match(r); ok && rt == asked {
					g.serveRoute(w, r, rt, params)
					return
				}
				next.ServeHTTP(w, r)
				return
			}
		}
		rt, params, ok := table.Match(r)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		g.serveRoute(w, r, rt, params)
	})
}

// serveRoute invokes a route's function.
func (g *Gateway) serveRoute(w http.ResponseWriter, r *http.Request, rt *route.Route, params map[string]string) {
	spec, err := g.lookup(r, rt.Function)
	if err != nil {
		apierror.Write(w, r, g.log, err)
		return
	}
	cors := rt.CORS
	if cors == nil {
		cors = spec.cors()
	}
	req := &function.Request{
		Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
		Host: r.Host, RemoteAddr: r.RemoteAddr, Header: r.Header,
		RouteKey: rt.Key(), PathParams: params,
	}
	mode := rt.Auth
	if mode == "" {
		mode = spec.auth()
	}
	g.serve(w, r, rt.Function, req, cors, spec, false, mode)
}

// spec is what the gateway reads of the version a call runs (looked up
// once, canary picked, and then invoked by number): nil when there is no
// such version (the invocation then says why).
type spec struct {
	name    string
	version int // the version picked (an alias's canary by its weight): the one that runs
	*function.Spec
}

// auth is the function's auth mode: public without a spec (the call
// then fails as the invocation says).
func (s *spec) auth() string {
	if s == nil {
		return ""
	}
	return s.Auth
}

func (s *spec) cors() *function.CORS {
	if s == nil {
		return nil
	}
	return s.CORS
}

// lookup returns the spec of the version ref would run (from the
// invoker's cache), or nil when there is no such function, alias or
// version (the invocation then says which). Any other failure is an
// error: without the spec, its auth mode is unknown, and a call must not
// run as if it were public.
func (g *Gateway) lookup(r *http.Request, ref string) (*spec, error) {
	lk, ok := g.inv.(looker)
	if !ok {
		return nil, nil
	}
	name, at, _ := strings.Cut(ref, "@")
	alias, version := "", 0
	if at != "" {
		alias, version = function.ParseRef(at)
		if alias == "" && version < 1 {
			return nil, nil
		}
	}
	v, err := lk.Lookup(r.Context(), function.DefaultProject, name, alias, version)
	switch {
	case err == nil:
		return &spec{name: name, version: v.Number, Spec: &v.Spec}, nil
	case errors.Is(err, function.ErrNotFound), errors.Is(err, function.ErrAliasNotFound), errors.Is(err, function.ErrVersionNotFound),
		errors.Is(err, function.ErrInvalid), r.Context().Err() != nil:
		return nil, nil
	}
	if g.log != nil {
		g.log.WarnContext(r.Context(), "look up a function", "function", ref, "err", err)
	}
	e := apierror.New(http.StatusServiceUnavailable, "unavailable", "function %q can't be looked up now; retry", ref)
	e.Header = http.Header{"Retry-After": {"1"}}
	return nil, e
}

// serve invokes ref with req: a preflight request is answered under cors
// without invoking anything; the body is read, bounded; with allowAsync,
// X-Hostless-Invocation-Type: Event queues the call.
func (g *Gateway) serve(w http.ResponseWriter, r *http.Request, ref string, req *function.Request, cors *function.CORS, sp *spec, allowAsync bool, mode string) {
	if cors != nil && IsPreflight(r) {
		apierror.Write(w, r, g.log, Preflight(w, r, cors))
		return
	}
	applyCORS(w.Header(), r, cors) // errors too: a page can read why its call failed
	if d := function.CallDepth(r.Header); d > function.MaxCallDepth {
		apierror.Write(w, r, g.log, apierror.New(http.StatusLoopDetected, "call_depth_exceeded",
			"%d calls between functions led to this one, over the limit of %d: a function calling itself (or a chain of functions calling back) never ends, so the chain stops here", d, function.MaxCallDepth))
		return
	}
	if err := g.identify(r, req, ref, mode); err != nil {
		apierror.Write(w, r, g.log, err)
		return
	}
	limit, fnLimit := g.maxRequestBytes, false
	if sp != nil && sp.Limits.Request > 0 && sp.Limits.Request < limit {
		limit, fnLimit = sp.Limits.Request, true
	}
	buf, err := g.readBody(w, r, limit)
	if ae, ok := errors.AsType[*apierror.Error](err); ok && fnLimit && ae.Status == http.StatusRequestEntityTooLarge {
		err = apierror.New(http.StatusRequestEntityTooLarge, "request_too_large",
			"request body is larger than function %q's limit of %s (limits.request)", sp.name, function.FormatBytes(limit))
	}
	if buf != nil {
		defer g.bufs.Put(buf)
		req.Body = buf.Bytes()
	}
	if err != nil {
		apierror.Write(w, r, g.log, err)
		return
	}
	if allowAsync && r.Header.Get(HeaderInvocationType) != "" {
		async, err := InvocationType(r.Header)
		if err == nil && async {
			err = Enqueue(w, r, g.async, ref, function.TriggerAsync, req)
			if err == nil {
				return
			}
		}
		if err != nil {
			apierror.Write(w, r, g.log, err)
			return
		}
	}
	if st, ok := g.inv.(streamer); ok && sp != nil && sp.version > 0 && sp.Streams() {
		g.serveStream(w, r, st, sp, req, cors)
		return
	}
	var (
		resp *function.Response
		rec  *function.Invocation
		name string
	)
	if sp != nil && sp.version > 0 {
		// The version whose policy and limits applied above runs: with a
		// canary, picking again could run the other one.
		name = sp.name
		resp, rec, err = g.inv.InvokeVersion(r.Context(), function.DefaultProject, name, sp.version, "http", req)
	} else {
		resp, rec, name, err = InvokeRef(r.Context(), g.inv, function.DefaultProject, ref, "http", req)
	}
	if rec != nil {
		w.Header().Set("X-Hostless-Invocation-Id", rec.ID)
	}
	if err != nil {
		apierror.Write(w, r, g.log, InvokeError(name, err))
		return
	}
	if cors == nil {
		WriteResponse(w, resp)
		return
	}
	// The policy's headers win over any the function set.
	writeResponse(w, resp, func(h http.Header) { applyCORS(h, r, cors) })
}

// readBody reads the request body into a pooled buffer, bounded.
func (g *Gateway) readBody(w http.ResponseWriter, r *http.Request, limit int64) (*bytes.Buffer, error) {
	if r.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	ctl := http.NewResponseController(w)
	_ = ctl.SetReadDeadline(time.Now().Add(BodyReadTimeout))
	buf := g.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	// Lift the deadline: it bounds the upload, not the invocation after it.
	_ = ctl.SetReadDeadline(time.Time{})
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return buf, tooLarge(limit)
	}
	if err != nil {
		return buf, apierror.BadRequest("reading the request body: %v", err)
	}
	return buf, nil
}

func tooLarge(limit int64) error {
	return apierror.New(http.StatusRequestEntityTooLarge, "request_too_large",
		"request body is larger than the limit of %d bytes", limit)
}

// InvokeError maps an invocation error to its HTTP error.
func InvokeError(name string, err error) error {
	switch {
	case errors.Is(err, function.ErrRequestTooLarge):
		detail := strings.TrimPrefix(strings.TrimPrefix(err.Error(), function.ErrRequestTooLarge.Error()), ": ")
		return apierror.New(http.StatusRequestEntityTooLarge, "request_too_large", "request body is larger than the function's limit: %s", function.Short(detail))
	case errors.Is(err, function.ErrNotFound):
		return apierror.NotFound("function_not_found", "no function named %q", name)
	case errors.Is(err, function.ErrVersionNotFound):
		if ve, ok := errors.AsType[*function.VersionNotFoundError](err); ok {
			return apierror.NotFound("version_not_found", "%s", ve.Error())
		}
		return apierror.NotFound("version_not_found", "function %q has no such version", name)
	case errors.Is(err, function.ErrAliasNotFound):
		msg := fmt.Sprintf("function %q has no such alias", name)
		if ae, ok := errors.AsType[*function.AliasNotFoundError](err); ok {
			msg = ae.Error()
		}
		return apierror.NotFound("alias_not_found", "%s: hostless aliases %s lists them", msg, name)
	case errors.Is(err, function.ErrThrottled):
		why, retry := "is at its concurrency limit", time.Second
		if te, ok := errors.AsType[*function.ThrottleError](err); ok {
			why = "refused the call: " + te.Msg // limits only, nothing secret
			retry = max(retry, te.RetryAfter)
		}
		e := apierror.New(http.StatusTooManyRequests, "throttled", "function %q %s; retry later", name, why)
		// Whole seconds, rounded up: a client that waits that long finds a token.
		e.Header = http.Header{"Retry-After": {strconv.FormatInt(int64((retry+time.Second-1)/time.Second), 10)}}
		return e
	case errors.Is(err, function.ErrTimeout):
		return apierror.New(http.StatusGatewayTimeout, "function_timeout", "function %q timed out", name)
	case errors.Is(err, function.ErrOutOfMemory):
		return apierror.New(http.StatusBadGateway, "function_out_of_memory", "function %q ran out of memory", name)
	case errors.Is(err, function.ErrResponseTooLarge):
		// The detail is sizes only: "N bytes (limit M)".
		detail := strings.TrimPrefix(strings.TrimPrefix(err.Error(), function.ErrResponseTooLarge.Error()), ": ")
		return apierror.New(http.StatusBadGateway, "response_too_large", "function %q answered more than the response size limit: %s", name, function.Short(detail))
	case errors.Is(err, function.ErrInvalid):
		return apierror.New(http.StatusBadGateway, "function_invalid", "function %q can't run: its code is not a valid module for its contract; the invocation record has the details", name)
	case errors.Is(err, function.ErrFunction):
		// What the guest printed or trapped with stays in the record: it may
		// carry internals that an anonymous caller must not see.
		return apierror.New(http.StatusBadGateway, "function_error", "function %q failed; the invocation record has the details", name)
	case errors.Is(err, function.ErrUnavailable):
		e := apierror.New(http.StatusServiceUnavailable, "shutting_down", "the server is shutting down; retry on another node or shortly")
		e.Header = http.Header{"Retry-After": {"1"}}
		return e
	case errors.Is(err, context.Canceled):
		return apierror.New(499, "client_closed_request", "the client went away")
	}
	return err
}

const platformPrefix = "X-Hostless-"

// requestIDHeader is the platform's too: the request's ID, which its log
// lines carry (package requestid).
const requestIDHeader = "X-Request-Id"

// hopHeaders are not a function's to set.
var hopHeaders = []string{"Connection", "Keep-Alive", "Transfer-Encoding", "Upgrade", "Proxy-Connection", "Te", "Trailer", "Content-Length"}

// WriteResponse writes a function's response. Headers in the platform's
// own namespace (X-Hostless-*) are the platform's: a function can't set
// or spoof them.
func WriteResponse(w http.ResponseWriter, resp *function.Response) {
	writeResponse(w, resp, nil)
}

// writeResponse writes resp; then, when set, after adjusts the headers.
func writeResponse(w http.ResponseWriter, resp *function.Response, after func(http.Header)) {
	h := w.Header()
	copyHeaders(h, resp.Header, after)
	h.Set("Content-Length", strconv.Itoa(len(resp.Body)))
	w.WriteHeader(resp.Status)
	_, _ = w.Write(resp.Body)
}

// copyHeaders copies a function's headers into h, but for the platform's
// own and hop-by-hop ones; then, when set, after adjusts them.
func copyHeaders(h, from http.Header, after func(http.Header)) {
	for k, vs := range from {
		if len(k) >= len(platformPrefix) && strings.EqualFold(k[:len(platformPrefix)], platformPrefix) || strings.EqualFold(k, requestIDHeader) {
			continue
		}
		h[k] = vs
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
	if after != nil {
		after(h)
	}
}

// Body reads a bounded body; shared with the control API's invoke.
func Body(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, tooLarge(limit)
	}
	return b, nil
}
