// Package storage is the S3-compatible object storage API: an
// http.Handler that speaks enough of Amazon S3's REST API (buckets,
// objects, ranges, conditional requests, copies, listings, multipart
// uploads) for aws-sdk-go-v2, minio-go, the AWS CLI and code written for
// S3 to work against it unchanged, with path-style addressing.
//
// Every request is authenticated with AWS Signature Version 4 (headers or
// a presigned URL, every streaming payload mode) by package sigv4, against
// the access keys Config.Lookup knows. Object metadata lives in a
// store.Objects, listed from there in key order; the bytes live in a
// blob.Store, each write under a fresh blob key, committed to the metadata
// only once the body has been read to its verified end, so a reader never
// sees half an object and an acknowledged object survives a crash. Bodies
// stream: no object is held in memory.
//
// Package storage never imports a store or blob implementation, the
// configuration, the app wiring, the gateway or any runtime: it is given
// interfaces and serves HTTP.
package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hostless/hostless/internal/blob"
	"github.com/hostless/hostless/internal/sigv4"
	"github.com/hostless/hostless/internal/store"
)

// Defaults and S3's limits.
const (
	// DefaultMaxObjectBytes is the largest object by default: S3's 5 GiB
	// for a single PUT (multipart objects share the limit here).
	DefaultMaxObjectBytes = 5 << 30
	// DefaultMinPartBytes is the smallest part but the last of a
	// multipart upload: S3's 5 MiB.
	DefaultMinPartBytes = 5 << 20
	// MaxParts is the highest part number.
	MaxParts = 10000
	// DefaultIdleTimeout is how long a request body or a response may stall
	// before the connection is dropped.
	DefaultIdleTimeout = time.Minute
	// maxXMLBody caps the XML bodies (DeleteObjects, CompleteMultipartUpload,
	// CreateBucket's configuration): a CompleteMultipartUpload of 10,000
	// parts with checksums fits.
	maxXMLBody = 4 << 20
	// maxDeleteObjects is the most keys one DeleteObjects names.
	maxDeleteObjects = 1000
	// maxUserMetadata is S3's 2 KB of x-amz-meta-* names and values.
	maxUserMetadata = 2048
	// maxDrain is the most of a refused request's body read to let its
	// client see the error.
	maxDrain = 32 << 20
	hostID   = "hostless"
	xmlns    = "http://s3.amazonaws.com/doc/2006-03-01/"
)

// Config configures a Handler. Objects, Blobs and Lookup are required; the
// zero values of the others mean the defaults.
type Config struct {
	// Objects stores buckets and object metadata.
	Objects store.Objects
	// Blobs stores the bytes of objects and parts.
	Blobs blob.Store
	// Lookup returns the secret of an access key ID.
	Lookup func(accessKeyID string) (secret string, ok bool)
	// Project owns the buckets (default "default").
	Project string
	// Region is what GetBucketLocation answers (default "us-east-1"); any
	// region in a signature is accepted.
	Region string
	// MaxObjectBytes is the largest object (default DefaultMaxObjectBytes).
	MaxObjectBytes int64
	// MinPartBytes is the smallest part but the last (default
	// DefaultMinPartBytes).
	MinPartBytes int64
	// IdleTimeout bounds each wait for request bytes and for the client to
	// take response bytes (default DefaultIdleTimeout).
	IdleTimeout time.Duration
	// Log receives server-side failures (never secrets); nil discards.
	Log *slog.Logger
	// Now is the clock signatures are checked against (default time.Now).
	Now func() time.Time
	// Emit, when set, publishes the platform events of objects
	// (EventCreated, EventDeleted) with S3's notification JSON as data.
	Emit func(name string, data []byte)
	// Settings, when set, stores the buckets' rules of the browser API.
	Settings store.Settings
	// SignKey, when set, signs the browser API's presigned URLs.
	SignKey []byte
	// Domain, when set, turns on virtual-hosted-style addressing: a
	// request to BUCKET.Domain (any port) names BUCKET, and its whole path
	// is the key. Path-style requests to any other host still work.
	Domain string
}

// Handler serves the S3 API. It is safe for concurrent use.
type Handler struct {
	cfg      Config
	verifier *sigv4.Verifier
	rules    ruleCache
	sessions sessions
	idPrefix string
	seq      atomic.Uint64
}

