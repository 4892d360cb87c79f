package storage

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hostless/hostless/internal/blob"
	"github.com/hostless/hostless/internal/store"
)

// storedHeaders are the request headers an object keeps and serves back.
var storedHeaders = []string{"Cache-Control", "Content-Disposition", "Content-Encoding", "Content-Language", "Expires"}

// metaFromHeaders reads an object's Content-Type, user metadata and stored
// headers from a request.
func metaFromHeaders(h http.Header) (store.ObjectMeta, error) {
	m := store.ObjectMeta{ContentType: h.Get("Content-Type")}
	size := 0
	const prefix = "x-amz-meta-"
	for name, vs := range h {
		if len(name) <= len(prefix) || !strings.EqualFold(name[:len(prefix)], prefix) {
			continue
		}
		n := strings.ToLower(name[len(prefix):])
		v := strings.Join(vs, ",")
		size += len(n) + len(v)
		if size > maxUserMetadata {
			return m, errMetadataTooLarge
		}
		if m.Metadata == nil {
			m.Metadata = map[string]string{}
		}
		m.Metadata[n] = v
	}
	for _, name := range storedHeaders {
		v := h.Get(name)
		if name == "Content-Encoding" {
			v = dropAWSChunked(v)
		}
		if v == "" {
			continue
		}
		if m.Headers == nil {
			m.Headers = map[string]string{}
		}
		m.Headers[name] = v
	}
	return m, nil
}

// dropAWSChunked removes the aws-chunked coding, which describes the
// upload, not the object.
func dropAWSChunked(ce string) string {
	if !strings.Contains(ce, "aws-chunked") {
		return ce
	}
	var keep []string
	for c := range strings.SplitSeq(ce, ",") {
		if c = strings.TrimSpace(c); c != "" && c != "aws-chunked" {
			keep = append(keep, c)
		}
	}
	return strings.Join(keep, ",")
}

// written is a blob just stored.
type written struct {
	key  string
	size int64
	md5  []byte
}

func (w written) etag() string { return hex.EncodeToString(w.md5) }

// writeBlob streams r into a new blob under prefix, failing (with nothing
// stored) unless r ends after exactly size bytes (size < 0: any size up
// to max) and, when wantMD5 is set, the bytes hash to it.
func (h *Handler) writeBlob(ctx context.Context, prefix string, r io.Reader, size, max int64, wantMD5 []byte) (written, error) {
	cr := &checkedReader{r: r, size: size, max: max, md5: newMD5Stream(), want: wantMD5}
	defer cr.md5.stop()
	key := prefix + newID(16)
	info, err := h.cfg.Blobs.Put(ctx, key, cr)
	if cr.err != nil {
		return written{}, cr.err // the client's fault, not the blob store's
	}
	if err != nil {
		return written{}, err
	}
	return written{key: key, size: info.Size, md5: cr.md5.Sum()}, nil
}

// checkedReader passes a body through, counting and hashing it, and turns
// its end into an error unless it is what the request announced.
type checkedReader struct {
	r    io.Reader
	size int64 // expected, or -1
	max  int64
	n    int64
	md5  *md5Stream
	want []byte
	err  error
}

func (c *checkedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.md5.Write(p[:n])
	switch {
	case c.n > c.max:
		c.err = errEntityTooLarge(c.max)
	case c.size >= 0 && c.n > c.size:
		c.err = errIncompleteBody
	case err == io.EOF && c.size >= 0 && c.n != c.size:
		c.err = errIncompleteBody
	case err == io.EOF && c.want != nil && !bytes.Equal(c.md5.Sum(), c.want):
		c.err = errBadDigest
	case err != nil && err != io.EOF:
		c.err = err
	}
	if c.err != nil {
		return 0, c.err
	}
	return n, err
}

