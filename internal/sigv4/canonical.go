package sigv4

import (
	"encoding/hex"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"
)

// credential is a parsed Credential: AKID/20150830/us-east-1/iam/aws4_request.
type credential struct {
	accessKeyID string
	date        string // YYYYMMDD
	region      string
	service     string
	scope       string // date/region/service/aws4_request
}

// authorization is a parsed Authorization header or its presigned query
// equivalent.
type authorization struct {
	credential
	signedHeaders string   // as sent: part of the canonical request
	headers       []string // signedHeaders split
	signature     [32]byte
}

const (
	maxAccessKeyIDLen = 128
	maxSignedHeaders  = 64
)

// parseAuthorization parses an Authorization header value:
//
//	AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=fe5f...
//
// Commas may or may not be followed by spaces (minio-go writes none).
func parseAuthorization(h string) (authorization, error) {
	var a authorization
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	if scheme != Algorithm {
		return a, unsupportedScheme(scheme)
	}
	var cred, signed, sig string
	var seen [3]bool
	for part := range strings.SplitSeq(rest, ",") {
		part = strings.TrimSpace(part)
		k, val, ok := strings.Cut(part, "=")
		if !ok {
			return a, errorf(ErrMalformedHeader, "the authorization header is malformed: a field is not Key=Value; expecting \"AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...\"")
		}
		var i int
		switch k {
		case "Credential":
			i, cred = 0, val
		case "SignedHeaders":
			i, signed = 1, val
		case "Signature":
			i, sig = 2, val
		default:
			return a, errorf(ErrMalformedHeader, "the authorization header is malformed: unknown field %s", show(cut(k, 32)))
		}
		if seen[i] {
			return a, errorf(ErrMalformedHeader, "the authorization header is malformed: %s appears twice", k)
		}
		seen[i] = true
	}
	for i, name := range []string{"Credential", "SignedHeaders", "Signature"} {
		if !seen[i] {
			return a, errorf(ErrMalformedHeader, "the authorization header is malformed: it has no %s", name)
		}
	}
	var err error
	if a.credential, err = parseCredential(cred, ErrMalformedHeader); err != nil {
		return a, err
	}
	if a.headers, err = parseSignedHeaders(signed, ErrMalformedHeader); err != nil {
		return a, err
	}
	a.signedHeaders = signed
	if a.signature, err = parseSignature(sig, ErrMalformedHeader); err != nil {
		return a, err
	}
	return a, nil
}

// unsupportedScheme names the scheme only when it is one we know: an
// unknown first word may be a bare token, which is a secret.
func unsupportedScheme(scheme string) error {
	switch scheme {
	case "AWS":
		return errorf(ErrUnsupportedAuth, "signature version 2 (AWS) is not supported; use AWS4-HMAC-SHA256")
	case "AWS4-ECDSA-P256-SHA256":
		return errorf(ErrUnsupportedAuth, "signature version 4a (AWS4-ECDSA-P256-SHA256) is not supported; use AWS4-HMAC-SHA256")
	case "Bearer", "Basic", "Digest", "Negotiate":
		return errorf(ErrUnsupportedAuth, "the %s authorization scheme is not supported here; use AWS4-HMAC-SHA256", scheme)
	}
	return errorf(ErrUnsupportedAuth, "the authorization mechanism you have provided is not supported; use AWS4-HMAC-SHA256")
}