// New returns a Handler; it only allocates.
func New(cfg Config) *Handler {
	if cfg.Project == "" {
		cfg.Project = "default"
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.MaxObjectBytes <= 0 {
		cfg.MaxObjectBytes = DefaultMaxObjectBytes
	}
	if cfg.MinPartBytes <= 0 {
		cfg.MinPartBytes = DefaultMinPartBytes
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	cfg.Domain = strings.ToLower(strings.TrimSuffix(cfg.Domain, "."))
	h := &Handler{
		cfg:      cfg,
		verifier: &sigv4.Verifier{Service: "s3", S3: true, Lookup: cfg.Lookup},
		idPrefix: strings.ToUpper(hex.EncodeToString(b[:])),
	}
	h.verifier.LookupSession = h.sessions.lookup
	return h
}

// Prefixed returns a handler of the S3 API under a path prefix ("/s3"):
// path-style requests to PREFIX/BUCKET/KEY, signed with the whole path,
// as an SDK whose endpoint URL has that path signs them.
func (h *Handler) Prefixed(prefix string) http.Handler {
	prefix = strings.TrimSuffix(prefix, "/")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.serveHTTP(w, r, prefix) })
}

// request is one request being served.
type request struct {
	w      *responseWriter
	r      *http.Request
	ctx    context.Context
	id     string
	query  url.Values
	bucket string
	key    string
	hasKey bool
	// prefix is the path the API is served under (Prefixed), or "".
	prefix    string
	auth      *sigv4.Auth
	idle      time.Duration
	startedAt time.Time
	// allow, when set, is asked before an object is served (the browser
	// API's read rule).
	allow func(store.Object) error
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.serveHTTP(w, r, "") }

func (h *Handler) serveHTTP(w http.ResponseWriter, r *http.Request, prefix string) {
	id := h.idPrefix + strconv.FormatUint(h.seq.Add(1), 16)
	rw := &responseWriter{ResponseWriter: w}
	rw.Header().Set("X-Amz-Request-Id", id)
	rw.Header().Set("X-Amz-Id-2", hostID)
	rw.Header().Set("Server", "Hostless")
	req := &request{w: rw, r: r, ctx: r.Context(), id: id, idle: h.cfg.IdleTimeout, startedAt: time.Now(), prefix: prefix}
	err := h.serve(req)
	if err == nil {
		return
	}
	e, internal := toS3(err)
	if internal {
		h.cfg.Log.Error("s3 request failed", "request_id", id, "method", r.Method, "bucket", req.bucket, "key", show(req.key), "err", err)
	}
	if rw.wrote {
		// The response is under way: all a client can be told now is that
		// the connection ends early.
		panic(http.ErrAbortHandler)
	}
	if e.Status >= 400 && r.Body != nil && r.Body != http.NoBody {
		// A client sending a body reads no answer before it has sent it
		// all: take (and drop) a bounded rest, else close the connection,
		// which such a client may see as a reset.
		n, err := io.CopyN(io.Discard, req.body(), maxDrain)
		if err != io.EOF || n >= maxDrain {
			w.Header().Set("Connection", "close")
		}
	}
	writeError(rw, r, id, e)
}

func (h *Handler) serve(req *request) error {
	r := req.r
	// Authenticate before looking at anything else.
	auth, err := h.verifier.Verify(r, h.cfg.Now())
	if err != nil {
		return err
	}
	req.auth = auth
	if req.query, err = url.ParseQuery(r.URL.RawQuery); err != nil {
		return errInvalidArgument("The query string does not parse.")
	}
	path := r.URL.Path
	if req.prefix != "" {
		rest, ok := strings.CutPrefix(path, req.prefix)
		if !ok || rest != "" && rest[0] != '/' {
			return errInvalidArgument("The request path must start with %s/.", req.prefix)
		}
		path = "/" + strings.TrimPrefix(rest, "/")
	}
	if !strings.HasPrefix(path, "/") {
		return errInvalidArgument("The request path must start with /.")
	}
	if b, ok := h.hostBucket(r.Host); ok {
		req.bucket, req.key = b, path[1:]
		req.hasKey = req.key != ""
	} else {
		req.bucket, req.key, req.hasKey = strings.Cut(path[1:], "/")
	}
	if err := req.authorize(); err != nil {
		return err
	}
	if req.bucket == "" {
		if req.hasKey {
			return errInvalidArgument("The request path names no bucket.")
		}
		if r.Method != http.MethodGet {
			return errMethodNotAllowed
		}
		return h.listBuckets(req)
	}
	if e := validBucket(req.bucket); e != nil {
		if r.Method != http.MethodPut || req.hasKey {
			// Only CreateBucket says InvalidBucketName; elsewhere a bucket
			// that can't exist does not.
			return errNoSuchBucket(show(req.bucket))
		}
		return e
	}
	if !req.hasKey || req.key == "" {
		return h.bucketOp(req)
	}
	if e := validKey(req.bucket, req.key); e != nil {
		return e
	}
	return h.objectOp(req)
}

// hostBucket returns the bucket a virtual-hosted-style request names in
// its host (BUCKET.Domain), when a domain is configured.
func (h *Handler) hostBucket(host string) (string, bool) {
	if h.cfg.Domain == "" {
		return "", false
	}
	if hp, _, err := net.SplitHostPort(host); err == nil {
		host = hp
	}
	b, ok := strings.CutSuffix(strings.ToLower(strings.TrimSuffix(host, ".")), "."+h.cfg.Domain)
	return b, ok && b != ""
}