// contentMD5 decodes a Content-MD5 header; nil when there is none.
func contentMD5(h http.Header) ([]byte, error) {
	v := h.Get("Content-Md5")
	if v == "" {
		return nil, nil
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil || len(b) != md5.Size {
		return nil, errInvalidDigest
	}
	return b, nil
}

// bodySize returns the announced size of the request's payload, or -1
// when it is unknown (an aws-chunked body without a decoded length, or a
// plain body in HTTP chunked encoding, as aws-sdk-go-v2 sends unseekable
// bodies over HTTPS); the limit is then checked as the body streams.
func (req *request) bodySize(limit int64) (int64, error) {
	n := req.r.ContentLength
	if req.auth.Payload.Chunked() {
		n = req.auth.DecodedLength
	}
	if n > limit {
		return 0, errEntityTooLarge(limit)
	}
	return max(n, -1), nil
}

// deleteBlobs deletes blobs no row names any more. A failure leaves
// garbage, not damage: it is logged.
func (h *Handler) deleteBlobs(ctx context.Context, reqID string, keys ...string) {
	for _, k := range keys {
		if k == "" {
			continue
		}
		if err := h.cfg.Blobs.Delete(ctx, k); err != nil && !errors.Is(err, blob.ErrNotFound) {
			h.cfg.Log.Warn("s3: delete an obsolete blob", "request_id", reqID, "blob", k, "err", err)
		}
	}
}

// commitObject stores o's metadata, frees the blob it replaced and emits
// the event (an S3 eventName such as "ObjectCreated:Put"); if the metadata
// can't be stored, o's own blob goes.
func (h *Handler) commitObject(ctx context.Context, reqID string, o store.Object, event string) error {
	old, err := h.cfg.Objects.PutObject(ctx, o)
	if err != nil {
		h.deleteBlobs(ctx, reqID, o.BlobKey)
		if errors.Is(err, store.ErrNotFound) {
			return errNoSuchBucket(o.Bucket)
		}
		return err
	}
	h.deleteBlobs(ctx, reqID, old)
	h.emitObject(event, o)
	return nil
}

// writeObject is the one way an object's bytes come in whole, for the S3
// API and the browser API alike: it streams body (size bytes, or -1 for
// any size up to the limit; hashing to wantMD5 when set) into a new blob,
// then swaps the metadata row, then frees the replaced blob, so a reader
// sees the old object or the new one, never a part.
func (h *Handler) writeObject(ctx context.Context, reqID, bucket, key string, meta store.ObjectMeta, body io.Reader, size int64, wantMD5 []byte) (store.Object, error) {
	wr, err := h.writeBlob(ctx, "obj/", body, size, h.cfg.MaxObjectBytes, wantMD5)
	if err != nil {
		return store.Object{}, err
	}
	o := store.Object{
		Project: h.cfg.Project, Bucket: bucket, Key: key, Size: wr.size, ETag: wr.etag(),
		ModTime: now(), BlobKey: wr.key, ObjectMeta: meta,
	}
	if err := h.commitObject(ctx, reqID, o, eventPut); err != nil {
		return store.Object{}, err
	}
	return o, nil
}

// removeObject deletes an object, frees its blob and emits the event; it
// returns store.ErrNotFound when there was none.
func (h *Handler) removeObject(ctx context.Context, reqID, bucket, key string) error {
	blobKey, err := h.cfg.Objects.DeleteObject(ctx, h.cfg.Project, bucket, key)
	if err != nil {
		return err
	}
	h.deleteBlobs(ctx, reqID, blobKey)
	h.emitObject(eventDelete, store.Object{Bucket: bucket, Key: key})
	return nil
}

func (h *Handler) putObject(req *request) error {
	r := req.r
	if err := h.bucketExists(req, req.bucket); err != nil {
		return err
	}
	meta, err := metaFromHeaders(r.Header)
	if err != nil {
		return err
	}
	size, err := req.bodySize(h.cfg.MaxObjectBytes)
	if err != nil {
		return err
	}
	want, err := contentMD5(r.Header)
	if err != nil {
		return err
	}
	if cond := r.Header.Get("If-None-Match"); cond != "" {
		// A conditional write: only "*" (create only) is supported.
		if cond != "*" {
			return errNotImplemented("If-None-Match other than * on PUT")
		}
		if _, err := h.cfg.Objects.GetObject(req.ctx, h.cfg.Project, req.bucket, req.key); err == nil {
			return errPrecondition
		}
	}
	o, err := h.writeObject(req.ctx, req.id, req.bucket, req.key, meta, req.body(), size, want)
	if err != nil {
		return err
	}
	req.w.Header().Set("ETag", quote(o.ETag))
	req.w.WriteHeader(http.StatusOK)
	return nil
}

// now is the modification time stamped on writes, at the microsecond
// precision the stores keep.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func quote(etag string) string { return `"` + etag + `"` }

// lookup returns an object, or NoSuchKey / NoSuchBucket.
func (h *Handler) lookup(req *request, bucket, key string) (store.Object, error) {
	o, err := h.cfg.Objects.GetObject(req.ctx, h.cfg.Project, bucket, key)
	if errors.Is(err, store.ErrNotFound) {
		if err := h.bucketExists(req, bucket); err != nil {
			return o, err
		}
		return o, errNoSuchKey(bucket, key)
	}
	return o, err
}

// open returns an object's metadata and its bytes. The blob an object row
// names is deleted right after the row is replaced, so a reader that lost
// that race reads the row again.
func (h *Handler) open(req *request, bucket, key string, check func(store.Object) error) (store.Object, io.ReadCloser, error) {
	for range 4 {
		o, err := h.lookup(req, bucket, key)
		if err != nil {
			return o, nil, err
		}
		if err := check(o); err != nil {
			return o, nil, err
		}
		rc, info, err := h.cfg.Blobs.Get(req.ctx, o.BlobKey)
		if errors.Is(err, blob.ErrNotFound) {
			continue
		}
		if err != nil {
			return o, nil, err
		}
		if info.Size != o.Size {
			rc.Close()
			return o, nil, errors.New("blob " + o.BlobKey + " has " + strconv.FormatInt(info.Size, 10) + " bytes, its object " + strconv.FormatInt(o.Size, 10))
		}
		return o, rc, nil
	}
	return store.Object{}, nil, errors.New("the object's bytes keep changing under the reader")
}

// objectHeaders sets the headers that describe o.
func objectHeaders(h http.Header, o store.Object) {
	h.Set("ETag", quote(o.ETag))
	h.Set("Last-Modified", o.ModTime.UTC().Format(http.TimeFormat))
	ct := o.ContentType
	if ct == "" {
		ct = "binary/octet-stream"
	}
	h.Set("Content-Type", ct)
	h.Set("Accept-Ranges", "bytes")
	for k, v := range o.Headers {
		h.Set(k, v)
	}
	for k, v := range o.Metadata {
		h["X-Amz-Meta-"+k] = []string{v}
	}
}

// responseOverrides are GetObject's query parameters that replace a
// response header (what presigned download links use).
var responseOverrides = map[string]string{
	"response-content-type": "Content-Type", "response-content-language": "Content-Language",
	"response-expires": "Expires", "response-cache-control": "Cache-Control",
	"response-content-disposition": "Content-Disposition", "response-content-encoding": "Content-Encoding",
}

func (h *Handler) getObject(req *request, withBody bool) error {
	var status int
	var cond *Error
	o, rc, err := h.open(req, req.bucket, req.key, func(o store.Object) error {
		if req.allow != nil {
			if err := req.allow(o); err != nil {
				return err
			}
		}
		status, cond = evalConditions(req.r.Header, "", o)
		if cond != nil {
			return cond
		}
		if status == http.StatusNotModified {
			return errNotModified
		}
		return nil
	})
	if errors.Is(err, errNotModified) {
		objectHeaders(req.w.Header(), o)
		req.w.Header().Del("Content-Type")
		req.w.WriteHeader(http.StatusNotModified)
		return nil
	}
	if err != nil {
		return err
	}
	defer rc.Close()

	start, length, partial, rerr := parseRange(req.r.Header.Get("Range"), o.Size)
	if rerr != nil {
		return rerr
	}
	hd := req.w.Header()
	objectHeaders(hd, o)
	for q, name := range responseOverrides {
		if v := req.query.Get(q); v != "" {
			hd.Set(name, v)
		}
	}
	hd.Set("Content-Length", strconv.FormatInt(length, 10))
	status = http.StatusOK
	if partial {
		hd.Set("Content-Range", "bytes "+strconv.FormatInt(start, 10)+"-"+strconv.FormatInt(start+length-1, 10)+"/"+strconv.FormatInt(o.Size, 10))
		status = http.StatusPartialContent
	}
	if !withBody {
		req.w.WriteHeader(status)
		return nil
	}
	if start > 0 {
		if s, ok := rc.(io.Seeker); ok {
			if _, err := s.Seek(start, io.SeekStart); err != nil {
				return err
			}
		} else if _, err := io.CopyN(io.Discard, rc, start); err != nil {
			return err
		}
	}
	req.w.WriteHeader(status)
	return req.send(rc, length)
}

// send copies n bytes of r to the response a chunk at a time, each chunk
// bounded by the idle timeout.
func (req *request) send(r io.Reader, n int64) error {
	const chunk = 1 << 20
	rc := http.NewResponseController(req.w)
	for n > 0 {
		_ = rc.SetWriteDeadline(time.Now().Add(req.idle))
		c, err := io.CopyN(req.w, r, min(n, chunk))
		n -= c
		if err != nil {
			return err
		}
	}
	_ = rc.SetWriteDeadline(time.Time{})
	return nil
}

// errNotModified stops open when a condition answers 304.
var errNotModified = errors.New("not modified")

// evalConditions evaluates the conditional headers (with prefix, e.g.
// "X-Amz-Copy-Source-") against o, in RFC 9110's order, which is also
// S3's: If-Match, else If-Unmodified-Since; then If-None-Match, else
// If-Modified-Since. It returns 304 for a failed read condition, or a
// PreconditionFailed.
func evalConditions(h http.Header, prefix string, o store.Object) (int, *Error) {
	mod := o.ModTime.Truncate(time.Second)
	if im := h.Get(prefix + "If-Match"); im != "" {
		if !etagMatch(im, o.ETag) {
			return 0, errPrecondition
		}
	} else if ius := h.Get(prefix + "If-Unmodified-Since"); ius != "" {
		if t, err := http.ParseTime(ius); err == nil && mod.After(t) {
			return 0, errPrecondition
		}
	}
	if inm := h.Get(prefix + "If-None-Match"); inm != "" {
		if etagMatch(inm, o.ETag) {
			if prefix != "" {
				return 0, errPrecondition
			}
			return http.StatusNotModified, nil
		}
	} else if ims := h.Get(prefix + "If-Modified-Since"); ims != "" {
		if t, err := http.ParseTime(ims); err == nil && !mod.After(t) {
			if prefix != "" {
				return 0, errPrecondition
			}
			return http.StatusNotModified, nil
		}
	}
	return 0, nil
}

// etagMatch reports whether a list of entity tags (or "*") names etag.
func etagMatch(list, etag string) bool {
	for t := range strings.SplitSeq(list, ",") {
		t = strings.TrimSpace(t)
		if t == "*" {
			return true
		}
		t = strings.TrimPrefix(t, "W/")
		if strings.Trim(t, `"`) == etag {
			return true
		}
	}
	return false
}

// parseRange reads a Range header for an object of size bytes. A missing,
// malformed or multi-range header selects the whole object (S3 serves no
// multipart ranges); a range that starts past the end is InvalidRange.
func parseRange(h string, size int64) (start, length int64, partial bool, e *Error) {
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return 0, size, false, nil
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return 0, size, false, nil
	}
	unsatisfiable := func() (int64, int64, bool, *Error) {
		e := s3err(http.StatusRequestedRangeNotSatisfiable, "InvalidRange", "The requested range is not satisfiable")
		e.header = http.Header{"Content-Range": {"bytes */" + strconv.FormatInt(size, 10)}}
		return 0, 0, false, e
	}
	if first == "" {
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil || n < 0 {
			return 0, size, false, nil
		}
		if n == 0 || size == 0 {
			return unsatisfiable()
		}
		n = min(n, size)
		return size - n, n, true, nil
	}
	s, err := strconv.ParseInt(first, 10, 64)
	if err != nil || s < 0 {
		return 0, size, false, nil
	}
	end := size - 1
	if last != "" {
		l, err := strconv.ParseInt(last, 10, 64)
		if err != nil || l < s {
			return 0, size, false, nil
		}
		end = min(l, size-1)
	}
	if s >= size {
		return unsatisfiable()
	}
	return s, end - s + 1, true, nil
}

