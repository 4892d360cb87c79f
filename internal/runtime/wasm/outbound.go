package wasm

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/hostless/hostless/internal/function"
)

// Defaults of the outbound HTTP limits in Config.
const (
	// DefaultOutboundTimeout caps one outbound call, within the
	// invocation's own timeout.
	DefaultOutboundTimeout = 30 * time.Second
	// DefaultMaxOutboundResponseBytes caps an outbound response's body.
	DefaultMaxOutboundResponseBytes = 6 << 20
	// DefaultMaxOutboundRequestBytes caps an outbound request's encoding
	// (its body and headers).
	DefaultMaxOutboundRequestBytes = 6 << 20
	// maxOutboundRedirects is as many redirects as net/http follows.
	maxOutboundRedirects = 10
	// maxOutboundHeaderBytes caps an outbound response's headers.
	maxOutboundHeaderBytes = 64 << 10
)

// hostModule is the module name of the platform's host functions.
const hostModule = "hostless"

// outbound is the state of the http_send host function for one
// invocation: the function's allowed hosts, where its log lines go, and a
// response too large for the buffer the guest offered, kept for http_recv.
type outbound struct {
	allowed []allowedHost
	logs    function.Logs
	pending []byte
	calls   int
	// depth is the running invocation's call depth (HeaderCallDepth).
	depth int
}

type outboundKey struct{}

// withOutbound gives the host functions o for calls made under ctx (wazero
// passes the caller's context to host functions).
func withOutbound(ctx context.Context, o *outbound) context.Context {
	return context.WithValue(ctx, outboundKey{}, o)
}

func outboundFrom(ctx context.Context) *outbound {
	o, _ := ctx.Value(outboundKey{}).(*outbound)
	return o
}

// allowedHost is one allowed_hosts entry, split and lowercased.
type allowedHost struct {
	host     string // without brackets; for a wildcard, the suffix with its leading dot
	port     string // "" for the scheme's default port
	wildcard bool
}

// parseAllowedHosts splits entries that function.Spec.Validate accepted.
func parseAllowedHosts(entries []string) []allowedHost {
	out := make([]allowedHost, 0, len(entries))
	for _, e := range entries {
		e = strings.ToLower(e)
		var a allowedHost
		if strings.HasPrefix(e, "[") {
			end := strings.IndexByte(e, ']')
			a.host, a.port = e[1:end], strings.TrimPrefix(e[end+1:], ":")
		} else if h, p, ok := strings.Cut(e, ":"); ok {
			a.host, a.port = h, p
		} else {
			a.host = e
		}
		if strings.HasPrefix(a.host, "*.") {
			a.wildcard, a.host = true, a.host[1:]
		}
		out = append(out, a)
	}
	return out
}

func defaultPort(scheme string) string {
	if scheme == "https" {
		return "443"
	}
	return "80"
}

// allows reports whether u's host[:port] matches an entry: exactly, or for
// "*.example.org" any name ending in ".example.org". An entry without a
// port matches a URL on its scheme's default port, written or not.
func (o *outbound) allows(u *url.URL) bool {
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	port := u.Port()
	if port == "" {
		port = defaultPort(u.Scheme)
	}
	for _, a := range o.allowed {
		want := a.port
		if want == "" {
			want = defaultPort(u.Scheme)
		}
		if want != port {
			continue
		}
		if host == a.host || a.wildcard && len(host) > len(a.host) && strings.HasSuffix(host, a.host) {
			return true
		}
	}
	return false
}

// check returns the error a guest sees for a URL it may not call.
func (o *outbound) check(u *url.URL) error {
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("outbound HTTP: scheme %q refused (accepted: http, https)", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("outbound HTTP: the URL has no host")
	}
	if o == nil || len(o.allowed) == 0 {
		return fmt.Errorf("outbound HTTP to %s refused: the function's allowed_hosts is empty, so every outbound call is refused", u.Host)
	}
	if !o.allows(u) {
		return fmt.Errorf("outbound HTTP to %s refused: the host is not in the function's allowed_hosts", u.Host)
	}
	return nil
}

