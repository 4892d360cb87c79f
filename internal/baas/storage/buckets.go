package storage

import (
	"encoding/base64"
	"encoding/xml"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hostless/hostless/internal/store"
)

type owner struct {
	ID          string
	DisplayName string
}

var theOwner = owner{ID: hostID, DisplayName: hostID}

type listBucketsResult struct {
	XMLName xml.Name `xml:"ListAllMyBucketsResult"`
	Xmlns   string   `xml:"xmlns,attr"`
	Owner   owner
	Buckets []bucketXML `xml:"Buckets>Bucket"`
}

type bucketXML struct {
	Name         string
	CreationDate string
}

func (h *Handler) listBuckets(req *request) error {
	bs, err := h.cfg.Objects.ListBuckets(req.ctx, h.cfg.Project)
	if err != nil {
		return err
	}
	res := listBucketsResult{Xmlns: xmlns, Owner: theOwner, Buckets: []bucketXML{}}
	s := req.session()
	for _, b := range bs {
		if _, granted := s.grant(b.Name); !granted {
			continue
		}
		res.Buckets = append(res.Buckets, bucketXML{Name: b.Name, CreationDate: timeXML(b.CreatedAt)})
	}
	writeXML(req.w, http.StatusOK, res)
	return nil
}

func (h *Handler) createBucket(req *request) error {
	// The body, if any, is a CreateBucketConfiguration naming a region:
	// read to its end so that it is authentic, and otherwise ignored.
	if _, err := req.readSmallBody(64 << 10); err != nil {
		return err
	}
	err := h.cfg.Objects.CreateBucket(req.ctx, store.Bucket{Project: h.cfg.Project, Name: req.bucket, CreatedAt: now()})
	if errors.Is(err, store.ErrBucketExists) {
		return s3err(http.StatusConflict, "BucketAlreadyOwnedByYou", "Your previous request to create the named bucket succeeded and you already own it.").with(req.bucket, "")
	}
	if err != nil {
		return err
	}
	req.w.Header().Set("Location", "/"+req.bucket)
	req.w.WriteHeader(http.StatusOK)
	return nil
}

func (h *Handler) headBucket(req *request) error {
	if err := h.bucketExists(req, req.bucket); err != nil {
		return err
	}
	req.w.Header().Set("X-Amz-Bucket-Region", h.cfg.Region)
	req.w.WriteHeader(http.StatusOK)
	return nil
}

func (h *Handler) deleteBucket(req *request) error {
	err := h.cfg.Objects.DeleteBucket(req.ctx, h.cfg.Project, req.bucket)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errNoSuchBucket(req.bucket)
	case errors.Is(err, store.ErrBucketNotEmpty):
		return s3err(http.StatusConflict, "BucketNotEmpty", "The bucket you tried to delete is not empty").with(req.bucket, "")
	case err != nil:
		return err
	}
	req.w.WriteHeader(http.StatusNoContent)
	return nil
}

type locationResult struct {
	XMLName xml.Name `xml:"LocationConstraint"`
	Xmlns   string   `xml:"xmlns,attr"`
	Region  string   `xml:",chardata"`
}

func (h *Handler) bucketLocation(req *request) error {
	if err := h.bucketExists(req, req.bucket); err != nil {
		return err
	}
	region := h.cfg.Region
	if region == "us-east-1" {
		region = "" // S3 names us-east-1 by an empty constraint
	}
	writeXML(req.w, http.StatusOK, locationResult{Xmlns: xmlns, Region: region})
	return nil
}

type listResult struct {
	XMLName               xml.Name `xml:"ListBucketResult"`
	Xmlns                 string   `xml:"xmlns,attr"`
	Name                  string
	Prefix                string
	Delimiter             string `xml:",omitempty"`
	MaxKeys               int
	EncodingType          string `xml:",omitempty"`
	IsTruncated           bool
	Marker                *string      `xml:",omitempty"`
	NextMarker            string       `xml:",omitempty"`
	KeyCount              *int         `xml:",omitempty"`
	ContinuationToken     string       `xml:",omitempty"`
	NextContinuationToken string       `xml:",omitempty"`
	StartAfter            string       `xml:",omitempty"`
	Contents              []contentXML `xml:"Contents"`
	CommonPrefixes        []prefixXML  `xml:"CommonPrefixes"`
}

type contentXML struct {
	Key          string
	LastModified string
	ETag         string
	Size         int64
	StorageClass string
	Owner        *owner `xml:",omitempty"`
}

type prefixXML struct {
	Prefix string
}

// position is where a listing resumes: after a key, or from the first key
// past a common prefix.
type position struct {
	after, from string
}

// A continuation token is the position, opaque to the client.
func (p position) token() string {
	if p.from != "" {
		return base64.RawURLEncoding.EncodeToString([]byte("f" + p.from))
	}
	return base64.RawURLEncoding.EncodeToString([]byte("a" + p.after))
}