func (h *Handler) deleteObject(req *request) error {
	err := h.removeObject(req.ctx, req.id, req.bucket, req.key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// S3 answers 204 for a key that is not there, but not for a
		// bucket that is not.
		if err := h.bucketExists(req, req.bucket); err != nil {
			return err
		}
	case err != nil:
		return err
	}
	req.w.WriteHeader(http.StatusNoContent)
	return nil
}

// copySource parses X-Amz-Copy-Source: [/]bucket/key[?versionId=null],
// URL-encoded.
func copySource(v string) (bucket, key string, e *Error) {
	v, version, _ := strings.Cut(v, "?versionId=")
	if version != "" && version != "null" {
		return "", "", errNotImplemented("Copying a version of an object")
	}
	src, err := url.PathUnescape(v)
	if err != nil {
		return "", "", errInvalidArgument("Copy Source must mention the source bucket and key: sourcebucket/sourcekey.")
	}
	bucket, key, _ = strings.Cut(strings.TrimPrefix(src, "/"), "/")
	if bucket == "" || key == "" {
		return "", "", errInvalidArgument("Copy Source must mention the source bucket and key: sourcebucket/sourcekey.")
	}
	if e := validBucket(bucket); e != nil {
		return "", "", errNoSuchBucket(show(bucket))
	}
	if e := validKey(bucket, key); e != nil {
		return "", "", e
	}
	return bucket, key, nil
}

