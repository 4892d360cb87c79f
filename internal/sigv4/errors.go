package sigv4

import (
	"fmt"
	"net/http"
	"strconv"
)

// Error is a failed verification, with the AWS error code a client
// expects (S3's codes, which the other services' SDKs also understand) and
// the HTTP status to answer with. Its Message is safe to show the client:
// it never contains a secret, a signature or a body.
//
// Every error of this package is an *Error, including those that the body
// readers Verify installs return. errors.Is matches an *Error against the
// sentinel it was made from (ErrSignatureDoesNotMatch, ...), even where
// several sentinels share one AWS code.
type Error struct {
	// Code is AWS's error code: SignatureDoesNotMatch, InvalidAccessKeyId, ...
	Code string
	// Status is the HTTP status: 400, 403 or 413.
	Status int
	// Message says what is wrong, for the client.
	Message string
	// AccessKeyID is the access key the request named, when it got that
	// far: for the operator's log (AWS returns it too). It is not a secret.
	AccessKeyID string
	// CanonicalRequest and StringToSign are what the server signed, set on
	// a SignatureDoesNotMatch of the request (not of a chunk), so a client
	// author can compare them with their own. AWS returns both in its error
	// body; neither reveals the secret or the expected signature.
	CanonicalRequest string
	StringToSign     string

	kind *Error
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Is reports whether target is e's sentinel (or e itself).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && (t == e || t == e.kind)
}

func sentinel(status int, code, message string) *Error {
	e := &Error{Code: code, Status: status, Message: message}
	e.kind = e
	return e
}

// The sentinels. Verify returns copies with specific messages; compare with
// errors.Is.
var (
	// ErrMissingAuth: the request has neither an Authorization header nor
	// presigned query parameters. A caller that serves anonymous requests
	// checks for this one.
	ErrMissingAuth = sentinel(http.StatusForbidden, "MissingAuthenticationToken", "request is not signed: it has no Authorization header and no X-Amz-Signature query parameter")
	// ErrUnsupportedAuth: an authorization scheme other than AWS4-HMAC-SHA256.
	ErrUnsupportedAuth = sentinel(http.StatusBadRequest, "InvalidRequest", "the authorization mechanism you have provided is not supported; use AWS4-HMAC-SHA256")
	// ErrMalformedHeader: an Authorization header that does not parse, or
	// whose credential scope is not this server's.
	ErrMalformedHeader = sentinel(http.StatusBadRequest, "AuthorizationHeaderMalformed", "the authorization header is malformed")
	// ErrMalformedQuery: presigned query parameters that do not parse, or
	// whose credential scope is not this server's.
	ErrMalformedQuery = sentinel(http.StatusBadRequest, "AuthorizationQueryParametersError", "the presigned query parameters are malformed")
	// ErrInvalidArgument: a value the verifier can't accept, such as an
	// unknown X-Amz-Content-Sha256.
	ErrInvalidArgument = sentinel(http.StatusBadRequest, "InvalidArgument", "invalid argument")
	// ErrInvalidDate: no X-Amz-Date (or Date) header, or one not in the
	// ISO 8601 basic format.
	ErrInvalidDate = sentinel(http.StatusForbidden, "AccessDenied", "AWS authentication requires a valid X-Amz-Date (or Date) header")
	// ErrTimeTooSkewed: the request's time is more than MaxSkew away from
	// the server's.
	ErrTimeTooSkewed = sentinel(http.StatusForbidden, "RequestTimeTooSkewed", "the difference between the request time and the server's time is too large")
	// ErrExpired: a presigned URL past its X-Amz-Expires.
	ErrExpired = sentinel(http.StatusForbidden, "AccessDenied", "request has expired")
	// ErrNotYetValid: a presigned URL signed in the future.
	ErrNotYetValid = sentinel(http.StatusForbidden, "AccessDenied", "request is not valid yet")
	// ErrInvalidAccessKeyID: no secret is configured for the access key.
	ErrInvalidAccessKeyID = sentinel(http.StatusForbidden, "InvalidAccessKeyId", "the access key ID you provided does not exist in our records")
	// ErrInvalidToken: a security token that names no live session of the
	// access key, or one left out of the signature.
	ErrInvalidToken = sentinel(http.StatusBadRequest, "InvalidToken", "the provided token is malformed or otherwise invalid")
	// ErrSignatureDoesNotMatch: the signature of the request, of a chunk or
	// of the trailer is wrong.
	ErrSignatureDoesNotMatch = sentinel(http.StatusForbidden, "SignatureDoesNotMatch", "the request signature we calculated does not match the signature you provided; check your key and signing method")
	// ErrContentSHA256Mismatch: the body does not hash to X-Amz-Content-Sha256.
	ErrContentSHA256Mismatch = sentinel(http.StatusBadRequest, "XAmzContentSHA256Mismatch", "the provided x-amz-content-sha256 header does not match what was computed")
	// ErrBodyTooLarge: a body Verify had to read to hash is over MaxBodyBytes.
	ErrBodyTooLarge = sentinel(http.StatusRequestEntityTooLarge, "EntityTooLarge", "request body is too large")
	// ErrIncompleteBody: an aws-chunked body that ends early or does not
	// add up to X-Amz-Decoded-Content-Length.
	ErrIncompleteBody = sentinel(http.StatusBadRequest, "IncompleteBody", "the request body ended before the end of the aws-chunked encoding")
	// ErrMalformedChunk: an aws-chunked body that does not parse.
	ErrMalformedChunk = sentinel(http.StatusBadRequest, "InvalidRequest", "the aws-chunked body is malformed")
	// ErrChunkTooLarge: an aws-chunked chunk over MaxChunkBytes.
	ErrChunkTooLarge = sentinel(http.StatusRequestEntityTooLarge, "EntityTooLarge", "an aws-chunked chunk is too large")
	// ErrBadDigest: a trailing checksum (x-amz-checksum-*) that does not
	// match the body.
	ErrBadDigest = sentinel(http.StatusBadRequest, "BadDigest", "the checksum you specified did not match the calculated checksum")
)

// errorf returns a copy of kind with a specific message.
func errorf(kind *Error, format string, args ...any) *Error {
	return &Error{Code: kind.Code, Status: kind.Status, Message: fmt.Sprintf(format, args...), kind: kind}
}

// show quotes a client-supplied, non-secret value (a region, a service, a
// header name) for a message, cut short so that a message stays small.
func show(s string) string {
	const max = 64
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..."
	}
	return strconv.Quote(s)
}