func cut(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// parseCredential parses AKID/YYYYMMDD/region/service/aws4_request.
func parseCredential(s string, kind *Error) (credential, error) {
	const want = "expecting \"<access key ID>/YYYYMMDD/REGION/SERVICE/aws4_request\""
	var c credential
	parts := strings.Split(s, "/")
	if len(parts) != 5 {
		return c, errorf(kind, "the credential is malformed; %s", want)
	}
	c.accessKeyID, c.date, c.region, c.service = parts[0], parts[1], parts[2], parts[3]
	if c.accessKeyID == "" || len(c.accessKeyID) > maxAccessKeyIDLen || !printable(c.accessKeyID) {
		return c, errorf(kind, "the credential is malformed: the access key ID is empty, too long or not printable; %s", want)
	}
	if !isDate(c.date) {
		return c, errorf(kind, "the credential is malformed: its date is not YYYYMMDD; %s", want)
	}
	if !isToken(c.region) {
		return c, errorf(kind, "the credential is malformed: bad region; %s", want)
	}
	if !isToken(c.service) {
		return c, errorf(kind, "the credential is malformed: bad service; %s", want)
	}
	if parts[4] != "aws4_request" {
		return c, errorf(kind, "the credential is malformed: it does not end in aws4_request; %s", want)
	}
	c.scope = s[len(c.accessKeyID)+1:]
	return c, nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

func isDate(s string) bool {
	if len(s) != 8 {
		return false
	}
	for i := 0; i < 8; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	_, err := time.Parse(dateFormat, s)
	return err == nil
}

// isToken accepts a region or service name: 1 to 64 of [a-z0-9-_.].
func isToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// parseSignedHeaders parses host;x-amz-date;...: lower-case header names,
// no duplicates, host among them.
func parseSignedHeaders(s string, kind *Error) ([]string, error) {
	if s == "" {
		return nil, errorf(kind, "SignedHeaders is empty; it must at least name host")
	}
	n := strings.Count(s, ";") + 1
	if n > maxSignedHeaders {
		return nil, errorf(kind, "SignedHeaders names %d headers; at most %d are accepted", n, maxSignedHeaders)
	}
	headers := strings.Split(s, ";")
	host := false
	for i, h := range headers {
		if !isHeaderName(h) {
			return nil, errorf(kind, "SignedHeaders must be lower-case header names separated by ';': %s is not one", show(h))
		}
		if slices.Contains(headers[:i], h) {
			return nil, errorf(kind, "SignedHeaders names %s twice", show(h))
		}
		host = host || h == "host"
	}
	if !host {
		return nil, errorf(kind, "SignedHeaders must include host")
	}
	return headers, nil
}

// isHeaderName accepts an RFC 9110 token without upper-case letters.
func isHeaderName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func parseSignature(s string, kind *Error) ([32]byte, error) {
	var sig [32]byte
	if len(s) != 64 {
		return sig, errorf(kind, "the signature must be 64 hexadecimal digits")
	}
	if _, err := hex.Decode(sig[:], []byte(s)); err != nil {
		return sig, errorf(kind, "the signature must be 64 hexadecimal digits")
	}
	return sig, nil
}

// param is one decoded query parameter.
type param struct{ key, value string }

// parseQuery splits a raw query into decoded parameters, in order. It
// decodes '+' as a space, as S3 does; the SDKs encode both as %XX.
func parseQuery(raw string) ([]param, error) {
	if raw == "" {
		return nil, nil
	}
	params := make([]param, 0, strings.Count(raw, "&")+1)
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		dk, err := unescapeQuery(k)
		if err != nil {
			return nil, err
		}
		dv, err := unescapeQuery(v)
		if err != nil {
			return nil, err
		}
		params = append(params, param{dk, dv})
	}
	return params, nil
}

func unescapeQuery(s string) (string, error) {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s, nil
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '+':
			b = append(b, ' ')
		case '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return "", errorf(ErrInvalidArgument, "the query string has a malformed percent-encoding")
			}
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			b = append(b, c)
		}
	}
	return string(b), nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

func first(params []param, key string) (string, bool) {
	for _, p := range params {
		if p.key == key {
			return p.value, true
		}
	}
	return "", false
}

// appendCanonicalQuery appends the canonical query string: every parameter
// (but X-Amz-Signature when skipSignature) URI-encoded, then sorted by
// encoded key and value. AWS sorts after encoding, which orders some pairs
// differently from sorting before.
func appendCanonicalQuery(b []byte, params []param, skipSignature bool) []byte {
	if len(params) == 0 {
		return b
	}
	enc := make([]param, 0, len(params))
	for _, p := range params {
		if skipSignature && p.key == "X-Amz-Signature" {
			continue
		}
		enc = append(enc, param{awsEscape(p.key, true), awsEscape(p.value, true)})
	}
	slices.SortFunc(enc, func(a, b param) int {
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		return strings.Compare(a.value, b.value)
	})
	for i, p := range enc {
		if i > 0 {
			b = append(b, '&')
		}
		b = append(b, p.key...)
		b = append(b, '=')
		b = append(b, p.value...)
	}
	return b
}

