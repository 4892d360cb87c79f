package storage

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Presigned URLs of the browser API carry these query parameters.
const (
	presignExpires     = "x-hostless-expires"
	presignSignature   = "x-hostless-signature"
	presignContentType = "x-hostless-content-type"
	// MaxPresignExpiry is the longest a presigned URL lives, as S3's.
	MaxPresignExpiry = 7 * 24 * time.Hour
	// DefaultPresignExpiry is its life when the request names none.
	DefaultPresignExpiry = time.Hour
	maxContentTypeLen    = 256
)

// presigned is the signature part of a presigned URL.
type presigned struct {
	expires     int64 // Unix seconds
	signature   []byte
	contentType string
}

// errNotPresigned: the query carries no signature, so the request is
// authenticated the ordinary way.
var errNotPresigned = errors.New("not presigned")

// parsePresigned reads a presigned URL's parameters from a raw query. It
// returns errNotPresigned without a signature, and an error safe to show
// for a malformed one.
func parsePresigned(rawQuery string) (presigned, error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return presigned{}, errors.New("the query string does not parse")
	}
	sigs := q[presignSignature]
	if len(sigs) == 0 {
		return presigned{}, errNotPresigned
	}
	if len(sigs) != 1 || len(q[presignExpires]) != 1 || len(q[presignContentType]) > 1 {
		return presigned{}, errors.New("a presigned URL has exactly one " + presignExpires + " and one " + presignSignature)
	}
	var p presigned
	if p.signature, err = hex.DecodeString(sigs[0]); err != nil || len(p.signature) != sha256.Size {
		return presigned{}, errors.New(presignSignature + " must be 64 hex digits")
	}
	e := q.Get(presignExpires)
	if p.expires, err = strconv.ParseInt(e, 10, 64); err != nil || p.expires <= 0 || len(e) > 12 {
		return presigned{}, errors.New(presignExpires + " must be a time in Unix seconds")
	}
	p.contentType = q.Get(presignContentType)
	if len(p.contentType) > maxContentTypeLen {
		return presigned{}, errors.New(presignContentType + " is too long")
	}
	return p, nil
}

// presignMAC is the HMAC-SHA256 that a presigned URL carries: over the
// method (GET or PUT), bucket, key, expiry and content type, each
// length-prefixed so no two tuples sign alike.
func presignMAC(signKey []byte, method, bucket, key string, expires int64, contentType string) []byte {
	m := hmac.New(sha256.New, signKey)
	m.Write([]byte("hostless-presign-v1"))
	for _, s := range []string{method, bucket, key, strconv.FormatInt(expires, 10), contentType} {
		m.Write([]byte(strconv.Itoa(len(s))))
		m.Write([]byte{':'})
		m.Write([]byte(s))
	}
	return m.Sum(nil)
}

// presignURL returns the path and query of a presigned URL.
func presignURL(signKey []byte, method, bucket, key string, expires int64, contentType string) string {
	q := url.Values{}
	q.Set(presignExpires, strconv.FormatInt(expires, 10))
	if contentType != "" {
		q.Set(presignContentType, contentType)
	}
	q.Set(presignSignature, hex.EncodeToString(presignMAC(signKey, method, bucket, key, expires, contentType)))
	return "/v1/storage/" + bucket + "/" + escapeKey(key) + "?" + q.Encode()
}

// escapeKey escapes a key for a URL path, keeping its slashes.
func escapeKey(key string) string {
	parts := strings.Split(key, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// signedMethod is the method a presigned URL must have been signed for to
// serve a request: HEAD rides on GET, and POST uploads as PUT.
func signedMethod(method string) string {
	switch method {
	case "HEAD":
		return "GET"
	case "POST":
		return "PUT"
	}
	return method
}

// checkPresigned verifies a presigned request; its errors are safe to show.
func checkPresigned(signKey []byte, p presigned, method, bucket, key string, now time.Time) error {
	if len(signKey) == 0 {
		return errors.New("presigned URLs are not enabled on this server")
	}
	want := presignMAC(signKey, signedMethod(method), bucket, key, p.expires, p.contentType)
	if !hmac.Equal(want, p.signature) {
		return errors.New("the URL's signature does not match: it was signed for another method, bucket, key, expiry or content type, or altered")
	}
	if now.Unix() >= p.expires {
		return errors.New("the presigned URL expired at " + time.Unix(p.expires, 0).UTC().Format(time.RFC3339))
	}
	return nil
}
