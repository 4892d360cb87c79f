package function

import (
	"fmt"
	"sort"
	"strings"
)

// MaxBuckets bounds the buckets one function names.
const MaxBuckets = 64

// The accesses a function may have to a bucket of the object storage.
const (
	BucketRead      = "read"
	BucketWrite     = "write"
	BucketReadWrite = "read-write"
)

// bucketEnv are the variables through which a function that names buckets
// gets its temporary S3 credentials and endpoint: the platform sets them,
// so env can't.
var bucketEnv = []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"}

// validBuckets checks a spec's buckets: at most MaxBuckets names a bucket
// can have (3 to 63 lower-case letters, digits, dots and hyphens), each
// granted read, write or read-write; and none of the variables the
// credentials come in under env.
func (s *Spec) validBuckets() error {
	if len(s.Buckets) == 0 {
		return nil
	}
	if len(s.Buckets) > MaxBuckets {
		return fmt.Errorf("%w: buckets names %d buckets (at most %d)", ErrInvalid, len(s.Buckets), MaxBuckets)
	}
	names := make([]string, 0, len(s.Buckets))
	for name := range s.Buckets {
		names = append(names, name)
	}
	sort.Strings(names) // the first bad one, the same every time
	for _, name := range names {
		if !ValidBucketName(name) {
			return fmt.Errorf("%w: bucket name %q must be 3 to 63 lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit", ErrInvalid, short(name))
		}
		switch s.Buckets[name] {
		case BucketRead, BucketWrite, BucketReadWrite:
		default:
			return fmt.Errorf("%w: bucket %s: access %q must be read, write or read-write", ErrInvalid, name, short(s.Buckets[name]))
		}
	}
	for _, k := range bucketEnv {
		if _, ok := s.Env[k]; ok {
			return fmt.Errorf("%w: env sets %s, which a function that names buckets gets from the platform", ErrInvalid, k)
		}
	}
	return nil
}

// ValidBucketName reports whether name can name a bucket: 3 to 63
// lower-case letters, digits, dots and hyphens, starting and ending with a
// letter or digit, without two dots in a row. (The object storage refuses
// a few more, such as IP addresses and reserved prefixes.)
func ValidBucketName(name string) bool {
	if len(name) < 3 || len(name) > 63 || strings.Contains(name, "..") {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (c != '.' && c != '-' || i == 0 || i == len(name)-1) {
			return false
		}
	}
	return true
}

// Credentials are temporary credentials of the object storage, as AWS's
// STS hands them out.
type Credentials struct {
	AccessKeyID, SecretAccessKey, SessionToken string
}

// IssueCredentials issues the credentials of one instance of v, a version
// that names buckets (Spec.Buckets): they may do what the spec grants and
// nothing else. release ends them; a runtime calls it when the instance
// stops.
type IssueCredentials func(v *Version) (creds Credentials, release func(), err error)

// S3Path is the path under which an instance's local endpoint serves the
// S3 API, for AWS_ENDPOINT_URL_S3.
const S3Path = "/s3"

// S3Env returns the variables that give a function its credentials and
// the S3 endpoint at base (the instance's local endpoint, without a
// trailing slash).
func S3Env(c Credentials, base string) map[string]string {
	return map[string]string{
		"AWS_ACCESS_KEY_ID":     c.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY": c.SecretAccessKey,
		"AWS_SESSION_TOKEN":     c.SessionToken,
		"AWS_ENDPOINT_URL_S3":   base + S3Path,
	}
}
