package wasm

import (
	"bytes"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/hostless/hostless/internal/function"
)

func TestCGIEnviron(t *testing.T) {
	t.Parallel()
	base := func() *function.Request {
		return &function.Request{
			Method:     "POST",
			Path:       "/users/42",
			RawQuery:   "a=1&b=2",
			Host:       "example.com:8080",
			RemoteAddr: "203.0.113.7:51234",
			Header: http.Header{
				"Content-Type":   {"application/json"},
				"Content-Length": {"999"},
				"Accept":         {"text/html", "application/json"},
				"X-Request-Id":   {"abc"},
				"Cookie":         {"session=s3cr3t"},
			},
			Body: []byte(`{"x":1}`),
		}
	}
	tests := []struct {
		name   string
		req    func(r *function.Request)
		env    map[string]string
		want   []string // entries that must appear
		absent []string // variable names (or "K=V" entries) that must not appear
	}{
		{
			name: "full request",
			want: []string{
				"GATEWAY_INTERFACE=CGI/1.1", "SERVER_PROTOCOL=HTTP/1.1", "SERVER_SOFTWARE=hostless",
				"REQUEST_METHOD=POST", "SCRIPT_NAME=/fn/hello", "PATH_INFO=/users/42", "PATH_TRANSLATED=/users/42",
				"QUERY_STRING=a=1&b=2", "REQUEST_URI=/fn/hello/users/42?a=1&b=2",
				"CONTENT_TYPE=application/json", "CONTENT_LENGTH=7",
				"REMOTE_ADDR=203.0.113.7", "REMOTE_HOST=203.0.113.7",
				"SERVER_NAME=example.com", "SERVER_PORT=8080", "HTTP_HOST=example.com:8080",
				"HTTP_ACCEPT=text/html, application/json", "HTTP_X_REQUEST_ID=abc", "HTTP_COOKIE=session=s3cr3t",
			},
			absent: []string{"HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"},
		},
		{
			name: "a route's request: its whole path and its parameters",
			req: func(r *function.Request) {
				r.RouteKey, r.PathParams = "POST /users/{id}", map[string]string{"id": "42", "rest": "a/b"}
			},
			want: []string{"SCRIPT_NAME=", "PATH_INFO=/users/42", "REQUEST_URI=/users/42?a=1&b=2",
				"HOSTLESS_PATH_ID=42", "HOSTLESS_PATH_REST=a/b"},
		},
		{
			name: "defaults: no query, no port, no body",
			req: func(r *function.Request) {
				r.Method, r.Path, r.RawQuery, r.Host, r.Body = "GET", "/", "", "example.com", nil
				r.Header = nil
			},
			want: []string{"REQUEST_METHOD=GET", "REQUEST_URI=/fn/hello/", "QUERY_STRING=", "SERVER_NAME=example.com",
				"SERVER_PORT=80", "CONTENT_LENGTH=0", "CONTENT_TYPE=", "PATH_INFO=/"},
		},
		{
			name: "IPv6 host and remote",
			req:  func(r *function.Request) { r.Host, r.RemoteAddr = "[::1]:9000", "[2001:db8::1]:443" },
			want: []string{"SERVER_NAME=::1", "SERVER_PORT=9000", "REMOTE_ADDR=2001:db8::1", "HTTP_HOST=[::1]:9000"},
		},
		{
			name: "IPv6 host without port, remote without port",
			req:  func(r *function.Request) { r.Host, r.RemoteAddr = "[::1]", "10.0.0.1" },
			want: []string{"SERVER_NAME=::1", "SERVER_PORT=80", "REMOTE_ADDR=10.0.0.1"},
		},
		{
			name: "credentials and proxy withheld",
			req: func(r *function.Request) {
				r.Header.Set("Authorization", "Bearer token")
				r.Header.Set("Proxy-Authorization", "Basic x")
				r.Header.Set("Proxy", "http://evil.example:8080")
			},
			absent: []string{"HTTP_AUTHORIZATION", "HTTP_PROXY_AUTHORIZATION", "HTTP_PROXY"},
			want:   []string{"HTTP_COOKIE=session=s3cr3t"},
		},
		{
			name: "non-canonical and odd header names",
			req: func(r *function.Request) {
				r.Header["x-lower"] = []string{"1"}
				r.Header["X_Under"] = []string{"2"}
				r.Header["X Space"] = []string{"3"}
				r.Header["X.Dot"] = []string{"4"}
				r.Header["authorization"] = []string{"Bearer lower"}
				r.Header["host"] = []string{"spoofed.example"}
				r.Header["X-Empty"] = []string{}
			},
			want:   []string{"HTTP_X_LOWER=1", "HTTP_HOST=example.com:8080"},
			absent: []string{"HTTP_X_UNDER", "HTTP_X SPACE", "HTTP_X.DOT", "HTTP_AUTHORIZATION", "HTTP_X_EMPTY", "HTTP_HOST=spoofed.example"},
		},
		{
			name: "two spellings of one header join",
			req: func(r *function.Request) {
				r.Header["X-Tag"] = []string{"a"}
				r.Header["x-tag"] = []string{"b"}
			},
			want: []string{"HTTP_X_TAG=a, b"},
		},
		{
			name:   "function env follows and cannot override",
			env:    map[string]string{"GREETING": "hi", "REQUEST_METHOD": "DELETE", "HTTP_HOST": "evil", "PATH_INFO": "/x", "A": "1"},
			want:   []string{"GREETING=hi", "A=1", "REQUEST_METHOD=POST", "HTTP_HOST=example.com:8080", "PATH_INFO=/users/42"},
			absent: []string{"REQUEST_METHOD=DELETE", "HTTP_HOST=evil", "PATH_INFO=/x"},
		},
		{
			name: "NUL bytes removed",
			req: func(r *function.Request) {
				r.Path = "/a\x00b"
				r.Header.Set("X-Nul", "v\x00w")
			},
			env:  map[string]string{"E": "x\x00y"},
			want: []string{"PATH_INFO=/ab", "HTTP_X_NUL=vw", "E=xy"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := base()
			if tt.req != nil {
				tt.req(req)
			}
			got := cgiEnviron("hello", req, tt.env)
			seen := map[string]bool{}
			nCGI := 0
			for i, kv := range got {
				k, _, ok := strings.Cut(kv, "=")
				if !ok || k == "" || strings.ContainsRune(kv, 0) {
					t.Errorf("bad entry %q", kv)
				}
				if seen[k] {
					t.Errorf("%s appears twice", k)
				}
				seen[k] = true
				if _, fromEnv := tt.env[k]; !fromEnv || k == "REQUEST_METHOD" || k == "HTTP_HOST" || k == "PATH_INFO" {
					nCGI = i + 1
				}
			}
			// CGI variables come first, sorted; then the function's env, sorted.
			if !slices.IsSorted(got[:nCGI]) || !slices.IsSorted(got[nCGI:]) {
				t.Errorf("not in order: %q", got)
			}
			for _, w := range tt.want {
				if !slices.Contains(got, w) {
					t.Errorf("missing %q in %q", w, got)
				}
			}
			for _, a := range tt.absent {
				for _, kv := range got {
					if kv == a || strings.HasPrefix(kv, a+"=") {
						t.Errorf("unexpected %q", kv)
					}
				}
			}
			if again := cgiEnviron("hello", req, tt.env); !slices.Equal(got, again) {
				t.Errorf("not deterministic:\n%q\n%q", got, again)
			}
		})
	}
}

