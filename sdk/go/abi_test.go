package hostless

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// request is what the host sends, as the ABI in doc.go describes it.
type request struct {
	method, path, query, host, remote string
	header                            [][2]string // one pair per value, in order
	body                              string
	params                            [][2]string // path parameters; none: not encoded
}

func putStr(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// encode writes r as the host does: strings are a little-endian uint32
// length and the bytes; the header is a count and name/value pairs.
func (r request) encode() []byte {
	var b []byte
	for _, s := range []string{r.method, r.path, r.query, r.host, r.remote} {
		b = putStr(b, s)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(r.header)))
	for _, kv := range r.header {
		b = putStr(b, kv[0])
		b = putStr(b, kv[1])
	}
	b = putStr(b, r.body)
	if len(r.params) == 0 {
		return b
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(r.params)))
	for _, kv := range r.params {
		b = putStr(b, kv[0])
		b = putStr(b, kv[1])
	}
	return b
}

// response is a decoded response.
type response struct {
	status int
	header http.Header
	body   string
}

// decodeResponse reads the response encoding: a uint32 status, a uint32
// header count and pairs, then the body as a string. It requires the
// encoding to end with the body.
func decodeResponse(b []byte) (response, error) {
	short := errors.New("truncated response")
	u32 := func() (uint32, error) {
		if len(b) < 4 {
			return 0, short
		}
		v := binary.LittleEndian.Uint32(b)
		b = b[4:]
		return v, nil
	}
	str := func() (string, error) {
		n, err := u32()
		if err != nil || uint64(n) > uint64(len(b)) {
			return "", short
		}
		s := string(b[:n])
		b = b[n:]
		return s, nil
	}
	var r response
	status, err := u32()
	if err != nil {
		return r, err
	}
	r.status = int(status)
	n, err := u32()
	if err != nil {
		return r, err
	}
	r.header = http.Header{}
	for range n {
		k, err1 := str()
		v, err2 := str()
		if err1 != nil || err2 != nil {
			return r, short
		}
		r.header[k] = append(r.header[k], v)
	}
	if r.body, err = str(); err != nil {
		return r, err
	}
	if len(b) != 0 {
		return r, fmt.Errorf("%d bytes after the body", len(b))
	}
	return r, nil
}

var full = request{
	method: "POST", path: "/a/b c", query: "q=1&q=2&x=%20", host: "fn.example.com:8443", remote: "10.0.0.1:5555",
	header: [][2]string{{"Content-Type", "text/plain"}, {"X-Multi", "one"}, {"X-Multi", "two"}, {"X-Empty", ""}},
	body:   "hello\x00world\xff",
}

func TestDecodeRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   request
	}{
		{name: "every field", in: full},
		{name: "empty everything", in: request{}},
		{name: "get without body", in: request{method: "GET", path: "/", host: "h"}},
		{name: "binary body", in: request{method: "PUT", path: "/bin", body: string([]byte{0, 1, 2, 255, 254})}},
		{name: "large body", in: request{method: "POST", path: "/big", body: strings.Repeat("z", 1<<20)}},
		{name: "many headers", in: request{method: "GET", path: "/", header: func() [][2]string {
			var h [][2]string
			for i := range 500 {
				h = append(h, [2]string{fmt.Sprintf("X-H%d", i%50), fmt.Sprint(i)})
			}
			return h
		}()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := decodeRequest(tt.in.encode())
			if err != nil {
				t.Fatalf("decodeRequest: %v", err)
			}
			if r.Method != tt.in.method || r.URL.Path != tt.in.path || r.URL.RawQuery != tt.in.query ||
				r.Host != tt.in.host || r.RemoteAddr != tt.in.remote {
				t.Errorf("request line = %q %q %q host %q remote %q, want %q %q %q host %q remote %q",
					r.Method, r.URL.Path, r.URL.RawQuery, r.Host, r.RemoteAddr,
					tt.in.method, tt.in.path, tt.in.query, tt.in.host, tt.in.remote)
			}
			wantURI := tt.in.path
			if tt.in.query != "" {
				wantURI += "?" + tt.in.query
			}
			if r.RequestURI != wantURI {
				t.Errorf("RequestURI = %q, want %q", r.RequestURI, wantURI)
			}
			want := http.Header{}
			for _, kv := range tt.in.header {
				want[kv[0]] = append(want[kv[0]], kv[1])
			}
			if !reflect.DeepEqual(r.Header, want) {
				t.Errorf("header = %v, want %v", r.Header, want)
			}
			if r.ProtoMajor != 1 || r.ProtoMinor != 1 || r.Proto != "HTTP/1.1" {
				t.Errorf("proto = %s", r.Proto)
			}
			if r.ContentLength != int64(len(tt.in.body)) {
				t.Errorf("ContentLength = %d, want %d", r.ContentLength, len(tt.in.body))
			}
			if tt.in.body == "" && r.Body != http.NoBody {
				t.Error("an empty body is not http.NoBody")
			}
			body, err := io.ReadAll(r.Body)
			if err != nil || string(body) != tt.in.body {
				t.Errorf("body = %.40q, %v; want %.40q", body, err, tt.in.body)
			}
			if r.Context() == nil {
				t.Error("request has no context")
			}
		})
	}
	t.Run("query parses", func(t *testing.T) {
		t.Parallel()
		r, err := decodeRequest(full.encode())
		if err != nil {
			t.Fatal(err)
		}
		if got := r.URL.Query()["q"]; !slices.Equal(got, []string{"1", "2"}) {
			t.Errorf("Query()[q] = %q", got)
		}
		if got := r.URL.Query().Get("x"); got != " " {
			t.Errorf("Query().Get(x) = %q, want a space", got)
		}
		if got := r.Header.Get("content-type"); got != "text/plain" {
			t.Errorf("Header.Get(content-type) = %q", got)
		}
	})
}

func TestDecodeTruncated(t *testing.T) {
	t.Parallel()
	enc := full.encode()
	// Every proper prefix is an error, never a panic or a partial request.
	for n := range len(enc) {
		r, err := decodeRequest(enc[:n])
		if err == nil {
			t.Fatalf("decodeRequest of %d of %d bytes = %+v, want an error", n, len(enc), r)
		}
		if r != nil {
			t.Fatalf("decodeRequest of %d bytes returned a request with its error", n)
		}
	}

	u32 := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	five := bytes.Repeat(u32(0), 5) // five empty strings
	tests := []struct {
		name string
		in   []byte
	}{
		{name: "nil", in: nil},
		{name: "huge string length", in: u32(0xffffffff)},
		{name: "string longer than input", in: append(u32(10), "short"...)},
		{name: "huge header count", in: append(slices.Clone(five), u32(0xffffffff)...)},
		{name: "header count beyond input", in: append(append(slices.Clone(five), u32(2)...), bytes.Repeat(u32(0), 3)...)},
		{name: "header value missing", in: append(append(append(slices.Clone(five), u32(1)...), u32(1)...), 'k')},
		{name: "body length beyond input", in: append(append(slices.Clone(five), u32(0)...), u32(5)...)},
		{name: "body length huge", in: append(append(slices.Clone(five), u32(0)...), u32(0xfffffffe)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := decodeRequest(tt.in); !errors.Is(err, errShort) {
				t.Errorf("err = %v, want the truncated-request error", err)
			}
		})
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add(full.encode())
	f.Add(request{}.encode())
	f.Add(request{method: "GET", path: "/", header: [][2]string{{"A", "1"}, {"a", "2"}}}.encode())
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add(request{method: "GET", path: "/api/users/42", params: [][2]string{{"id", "42"}, {"rest", "a/b"}}}.encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRequest(b)
		if err != nil {
			return
		}
		// What decodes encodes back to the same request.
		again := request{method: r.Method, path: r.URL.Path, query: r.URL.RawQuery, host: r.Host, remote: r.RemoteAddr}
		for _, k := range slices.Sorted(maps.Keys(r.Header)) {
			for _, v := range r.Header[k] {
				again.header = append(again.header, [2]string{k, v})
			}
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(body)) != r.ContentLength {
			t.Fatalf("ContentLength %d for a body of %d bytes", r.ContentLength, len(body))
		}
		again.body = string(body)
		r2, err := decodeRequest(again.encode())
		if err != nil {
			t.Fatalf("re-encoded request does not decode: %v", err)
		}
		if r2.Method != r.Method || r2.URL.Path != r.URL.Path || r2.URL.RawQuery != r.URL.RawQuery ||
			r2.Host != r.Host || r2.RemoteAddr != r.RemoteAddr || !reflect.DeepEqual(r2.Header, r.Header) {
			t.Fatalf("round trip changed the request: %+v then %+v", r, r2)
		}
		body2, _ := io.ReadAll(r2.Body)
		if !bytes.Equal(body, body2) {
			t.Fatalf("round trip changed the body")
		}
	})
}

