package storage

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"

	"github.com/hostless/hostless/internal/sigv4"
)

// Error is an S3 error: the code a client matches on, the HTTP status and
// a message safe to show. Handlers return it; ServeHTTP renders it as S3's
// XML error document, with the request's ID.
type Error struct {
	Code    string
	Status  int
	Message string
	// Bucket and Key, when set, are echoed in the document.
	Bucket, Key string
	// header is set on the response (Content-Range of InvalidRange, ...).
	header http.Header
	// canonical and stringToSign come from a SignatureDoesNotMatch.
	canonical, stringToSign string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func s3err(status int, code, format string, args ...any) *Error {
	return &Error{Code: code, Status: status, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) with(bucket, key string) *Error {
	c := *e
	c.Bucket, c.Key = bucket, key
	return &c
}

// The errors this API answers with, by S3's codes.
func errNoSuchBucket(b string) *Error {
	return s3err(http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist").with(b, "")
}
func errNoSuchKey(b, k string) *Error {
	return s3err(http.StatusNotFound, "NoSuchKey", "The specified key does not exist.").with(b, k)
}
func errNoSuchUpload(b, k string) *Error {
	return s3err(http.StatusNotFound, "NoSuchUpload", "The specified multipart upload does not exist. The upload ID might be invalid, or the multipart upload might have been aborted or completed.").with(b, k)
}
func errInvalidArgument(format string, args ...any) *Error {
	return s3err(http.StatusBadRequest, "InvalidArgument", format, args...)
}
func errMalformedXML(format string, args ...any) *Error {
	return s3err(http.StatusBadRequest, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema: "+format, args...)
}
func errNotImplemented(what string) *Error {
	return s3err(http.StatusNotImplemented, "NotImplemented", "%s is not implemented by this server", what)
}

var (
	errAccessDenied     = s3err(http.StatusForbidden, "AccessDenied", "Access Denied")
	errPrecondition     = s3err(http.StatusPreconditionFailed, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
	errIncompleteBody   = s3err(http.StatusBadRequest, "IncompleteBody", "You did not provide the number of bytes specified by the Content-Length HTTP header.")
	errBadDigest        = s3err(http.StatusBadRequest, "BadDigest", "The Content-MD5 you specified did not match what we received.")
	errInvalidDigest    = s3err(http.StatusBadRequest, "InvalidDigest", "The Content-MD5 you specified is not valid.")
	errMetadataTooLarge = s3err(http.StatusBadRequest, "MetadataTooLarge", "Your metadata headers exceed the maximum allowed metadata size (2 KB).")
	errMethodNotAllowed = s3err(http.StatusMethodNotAllowed, "MethodNotAllowed", "The specified method is not allowed against this resource.")
	errInternal         = s3err(http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
)

func errEntityTooLarge(max int64) *Error {
	return s3err(http.StatusRequestEntityTooLarge, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed object size of %d bytes.", max)
}

// toS3 turns any error into the S3 error a client gets, and reports
// whether it is the server's fault (to be logged).
func toS3(err error) (e *Error, internal bool) {
	if se, ok := errors.AsType[*Error](err); ok {
		return se, false
	}
	if ve, ok := errors.AsType[*sigv4.Error](err); ok {
		if errors.Is(ve, sigv4.ErrMissingAuth) {
			return errAccessDenied, false
		}
		return &Error{Code: ve.Code, Status: ve.Status, Message: ve.Message,
			canonical: ve.CanonicalRequest, stringToSign: ve.StringToSign}, false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return s3err(http.StatusBadRequest, "RequestTimeout", "Your socket connection to the server was not read from or written to within the timeout period."), false
	}
	return errInternal, true
}

type errorDoc struct {
	XMLName          xml.Name `xml:"Error"`
	Code             string
	Message          string
	BucketName       string `xml:",omitempty"`
	Key              string `xml:",omitempty"`
	Resource         string
	RequestID        string `xml:"RequestId"`
	HostID           string `xml:"HostId"`
	CanonicalRequest string `xml:",omitempty"`
	StringToSign     string `xml:",omitempty"`
}

// writeError renders e; a HEAD response has no body.
func writeError(w http.ResponseWriter, r *http.Request, requestID string, e *Error) {
	h := w.Header()
	for k, v := range e.header {
		h[k] = v
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(e.Status)
		return
	}
	writeXML(w, e.Status, errorDoc{
		Code: e.Code, Message: e.Message, BucketName: e.Bucket, Key: e.Key, Resource: r.URL.Path,
		RequestID: requestID, HostID: hostID, CanonicalRequest: e.canonical, StringToSign: e.stringToSign,
	})
}

// writeXML writes v as an XML document with status.
func writeXML(w http.ResponseWriter, status int, v any) {
	b, err := xml.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte("<Error><Code>InternalError</Code></Error>")
	}
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", fmt.Sprint(len(xml.Header)+len(b)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(b)
}