type copyResult struct {
	XMLName      xml.Name `xml:"CopyObjectResult"`
	Xmlns        string   `xml:"xmlns,attr"`
	LastModified string
	ETag         string
}

func (h *Handler) copyObject(req *request) error {
	r := req.r
	srcBucket, srcKey, e := copySource(r.Header.Get("X-Amz-Copy-Source"))
	if e != nil {
		return e
	}
	if err := req.need(srcBucket, AccessRead); err != nil {
		return err
	}
	directive := r.Header.Get("X-Amz-Metadata-Directive")
	if directive != "" && directive != "COPY" && directive != "REPLACE" {
		return errInvalidArgument("Unknown metadata directive: use COPY or REPLACE.")
	}
	if _, err := req.readSmallBody(0); err != nil {
		return err
	}
	if err := h.bucketExists(req, req.bucket); err != nil {
		return err
	}
	src, rc, err := h.open(req, srcBucket, srcKey, func(o store.Object) error {
		_, e := evalConditions(r.Header, "X-Amz-Copy-Source-", o)
		if e != nil {
			return e
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer rc.Close()
	meta := src.ObjectMeta
	if directive == "REPLACE" {
		if meta, err = metaFromHeaders(r.Header); err != nil {
			return err
		}
	} else if srcBucket == req.bucket && srcKey == req.key {
		return s3err(http.StatusBadRequest, "InvalidRequest", "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.")
	}
	wr, err := h.writeBlob(req.ctx, "obj/", rc, src.Size, h.cfg.MaxObjectBytes, nil)
	if err != nil {
		return err
	}
	o := store.Object{
		Project: h.cfg.Project, Bucket: req.bucket, Key: req.key, Size: wr.size, ETag: wr.etag(),
		ModTime: now(), BlobKey: wr.key, ObjectMeta: meta,
	}
	if err := h.commitObject(req.ctx, req.id, o, eventCopy); err != nil {
		return err
	}
	writeXML(req.w, http.StatusOK, copyResult{Xmlns: xmlns, LastModified: timeXML(o.ModTime), ETag: quote(o.ETag)})
	return nil
}
