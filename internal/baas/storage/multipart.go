package storage

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/hostless/hostless/internal/store"
)

// deleteRequest is DeleteObjects' body.
type deleteRequest struct {
	XMLName xml.Name `xml:"Delete"`
	Quiet   bool     `xml:"Quiet"`
	Objects []struct {
		Key       string `xml:"Key"`
		VersionID string `xml:"VersionId"`
	} `xml:"Object"`
}

type deleteResult struct {
	XMLName xml.Name     `xml:"DeleteResult"`
	Xmlns   string       `xml:"xmlns,attr"`
	Deleted []deletedXML `xml:"Deleted"`
	Errors  []deleteErr  `xml:"Error"`
}

type deletedXML struct {
	Key string
}

type deleteErr struct {
	Key     string
	Code    string
	Message string
}

// parseDelete parses and checks a DeleteObjects body.
func parseDelete(body []byte) (deleteRequest, error) {
	var d deleteRequest
	if err := xml.Unmarshal(body, &d); err != nil {
		return d, errMalformedXML("%s", show(err.Error()))
	}
	if len(d.Objects) == 0 || len(d.Objects) > maxDeleteObjects {
		return d, errMalformedXML("a Delete names 1 to %d objects", maxDeleteObjects)
	}
	return d, nil
}

func (h *Handler) deleteObjects(req *request) error {
	want, err := contentMD5(req.r.Header)
	if err != nil {
		return err
	}
	body, err := req.readSmallBody(maxXMLBody)
	if err != nil {
		return err
	}
	if want != nil {
		if sum := md5.Sum(body); string(sum[:]) != string(want) {
			return errBadDigest
		}
	}
	d, err := parseDelete(body)
	if err != nil {
		return err
	}
	if err := h.bucketExists(req, req.bucket); err != nil {
		return err
	}
	res := deleteResult{Xmlns: xmlns}
	for _, o := range d.Objects {
		if e := validKey(req.bucket, o.Key); e != nil {
			res.Errors = append(res.Errors, deleteErr{Key: o.Key, Code: e.Code, Message: e.Message})
			continue
		}
		if o.VersionID != "" && o.VersionID != "null" {
			res.Errors = append(res.Errors, deleteErr{Key: o.Key, Code: "NoSuchVersion", Message: "Versioning is not supported."})
			continue
		}
		err := h.removeObject(req.ctx, req.id, req.bucket, o.Key)
		switch {
		case err == nil:
		case errors.Is(err, store.ErrNotFound):
		default:
			h.cfg.Log.Error("s3: delete object", "request_id", req.id, "err", err)
			res.Errors = append(res.Errors, deleteErr{Key: o.Key, Code: errInternal.Code, Message: errInternal.Message})
			continue
		}
		if !d.Quiet {
			res.Deleted = append(res.Deleted, deletedXML{Key: o.Key})
		}
	}
	writeXML(req.w, http.StatusOK, res)
	return nil
}

type initiateResult struct {
	XMLName  xml.Name `xml:"InitiateMultipartUploadResult"`
	Xmlns    string   `xml:"xmlns,attr"`
	Bucket   string
	Key      string
	UploadID string `xml:"UploadId"`
}

func (h *Handler) createUpload(req *request) error {
	meta, err := metaFromHeaders(req.r.Header)
	if err != nil {
		return err
	}
	if _, err := req.readSmallBody(0); err != nil {
		return err
	}
	u := store.Upload{Project: h.cfg.Project, Bucket: req.bucket, ID: newID(16), Key: req.key, CreatedAt: now(), ObjectMeta: meta}
	err = h.cfg.Objects.CreateUpload(req.ctx, u)
	if errors.Is(err, store.ErrNotFound) {
		return errNoSuchBucket(req.bucket)
	}
	if err != nil {
		return err
	}
	writeXML(req.w, http.StatusOK, initiateResult{Xmlns: xmlns, Bucket: req.bucket, Key: req.key, UploadID: u.ID})
	return nil
}

// upload returns the request's multipart upload, or NoSuchUpload.
func (h *Handler) upload(req *request) (store.Upload, error) {
	id := req.query.Get("uploadId")
	if len(id) > 128 {
		return store.Upload{}, errNoSuchUpload(req.bucket, req.key)
	}
	u, err := h.cfg.Objects.GetUpload(req.ctx, h.cfg.Project, req.bucket, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.Key != req.key) {
		if err := h.bucketExists(req, req.bucket); err != nil {
			return u, err
		}
		return u, errNoSuchUpload(req.bucket, req.key)
	}
	return u, err
}

