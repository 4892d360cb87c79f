package hostless

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/http"
	"net/url"
	"unsafe"
)

// decoder reads the request encoding of the ABI.
type decoder struct {
	b   []byte
	err error
}

var errShort = errors.New("hostless: truncated request")

func (d *decoder) u32() uint32 {
	if d.err != nil || len(d.b) < 4 {
		d.err = errShort
		return 0
	}
	v := binary.LittleEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.u32()
	if d.err != nil || uint32(len(d.b)) < n {
		d.err = errShort
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// str returns the next string without copying: it points into the
// decoder's buffer, which decodeRequest owns for this request alone.
func (d *decoder) str() string {
	v := d.bytes()
	if len(v) == 0 {
		return ""
	}
	return unsafe.String(&v[0], len(v))
}

// decoded holds what decodeRequest allocates, so it allocates once.
type decoded struct {
	req  http.Request
	url  url.URL
	body bodyReader
}

// bodyReader is a request body over bytes.
type bodyReader struct{ bytes.Reader }

// Close implements io.Closer.
func (*bodyReader) Close() error { return nil }

// decodeRequest builds an *http.Request by hand: httptest.NewRequest and
// http.ReadRequest cost three times as much inside wasm.
//
// The request is copied once into a buffer of its own, and every string
// of the request points into it: one allocation instead of one per
// string, and a handler may keep any of them after it returns.
func decodeRequest(b []byte) (*http.Request, error) {
	own := make([]byte, len(b))
	copy(own, b)
	d := decoder{b: own}
	method, path, query, host, remote := d.str(), d.str(), d.str(), d.str(), d.str()
	n := d.u32()
	if d.err == nil && uint64(n)*8 > uint64(len(d.b)) {
		d.err = errShort
	}
	var h http.Header
	if d.err == nil {
		h = make(http.Header, n)
		// One backing array for every value; a full slice expression keeps
		// a repeated header's append from writing into its neighbour.
		vals := make([]string, n)
		for i := uint32(0); i < n && d.err == nil; i++ {
			k, v := d.str(), d.str()
			if prev, ok := h[k]; ok {
				h[k] = append(prev, v)
				continue
			}
			vals[i] = v
			h[k] = vals[i : i+1 : i+1]
		}
	}
	body := d.bytes()
	// Path parameters follow the body when the request matched a route: a
	// count and name/value pairs. A host that predates them sends nothing
	// here, and a guest that predates them reads no further than the body.
	var params []string
	if d.err == nil && len(d.b) > 0 {
		n := d.u32()
		if d.err == nil && uint64(n)*8 > uint64(len(d.b)) {
			d.err = errShort
		}
		if d.err == nil {
			params = make([]string, 0, 2*n)
			for i := uint32(0); i < n && d.err == nil; i++ {
				params = append(params, d.str(), d.str())
			}
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	uri := path
	if query != "" {
		uri += "?" + query
	}
	a := new(decoded) // the request, its URL and its body in one allocation
	a.url = url.URL{Path: path, RawQuery: query}
	a.body.Reset(body)
	a.req = http.Request{
		Method:        method,
		URL:           &a.url,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          &a.body,
		ContentLength: int64(len(body)),
		Host:          host,
		RemoteAddr:    remote,
		RequestURI:    uri,
	}
	r := &a.req
	if len(body) == 0 {
		r.Body = http.NoBody
	}
	for i := 0; i+1 < len(params); i += 2 {
		r.SetPathValue(params[i], params[i+1])
	}
	// No WithContext: a nil context reads as context.Background(), and the
	// copy costs an allocation on every call.
	return r, nil
}

// responseWriter buffers a response; it is reused across requests. Flush
// sends what is buffered to the platform at once when the function
// streams (invoke_mode: stream); otherwise the response stays buffered and
// goes out whole when the handler returns.
type responseWriter struct {
	header      http.Header
	status      int
	wroteHeader bool
	body        bytes.Buffer
	out         []byte
	// flushed: the status and headers went out; body holds only what was
	// written since the last flush.
	flushed bool
	// buffered: the platform said this call doesn't stream; Flush does
	// nothing more.
	buffered bool
	// failed: the response was cut short (the client went away); writes
	// fail.
	failed bool
}

// autoFlush is how much a streaming response buffers before it is sent
// without a Flush, so a long download never sits whole in memory.
const autoFlush = 64 << 10

// errResponseCut is what writes return once the platform cut the
// streamed response short.
var errResponseCut = errors.New("hostless: the response was cut short (the client went away)")

// flushHost sends a part of the response through the platform (a
// variable, so tests outside wasm can stand in for the host).
var flushHost = responseFlush

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	w.wroteHeader = true
	w.status = code
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.failed {
		return 0, errResponseCut
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.body.Write(p)
	if w.body.Len() >= autoFlush && !w.buffered {
		w.Flush()
	}
	return n, err
}

func (w *responseWriter) WriteString(s string) (int, error) {
	if w.failed {
		return 0, errResponseCut
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.body.WriteString(s)
	if w.body.Len() >= autoFlush && !w.buffered {
		w.Flush()
	}
	return n, err
}

// Flush implements http.Flusher: on a streaming function, what was
// written so far reaches the client now (the status and headers with the
// first flush). On a buffered one it does nothing.
func (w *responseWriter) Flush() {
	if w.buffered || w.failed {
		return
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	var part []byte
	if w.flushed {
		if w.body.Len() == 0 {
			return
		}
		part = w.body.Bytes()
	} else {
		part = w.encode()
	}
	switch flushHost(part) {
	case 0:
		w.flushed = true
		w.body.Reset()
	case -1:
		w.buffered = true
	default:
		w.failed = true
		w.body.Reset()
	}
}

func (w *responseWriter) reset() {
	if w.header == nil {
		w.header = make(http.Header, 4)
	}
	clear(w.header)
	w.status = http.StatusOK
	w.wroteHeader = false
	w.flushed, w.buffered, w.failed = false, false, false
	w.body.Reset()
}

func appendU32(b []byte, v uint32) []byte {
	return binary.LittleEndian.AppendUint32(b, v)
}

func appendStr(b []byte, s string) []byte {
	return append(appendU32(b, uint32(len(s))), s...)
}

// encode writes the response encoding of the ABI into w.out. After a
// flush, the status and headers went out already: it encodes none, and
// the body is what remains.
func (w *responseWriter) encode() []byte {
	if !w.flushed && w.header.Get("Content-Type") == "" && w.body.Len() > 0 {
		w.header.Set("Content-Type", http.DetectContentType(w.body.Bytes()))
	}
	b := w.out[:0]
	b = appendU32(b, uint32(w.status))
	n := 0
	if !w.flushed {
		for _, vs := range w.header {
			n += len(vs)
		}
	}
	b = appendU32(b, uint32(n))
	if !w.flushed {
		for k, vs := range w.header {
			for _, v := range vs {
				b = appendStr(b, k)
				b = appendStr(b, v)
			}
		}
	}
	b = appendU32(b, uint32(w.body.Len()))
	b = append(b, w.body.Bytes()...)
	w.out = b
	return b
}

// serve runs the handler on one encoded request and returns the encoded
// response. A handler that panics is not recovered: the instance's state
// may be broken, so the guest traps, the platform answers 502 and never
// reuses the instance.
func serve(req []byte, w *responseWriter) []byte {
	w.reset()
	r, err := decodeRequest(req)
	if err != nil {
		w.status = http.StatusBadRequest
		w.body.WriteString(err.Error())
		return w.encode()
	}
	handler.ServeHTTP(w, r)
	return w.encode()
}