func parseToken(tok string) (position, bool) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) < 2 || len(b) > MaxKeyBytes+8 {
		return position{}, false
	}
	switch b[0] {
	case 'a':
		return position{after: string(b[1:])}, true
	case 'f':
		return position{from: string(b[1:])}, true
	}
	return position{}, false
}

// listObjects serves ListObjectsV2 (v2) and ListObjects (the first
// version, with markers). Common prefixes are folded from the store's
// key-ordered rows: past one, the scan jumps to the first key after every
// key with that prefix.
func (h *Handler) listObjects(req *request, v2 bool) error {
	q := req.query
	prefix, delim := q.Get("prefix"), q.Get("delimiter")
	for _, s := range []string{prefix, delim, q.Get("start-after"), q.Get("marker")} {
		if len(s) > MaxKeyBytes || strings.ContainsRune(s, 0) {
			return errInvalidArgument("Prefix, delimiter, start-after and marker are at most %d bytes, without NUL.", MaxKeyBytes)
		}
	}
	maxKeys := 1000
	if v := q.Get("max-keys"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return errInvalidArgument("max-keys must be an integer from 0 to 2147483647.")
		}
		maxKeys = min(n, 1000)
	}
	encoding := q.Get("encoding-type")
	if encoding != "" && encoding != "url" {
		return errInvalidArgument("Invalid Encoding Method specified in Request")
	}
	if err := h.bucketExists(req, req.bucket); err != nil {
		return err
	}
	var pos position
	var skipUpTo string // common prefixes up to this one were listed before
	if v2 {
		if tok := q.Get("continuation-token"); tok != "" {
			p, ok := parseToken(tok)
			if !ok {
				return errInvalidArgument("The continuation token provided is incorrect")
			}
			pos = p
		} else {
			pos.after = q.Get("start-after")
			skipUpTo = pos.after
		}
	} else {
		pos.after = q.Get("marker")
		skipUpTo = pos.after
	}

	res := listResult{Xmlns: xmlns, Name: req.bucket, Prefix: prefix, Delimiter: delim, MaxKeys: maxKeys, EncodingType: encoding}
	enc := func(s string) string { return s }
	if encoding == "url" {
		enc = func(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }
	}
	count, last := 0, ""
	done := maxKeys == 0
	deadline := time.Now().Add(30 * time.Second)
	for !done && count < maxKeys {
		if time.Now().After(deadline) {
			break // a page of few prefixes over many keys: return what there is
		}
		limit := maxKeys - count
		rows, err := h.cfg.Objects.ListObjects(req.ctx, store.ObjectFilter{
			Project: h.cfg.Project, Bucket: req.bucket, Prefix: prefix, After: pos.after, From: pos.from, Limit: limit,
		})
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			done = true
			break
		}
		jumped := false
		for _, o := range rows {
			if delim != "" {
				if i := strings.Index(o.Key[len(prefix):], delim); i >= 0 {
					cp := o.Key[:len(prefix)+i+len(delim)]
					if cp > skipUpTo {
						res.CommonPrefixes = append(res.CommonPrefixes, prefixXML{Prefix: enc(cp)})
						count++
						last = cp
					}
					end, ok := store.PrefixEnd(cp)
					if !ok {
						done = true
					}
					pos = position{from: end}
					jumped = true
					break
				}
			}
			res.Contents = append(res.Contents, contentXML{
				Key: enc(o.Key), LastModified: timeXML(o.ModTime), ETag: quote(o.ETag), Size: o.Size, StorageClass: "STANDARD",
			})
			if q.Get("fetch-owner") == "true" || !v2 {
				res.Contents[len(res.Contents)-1].Owner = &theOwner
			}
			count++
			last = o.Key
			pos = position{after: o.Key}
		}
		if !jumped && len(rows) < limit {
			done = true // the store had no more rows
		}
	}
	if !done {
		// A full page: is there anything after it?
		more, err := h.cfg.Objects.ListObjects(req.ctx, store.ObjectFilter{
			Project: h.cfg.Project, Bucket: req.bucket, Prefix: prefix, After: pos.after, From: pos.from, Limit: 1,
		})
		if err != nil {
			return err
		}
		res.IsTruncated = len(more) > 0
	}
	if v2 {
		res.KeyCount = &count
		res.ContinuationToken = q.Get("continuation-token")
		res.StartAfter = enc(q.Get("start-after"))
		if res.IsTruncated {
			res.NextContinuationToken = pos.token()
		}
	} else {
		m := enc(q.Get("marker"))
		res.Marker = &m
		if res.IsTruncated && delim != "" {
			res.NextMarker = enc(last)
		}
	}
	res.Prefix, res.Delimiter = enc(prefix), enc(delim)
	writeXML(req.w, http.StatusOK, res)
	return nil
}