// Subresources this server does not implement; a request naming one gets
// NotImplemented rather than a misread as a plain object or listing call.
var unsupported = []string{
	"acl", "policy", "policyStatus", "cors", "lifecycle", "tagging", "versioning", "versions", "website",
	"encryption", "notification", "logging", "replication", "object-lock", "legal-hold", "retention",
	"accelerate", "requestPayment", "analytics", "inventory", "metrics", "intelligent-tiering",
	"ownershipControls", "publicAccessBlock", "restore", "select", "torrent", "attributes",
}

func (req *request) has(name string) bool {
	_, ok := req.query[name]
	return ok
}

func (req *request) unsupported() *Error {
	for _, s := range unsupported {
		if req.has(s) {
			return errNotImplemented("The ?" + s + " subresource")
		}
	}
	return nil
}

func (h *Handler) bucketOp(req *request) error {
	if e := req.unsupported(); e != nil {
		return e
	}
	switch req.r.Method {
	case http.MethodPut:
		return h.createBucket(req)
	case http.MethodHead:
		return h.headBucket(req)
	case http.MethodDelete:
		return h.deleteBucket(req)
	case http.MethodGet:
		switch {
		case req.has("location"):
			return h.bucketLocation(req)
		case req.has("uploads"):
			return errNotImplemented("ListMultipartUploads")
		case req.query.Get("list-type") == "2":
			return h.listObjects(req, true)
		}
		return h.listObjects(req, false)
	case http.MethodPost:
		if req.has("delete") {
			return h.deleteObjects(req)
		}
	}
	return errMethodNotAllowed
}

func (h *Handler) objectOp(req *request) error {
	if e := req.unsupported(); e != nil {
		return e
	}
	r := req.r
	upload := req.has("uploadId")
	switch r.Method {
	case http.MethodPut:
		if upload || req.has("partNumber") {
			if r.Header.Get("X-Amz-Copy-Source") != "" {
				return errNotImplemented("UploadPartCopy")
			}
			return h.uploadPart(req)
		}
		if r.Header.Get("X-Amz-Copy-Source") != "" {
			return h.copyObject(req)
		}
		return h.putObject(req)
	case http.MethodGet:
		if upload {
			return h.listParts(req)
		}
		return h.getObject(req, true)
	case http.MethodHead:
		return h.getObject(req, false)
	case http.MethodDelete:
		if upload {
			return h.abortUpload(req)
		}
		return h.deleteObject(req)
	case http.MethodPost:
		switch {
		case req.has("uploads"):
			return h.createUpload(req)
		case upload:
			return h.completeUpload(req)
		}
	}
	return errMethodNotAllowed
}

// bucket returns the request's bucket, or NoSuchBucket.
func (h *Handler) bucketExists(req *request, name string) error {
	_, err := h.cfg.Objects.GetBucket(req.ctx, h.cfg.Project, name)
	if errors.Is(err, store.ErrNotFound) {
		return errNoSuchBucket(name)
	}
	return err
}

// readSmallBody reads a bounded body whole (XML documents); it is
// authentic since sigv4's reader returned io.EOF.
func (req *request) readSmallBody(max int64) ([]byte, error) {
	if req.r.Body == nil {
		return nil, nil
	}
	if req.r.ContentLength > max {
		return nil, s3err(http.StatusBadRequest, "MaxMessageLengthExceeded", "Your request was too big: at most %d bytes.", max)
	}
	b, err := io.ReadAll(io.LimitReader(req.body(), max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, s3err(http.StatusBadRequest, "MaxMessageLengthExceeded", "Your request was too big: at most %d bytes.", max)
	}
	return b, nil
}

// body is the request body, each read bounded by the idle timeout.
func (req *request) body() io.Reader {
	return &idleReader{r: req.r.Body, rc: http.NewResponseController(req.w), idle: req.idle}
}

// idleReader extends the connection's read deadline before each read, so
// a stalled upload ends after the idle timeout while a slow but moving one
// goes on.
type idleReader struct {
	r    io.Reader
	rc   *http.ResponseController
	idle time.Duration
}

func (i *idleReader) Read(p []byte) (int, error) {
	_ = i.rc.SetReadDeadline(time.Now().Add(i.idle))
	return i.r.Read(p)
}

// responseWriter remembers whether the response has started.
type responseWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *responseWriter) WriteHeader(status int) {
	w.wrote = true
	w.ResponseWriter.WriteHeader(status)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// ReadFrom keeps the server's sendfile path for file-backed blobs.
func (w *responseWriter) ReadFrom(r io.Reader) (int64, error) {
	w.wrote = true
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{w.ResponseWriter}, r)
}

func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// newID returns a random identifier of 2n hex digits.
func newID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// timeXML formats a time as S3's XML documents do.
func timeXML(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