func TestResponseEncode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		handle     func(w http.ResponseWriter)
		wantStatus int
		wantHeader http.Header // compared in full
		wantBody   string
	}{
		{
			name:       "nothing written",
			handle:     func(http.ResponseWriter) {},
			wantStatus: 200, wantHeader: http.Header{},
		},
		{
			name:       "status only",
			handle:     func(w http.ResponseWriter) { w.WriteHeader(http.StatusNoContent) },
			wantStatus: 204, wantHeader: http.Header{},
		},
		{
			name:       "write implies 200 and detects text",
			handle:     func(w http.ResponseWriter) { fmt.Fprint(w, "hello") },
			wantStatus: 200, wantHeader: http.Header{"Content-Type": {"text/plain; charset=utf-8"}}, wantBody: "hello",
		},
		{
			name:       "detects html",
			handle:     func(w http.ResponseWriter) { io.WriteString(w, "<!DOCTYPE html><p>hi") },
			wantStatus: 200, wantHeader: http.Header{"Content-Type": {"text/html; charset=utf-8"}}, wantBody: "<!DOCTYPE html><p>hi",
		},
		{
			name:       "detects binary",
			handle:     func(w http.ResponseWriter) { w.Write([]byte{0, 1, 2, 3}) },
			wantStatus: 200, wantHeader: http.Header{"Content-Type": {"application/octet-stream"}}, wantBody: "\x00\x01\x02\x03",
		},
		{
			name: "explicit content type kept",
			handle: func(w http.ResponseWriter) {
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte("<html>"))
			},
			wantStatus: 200, wantHeader: http.Header{"Content-Type": {"application/json"}}, wantBody: "<html>",
		},
		{
			name: "status, multi-valued headers and body",
			handle: func(w http.ResponseWriter) {
				w.Header().Add("Set-Cookie", "a=1")
				w.Header().Add("Set-Cookie", "b=2")
				w.Header().Set("X-Empty", "")
				w.Header().Set("Content-Type", "text/csv")
				w.WriteHeader(http.StatusCreated)
				io.WriteString(w, "a,b\n")
				w.Write([]byte("1,2\n"))
			},
			wantStatus: 201,
			wantHeader: http.Header{"Set-Cookie": {"a=1", "b=2"}, "X-Empty": {""}, "Content-Type": {"text/csv"}},
			wantBody:   "a,b\n1,2\n",
		},
		{
			name: "first WriteHeader wins",
			handle: func(w http.ResponseWriter) {
				w.WriteHeader(http.StatusTeapot)
				w.WriteHeader(http.StatusOK)
				w.Write([]byte("x"))
			},
			wantStatus: 418, wantHeader: http.Header{"Content-Type": {"text/plain; charset=utf-8"}}, wantBody: "x",
		},
		{
			name: "flush is harmless",
			handle: func(w http.ResponseWriter) {
				io.WriteString(w, "a")
				w.(http.Flusher).Flush()
				io.WriteString(w, "b")
			},
			wantStatus: 200, wantHeader: http.Header{"Content-Type": {"text/plain; charset=utf-8"}}, wantBody: "ab",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var w responseWriter
			// Dirty the writer first: it is reused across requests.
			w.reset()
			w.Header().Set("X-Stale", "1")
			w.WriteHeader(500)
			w.Write([]byte("stale body"))
			w.encode()

			w.reset()
			tt.handle(&w)
			got, err := decodeResponse(w.encode())
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if got.status != tt.wantStatus {
				t.Errorf("status = %d, want %d", got.status, tt.wantStatus)
			}
			if !reflect.DeepEqual(got.header, tt.wantHeader) {
				t.Errorf("header = %v, want %v", got.header, tt.wantHeader)
			}
			if got.body != tt.wantBody {
				t.Errorf("body = %q, want %q", got.body, tt.wantBody)
			}
		})
	}
}