func (h *Handler) uploadPart(req *request) error {
	n, err := strconv.Atoi(req.query.Get("partNumber"))
	if err != nil || n < 1 || n > MaxParts {
		return errInvalidArgument("Part number must be an integer between 1 and %d, inclusive", MaxParts)
	}
	u, err := h.upload(req)
	if err != nil {
		return err
	}
	size, err := req.bodySize(h.cfg.MaxObjectBytes)
	if err != nil {
		return err
	}
	want, err := contentMD5(req.r.Header)
	if err != nil {
		return err
	}
	wr, err := h.writeBlob(req.ctx, "part/", req.body(), size, h.cfg.MaxObjectBytes, want)
	if err != nil {
		return err
	}
	p := store.Part{Project: h.cfg.Project, Bucket: req.bucket, UploadID: u.ID, Number: n, Size: wr.size,
		ETag: wr.etag(), ModTime: now(), BlobKey: wr.key}
	old, err := h.cfg.Objects.PutPart(req.ctx, p)
	if err != nil {
		h.deleteBlobs(req.ctx, req.id, wr.key)
		if errors.Is(err, store.ErrNotFound) {
			return errNoSuchUpload(req.bucket, req.key)
		}
		return err
	}
	h.deleteBlobs(req.ctx, req.id, old)
	req.w.Header().Set("ETag", quote(p.ETag))
	req.w.WriteHeader(http.StatusOK)
	return nil
}

// completeRequest is CompleteMultipartUpload's body.
type completeRequest struct {
	XMLName xml.Name `xml:"CompleteMultipartUpload"`
	Parts   []struct {
		PartNumber int    `xml:"PartNumber"`
		ETag       string `xml:"ETag"`
	} `xml:"Part"`
}

// parseComplete parses and checks a CompleteMultipartUpload body: 1 to
// MaxParts parts in ascending order of number.
func parseComplete(body []byte) (completeRequest, error) {
	var c completeRequest
	if err := xml.Unmarshal(body, &c); err != nil {
		return c, errMalformedXML("%s", show(err.Error()))
	}
	if len(c.Parts) == 0 || len(c.Parts) > MaxParts {
		return c, errMalformedXML("a CompleteMultipartUpload names 1 to %d parts", MaxParts)
	}
	for i, p := range c.Parts {
		if p.PartNumber < 1 || p.PartNumber > MaxParts {
			return c, errInvalidArgument("Part number must be an integer between 1 and %d, inclusive", MaxParts)
		}
		if i > 0 && p.PartNumber <= c.Parts[i-1].PartNumber {
			return c, s3err(http.StatusBadRequest, "InvalidPartOrder", "The list of parts was not in ascending order. Parts must be ordered by part number.")
		}
	}
	return c, nil
}

type completeResult struct {
	XMLName  xml.Name `xml:"CompleteMultipartUploadResult"`
	Xmlns    string   `xml:"xmlns,attr"`
	Location string
	Bucket   string
	Key      string
	ETag     string
}

func (h *Handler) completeUpload(req *request) error {
	body, err := req.readSmallBody(maxXMLBody)
	if err != nil {
		return err
	}
	c, err := parseComplete(body)
	if err != nil {
		return err
	}
	u, err := h.upload(req)
	if err != nil {
		return err
	}
	stored, err := h.allParts(req, u.ID)
	if err != nil {
		return err
	}
	invalidPart := func(n int, why string) error {
		return s3err(http.StatusBadRequest, "InvalidPart", "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag: part %d %s.", n, why).with(req.bucket, req.key)
	}
	used := make([]store.Part, 0, len(c.Parts))
	var total int64
	sums := md5.New()
	for i, p := range c.Parts {
		sp, ok := stored[p.PartNumber]
		if !ok {
			return invalidPart(p.PartNumber, "was not uploaded")
		}
		if strings.Trim(strings.TrimSpace(p.ETag), `"`) != sp.ETag {
			return invalidPart(p.PartNumber, "has another entity tag")
		}
		if i < len(c.Parts)-1 && sp.Size < h.cfg.MinPartBytes {
			e := s3err(http.StatusBadRequest, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object size: part %d has %d bytes, every part but the last needs %d.", p.PartNumber, sp.Size, h.cfg.MinPartBytes)
			return e.with(req.bucket, req.key)
		}
		total += sp.Size
		if total > h.cfg.MaxObjectBytes {
			return errEntityTooLarge(h.cfg.MaxObjectBytes)
		}
		raw, err := hex.DecodeString(sp.ETag)
		if err != nil {
			return fmt.Errorf("part %d has a corrupt entity tag", p.PartNumber)
		}
		sums.Write(raw)
		used = append(used, sp)
	}
	wr, err := h.writeBlob(req.ctx, "obj/", &partsReader{h: h, req: req, parts: used}, total, h.cfg.MaxObjectBytes, nil)
	if err != nil {
		return err
	}
	o := store.Object{
		Project: h.cfg.Project, Bucket: req.bucket, Key: req.key, Size: wr.size,
		ETag:    hex.EncodeToString(sums.Sum(nil)) + "-" + strconv.Itoa(len(used)),
		ModTime: now(), BlobKey: wr.key, ObjectMeta: u.ObjectMeta,
	}
	obsolete, err := h.cfg.Objects.CompleteUpload(req.ctx, u.ID, used, o)
	if err != nil {
		h.deleteBlobs(req.ctx, req.id, wr.key)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return errNoSuchUpload(req.bucket, req.key)
		case errors.Is(err, store.ErrPartChanged):
			return invalidPart(0, "changed while the upload completed")
		}
		return err
	}
	h.deleteBlobs(req.ctx, req.id, obsolete...)
	h.emitObject(eventMultipart, o)
	writeXML(req.w, http.StatusOK, completeResult{Xmlns: xmlns, Location: "/" + req.bucket + "/" + req.key,
		Bucket: req.bucket, Key: req.key, ETag: quote(o.ETag)})
	return nil
}