// PlatformHost is the host under which wasm functions reach the
// platform's own APIs (http://hostless.internal/v1/...), served in-process
// without a network and without allowed_hosts: the same APIs as anyone's,
// authenticated by the token the call brought (X-Hostless-Token).
const PlatformHost = "hostless.internal"

// outboundClient performs the calls of every instance of a Runtime.
type outboundClient struct {
	client *http.Client
	// platform calls the platform's handler in-process; nil without one.
	platform    *http.Client
	timeout     time.Duration
	maxRequest  int
	maxResponse int
}

func newOutboundClient(cfg Config) *outboundClient {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	t.MaxResponseHeaderBytes = maxOutboundHeaderBytes
	// No ResponseHeaderTimeout: each call's context bounds it (the cap,
	// the guest's deadline, the function's timeout), and a second timer of
	// the same length would race it and say less about which limit hit.
	c := &http.Client{
		Transport: t,
		// Each redirect's target must be allowed too; the invocation's
		// outbound state travels in the request's context.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxOutboundRedirects {
				return fmt.Errorf("outbound HTTP: stopped after %d redirects", maxOutboundRedirects)
			}
			if err := outboundFrom(req.Context()).check(req.URL); err != nil {
				return fmt.Errorf("redirect: %w", err)
			}
			return nil
		},
	}
	oc := &outboundClient{client: c, timeout: cfg.OutboundTimeout, maxRequest: cfg.MaxOutboundRequestBytes, maxResponse: cfg.MaxOutboundResponseBytes}
	if cfg.Platform != nil {
		oc.platform = &http.Client{
			Transport:     handlerTransport{h: cfg.Platform, max: cfg.MaxOutboundResponseBytes},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return oc
}

// handlerTransport serves requests with a handler in-process.
type handlerTransport struct {
	h   http.Handler
	max int
}

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.RequestURI = req.URL.RequestURI()
	r.RemoteAddr = "wasm" // one client of the per-IP limits: the functions
	r.Host = PlatformHost
	if r.Body == nil {
		r.Body = http.NoBody
	}
	rec := &recorder{header: http.Header{}, max: t.max}
	t.h.ServeHTTP(rec, r)
	if rec.err != nil {
		return nil, rec.err
	}
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return &http.Response{StatusCode: rec.status, Status: http.StatusText(rec.status), Header: rec.header, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Body: io.NopCloser(bytes.NewReader(rec.body.Bytes())), ContentLength: int64(rec.body.Len()), Request: req}, nil
}

// recorder is the http.ResponseWriter of an in-process call, bounded.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
	max    int
	err    error
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	if r.body.Len()+len(p) > r.max {
		r.err = fmt.Errorf("outbound HTTP: response body is over the limit of %d bytes", r.max)
		return 0, r.err
	}
	return r.body.Write(p)
}

// instantiateHostModule adds the "hostless" host module to rt. A module
// that does not import it is unaffected.
//
//	http_send(req_ptr, req_len, out_ptr, out_cap i32) i32
//	http_recv(ptr, cap i32) i32
//	response_flush(ptr, len i32) i32
//
// http_send performs the request encoded at req_ptr and returns the length
// of the encoded response: written at out_ptr when it fits in out_cap,
// otherwise kept for http_recv, which copies it to ptr (of at least that
// length) and returns the length again, or -1. response_flush sends a
// part of a streamed response (stream.go).
func (oc *outboundClient) instantiateHostModule(ctx context.Context, rt wazero.Runtime) error {
	i32 := api.ValueTypeI32
	_, err := rt.NewHostModuleBuilder(hostModule).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(oc.httpSend), []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}).
		WithParameterNames("req_ptr", "req_len", "out_ptr", "out_cap").
		Export("http_send").
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(httpRecv), []api.ValueType{i32, i32}, []api.ValueType{i32}).
		WithParameterNames("ptr", "cap").
		Export("http_recv").
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(responseFlush), []api.ValueType{i32, i32}, []api.ValueType{i32}).
		WithParameterNames("ptr", "len").
		Export("response_flush").
		Instantiate(ctx)
	return err
}

