// Package sigv4 verifies AWS Signature Version 4 requests on the server
// side, so that AWS SDKs and tools (the Lambda Invoke API, S3 clients) can
// call Hostless with an access key pair configured on the server.
//
// A Verifier checks a request signed in its Authorization header or
// presigned in its query string, against the secret its Lookup returns for
// the access key, and installs a reader on the request body that checks the
// payload against what was signed: a literal X-Amz-Content-Sha256 is
// checked as the body streams through, and an aws-chunked body
// (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER], as minio-go sends over
// plain HTTP, and STREAMING-UNSIGNED-PAYLOAD-TRAILER, as aws-sdk-go-v2
// sends over HTTPS) is decoded with each chunk's signature and the
// trailing checksum verified. A body is authentic only if reading it ends
// in io.EOF: a caller keeps what it read as provisional (a temporary file,
// a buffer) until then.
//
// Errors are *Error values with AWS's error codes and an HTTP status;
// their messages never contain a secret, a signature or a body.
//
// The package knows nothing of where keys are stored, of routing or of
// rendering errors; it imports only the standard library.
package sigv4

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Algorithm is the only signing algorithm Verify accepts.
const Algorithm = "AWS4-HMAC-SHA256"

// The special values of X-Amz-Content-Sha256.
const (
	UnsignedPayload                 = "UNSIGNED-PAYLOAD"
	StreamingPayload                = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	StreamingPayloadTrailer         = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	StreamingUnsignedPayloadTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
)

// Defaults and limits.
const (
	// DefaultMaxSkew is how far a request's time may be from the server's:
	// AWS's 15 minutes.
	DefaultMaxSkew = 15 * time.Minute
	// MaxPresignExpires is the longest X-Amz-Expires: 7 days.
	MaxPresignExpires = 7 * 24 * time.Hour
	// DefaultMaxBodyBytes is the largest body Verify reads to hash by
	// default: Lambda's 6 MiB synchronous payload limit.
	DefaultMaxBodyBytes = 6 << 20
	// DefaultMaxChunkBytes is the largest aws-chunked chunk by default. The
	// SDKs send 64 KiB chunks; a signed chunk is held in memory until its
	// signature is checked.
	DefaultMaxChunkBytes = 8 << 20
)

