package wasm

import (
	"bytes"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"

	"github.com/hostless/hostless/internal/function"
)

// This file is the CGI contract (RFC 3875) as WAGI speaks it: the request
// goes in as environment variables and stdin, the response comes out on
// stdout as header lines, a blank line and the body.

// Bounds on the header section of a CGI response. The body is bounded by
// the caller, which caps all of stdout.
const (
	maxCGIHeaderBytes = 64 << 10 // the header lines and the blank line after them
	maxCGIHeaderLines = 100
)

// cgiDroppedHeaders are request headers a CGI program never sees:
// credentials, as Apache withholds them, and Proxy, whose HTTP_PROXY
// variable many HTTP clients would take as their proxy setting (httpoxy).
var cgiDroppedHeaders = map[string]bool{
	"Authorization":       true,
	"Proxy-Authorization": true,
	"Proxy":               true,
	// Given as CONTENT_TYPE, CONTENT_LENGTH and HTTP_HOST instead.
	"Content-Type":   true,
	"Content-Length": true,
	"Host":           true,
}

// cgiEnviron returns the CGI/1.1 variables for a request to function name,
// as WAGI passes them, sorted, followed by the function's own env in sorted
// order minus any variable the CGI set already defines: a function's env
// can't shadow what the request says. Entries are "K=V"; no value holds a
// NUL byte.
func cgiEnviron(name string, req *function.Request, env map[string]string) []string {
	path := req.Path
	if path == "" {
		path = "/"
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	script := "/fn/" + name
	if req.RouteKey != "" {
		script = "" // a route's path is the request's whole path
	}
	uri := script + path
	if req.RawQuery != "" {
		uri += "?" + req.RawQuery
	}
	serverName, serverPort := req.Host, "80"
	if h, p, err := net.SplitHostPort(req.Host); err == nil {
		serverName, serverPort = h, p
	} else {
		serverName = strings.TrimSuffix(strings.TrimPrefix(serverName, "["), "]")
	}
	remote := req.RemoteAddr
	if h, _, err := net.SplitHostPort(remote); err == nil {
		remote = h
	}

	vars := map[string]string{
		"GATEWAY_INTERFACE": "CGI/1.1",
		"SERVER_PROTOCOL":   "HTTP/1.1",
		"SERVER_SOFTWARE":   "hostless",
		"REQUEST_METHOD":    method,
		"SCRIPT_NAME":       script,
		"PATH_INFO":         path,
		"PATH_TRANSLATED":   path,
		"QUERY_STRING":      req.RawQuery,
		"REQUEST_URI":       uri,
		"CONTENT_TYPE":      req.Header.Get("Content-Type"),
		"CONTENT_LENGTH":    strconv.Itoa(len(req.Body)),
		"REMOTE_ADDR":       remote,
		"REMOTE_HOST":       remote, // no reverse DNS: RFC 3875 allows REMOTE_ADDR here
		"SERVER_NAME":       serverName,
		"SERVER_PORT":       serverPort,
		"HTTP_HOST":         req.Host,
	}
	// A route's path parameters: {id} is HOSTLESS_PATH_ID. Names are Go
	// identifiers (net/http.ServeMux's rule), so they make valid names.
	for k, v := range req.PathParams {
		vars["HOSTLESS_PATH_"+strings.ToUpper(k)] = v
	}
	// Headers in sorted order, so that two spellings of one name (possible
	// in a Header built by hand) join their values deterministically.
	for _, k := range slices.Sorted(maps.Keys(req.Header)) {
		if !cgiHeaderName(k) || cgiDroppedHeaders[textproto.CanonicalMIMEHeaderKey(k)] || len(req.Header[k]) == 0 {
			continue
		}
		v := strings.Join(req.Header[k], ", ")
		key := "HTTP_" + strings.ToUpper(strings.ReplaceAll(k, "-", "_"))
		if old, ok := vars[key]; ok {
			v = old + ", " + v
		}
		vars[key] = v
	}

	out := make([]string, 0, len(vars)+len(env))
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		out = append(out, k+"="+noNUL(vars[k]))
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if _, cgi := vars[k]; cgi || k == "" || strings.ContainsAny(k, "=\x00") {
			continue
		}
		out = append(out, k+"="+noNUL(env[k]))
	}
	return out
}