const upperhex = "0123456789ABCDEF"

// awsEscape percent-encodes every byte outside A-Z a-z 0-9 - _ . ~ (and
// '/' unless encodeSlash) with upper-case hex, as SigV4 requires.
func awsEscape(s string, encodeSlash bool) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) && (encodeSlash || s[i] != '/') {
			n++
		}
	}
	if n == 0 {
		return s
	}
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) || (!encodeSlash && c == '/') {
			b = append(b, c)
		} else {
			b = append(b, '%', upperhex[c>>4], upperhex[c&15])
		}
	}
	return string(b)
}

func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~'
}

// requestPath returns the path as the client sent it, still escaped: the
// request line's when r came from a server (so that a router that rewrote
// r.URL changes nothing), r.URL's escaped path otherwise.
func requestPath(r *http.Request) string {
	if u := r.RequestURI; strings.HasPrefix(u, "/") {
		if i := strings.IndexByte(u, '?'); i >= 0 {
			u = u[:i]
		}
		return u
	}
	if r.URL == nil {
		return "/"
	}
	return r.URL.EscapedPath()
}

// rawQuery returns the query as the client sent it.
func rawQuery(r *http.Request) string {
	if u := r.RequestURI; strings.HasPrefix(u, "/") {
		_, q, _ := strings.Cut(u, "?")
		return q
	}
	if r.URL == nil {
		return ""
	}
	return r.URL.RawQuery
}

// canonicalURI is the escaped path for S3 (which signs the path as sent,
// encoded once) and the escaped path escaped again for every other
// service, as the AWS SDKs sign them. An empty path is "/".
func canonicalURI(path string, s3 bool) string {
	if path == "" {
		return "/"
	}
	if s3 {
		return path
	}
	return awsEscape(path, false)
}

// appendCanonicalHeaders appends name:value\n for each signed header, the
// values of repeated headers joined by commas, each trimmed and with runs
// of spaces folded to one.
func appendCanonicalHeaders(b []byte, r *http.Request, headers []string) []byte {
	for _, name := range headers {
		b = append(b, name...)
		b = append(b, ':')
		for i, v := range headerValues(r, name) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendTrimmed(b, v)
		}
		b = append(b, '\n')
	}
	return b
}

func headerValues(r *http.Request, name string) []string {
	switch name {
	case "host":
		if r.Host != "" {
			return []string{r.Host}
		}
		if r.URL != nil {
			return []string{r.URL.Host}
		}
		return nil
	case "content-length":
		if vs := r.Header["Content-Length"]; len(vs) > 0 {
			return vs
		}
		if r.ContentLength >= 0 {
			return []string{strconv.FormatInt(r.ContentLength, 10)}
		}
		return nil
	case "transfer-encoding":
		// net/http moves it out of the header map.
		if vs := r.Header["Transfer-Encoding"]; len(vs) > 0 {
			return vs
		}
		return r.TransferEncoding
	}
	if len(name) <= 64 {
		var buf [64]byte
		// m[string(b)] does not allocate.
		if vs, ok := r.Header[string(canonicalKey(buf[:0], name))]; ok {
			return vs
		}
	} else if vs, ok := r.Header[textproto.CanonicalMIMEHeaderKey(name)]; ok {
		return vs
	}
	// A header map built by hand may hold a key that is not canonical.
	for k, vs := range r.Header {
		if strings.EqualFold(k, name) {
			return vs
		}
	}
	return nil
}

// canonicalKey appends textproto.CanonicalMIMEHeaderKey(name) for a
// lower-case token of SignedHeaders.
func canonicalKey(b []byte, name string) []byte {
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		b = append(b, c)
		upper = c == '-'
	}
	return b
}

// appendTrimmed appends v without leading and trailing white space and
// with each run of spaces folded into one, as the SDKs canonicalize values.
func appendTrimmed(b []byte, v string) []byte {
	v = strings.TrimSpace(v)
	space := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		b = append(b, c)
	}
	return b
}