const (
	timeFormat  = "20060102T150405Z"
	dateFormat  = "20060102"
	emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

// Verifier verifies SigV4 requests for one service. Its fields are
// configuration, read-only once Verify has been called; the zero values
// of the optional ones mean the defaults. A Verifier is safe for concurrent
// use and must not be copied after first use.
type Verifier struct {
	// Service is the service the credential scope must name: "lambda",
	// "s3". Required.
	Service string
	// Region, when set, is the region the credential scope must name;
	// empty accepts any region, since a client's region names no place
	// here.
	Region string
	// S3 applies Amazon S3's rules: the path is signed as sent (encoded
	// once) instead of encoded twice; X-Amz-Content-Sha256 may be
	// UNSIGNED-PAYLOAD or one of the aws-chunked streaming modes; and a
	// presigned URL without X-Amz-Content-Sha256 signs UNSIGNED-PAYLOAD.
	// Without S3, the payload is always signed: by a literal
	// X-Amz-Content-Sha256, or by the hash of the body itself.
	S3 bool
	// Lookup returns the secret access key of an access key ID. Required.
	Lookup func(accessKeyID string) (secret string, ok bool)
	// LookupSession, when set, returns the secret of temporary
	// credentials: an access key ID with the session token the request
	// carries (X-Amz-Security-Token, which must then be signed), and an
	// opaque session value for the caller (Auth.Session). A request with
	// a token is checked only against LookupSession; without
	// LookupSession, a token is ignored and the key goes to Lookup.
	LookupSession func(accessKeyID, token string) (secret string, session any, ok bool)
	// MaxSkew is how far the request time may be from now (default 15m).
	MaxSkew time.Duration
	// MaxBodyBytes caps the body Verify reads into memory to hash when
	// the request carries no X-Amz-Content-Sha256 (the case of every
	// non-S3 SDK request); default DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxChunkBytes caps one chunk of an aws-chunked body (default
	// DefaultMaxChunkBytes).
	MaxChunkBytes int

	keys keyCache
}

// Payload says how the request's payload is protected.
type Payload int

const (
	// PayloadSigned: X-Amz-Content-Sha256 is the body's SHA-256, or the
	// body was hashed into the signature. r.Body fails unless it matches.
	PayloadSigned Payload = iota
	// PayloadUnsigned: UNSIGNED-PAYLOAD; only the headers are signed.
	PayloadUnsigned
	// PayloadStreaming: STREAMING-AWS4-HMAC-SHA256-PAYLOAD; r.Body is the
	// decoded aws-chunked body, every chunk signed.
	PayloadStreaming
	// PayloadStreamingTrailer: STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER;
	// as PayloadStreaming, with a signed trailer.
	PayloadStreamingTrailer
	// PayloadStreamingUnsignedTrailer: STREAMING-UNSIGNED-PAYLOAD-TRAILER;
	// r.Body is the decoded aws-chunked body, unsigned but checked against
	// its trailing checksum.
	PayloadStreamingUnsignedTrailer
)

// Chunked reports whether the body was aws-chunked: its Content-Encoding
// carries aws-chunked, which a store of the object must drop.
func (p Payload) Chunked() bool { return p >= PayloadStreaming }

func (p Payload) String() string {
	switch p {
	case PayloadSigned:
		return "signed"
	case PayloadUnsigned:
		return UnsignedPayload
	case PayloadStreaming:
		return StreamingPayload
	case PayloadStreamingTrailer:
		return StreamingPayloadTrailer
	case PayloadStreamingUnsignedTrailer:
		return StreamingUnsignedPayloadTrailer
	}
	return "Payload(" + strconv.Itoa(int(p)) + ")"
}

// Auth is an authenticated request.
type Auth struct {
	// AccessKeyID is the access key that signed the request.
	AccessKeyID string
	// Region and Service are the credential scope's.
	Region, Service string
	// Time is the signing time (X-Amz-Date).
	Time time.Time
	// Presigned is true for query-string authentication; Expires is then
	// when the URL stops being valid.
	Presigned bool
	Expires   time.Time
	// Payload says how the body is protected.
	Payload Payload
	// Body holds the body when Verify read it to hash it (no
	// X-Amz-Content-Sha256); r.Body then replays the same bytes. Nil
	// otherwise.
	Body []byte
	// DecodedLength is X-Amz-Decoded-Content-Length of an aws-chunked
	// body, or -1.
	DecodedLength int64
	// Session is what Verifier.LookupSession returned for temporary
	// credentials; nil for a request signed with a long-term key.
	Session any

	chunked *chunkedReader
}

// Trailer returns the trailing headers of an aws-chunked body (e.g.
// X-Amz-Checksum-Crc32), once r.Body has returned io.EOF; nil before and
// for other bodies.
func (a *Auth) Trailer() http.Header {
	if a.chunked == nil || !a.chunked.finished() {
		return nil
	}
	return a.chunked.trailer
}

// Verify authenticates r at time now. On success it returns who signed the
// request and replaces r.Body with a reader that checks the payload (see
// Payload); for an aws-chunked body r.ContentLength becomes the decoded
// length (-1 if unknown). Reading the new r.Body fails with an *Error
// when the payload is not what was signed: the body is authentic only if
// reading it ends in io.EOF.
//
// Checks run cheapest first: the request's form, its time, its scope and
// its access key are checked before anything is hashed, and a body is
// read only when its hash is part of the signature and the request did
// not send it (non-S3 services), at most MaxBodyBytes.
func (v *Verifier) Verify(r *http.Request, now time.Time) (*Auth, error) {
	if v.Service == "" || v.Lookup == nil {
		return nil, errors.New("sigv4: Verifier needs a Service and a Lookup")
	}
	params, err := parseQuery(rawQuery(r))
	if err != nil {
		return nil, err
	}
	req, err := v.parse(r, params)
	if err != nil {
		return nil, err
	}
	if err := v.checkTime(req, now); err != nil {
		return nil, err
	}
	if err := v.checkScope(req); err != nil {
		return nil, err
	}
	auth := &Auth{
		AccessKeyID:   req.accessKeyID,
		Region:        req.region,
		Service:       req.service,
		Time:          req.time,
		Presigned:     req.presigned,
		DecodedLength: -1,
	}
	secret, err := v.secret(r, params, req, auth)
	if err != nil {
		return nil, err
	}
	if req.presigned {
		auth.Expires = req.time.Add(req.expires)
	}

	payloadHash, mode, err := v.payloadHash(r, req, params)
	if err != nil {
		return nil, err
	}
	auth.Payload = mode
	if mode == PayloadSigned && payloadHash == "" {
		// The hash of the body is part of the canonical request and the
		// client did not send it: read the body (bounded) to compute it.
		body, err := readBounded(r, v.maxBody())
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(body)
		payloadHash = hex.EncodeToString(sum[:])
		auth.Body = body
	}

	key := v.signingKey(secret, req.date, req.region, req.service)
	creq := buildCanonicalRequest(r, params, req, payloadHash, v.S3)
	creqSum := sha256.Sum256(creq)
	sts := make([]byte, 0, len(Algorithm)+len(req.amzDate)+len(req.scope)+64+3)
	sts = append(sts, Algorithm+"\n"...)
	sts = append(sts, req.amzDate...)
	sts = append(sts, '\n')
	sts = append(sts, req.scope...)
	sts = append(sts, '\n')
	sts = hex.AppendEncode(sts, creqSum[:])
	sig := hmacSHA256(key[:], sts)
	if !hmac.Equal(sig[:], req.signature[:]) {
		e := errorf(ErrSignatureDoesNotMatch, "%s", ErrSignatureDoesNotMatch.Message)
		e.AccessKeyID = req.accessKeyID
		e.CanonicalRequest = string(creq)
		e.StringToSign = string(sts)
		return nil, e
	}
	v.keys.put(secret, req.date, req.region, req.service, key)

	switch mode {
	case PayloadSigned:
		if auth.Body != nil {
			r.Body = replay(auth.Body, r.Body)
			break
		}
		want, _ := hex.DecodeString(payloadHash)
		if r.Body == nil || r.Body == http.NoBody {
			if !strings.EqualFold(payloadHash, emptySHA256) {
				return nil, errorf(ErrContentSHA256Mismatch, "%s: the body is empty", ErrContentSHA256Mismatch.Message)
			}
			break
		}
		length := r.ContentLength
		if length == 0 {
			length = -1 // on a client's request, 0 with a body means unknown
		}
		r.Body = newHashReader(r.Body, want, length)
	case PayloadStreaming, PayloadStreamingTrailer, PayloadStreamingUnsignedTrailer:
		cr, err := v.newChunkedReader(r, mode, key, req.amzDate, req.scope, hex.EncodeToString(sig[:]))
		if err != nil {
			return nil, err
		}
		auth.chunked = cr
		auth.DecodedLength = cr.decodedLen
		r.Body = cr
		r.ContentLength = cr.decodedLen
	}
	return auth, nil
}

// secret returns the secret that signs the request: a session's, when it
// carries a security token and the verifier knows sessions, else the
// long-term key's.
func (v *Verifier) secret(r *http.Request, params []param, req request, auth *Auth) (string, error) {
	if v.LookupSession != nil {
		token, signed := "", false
		if req.presigned {
			// Every query parameter but the signature is signed.
			token, signed = first(params, "X-Amz-Security-Token")
		} else if token = r.Header.Get("X-Amz-Security-Token"); token != "" {
			for _, h := range req.headers {
				signed = signed || h == "x-amz-security-token"
			}
		}
		if token != "" {
			if !signed {
				return "", errorf(ErrInvalidToken, "the X-Amz-Security-Token header must be among the signed headers")
			}
			secret, session, ok := v.LookupSession(req.accessKeyID, token)
			if !ok {
				e := errorf(ErrInvalidToken, "%s", ErrInvalidToken.Message)
				e.AccessKeyID = req.accessKeyID
				return "", e
			}
			auth.Session = session
			return secret, nil
		}
	}
	secret, ok := v.Lookup(req.accessKeyID)
	if !ok {
		e := errorf(ErrInvalidAccessKeyID, "%s", ErrInvalidAccessKeyID.Message)
		e.AccessKeyID = req.accessKeyID
		return "", e
	}
	return secret, nil
}

// request is what parse extracts from the request's authentication.
type request struct {
	authorization
	presigned bool
	amzDate   string // the timestamp of the string to sign
	time      time.Time
	expires   time.Duration
}

func (v *Verifier) parse(r *http.Request, params []param) (request, error) {
	var req request
	h := r.Header.Get("Authorization")
	_, hasQuerySig := first(params, "X-Amz-Signature")
	_, hasQueryAlg := first(params, "X-Amz-Algorithm")
	_, hasQueryCred := first(params, "X-Amz-Credential")
	presigned := hasQuerySig || hasQueryAlg || hasQueryCred
	switch {
	case h != "" && presigned:
		return req, errorf(ErrInvalidArgument, "only one auth mechanism allowed: the Authorization header or the X-Amz-* query parameters, not both")
	case h != "":
		var err error
		if req.authorization, err = parseAuthorization(h); err != nil {
			return req, err
		}
		if d := r.Header.Get("X-Amz-Date"); d != "" {
			t, err := time.Parse(timeFormat, d)
			if err != nil {
				return req, errorf(ErrInvalidDate, "X-Amz-Date must be in the ISO 8601 basic format YYYYMMDDTHHMMSSZ")
			}
			req.time, req.amzDate = t, d
		} else if d := r.Header.Get("Date"); d != "" {
			t, err := http.ParseTime(d)
			if err != nil {
				return req, errorf(ErrInvalidDate, "the Date header is not an HTTP date, and there is no X-Amz-Date")
			}
			req.time, req.amzDate = t.UTC(), t.UTC().Format(timeFormat)
		} else {
			return req, errorf(ErrInvalidDate, "the request has no X-Amz-Date header (nor Date): AWS authentication requires one")
		}
		if req.date != req.amzDate[:8] {
			return req, errorf(ErrMalformedHeader, "the credential's date %s is not the request's date %s", show(req.date), show(req.amzDate[:8]))
		}
	case presigned:
		return req, parsePresigned(&req, params)
	default:
		return req, ErrMissingAuth
	}
	return req, nil
}

func parsePresigned(req *request, params []param) error {
	get := func(name string) (string, error) {
		v, ok := first(params, name)
		if !ok || v == "" {
			return "", errorf(ErrMalformedQuery, "the presigned URL has no %s query parameter", name)
		}
		return v, nil
	}
	alg, err := get("X-Amz-Algorithm")
	if err != nil {
		return err
	}
	if alg != Algorithm {
		return errorf(ErrUnsupportedAuth, "X-Amz-Algorithm only supports %s", Algorithm)
	}
	req.presigned = true
	cred, err := get("X-Amz-Credential")
	if err != nil {
		return err
	}
	if req.credential, err = parseCredential(cred, ErrMalformedQuery); err != nil {
		return err
	}
	d, err := get("X-Amz-Date")
	if err != nil {
		return err
	}
	if req.time, err = time.Parse(timeFormat, d); err != nil {
		return errorf(ErrMalformedQuery, "X-Amz-Date must be in the ISO 8601 basic format YYYYMMDDTHHMMSSZ")
	}
	req.amzDate = d
	if req.date != d[:8] {
		return errorf(ErrMalformedQuery, "the credential's date %s is not the date of X-Amz-Date %s", show(req.date), show(d[:8]))
	}
	exp, err := get("X-Amz-Expires")
	if err != nil {
		return err
	}
	secs, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || secs < 1 || secs > int64(MaxPresignExpires/time.Second) {
		return errorf(ErrMalformedQuery, "X-Amz-Expires must be a number of seconds from 1 to %d (7 days)", int64(MaxPresignExpires/time.Second))
	}
	req.expires = time.Duration(secs) * time.Second
	signed, err := get("X-Amz-SignedHeaders")
	if err != nil {
		return err
	}
	if req.headers, err = parseSignedHeaders(signed, ErrMalformedQuery); err != nil {
		return err
	}
	req.signedHeaders = signed
	sig, err := get("X-Amz-Signature")
	if err != nil {
		return err
	}
	req.signature, err = parseSignature(sig, ErrMalformedQuery)
	return err
}

func (v *Verifier) maxSkew() time.Duration {
	if v.MaxSkew > 0 {
		return v.MaxSkew
	}
	return DefaultMaxSkew
}

func (v *Verifier) maxBody() int64 {
	if v.MaxBodyBytes > 0 {
		return v.MaxBodyBytes
	}
	return DefaultMaxBodyBytes
}

func (v *Verifier) maxChunk() int {
	if v.MaxChunkBytes > 0 {
		return v.MaxChunkBytes
	}
	return DefaultMaxChunkBytes
}

func (v *Verifier) checkTime(req request, now time.Time) error {
	skew := v.maxSkew()
	if req.presigned {
		if req.time.Sub(now) > skew {
			return errorf(ErrNotYetValid, "request is not valid yet: it was signed for %s, the server's time is %s", req.time.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
		}
		if expiry := req.time.Add(req.expires); now.After(expiry) {
			return errorf(ErrExpired, "request has expired: the presigned URL was valid until %s, the server's time is %s", expiry.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
		}
		return nil
	}
	if d := now.Sub(req.time); d > skew || d < -skew {
		return errorf(ErrTimeTooSkewed, "the difference between the request time (%s) and the server's time (%s) is larger than the %s allowed", req.time.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), skew)
	}
	return nil
}

func (v *Verifier) checkScope(req request) error {
	kind := ErrMalformedHeader
	if req.presigned {
		kind = ErrMalformedQuery
	}
	if req.service != v.Service {
		return errorf(kind, "the credential's service %s is wrong; expecting %s", show(req.service), show(v.Service))
	}
	if v.Region != "" && req.region != v.Region {
		return errorf(kind, "the region %s is wrong; expecting %s", show(req.region), show(v.Region))
	}
	return nil
}

// payloadHash returns the payload hash of the canonical request and the
// payload mode. An empty hash with PayloadSigned means the body must be
// hashed.
func (v *Verifier) payloadHash(r *http.Request, req request, params []param) (string, Payload, error) {
	h := r.Header.Get("X-Amz-Content-Sha256")
	if h == "" && req.presigned {
		h, _ = first(params, "X-Amz-Content-Sha256")
	}
	switch h {
	case "":
		if req.presigned && v.S3 {
			return UnsignedPayload, PayloadUnsigned, nil
		}
		return "", PayloadSigned, nil
	case UnsignedPayload:
		if !v.S3 {
			return "", 0, errorf(ErrInvalidArgument, "x-amz-content-sha256 %s is not accepted by %s: sign the payload", UnsignedPayload, show(v.Service))
		}
		return h, PayloadUnsigned, nil
	case StreamingPayload, StreamingPayloadTrailer, StreamingUnsignedPayloadTrailer:
		if !v.S3 {
			return "", 0, errorf(ErrInvalidArgument, "x-amz-content-sha256 %s is not accepted by %s: sign the payload", h, show(v.Service))
		}
		if req.presigned {
			return "", 0, errorf(ErrInvalidArgument, "x-amz-content-sha256 %s needs an Authorization header, not a presigned URL", h)
		}
		mode := map[string]Payload{
			StreamingPayload:                PayloadStreaming,
			StreamingPayloadTrailer:         PayloadStreamingTrailer,
			StreamingUnsignedPayloadTrailer: PayloadStreamingUnsignedTrailer,
		}[h]
		return h, mode, nil
	}
	if len(h) != 64 || strings.IndexFunc(h, func(c rune) bool { return c > 0x7f || !isHex(byte(c)) }) >= 0 {
		return "", 0, errorf(ErrInvalidArgument, "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, STREAMING-UNSIGNED-PAYLOAD-TRAILER or the hex of a SHA-256")
	}
	return h, PayloadSigned, nil
}

// buildCanonicalRequest returns
//
//	METHOD\nURI\nQUERY\nHEADERS\n\nSIGNED-HEADERS\nPAYLOAD-HASH
func buildCanonicalRequest(r *http.Request, params []param, req request, payloadHash string, s3 bool) []byte {
	b := make([]byte, 0, 512)
	b = append(b, r.Method...)
	b = append(b, '\n')
	b = append(b, canonicalURI(requestPath(r), s3)...)
	b = append(b, '\n')
	b = appendCanonicalQuery(b, params, req.presigned)
	b = append(b, '\n')
	b = appendCanonicalHeaders(b, r, req.headers)
	b = append(b, '\n')
	b = append(b, req.signedHeaders...)
	b = append(b, '\n')
	b = append(b, payloadHash...)
	return b
}

func hmacSHA256(key, data []byte) [32]byte {
	m := hmac.New(sha256.New, key)
	m.Write(data)
	var out [32]byte
	m.Sum(out[:0])
	return out
}

// signingKey derives (or finds in the cache) the key of a secret for a
// date, region and service.
func (v *Verifier) signingKey(secret, date, region, service string) [32]byte {
	if k, ok := v.keys.get(secret, date, region, service); ok {
		return k
	}
	return deriveKey(secret, date, region, service)
}

func deriveKey(secret, date, region, service string) [32]byte {
	k := hmacSHA256([]byte("AWS4"+secret), []byte(date))
	k = hmacSHA256(k[:], []byte(region))
	k = hmacSHA256(k[:], []byte(service))
	return hmacSHA256(k[:], []byte("aws4_request"))
}

// keyCache keeps derived signing keys, which change once a day per key:
// four HMACs saved per request. Only keys that verified a signature go in,
// so unauthenticated requests can't churn it; it is bounded and simply
// emptied when full.
type keyCache struct {
	mu sync.Mutex
	m  map[cacheKey][32]byte
}

type cacheKey struct{ secret, date, region, service string }

const maxCachedKeys = 1024

func (c *keyCache) get(secret, date, region, service string) ([32]byte, bool) {
	c.mu.Lock()
	k, ok := c.m[cacheKey{secret, date, region, service}]
	c.mu.Unlock()
	return k, ok
}

func (c *keyCache) put(secret, date, region, service string, key [32]byte) {
	ck := cacheKey{secret, date, region, service}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[ck]; ok {
		return
	}
	if c.m == nil || len(c.m) >= maxCachedKeys {
		c.m = make(map[cacheKey][32]byte)
	}
	c.m[ck] = key
}

// readBounded reads r.Body whole, failing with ErrBodyTooLarge past max.
func readBounded(r *http.Request, max int64) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return []byte{}, nil
	}
	if r.ContentLength > max {
		return nil, errorf(ErrBodyTooLarge, "the request body of %d bytes is over the %d bytes this server hashes; sign it with X-Amz-Content-Sha256", r.ContentLength, max)
	}
	if r.ContentLength > 0 {
		// The common case: read exactly Content-Length bytes, then make
		// sure nothing follows.
		buf := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			return nil, err
		}
		var one [1]byte
		if n, err := r.Body.Read(one[:]); n > 0 || (err != nil && err != io.EOF) {
			if err == nil {
				err = errorf(ErrInvalidArgument, "the request body is longer than its Content-Length")
			}
			return nil, err
		}
		return buf, nil
	}
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(r.Body, max+1))
	if err != nil {
		return nil, err
	}
	if n > max {
		return nil, errorf(ErrBodyTooLarge, "the request body is over the %d bytes this server hashes; sign it with X-Amz-Content-Sha256", max)
	}
	return buf.Bytes(), nil
}

