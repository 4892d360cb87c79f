package storage

import (
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hostless/hostless/internal/store"
)

// FuzzNames: bucket and key checks never panic, and what they accept is
// safe: a key that passes is valid UTF-8 without NUL or dot segments, at
// most 1024 bytes; a bucket that passes is S3's charset and length.
func FuzzNames(f *testing.F) {
	for _, s := range []string{"a", "a/b", "../x", "a/./b", "x\x00y", strings.Repeat("k", 1025), "bucket", "my.bucket-1", "192.168.0.1", "\xff", "é/日本"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if validKey("b", s) == nil {
			if len(s) == 0 || len(s) > MaxKeyBytes || !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
				t.Fatalf("accepted key %q", s)
			}
			for seg := range strings.SplitSeq(s, "/") {
				if seg == "." || seg == ".." {
					t.Fatalf("accepted key %q with a dot segment", s)
				}
			}
		}
		if validBucket(s) == nil {
			if len(s) < 3 || len(s) > 63 || strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789.-") != "" {
				t.Fatalf("accepted bucket %q", s)
			}
		}
		if bucket, key, e := copySource(s); e == nil && (validBucket(bucket) != nil || validKey(bucket, key) != nil) {
			t.Fatalf("copySource(%q) = %q, %q", s, bucket, key)
		}
		if p, ok := parseToken(s); ok && p.after == "" && p.from == "" {
			t.Fatalf("token %q decodes to no position", s)
		}
		if utf8.ValidString(s) {
			if end, ok := store.PrefixEnd(s); ok && (end <= s || strings.HasPrefix(end, s) || !utf8.ValidString(end)) {
				t.Fatalf("PrefixEnd(%q) = %q", s, end)
			}
		}
	})
}

// FuzzRange: a Range header never selects bytes outside the object.
func FuzzRange(f *testing.F) {
	for _, s := range []string{"bytes=0-0", "bytes=-1", "bytes=5-", "bytes=1-2,3-4", "bytes=9-1", "bytes=-0", "bytes=99999999999999999999-"} {
		f.Add(s, int64(10))
	}
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			size = -size
		}
		start, length, partial, e := parseRange(h, size)
		if e != nil {
			if e.Status != http.StatusRequestedRangeNotSatisfiable {
				t.Fatalf("status %d", e.Status)
			}
			return
		}
		if start < 0 || length < 0 || start+length > size || (!partial && (start != 0 || length != size)) || (partial && length == 0) {
			t.Fatalf("parseRange(%q, %d) = %d, %d, %v", h, size, start, length, partial)
		}
	})
}

// FuzzDeleteXML: DeleteObjects bodies parse or fail with MalformedXML,
// and a parsed one names 1 to 1000 objects.
func FuzzDeleteXML(f *testing.F) {
	f.Add([]byte(`<Delete><Object><Key>a</Key></Object><Quiet>true</Quiet></Delete>`))
	f.Add([]byte(`<?xml version="1.0"?><Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>a&amp;b</Key><VersionId>null</VersionId></Object></Delete>`))
	f.Add([]byte(`<Delete>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := parseDelete(body)
		if err != nil {
			if e, ok := err.(*Error); !ok || e.Code != "MalformedXML" {
				t.Fatalf("error %v", err)
			}
			return
		}
		if len(d.Objects) == 0 || len(d.Objects) > maxDeleteObjects {
			t.Fatalf("%d objects", len(d.Objects))
		}
	})
}

// FuzzCompleteXML: CompleteMultipartUpload bodies parse into 1 to 10,000
// parts in strictly ascending order, or fail with an S3 error.
func FuzzCompleteXML(f *testing.F) {
	f.Add([]byte(`<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"abc"</ETag></Part><Part><PartNumber>2</PartNumber><ETag>"def"</ETag></Part></CompleteMultipartUpload>`))
	f.Add([]byte(`<CompleteMultipartUpload><Part><PartNumber>2</PartNumber></Part><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>`))
	f.Add([]byte(`<CompleteMultipartUpload><Part><PartNumber>-1</PartNumber><ChecksumCRC32>AAAA</ChecksumCRC32></Part></CompleteMultipartUpload>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := parseComplete(body)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %v is not an S3 error", err)
			}
			return
		}
		if len(c.Parts) == 0 || len(c.Parts) > MaxParts {
			t.Fatalf("%d parts", len(c.Parts))
		}
		for i, p := range c.Parts {
			if p.PartNumber < 1 || p.PartNumber > MaxParts || (i > 0 && p.PartNumber <= c.Parts[i-1].PartNumber) {
				t.Fatalf("parts %+v", c.Parts)
			}
		}
	})
}
