package storage

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// FuzzParsePresigned: the presigned URL parameters, outside input, never
// panic, and what parses keeps its invariants; a URL this package signs
// parses and verifies, and no change to its query does.
func FuzzParsePresigned(f *testing.F) {
	key := []byte("0123456789abcdef0123456789abcdef")
	good := presignURL(key, "PUT", "bkt", "a/b c.txt", 4102444800, "text/plain")
	_, goodQuery, _ := strings.Cut(good, "?")
	for _, seed := range []string{
		goodQuery,
		"",
		"x-hostless-signature=",
		"x-hostless-signature=00&x-hostless-expires=1",
		"x-hostless-expires=-1&x-hostless-signature=" + strings.Repeat("ab", 32),
		"x-hostless-expires=1e9&x-hostless-signature=" + strings.Repeat("ab", 32),
		"x-hostless-expires=1&x-hostless-expires=2&x-hostless-signature=" + strings.Repeat("ab", 32),
		"x-hostless-expires=99999999999999999999&x-hostless-signature=" + strings.Repeat("AB", 32),
		"%zz",
		"x-hostless-content-type=" + strings.Repeat("a", 300) + "&x-hostless-expires=1&x-hostless-signature=" + strings.Repeat("ab", 32),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := parsePresigned(raw)
		if err != nil {
			return
		}
		if p.expires <= 0 || len(p.signature) != 32 || len(p.contentType) > maxContentTypeLen {
			t.Fatalf("parsed %q into %+v", raw, p)
		}
		ok := checkPresigned(key, p, "PUT", "bkt", "a/b c.txt", time.Unix(0, 0)) == nil
		if ok {
			q, _ := url.ParseQuery(raw)
			g, _ := url.ParseQuery(goodQuery)
			for _, k := range []string{presignExpires, presignSignature, presignContentType} {
				if !strings.EqualFold(q.Get(k), g.Get(k)) {
					t.Fatalf("%q verifies but differs from the signed URL in %s", raw, k)
				}
			}
		}
	})
}

func TestPresignedRoundTrip(t *testing.T) {
	key := []byte("k")
	u := presignURL(key, "GET", "bkt", "x/y", 100, "")
	_, q, _ := strings.Cut(u, "?")
	p, err := parsePresigned(q)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkPresigned(key, p, "HEAD", "bkt", "x/y", time.Unix(99, 0)); err != nil {
		t.Fatalf("HEAD on a GET URL: %v", err)
	}
	if err := checkPresigned(key, p, "GET", "bkt", "x/y", time.Unix(100, 0)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("at expiry: %v", err)
	}
	if err := checkPresigned(key, p, "GET", "bkt", "x/z", time.Unix(99, 0)); err == nil {
		t.Fatal("another key verifies")
	}
}