func TestParseCGIResponse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		out     string
		status  int
		header  http.Header
		body    string
		wantErr string // substring; "" for success
	}{
		{name: "plain", out: "Content-Type: text/plain\n\nhello", status: 200, header: http.Header{"Content-Type": {"text/plain"}}, body: "hello"},
		{name: "CRLF", out: "Content-Type: text/plain\r\nX-A: 1\r\n\r\nhello\r\n", status: 200, header: http.Header{"Content-Type": {"text/plain"}, "X-A": {"1"}}, body: "hello\r\n"},
		{name: "mixed line endings", out: "A: 1\r\nB: 2\n\r\nbody", status: 200, header: http.Header{"A": {"1"}, "B": {"2"}}, body: "body"},
		{name: "status with reason", out: "Status: 404 Not Found\nContent-Type: text/plain\n\nnope", status: 404, header: http.Header{"Content-Type": {"text/plain"}}, body: "nope"},
		{name: "status without reason", out: "status: 201\n\n", status: 201, header: http.Header{}, body: ""},
		{name: "status 999", out: "Status: 999 Odd\n\n", status: 999, header: http.Header{}},
		{name: "location means 302", out: "Location: https://example.com/\n\n", status: 302, header: http.Header{"Location": {"https://example.com/"}}},
		{name: "location with status", out: "Location: /x\nStatus: 301 Moved Permanently\n\n", status: 301, header: http.Header{"Location": {"/x"}}},
		{name: "canonical names, repeated headers kept", out: "set-cookie: a=1\nSET-COOKIE: b=2\nx-custom-header:   padded \t\n\n", status: 200,
			header: http.Header{"Set-Cookie": {"a=1", "b=2"}, "X-Custom-Header": {"padded"}}},
		{name: "empty value", out: "X-Empty:\n\n", status: 200, header: http.Header{"X-Empty": {""}}},
		{name: "colon in value", out: "X-Time: 12:30:00\n\n", status: 200, header: http.Header{"X-Time": {"12:30:00"}}},
		{name: "no headers", out: "\nbody", status: 200, header: http.Header{}, body: "body"},
		{name: "no headers CRLF", out: "\r\n", status: 200, header: http.Header{}, body: ""},
		{name: "body unchanged", out: "A: b\n\n\x00\r\n\nStatus: 500\n\n", status: 200, header: http.Header{"A": {"b"}}, body: "\x00\r\n\nStatus: 500\n\n"},
		{name: "utf-8 value", out: "X-Name: Zoë\n\n", status: 200, header: http.Header{"X-Name": {"Zoë"}}},
		{name: "100 header lines", out: strings.Repeat("X: y\n", maxCGIHeaderLines) + "\n", status: 200, header: http.Header{"X": slices.Repeat([]string{"y"}, maxCGIHeaderLines)}},

		{name: "empty output", out: "", wantErr: "malformed CGI response: no blank line after the headers"},
		{name: "body only", out: "hello world", wantErr: "no blank line after the headers"},
		{name: "headers without terminator", out: "Content-Type: text/plain\n", wantErr: "no blank line after the headers"},
		{name: "header without colon", out: "Content-Type text/plain\n\n", wantErr: "header line 1 has no ':'"},
		{name: "empty name", out: ": value\n\n", wantErr: `invalid header name ""`},
		{name: "space before colon", out: "X-A : 1\n\n", wantErr: `invalid header name "X-A "`},
		{name: "folded line", out: "X-A: 1\n continued\n\n", wantErr: "header line 2 has no ':'"},
		{name: "non-ASCII name", out: "X-Ä: 1\n\n", wantErr: "invalid header name"},
		{name: "injection via bare CR", out: "X: a\rSet-Cookie: admin=1\n\n", wantErr: `header X has a control character ('\r')`},
		{name: "NUL in value", out: "X: a\x00b\n\n", wantErr: "control character"},
		{name: "DEL in value", out: "X: a\x7fb\n\n", wantErr: "control character"},
		{name: "status too short", out: "Status: 20\n\n", wantErr: `bad Status "20"`},
		{name: "status too long", out: "Status: 2000\n\n", wantErr: "bad Status"},
		{name: "status below 100", out: "Status: 099\n\n", wantErr: "bad Status"},
		{name: "status not a number", out: "Status: OK\n\n", wantErr: "bad Status"},
		{name: "status empty", out: "Status:\n\n", wantErr: "bad Status"},
		{name: "status signed", out: "Status: +20\n\n", wantErr: "bad Status"},
		{name: "two statuses", out: "Status: 200\nStatus: 500\n\n", wantErr: "more than one Status header"},
		{name: "too many lines", out: strings.Repeat("X: y\n", maxCGIHeaderLines+1) + "\n", wantErr: "more than 100 header lines"},
		{name: "headers too long", out: "X: " + strings.Repeat("a", maxCGIHeaderBytes) + "\n\n", wantErr: "headers are longer than 65536 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, err := parseCGIResponse([]byte(tt.out))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				if resp != nil {
					t.Errorf("resp = %+v with an error", resp)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if resp.Status != tt.status {
				t.Errorf("Status = %d, want %d", resp.Status, tt.status)
			}
			if !equalHeader(resp.Header, tt.header) {
				t.Errorf("Header = %v, want %v", resp.Header, tt.header)
			}
			if string(resp.Body) != tt.body {
				t.Errorf("Body = %q, want %q", resp.Body, tt.body)
			}
		})
	}
}

