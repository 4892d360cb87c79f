package hostless

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Transport is an http.RoundTripper that sends requests through the
// platform, the only way out of a wasm function: WASI preview 1 has no
// sockets. On wasip1 the package installs it as http.DefaultTransport, so
// http.Get and http.DefaultClient work unchanged.
//
// The platform reaches only the hosts in the function's allowed_hosts (none
// by default); it follows redirects itself, to allowed hosts only, and
// bounds each call's time and response size. A refused or failed call is
// an error from RoundTrip that says why. A call blocks the whole instance
// until it ends: a request's context can shorten it with a deadline, but
// cancelling it early does not stop it.
//
// On other targets RoundTrip returns an error.
type Transport struct{}

var _ http.RoundTripper = (*Transport)(nil)

// RoundTrip implements http.RoundTripper.
func (*Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	enc, err := encodeOutbound(req)
	if err != nil {
		return nil, err
	}
	out, err := send(enc)
	if err != nil {
		return nil, err
	}
	return decodeOutbound(out, req)
}

// encodeOutbound encodes req for http_send: method, URL, header pairs and
// body as strings, then the request's deadline as milliseconds from now
// (0 for none). It reads and closes req's body.
func encodeOutbound(req *http.Request) ([]byte, error) {
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		var err error
		body, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	b := make([]byte, 0, 64+len(body))
	b = appendStr(b, method)
	b = appendStr(b, req.URL.String())
	n := 0
	for _, vs := range req.Header {
		n += len(vs)
	}
	b = appendU32(b, uint32(n))
	for k, vs := range req.Header {
		for _, v := range vs {
			b = appendStr(appendStr(b, k), v)
		}
	}
	b = appendU32(b, uint32(len(body)))
	b = append(b, body...)
	var ms uint32
	if d, ok := req.Context().Deadline(); ok {
		left := time.Until(d)
		if left <= 0 {
			return nil, req.Context().Err()
		}
		ms = uint32(min(left.Milliseconds()+1, 1<<31))
	}
	return appendU32(b, ms), nil
}

// decodeOutbound reads the response encoding of http_send: a uint32
// status, header pairs and the body; status 0 is a refused or failed call,
// its body the reason. The response owns out.
func decodeOutbound(out []byte, req *http.Request) (*http.Response, error) {
	d := decoder{b: out}
	status := d.u32()
	n := d.u32()
	if d.err == nil && uint64(n)*8 > uint64(len(d.b)) {
		d.err = errShort
	}
	h := make(http.Header, n)
	for i := uint32(0); i < n && d.err == nil; i++ {
		k, v := d.str(), d.str()
		h[k] = append(h[k], v)
	}
	body := d.bytes()
	if d.err != nil {
		return nil, errors.New("hostless: truncated response from the platform")
	}
	if status == 0 {
		return nil, errors.New(string(body))
	}
	return &http.Response{
		Status:        strconv.Itoa(int(status)) + " " + http.StatusText(int(status)),
		StatusCode:    int(status),
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}, nil
}
