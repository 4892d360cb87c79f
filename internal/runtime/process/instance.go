package process

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/sandbox"
	"github.com/hostless/hostless/internal/tracing"
)

// Paths of the Runtime API (2018-06-01).
const (
	apiPrefix = "/2018-06-01/runtime"
	accountID = "000000000000"
)

// instance is one sandboxed process and its Runtime API server.
type instance struct {
	r    *Runtime
	v    *function.Version
	slot *sandbox.Slot
	srv  *http.Server
	arn  string

	next    chan *call    // the invocation for the next /next (one at a time)
	ready   chan struct{} // closed at the first /next: init is done
	initErr chan error    // a report to /runtime/init/error
	closing chan struct{} // closed by Close
	once    sync.Once     // of ready
	cur     atomic.Pointer[call]
	broken  atomic.Bool
	// release ends the instance's S3 credentials; nil without any.
	release func()

	logMu   sync.Mutex
	sink    function.Logs // the running invocation's logs, or nil
	pending pendingLogs   // lines written between invocations
	pipes   []*logPipe
}

// call is one invocation in flight.
type call struct {
	id       string
	event    []byte
	deadline time.Time
	header   http.Header // the caller's, for client context and trace ids
	done     chan result // buffered: the first report wins
	taken    atomic.Bool // handed to the process by /next
	// stream, when set, takes a response the function posts in Lambda's
	// streaming mode as it arrives.
	stream *guardedStream
}

type result struct {
	body    []byte
	failed  bool   // reported to /error
	errType string // errorType of a failure
	err     error  // the report itself was bad (too large)
	// streamed: the response went to the call's stream, not in body.
	streamed bool
	// integration: body is of the HTTP integration type (a JSON prelude,
	// eight NUL bytes, then the body), posted to a call that doesn't stream.
	integration bool
}

func newInstance(r *Runtime, v *function.Version, slot *sandbox.Slot) *instance {
	i := &instance{
		r: r, v: v, slot: slot,
		arn:     "arn:aws:lambda:" + r.cfg.Region + ":" + accountID + ":function:" + v.Function,
		next:    make(chan *call, 1),
		ready:   make(chan struct{}),
		initErr: make(chan error, 1),
		closing: make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+apiPrefix+"/invocation/next", i.handleNext)
	mux.HandleFunc("POST "+apiPrefix+"/invocation/{id}/response", i.handleResponse)
	mux.HandleFunc("POST "+apiPrefix+"/invocation/{id}/error", i.handleError)
	mux.HandleFunc("POST "+apiPrefix+"/init/error", i.handleInitError)
	if r.cfg.Platform != nil {
		// The platform's APIs and other functions, at the depth of the
		// call running now plus one (HeaderCallDepth): whatever the
		// function wrote there is replaced.
		platform := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			depth := 0
			if c := i.cur.Load(); c != nil {
				depth = function.CallDepth(c.header)
			}
			req.Header.Set(function.HeaderCallDepth, strconv.Itoa(depth+1))
			r.cfg.Platform.ServeHTTP(w, req)
		})
		mux.Handle("/v1/", platform)
		mux.Handle("/fn/", platform)
		if len(v.Spec.Buckets) > 0 {
			mux.Handle(function.S3Path, platform)
			mux.Handle(function.S3Path+"/", platform)
		}
	}
	// The instance is untrusted: a few connections at most (a runtime uses
	// one), and none held idle for long, so it can't spend the platform's
	// descriptors.
	i.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 64 << 10}
	go i.srv.Serve(limitListener(slot.Listener(), maxAPIConns))
	return i
}

// waitReady waits for the process's first /next, an init error, its exit,
// or the init timeout.
func (i *instance) waitReady(ctx context.Context) error {
	select {
	case <-i.ready:
		return nil
	case err := <-i.initErr:
		return err
	case <-i.slot.Exited():
		if i.slot.Exit().OOM {
			return fmt.Errorf("%w: the instance ran out of memory during init", function.ErrOutOfMemory)
		}
		return fmt.Errorf("%w: Runtime.ExitError: the process %v before asking for work", function.ErrFunction, i.slot.Exit())
	case <-ctx.Done():
		return fmt.Errorf("%w: Runtime.InitTimeout: the process did not ask for work within %s", function.ErrTimeout, i.r.cfg.InitTimeout)
	}
}