func TestParseCGIResponseAtCap(t *testing.T) {
	t.Parallel()
	// The header section, blank line included, may be exactly the cap.
	line := "X: " + strings.Repeat("a", maxCGIHeaderBytes-5) + "\n"
	tests := []struct {
		name string
		out  string
		ok   bool
	}{
		{"exactly the cap", line + "\n" + "body", true},
		{"one byte over", "Y" + line + "\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, err := parseCGIResponse([]byte(tt.out))
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if tt.ok && string(resp.Body) != "body" {
				t.Errorf("Body = %q", resp.Body)
			}
		})
	}
}

func equalHeader(a, b http.Header) bool {
	if a == nil || len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// FuzzParseCGIResponse checks that no output panics the parser and that
// what it accepts is safe to write out: a status in 100..999, header values
// with no line breaks, the body a suffix of the output. Seeds are in
// testdata/fuzz/FuzzParseCGIResponse.
func FuzzParseCGIResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, out []byte) {
		resp, err := parseCGIResponse(out)
		if err != nil {
			if resp != nil {
				t.Fatal("response with an error")
			}
			return
		}
		if resp.Status < 100 || resp.Status > 999 {
			t.Fatalf("Status = %d", resp.Status)
		}
		if !bytes.HasSuffix(out, resp.Body) {
			t.Fatal("Body is not a suffix of the output")
		}
		if len(out)-len(resp.Body) > maxCGIHeaderBytes {
			t.Fatalf("header section is %d bytes", len(out)-len(resp.Body))
		}
		if resp.Header == nil {
			t.Fatal("nil Header")
		}
		if _, ok := resp.Header["Status"]; ok {
			t.Fatal("Status left in the headers")
		}
		for k, vs := range resp.Header {
			if k == "" || !validHeaderName([]byte(k)) {
				t.Fatalf("header name %q", k)
			}
			for _, v := range vs {
				if strings.ContainsAny(v, "\r\n\x00") {
					t.Fatalf("header %s value %q", k, v)
				}
			}
		}
	})
}