func (oc *outboundClient) httpSend(ctx context.Context, mod api.Module, stack []uint64) {
	reqPtr, reqLen := uint32(stack[0]), uint32(stack[1])
	outPtr, outCap := uint32(stack[2]), uint32(stack[3])
	o := outboundFrom(ctx)
	var out []byte
	if int64(reqLen) > int64(oc.maxRequest) {
		out = encodeOutboundError(fmt.Errorf("outbound HTTP: request of %d bytes is over the limit of %d", reqLen, oc.maxRequest))
	} else if b, ok := mod.Memory().Read(reqPtr, reqLen); !ok {
		out = encodeOutboundError(errors.New("outbound HTTP: request out of bounds of guest memory"))
	} else {
		out = oc.send(ctx, o, b)
	}
	n := uint32(len(out))
	if n <= outCap {
		if !mod.Memory().Write(outPtr, out) {
			n = 0 // the guest reads a truncated response and fails
		}
	} else if o != nil {
		o.pending = out
	}
	stack[0] = uint64(n)
}

func httpRecv(ctx context.Context, mod api.Module, stack []uint64) {
	ptr, size := uint32(stack[0]), uint32(stack[1])
	o := outboundFrom(ctx)
	if o == nil || o.pending == nil || uint32(len(o.pending)) > size || !mod.Memory().Write(ptr, o.pending) {
		stack[0] = uint64(api.EncodeI32(-1))
		return
	}
	stack[0] = uint64(len(o.pending))
	o.pending = nil
}

// send performs one encoded request and returns the encoded response (or
// error) for the guest.
func (oc *outboundClient) send(ctx context.Context, o *outbound, enc []byte) []byte {
	t0 := time.Now()
	req, guestTimeout, err := decodeOutbound(ctx, enc)
	if err != nil {
		return encodeOutboundError(err)
	}
	client := oc.client
	if oc.platform != nil && req.URL.Scheme == "http" && req.URL.Host == PlatformHost {
		client = oc.platform
		depth := 0
		if o != nil {
			depth = o.depth
		}
		req.Header.Set(function.HeaderCallDepth, strconv.Itoa(depth+1))
	} else if err := o.check(req.URL); err != nil {
		return encodeOutboundError(err)
	}
	if o != nil {
		o.calls++
	}
	out, status, err := oc.do(client, req, guestTimeout)
	if o != nil && o.logs != nil {
		// The call shows among the invocation's logs; the query is left
		// out, as it may carry secrets.
		res := fmt.Sprint(status)
		if err != nil {
			res = "error"
		}
		line := fmt.Sprintf("[hostless] outbound %s %s://%s%s -> %s in %s", req.Method, req.URL.Scheme, req.URL.Host, req.URL.Path, res, time.Since(t0).Round(time.Microsecond))
		o.logs.Line("stderr", []byte(line))
	}
	if err != nil {
		return encodeOutboundError(err)
	}
	return out
}