func (i *instance) handleNext(w http.ResponseWriter, r *http.Request) {
	i.once.Do(func() { close(i.ready) })
	var c *call
	select {
	case c = <-i.next:
	case <-i.closing:
		http.Error(w, "instance closing", http.StatusGone)
		return
	case <-r.Context().Done():
		return
	}
	c.taken.Store(true)
	h := w.Header()
	h.Set("Lambda-Runtime-Aws-Request-Id", c.id)
	h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(c.deadline.UnixMilli(), 10))
	h.Set("Lambda-Runtime-Invoked-Function-Arn", i.arn)
	h.Set("Lambda-Runtime-Trace-Id", traceID(c))
	if cc := c.header.Get("X-Amz-Client-Context"); cc != "" {
		if b, err := base64.StdEncoding.DecodeString(cc); err == nil {
			h.Set("Lambda-Runtime-Client-Context", string(b))
		}
	}
	if ci := c.header.Get("X-Amz-Cognito-Identity"); ci != "" {
		h.Set("Lambda-Runtime-Cognito-Identity", ci)
	}
	h.Set("Content-Type", "application/json")
	_, _ = w.Write(c.event)
}

// traceID passes the caller's X-Amzn-Trace-Id on, or gives the W3C trace
// context of the call (traceparent) in X-Ray's form, or makes one from
// the invocation's id.
func traceID(c *call) string {
	if t := c.header.Get("X-Amzn-Trace-Id"); t != "" && len(t) < 256 {
		return t
	}
	if t := tracing.XRay(c.header); t != "" {
		return t
	}
	now := strconv.FormatInt(time.Now().Unix(), 16)
	id := fmt.Sprintf("%x", []byte(c.id))
	if len(id) > 24 {
		id = id[len(id)-24:]
	}
	return "Root=1-" + now + "-" + fmt.Sprintf("%024s", id) + ";Sampled=0"
}

// current returns the invocation id names, or answers 400 as Lambda does.
func (i *instance) current(w http.ResponseWriter, r *http.Request) *call {
	c := i.cur.Load()
	if c == nil || c.id != r.PathValue("id") || !c.taken.Load() {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}`)
		return nil
	}
	return c
}

func (i *instance) handleResponse(w http.ResponseWriter, r *http.Request) {
	c := i.current(w, r)
	if c == nil {
		return
	}
	// aws-lambda-go streams a LambdaFunctionURLStreamingResponse as a
	// chunked body of the HTTP integration type, without the mode header.
	if c.stream != nil && (r.Header.Get(headerResponseMode) == "streaming" || mediaType(r.Header.Get("Content-Type")) == contentTypeHTTPIntegration) {
		// No limit on the size: the function's timeout bounds it.
		res := i.streamResponse(c, r)
		if res.err != nil {
			// Cut short (the client went away, a bad prelude): the
			// function is in the middle of its response, which it may
			// still be writing when the next event comes. Not reused.
			i.broken.Store(true)
		}
		i.deliver(c, res)
		accepted(w)
		return
	}
	max := int64(i.r.cfg.MaxResponseBytes)
	body, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		i.deliver(c, result{err: fmt.Errorf("%w: reading the function's response: %v", function.ErrFunction, err)})
		return
	}
	if int64(len(body)) > max {
		i.deliver(c, result{err: fmt.Errorf("%w: the response is larger than %d bytes", function.ErrResponseTooLarge, max)})
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		_, _ = io.WriteString(w, `{"errorMessage":"Response payload size exceeded maximum allowed payload size","errorType":"RequestEntityTooLarge"}`)
		return
	}
	i.deliver(c, result{body: body, integration: mediaType(r.Header.Get("Content-Type")) == contentTypeHTTPIntegration})
	accepted(w)
}

func (i *instance) handleError(w http.ResponseWriter, r *http.Request) {
	c := i.current(w, r)
	if c == nil {
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxErrorBytes))
	p := parseError(body, r.Header.Get("Lambda-Runtime-Function-Error-Type"))
	out, _ := json.Marshal(p)
	i.deliver(c, result{body: out, failed: true, errType: p.ErrorType})
	accepted(w)
}

func (i *instance) handleInitError(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxErrorBytes))
	p := parseError(body, r.Header.Get("Lambda-Runtime-Function-Error-Type"))
	select {
	case i.initErr <- fmt.Errorf("%w: %s: %s", function.ErrFunction, p.ErrorType, p.ErrorMessage):
	default:
	}
	accepted(w)
}

// parseError reads an error report; a report that is not the documented
// JSON still says something.
func parseError(body []byte, typ string) errorPayload {
	var p errorPayload
	if json.Unmarshal(body, &p) != nil || (p.ErrorMessage == "" && p.ErrorType == "") {
		p = errorPayload{ErrorMessage: trimmed(body)}
	}
	if p.ErrorType == "" {
		p.ErrorType = typ
	}
	if p.ErrorType == "" {
		p.ErrorType = "Unhandled"
	}
	if len(p.ErrorMessage) > 4096 {
		p.ErrorMessage = p.ErrorMessage[:4096]
	}
	if len(p.StackTrace) > 100 {
		p.StackTrace = p.StackTrace[:100]
	}
	return p
}

func accepted(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"OK"}`)
}