// cgiHeaderName reports whether a request header may become an HTTP_
// variable: letters, digits and '-' only. An '_' would let "X-User" and
// "X_User" collide, the ambiguity web servers refuse for the same reason.
func cgiHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// noNUL removes NUL bytes, which an environment can't hold.
func noNUL(s string) string {
	if strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(s, "\x00", "")
}

// parseCGIResponse parses what a CGI program printed on stdout: header
// lines ("Name: value", ending in \n or \r\n), a blank line, then the body.
// "Status: 404 Not Found" sets the status; a Location header without one
// means 302; otherwise it is 200. The body is the rest of out, unchanged
// and not copied.
func parseCGIResponse(out []byte) (*function.Response, error) {
	resp := &function.Response{Header: http.Header{}}
	status, sawStatus := 0, false
	rest := out
	for lines := 0; ; lines++ {
		consumed := len(out) - len(rest)
		nl := bytes.IndexByte(rest[:min(len(rest), maxCGIHeaderBytes-consumed)], '\n')
		if nl < 0 {
			if len(out) >= maxCGIHeaderBytes {
				return nil, fmt.Errorf("malformed CGI response: headers are longer than %d bytes", maxCGIHeaderBytes)
			}
			return nil, fmt.Errorf("malformed CGI response: no blank line after the headers")
		}
		line := rest[:nl]
		rest = rest[nl+1:]
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			break
		}
		if lines == maxCGIHeaderLines {
			return nil, fmt.Errorf("malformed CGI response: more than %d header lines", maxCGIHeaderLines)
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return nil, fmt.Errorf("malformed CGI response: header line %d has no ':' (%.40q)", lines+1, line)
		}
		if !validHeaderName(k) {
			return nil, fmt.Errorf("malformed CGI response: invalid header name %.40q", k)
		}
		v = bytes.Trim(v, " \t")
		if i := bytes.IndexFunc(v, isCTL); i >= 0 {
			return nil, fmt.Errorf("malformed CGI response: header %s has a control character (%q) in its value", k, v[i])
		}
		name := textproto.CanonicalMIMEHeaderKey(string(k))
		if name != "Status" {
			resp.Header[name] = append(resp.Header[name], string(v))
			continue
		}
		if sawStatus {
			return nil, fmt.Errorf("malformed CGI response: more than one Status header")
		}
		sawStatus = true
		var err error
		if status, err = parseCGIStatus(v); err != nil {
			return nil, err
		}
	}
	switch {
	case sawStatus:
		resp.Status = status
	case resp.Header.Get("Location") != "":
		resp.Status = http.StatusFound
	default:
		resp.Status = http.StatusOK
	}
	resp.Body = rest
	return resp, nil
}

// parseCGIStatus reads a Status header's value: three digits (100 to 999),
// then optionally a space and a reason phrase, which is dropped.
func parseCGIStatus(v []byte) (int, error) {
	code, _, _ := bytes.Cut(v, []byte(" "))
	bad := len(code) != 3
	n := 0
	for _, c := range code {
		if c < '0' || c > '9' {
			bad = true
			break
		}
		n = n*10 + int(c-'0')
	}
	if bad || n < 100 {
		return 0, fmt.Errorf("malformed CGI response: bad Status %.40q (want three digits from 100 to 999, then an optional reason)", v)
	}
	return n, nil
}

// validHeaderName reports whether k is an RFC 9110 token.
func validHeaderName(k []byte) bool {
	if len(k) == 0 {
		return false
	}
	for _, c := range k {
		if c >= 0x80 || !isTokenChar[c] {
			return false
		}
	}
	return true
}

var isTokenChar = func() (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// isCTL reports a control character other than tab: none belongs in a
// header value, and a bare CR or a NUL could split or truncate the header
// when it is written out.
func isCTL(r rune) bool {
	return r != '\t' && (r < 0x20 || r == 0x7f)
}