// allParts returns every stored part of an upload, by number.
func (h *Handler) allParts(req *request, uploadID string) (map[int]store.Part, error) {
	out := map[int]store.Part{}
	after := 0
	for {
		ps, err := h.cfg.Objects.ListParts(req.ctx, h.cfg.Project, req.bucket, uploadID, after, store.MaxListObjects)
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			out[p.Number] = p
			after = p.Number
		}
		if len(ps) < store.MaxListObjects {
			return out, nil
		}
	}
}

// partsReader reads parts' blobs one after the other, one open at a time.
type partsReader struct {
	h     *Handler
	req   *request
	parts []store.Part
	cur   io.ReadCloser
	left  int64
}

func (p *partsReader) Read(b []byte) (int, error) {
	for {
		if p.cur == nil {
			if len(p.parts) == 0 {
				return 0, io.EOF
			}
			next := p.parts[0]
			p.parts = p.parts[1:]
			rc, info, err := p.h.cfg.Blobs.Get(p.req.ctx, next.BlobKey)
			if err != nil {
				return 0, fmt.Errorf("part %d: %w", next.Number, err)
			}
			if info.Size != next.Size {
				rc.Close()
				return 0, fmt.Errorf("part %d: blob has %d bytes, its row %d", next.Number, info.Size, next.Size)
			}
			p.cur, p.left = rc, next.Size
		}
		n, err := p.cur.Read(b)
		p.left -= int64(n)
		if err == io.EOF || (err == nil && p.left <= 0) {
			p.cur.Close()
			p.cur = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

type listPartsResult struct {
	XMLName              xml.Name `xml:"ListPartsResult"`
	Xmlns                string   `xml:"xmlns,attr"`
	Bucket               string
	Key                  string
	UploadID             string `xml:"UploadId"`
	PartNumberMarker     int
	NextPartNumberMarker int
	MaxParts             int
	IsTruncated          bool
	Initiator            owner
	Owner                owner
	StorageClass         string
	Parts                []partXML `xml:"Part"`
}

type partXML struct {
	PartNumber   int
	LastModified string
	ETag         string
	Size         int64
}

func (h *Handler) listParts(req *request) error {
	maxParts, marker := 1000, 0
	if v := req.query.Get("max-parts"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return errInvalidArgument("max-parts must be an integer from 0 to 2147483647.")
		}
		maxParts = min(n, 1000)
	}
	if v := req.query.Get("part-number-marker"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return errInvalidArgument("part-number-marker must be a non-negative integer.")
		}
		marker = n
	}
	u, err := h.upload(req)
	if err != nil {
		return err
	}
	res := listPartsResult{Xmlns: xmlns, Bucket: req.bucket, Key: req.key, UploadID: u.ID, PartNumberMarker: marker,
		MaxParts: maxParts, Initiator: theOwner, Owner: theOwner, StorageClass: "STANDARD"}
	if maxParts > 0 {
		ps, err := h.cfg.Objects.ListParts(req.ctx, h.cfg.Project, req.bucket, u.ID, marker, maxParts+1)
		if err != nil {
			return err
		}
		if len(ps) > maxParts {
			ps, res.IsTruncated = ps[:maxParts], true
		}
		for _, p := range ps {
			res.Parts = append(res.Parts, partXML{PartNumber: p.Number, LastModified: timeXML(p.ModTime), ETag: quote(p.ETag), Size: p.Size})
			res.NextPartNumberMarker = p.Number
		}
	}
	writeXML(req.w, http.StatusOK, res)
	return nil
}

func (h *Handler) abortUpload(req *request) error {
	u, err := h.upload(req)
	if err != nil {
		return err
	}
	blobs, err := h.cfg.Objects.AbortUpload(req.ctx, h.cfg.Project, req.bucket, u.ID)
	if errors.Is(err, store.ErrNotFound) {
		return errNoSuchUpload(req.bucket, req.key)
	}
	if err != nil {
		return err
	}
	h.deleteBlobs(req.ctx, req.id, blobs...)
	req.w.WriteHeader(http.StatusNoContent)
	return nil
}