// The tests below set the package's handler and so don't run in parallel
// with each other.

func TestServe(t *testing.T) {
	defer Handle(handler)
	var seen *http.Request
	var seenBody string
	HandleFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r
		b, _ := io.ReadAll(r.Body)
		seenBody = string(b)
		w.Header().Set("X-Path", r.URL.Path)
		w.Header()["X-Multi"] = r.Header["X-Multi"]
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, "%s %s q=%s", r.Method, r.RequestURI, r.URL.Query().Get("q"))
	})
	var w responseWriter
	for i := range 3 { // the writer is reused
		out := serve(full.encode(), &w)
		got, err := decodeResponse(out)
		if err != nil {
			t.Fatalf("call %d: decode: %v", i, err)
		}
		if got.status != http.StatusAccepted {
			t.Errorf("call %d: status = %d", i, got.status)
		}
		if want := "POST /a/b c?q=1&q=2&x=%20 q=1"; got.body != want {
			t.Errorf("call %d: body = %q, want %q", i, got.body, want)
		}
		if got.header.Get("X-Path") != "/a/b c" || !slices.Equal(got.header["X-Multi"], []string{"one", "two"}) {
			t.Errorf("call %d: header = %v", i, got.header)
		}
		if got.header.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Errorf("call %d: Content-Type = %q", i, got.header.Get("Content-Type"))
		}
		if seen.Host != full.host || seen.RemoteAddr != full.remote || seenBody != full.body {
			t.Errorf("call %d: handler saw host %q remote %q body %q", i, seen.Host, seen.RemoteAddr, seenBody)
		}
	}
}

func TestServeMalformedRequest(t *testing.T) {
	defer Handle(handler)
	called := false
	HandleFunc(func(http.ResponseWriter, *http.Request) { called = true })
	var w responseWriter
	got, err := decodeResponse(serve(full.encode()[:10], &w))
	if err != nil {
		t.Fatal(err)
	}
	if called {
		t.Error("the handler ran on a malformed request")
	}
	if got.status != http.StatusBadRequest || !strings.Contains(got.body, "truncated request") {
		t.Errorf("response = %d %q, want 400 naming the problem", got.status, got.body)
	}
}

func TestDefaultHandlerIsNotFound(t *testing.T) {
	var w responseWriter
	got, err := decodeResponse(serve(request{method: "GET", path: "/"}.encode(), &w))
	if err != nil {
		t.Fatal(err)
	}
	if got.status != http.StatusNotFound {
		t.Errorf("status without a handler = %d, want 404", got.status)
	}
}

// named is a comparable handler.
type named struct{ name string }

func (n *named) ServeHTTP(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, n.name) }

func TestHandle(t *testing.T) {
	defer Handle(handler)
	h := &named{name: "mine"}
	Handle(h)
	if Handler() != http.Handler(h) {
		t.Fatalf("Handler() = %v, want the handler set", Handler())
	}
	var w responseWriter
	if got, err := decodeResponse(serve(request{method: "GET", path: "/"}.encode(), &w)); err != nil || got.body != "mine" {
		t.Errorf("serve answered %+v, %v; want the handler set", got, err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Handle(nil) did not panic")
			}
		}()
		Handle(nil)
	}()
	if Handler() != http.Handler(h) {
		t.Error("Handle(nil) replaced the handler")
	}
}

