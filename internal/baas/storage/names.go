package storage

import (
	"net/http"
	"net/netip"
	"strings"

	"github.com/hostless/hostless/internal/blob"
)

// MaxKeyBytes is the longest object key: S3's 1024 bytes of UTF-8.
const MaxKeyBytes = 1024

// validBucket checks a bucket name against S3's rules for general purpose
// buckets: 3 to 63 lower-case letters, digits, dots and hyphens, starting
// and ending with a letter or digit, no "..", not an IP address, and none
// of the reserved prefixes and suffixes.
func validBucket(name string) *Error {
	bad := func(why string) *Error {
		return s3err(http.StatusBadRequest, "InvalidBucketName", "The specified bucket is not valid: %s.", why).with(show(name), "")
	}
	if len(name) < 3 || len(name) > 63 {
		return bad("a name has 3 to 63 characters")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return bad("use only lower-case letters, digits, dots and hyphens")
		}
	}
	if !alnum(name[0]) || !alnum(name[len(name)-1]) {
		return bad("a name starts and ends with a letter or a digit")
	}
	if strings.Contains(name, "..") {
		return bad("a name has no two adjacent dots")
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return bad("a name is not an IP address")
	}
	for _, p := range []string{"xn--", "sthree-", "amzn-s3-demo-"} {
		if strings.HasPrefix(name, p) {
			return bad("the prefix " + p + " is reserved")
		}
	}
	for _, s := range []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"} {
		if strings.HasSuffix(name, s) {
			return bad("the suffix " + s + " is reserved")
		}
	}
	return nil
}

func alnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// validKey checks an object key: what blob.ValidKey accepts (1 to 1024
// bytes of UTF-8 without NUL), without "." or ".." path segments, which
// tools that map keys to files would resolve outside their directory.
func validKey(bucket, key string) *Error {
	if len(key) > MaxKeyBytes {
		return s3err(http.StatusBadRequest, "KeyTooLongError", "Your key is too long: %d bytes, at most %d.", len(key), MaxKeyBytes).with(bucket, "")
	}
	if err := blob.ValidKey(key); err != nil {
		return errInvalidArgument("Invalid object key: %s.", strings.TrimPrefix(err.Error(), "blob "))
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "." || seg == ".." {
			return errInvalidArgument("Invalid object key: a key has no \".\" or \"..\" path segment.")
		}
	}
	return nil
}

// show cuts a client's string short for a message.
func show(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