// do performs req within the per-call cap (or the guest's own timeout, if
// shorter) and encodes the response.
func (oc *outboundClient) do(client *http.Client, req *http.Request, guestTimeout time.Duration) ([]byte, int, error) {
	limit, why := oc.timeout, "the limit of one call"
	if guestTimeout > 0 && guestTimeout < limit {
		limit, why = guestTimeout, "the request's own deadline"
	}
	ctx, cancel := context.WithTimeout(req.Context(), limit)
	defer cancel()
	resp, err := client.Do(req.WithContext(ctx))
	if err != nil {
		return nil, 0, explain(ctx, req, limit, why, err)
	}
	defer resp.Body.Close()
	if resp.ContentLength > int64(oc.maxResponse) {
		return nil, resp.StatusCode, fmt.Errorf("outbound HTTP: response body of %d bytes is over the limit of %d", resp.ContentLength, oc.maxResponse)
	}
	b := make([]byte, 0, 512)
	b = appendU32(b, uint32(resp.StatusCode))
	n := 0
	for _, vs := range resp.Header {
		n += len(vs)
	}
	b = appendU32(b, uint32(n))
	for k, vs := range resp.Header {
		for _, v := range vs {
			b = appendStr(b, k)
			b = appendStr(b, v)
		}
	}
	head := len(b)
	b = appendU32(b, 0) // the body's length, known once it is read
	if resp.ContentLength >= 0 {
		// The usual case: one allocation of the right size.
		b = slices.Grow(b, int(resp.ContentLength))
		body := b[len(b) : len(b)+int(resp.ContentLength)]
		if _, err := io.ReadFull(resp.Body, body); err != nil {
			return nil, resp.StatusCode, explain(ctx, req, limit, why, err)
		}
		b = b[:len(b)+len(body)]
	} else {
		buf := bytes.NewBuffer(b)
		read, err := buf.ReadFrom(io.LimitReader(resp.Body, int64(oc.maxResponse)+1))
		if err != nil {
			return nil, resp.StatusCode, explain(ctx, req, limit, why, err)
		}
		if read > int64(oc.maxResponse) {
			return nil, resp.StatusCode, fmt.Errorf("outbound HTTP: response body is over the limit of %d bytes", oc.maxResponse)
		}
		b = buf.Bytes()
	}
	binary.LittleEndian.PutUint32(b[head:], uint32(len(b)-head-4))
	return b, resp.StatusCode, nil
}

// explain names the limit a failed call ran into.
func explain(ctx context.Context, req *http.Request, limit time.Duration, why string, err error) error {
	switch {
	case req.Context().Err() != nil:
		return fmt.Errorf("outbound HTTP: %w (the function's timeout)", req.Context().Err())
	case ctx.Err() != nil:
		return fmt.Errorf("outbound HTTP: no response within %s (%s)", limit, why)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("outbound HTTP: timed out: %v", err)
	}
	return fmt.Errorf("outbound HTTP: %w", err)
}

// decodeOutbound reads the request encoding of http_send: method, URL,
// header pairs and body as in the SDK's ABI, then the guest's own timeout
// in milliseconds (a uint32, 0 for none). It copies what it keeps.
func decodeOutbound(ctx context.Context, b []byte) (*http.Request, time.Duration, error) {
	errBad := errors.New("outbound HTTP: malformed request encoding")
	r := &abiReader{b: b}
	u32, field := r.u32, r.field
	method, ok1 := field()
	rawURL, ok2 := field()
	n, ok3 := r.pairs()
	if !ok1 || !ok2 || !ok3 {
		return nil, 0, errBad
	}
	h := make(http.Header, n)
	for range n {
		k, ok1 := field()
		v, ok2 := field()
		if !ok1 || !ok2 {
			return nil, 0, errBad
		}
		key := http.CanonicalHeaderKey(string(k))
		h[key] = append(h[key], string(v))
	}
	body, ok := field()
	if !ok {
		return nil, 0, errBad
	}
	var timeout time.Duration
	if ms, ok := u32(); ok {
		timeout = time.Duration(ms) * time.Millisecond
	}
	var rd io.Reader
	if len(body) > 0 {
		rd = bytes.NewReader(bytes.Clone(body))
	}
	req, err := http.NewRequestWithContext(ctx, string(method), string(rawURL), rd)
	if err != nil {
		return nil, 0, fmt.Errorf("outbound HTTP: %w", err)
	}
	req.Header = h
	return req, timeout, nil
}

// encodeOutboundError is the response encoding of a call that failed:
// status 0 and the message as the body.
func encodeOutboundError(err error) []byte {
	b := appendU32(nil, 0)
	b = appendU32(b, 0)
	return appendStr(b, err.Error())
}