// TestDecodedRequestOwnsItsBytes: the host reuses its buffer for the next
// request, so nothing a handler may keep can point into it.
func TestDecodedRequestOwnsItsBytes(t *testing.T) {
	in := request{method: "POST", path: "/keep", query: "a=1", host: "h", remote: "r",
		header: [][2]string{{"X-A", "1"}, {"X-B", "2"}, {"X-A", "3"}}, body: "payload"}.encode()
	r, err := decodeRequest(in)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		in[i] = 'Z' // the next request overwrites the buffer
	}
	body, _ := io.ReadAll(r.Body)
	if r.Method != "POST" || r.URL.Path != "/keep" || r.URL.RawQuery != "a=1" || r.Host != "h" ||
		r.RemoteAddr != "r" || string(body) != "payload" {
		t.Errorf("request changed with the host's buffer: %s %s?%s %s %s %q", r.Method, r.URL.Path, r.URL.RawQuery, r.Host, r.RemoteAddr, body)
	}
	if got := r.Header["X-A"]; len(got) != 2 || got[0] != "1" || got[1] != "3" {
		t.Errorf("X-A = %q, want [1 3]", got)
	}
	if got := r.Header["X-B"]; len(got) != 1 || got[0] != "2" {
		t.Errorf("X-B = %q, want [2] (a repeated header must not write into its neighbour)", got)
	}
	if r.RequestURI != "/keep?a=1" {
		t.Errorf("RequestURI = %q, want /keep?a=1", r.RequestURI)
	}
}

func TestDecodeManyHeaders(t *testing.T) {
	var h [][2]string
	for i := range 40 { // past the values a decoded request holds inline
		h = append(h, [2]string{fmt.Sprintf("X-H%d", i%30), fmt.Sprint(i)})
	}
	r, err := decodeRequest(request{method: "GET", path: "/", header: h}.encode())
	if err != nil {
		t.Fatal(err)
	}
	if r.RequestURI != "/" {
		t.Errorf("RequestURI = %q", r.RequestURI)
	}
	for i := range 30 {
		want := []string{fmt.Sprint(i)}
		if i < 10 {
			want = append(want, fmt.Sprint(i+30))
		}
		if got := r.Header[fmt.Sprintf("X-H%d", i)]; strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("X-H%d = %q, want %q", i, got, want)
		}
	}
}

func TestDecodePathParams(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		req     request
		extra   []byte // appended to the encoding
		want    map[string]string
		wantErr bool
	}{
		{name: "none (an older host)", req: request{method: "GET", path: "/a", body: "b"}, want: map[string]string{"id": ""}},
		{name: "params", req: request{method: "GET", path: "/api/users/42/files/x/y", body: "b",
			params: [][2]string{{"id", "42"}, {"rest", "x/y"}}}, want: map[string]string{"id": "42", "rest": "x/y", "other": ""}},
		{name: "empty value", req: request{path: "/", params: [][2]string{{"rest", ""}}}, want: map[string]string{"rest": ""}},
		{name: "truncated count", req: request{path: "/"}, extra: []byte{1, 0}, wantErr: true},
		{name: "count beyond the bytes", req: request{path: "/"}, extra: []byte{9, 0, 0, 0, 1, 0, 0, 0}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := decodeRequest(append(tt.req.encode(), tt.extra...))
			if tt.wantErr {
				if err == nil {
					t.Fatal("decoded a malformed parameter section")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.want {
				if got := r.PathValue(k); got != v {
					t.Errorf("PathValue(%q) = %q, want %q", k, got, v)
				}
			}
			if body, _ := io.ReadAll(r.Body); string(body) != tt.req.body {
				t.Errorf("body %q, want %q", body, tt.req.body)
			}
		})
	}
}