// replay returns a body that reads b and closes orig.
func replay(b []byte, orig io.ReadCloser) io.ReadCloser {
	return &replayBody{Reader: bytes.NewReader(b), orig: orig}
}

type replayBody struct {
	*bytes.Reader
	orig io.ReadCloser
}

func (b *replayBody) Close() error {
	if b.orig == nil {
		return nil
	}
	return b.orig.Close()
}

// hashReader passes a body through and fails at its end unless it hashes
// to want. The read that completes the body (io.EOF, or the last of
// Content-Length bytes) returns no data when the hash is wrong, so a
// reader that stops at Content-Length never gets the whole body unchecked.
type hashReader struct {
	body    io.ReadCloser
	h       hashState
	want    []byte
	length  int64 // Content-Length, or -1
	n       int64
	checked bool
	err     error
}

type hashState interface {
	io.Writer
	Sum([]byte) []byte
}

func newHashReader(body io.ReadCloser, want []byte, length int64) *hashReader {
	return &hashReader{body: body, h: sha256.New(), want: want, length: length}
}

func (h *hashReader) Read(p []byte) (int, error) {
	if h.err != nil {
		return 0, h.err
	}
	n, err := h.body.Read(p)
	h.n += int64(n)
	if h.length >= 0 && h.n > h.length {
		h.err = errorf(ErrContentSHA256Mismatch, "the body is longer than its Content-Length")
		return 0, h.err
	}
	h.h.Write(p[:n])
	end := err == io.EOF || (h.length >= 0 && h.n == h.length)
	if end && !h.checked {
		h.checked = true
		var sum [32]byte
		if !bytes.Equal(h.h.Sum(sum[:0]), h.want) {
			h.err = errorf(ErrContentSHA256Mismatch, "%s", ErrContentSHA256Mismatch.Message)
			return 0, h.err
		}
	}
	if err != nil {
		h.err = err
	}
	return n, err
}

func (h *hashReader) Close() error { return h.body.Close() }