func (i *instance) deliver(c *call, res result) {
	select {
	case c.done <- res:
	default: // already answered
	}
}

// Invoke hands one event to the process and waits for its result.
func (i *instance) Invoke(ctx context.Context, req *function.Request, logs function.Logs) (*function.Response, error) {
	return i.invoke(ctx, req, logs, nil)
}

// invoke runs req; with stream set, a response posted in streaming mode
// goes there, and the response returned is nil.
func (i *instance) invoke(ctx context.Context, req *function.Request, logs function.Logs, stream *guardedStream) (*function.Response, error) {
	if i.broken.Load() {
		return nil, fmt.Errorf("%w: instance is not usable", function.ErrUnavailable)
	}
	now := time.Now()
	event := req.Body
	if !req.Event {
		var err error
		if event, err = httpEvent(req, now); err != nil {
			return nil, fmt.Errorf("%w: %v", function.ErrInvalid, err)
		}
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = now.Add(time.Duration(i.v.Spec.Timeout))
	}
	id := req.ID
	if id == "" {
		id = function.NewID(now)
	}
	c := &call{id: id, event: event, deadline: deadline, header: req.Header, done: make(chan result, 1), stream: stream}
	if c.header == nil {
		c.header = http.Header{}
	}
	i.attach(logs)
	i.cur.Store(c)
	i.next <- c
	var res result
	select {
	case res = <-c.done:
	case <-i.slot.Exited():
		i.broken.Store(true)
		i.detach()
		if i.slot.Exit().OOM {
			return nil, fmt.Errorf("%w: the instance was killed at its memory limit of %d MB", function.ErrOutOfMemory, i.v.Spec.MemoryMB)
		}
		return nil, fmt.Errorf("%w: Runtime.ExitError: the process %v", function.ErrFunction, i.slot.Exit())
	case <-ctx.Done():
		i.broken.Store(true)
		i.slot.Kill() // its state is unknown; what it wrote is still drained
		i.detach()
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("%w after %s", function.ErrTimeout, time.Duration(i.v.Spec.Timeout))
		}
		return nil, ctx.Err()
	}
	i.cur.Store(nil)
	i.detach()
	if res.err != nil {
		return nil, res.err
	}
	if res.failed {
		err := fmt.Errorf("%w: %s", function.ErrFunction, errorSummary(res.body))
		if res.streamed {
			return nil, err
		}
		if req.Event {
			h := http.Header{"Content-Type": {"application/json"}, "X-Amz-Function-Error": {"Unhandled"}}
			return &function.Response{Status: http.StatusOK, Header: h, Body: res.body}, err
		}
		return nil, err
	}
	if res.streamed {
		return nil, nil
	}
	if req.Event {
		return &function.Response{Status: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}}, Body: res.body}, nil
	}
	if res.integration {
		return integrationResponse(res.body)
	}
	resp, err := httpResponse(res.body)
	if err != nil {
		return nil, err
	}
	return resp, nil
}

func errorSummary(body []byte) string {
	var p errorPayload
	_ = json.Unmarshal(body, &p)
	return p.ErrorType + ": " + p.ErrorMessage
}

// Reusable: an instance serves again unless it timed out, died or failed.
func (i *instance) Reusable() bool {
	if i.broken.Load() {
		return false
	}
	select {
	case <-i.slot.Exited():
		return false
	default:
		return true
	}
}

// Close kills the process and tears the sandbox down.
func (i *instance) Close(ctx context.Context) error {
	select {
	case <-i.closing:
		return nil
	default:
		close(i.closing)
	}
	i.broken.Store(true)
	i.slot.Close()
	_ = i.srv.Close()
	if i.release != nil {
		i.release() // the instance's S3 credentials
	}
	return nil
}

// maxAPIConns bounds the Runtime API connections of one instance.
const maxAPIConns = 8

// limitListener accepts at most n connections at once; further ones wait
// in the kernel's backlog until one closes.
func limitListener(l net.Listener, n int) net.Listener {
	return &limited{Listener: l, sem: make(chan struct{}, n)}
}

type limited struct {
	net.Listener
	sem chan struct{}
}

func (l *limited) Accept() (net.Conn, error) {
	l.sem <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitedConn{Conn: c, release: func() { <-l.sem }}, nil
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// mediaType is a Content-Type without its parameters, lower-cased.
func mediaType(ct string) string {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}
