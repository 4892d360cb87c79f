package sigv4

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/signer"
)

// The fuzz tests cover every parser of outside input: the Authorization
// header and its credential, the query string, a whole request's
// authentication, and the aws-chunked decoder. Their seeds come from the
// real signers (minio-go's signer package) at a fixed time; the committed
// corpus in testdata/fuzz is written by TestWriteFuzzCorpus.

const (
	fuzzSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	fuzzKeyID  = "AKIDEXAMPLE"
	fuzzRegion = "us-east-1"
)

var fuzzTime = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

type minioHasher struct{ hash.Hash }

func (minioHasher) Close() {}

// streamingSeed returns a body minio-go's signer encodes for data (with a
// signed CRC32C trailer when trailer is set, unsigned when unsigned), and
// the seed signature of its Authorization header.
func streamingSeed(data []byte, trailer, unsigned bool) (body []byte, seedSig string) {
	req, _ := http.NewRequest("PUT", "http://127.0.0.1:9000/bucket/obj", bytes.NewReader(data))
	if trailer {
		crc := crc32.New(crc32.MakeTable(crc32.Castagnoli))
		crc.Write(data)
		req.Trailer = http.Header{"X-Amz-Checksum-Crc32c": {base64.StdEncoding.EncodeToString(crc.Sum(nil))}}
	}
	if unsigned {
		req = signer.StreamingUnsignedV4(req, "", int64(len(data)), fuzzTime)
	} else {
		req = signer.StreamingSignV4(req, fuzzKeyID, fuzzSecret, "", fuzzRegion, int64(len(data)), fuzzTime, minioHasher{sha256.New()})
		a := req.Header.Get("Authorization")
		seedSig = a[strings.LastIndex(a, "=")+1:]
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		panic(err)
	}
	return body, seedSig
}

type chunkedSeed struct {
	name       string
	body       []byte
	mode       uint8
	seedSig    string
	declared   string
	decodedLen int64
}

func chunkedSeeds() []chunkedSeed {
	// Small bodies keep the fuzzer fast: one data chunk, then the final
	// one, chained by their signatures. Multi-chunk bodies are in
	// TestChunkedMutations.
	data := bytes.Repeat([]byte("0123456789abcdef"), 125)
	signedBody, signedSig := streamingSeed(data[:600], false, false)
	trailerBody, trailerSig := streamingSeed(data[:1000], true, false)
	unsignedBody, _ := streamingSeed(data[:100], true, true)
	empty, emptySig := streamingSeed(nil, false, false)
	return []chunkedSeed{
		{"signed", signedBody, 0, signedSig, "", 600},
		{"signed-trailer", trailerBody, 1, trailerSig, "x-amz-checksum-crc32c", 1000},
		{"unsigned-trailer", unsignedBody, 2, "", "x-amz-checksum-crc32c", 100},
		{"signed-empty", empty, 0, emptySig, "", 0},
		{"unsigned-sdk-style", []byte("5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n"), 2, "", "x-amz-checksum-crc32", 5},
		{"unsigned-sha256", []byte("3\r\nabc\r\n0\r\nx-amz-checksum-sha256:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=\r\n\r\n"), 2, "", "x-amz-checksum-sha256", -1},
		{"unsigned-extension", []byte("3;ext=1\r\nabc\r\n0\r\n\r\n"), 2, "", "", 3},
		{"huge-size", []byte("ffffffffffffffff\r\n"), 2, "", "", -1},
		{"long-line", append(bytes.Repeat([]byte("0"), 5000), "\r\n"...), 2, "", "", -1},
		{"no-crlf", []byte("3\r\nabcX\r\n0\r\n\r\n"), 2, "", "", -1},
		{"signed-bad-sig", []byte("3;chunk-signature=zz\r\nabc\r\n"), 0, signedSig, "", -1},
	}
}

var modes = []Payload{PayloadStreaming, PayloadStreamingTrailer, PayloadStreamingUnsignedTrailer}

func FuzzChunkedReader(f *testing.F) {
	for _, s := range chunkedSeeds() {
		f.Add(s.body, s.mode, s.seedSig, s.declared, s.decodedLen)
	}
	date := fuzzTime.Format(timeFormat)
	scope := date[:8] + "/" + fuzzRegion + "/s3/aws4_request"
	key := deriveKey(fuzzSecret, date[:8], fuzzRegion, "s3")
	f.Fuzz(func(t *testing.T, body []byte, mode uint8, seedSig, declared string, decodedLen int64) {
		if decodedLen < -1 {
			decodedLen = -1
		}
		var names []string
		for n := range strings.SplitSeq(declared, ",") {
			if n != "" && len(names) < maxDeclared {
				names = append(names, strings.ToLower(n))
			}
		}
		cr := newChunked(io.NopCloser(bytes.NewReader(body)), modes[int(mode)%len(modes)], 1<<16, decodedLen, names, key, date, scope, seedSig)
		out, err := io.ReadAll(cr)
		if len(out) > len(body) {
			t.Fatalf("decoded %d bytes out of %d", len(out), len(body))
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not an *Error", err, err)
			}
			if cr.finished() {
				t.Fatal("finished after an error")
			}
			return
		}
		if !cr.finished() {
			t.Fatal("EOF but not finished")
		}
		if decodedLen >= 0 && int64(len(out)) != decodedLen {
			t.Fatalf("decoded %d bytes; X-Amz-Decoded-Content-Length %d", len(out), decodedLen)
		}
	})
}

func authorizationSeeds() []string {
	return []string{
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260314/us-east-1/lambda/aws4_request, SignedHeaders=content-length;content-type;host;x-amz-date, Signature=" + strings.Repeat("ab", 32),
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260314/us-east-1/s3/aws4_request,SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature=" + strings.Repeat("0f", 32),
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260314/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=xyz",
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260314/us-east-1/s3, SignedHeaders=host, Signature=",
		"AWS4-HMAC-SHA256 Credential=/20260314/us-east-1/s3/aws4_request, SignedHeaders=Host;host, Signature=" + strings.Repeat("ab", 32),
		"AWS4-HMAC-SHA256 Credential=a/b/c/d/e, Credential=a/b/c/d/e",
		"AWS4-HMAC-SHA256 ",
		"AWS AKIDEXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=",
		"Bearer eyJhbGciOiJIUzI1NiJ9.e30.secret",
		"",
	}
}

func FuzzParseAuthorization(f *testing.F) {
	for _, s := range authorizationSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		a, err := parseAuthorization(h)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *Error", err)
			}
			// An unknown scheme may be a bare token: its message is the
			// fixed one, which echoes nothing.
			scheme, _, _ := strings.Cut(strings.TrimSpace(h), " ")
			switch scheme {
			case Algorithm, "AWS", "AWS4-ECDSA-P256-SHA256", "Bearer", "Basic", "Digest", "Negotiate":
			default:
				if e.Message != ErrUnsupportedAuth.Message {
					t.Fatalf("error %q for an unknown scheme is not the fixed message", e.Message)
				}
			}
			return
		}
		// What parsed renders back into a header that parses the same.
		again := fmt.Sprintf("%s Credential=%s/%s, SignedHeaders=%s, Signature=%x", Algorithm, a.accessKeyID, a.scope, a.signedHeaders, a.signature)
		b, err := parseAuthorization(again)
		if err != nil {
			t.Fatalf("re-rendered %q does not parse: %v", again, err)
		}
		if b.credential != a.credential || b.signedHeaders != a.signedHeaders || b.signature != a.signature {
			t.Fatalf("round trip changed %+v into %+v", a, b)
		}
		if !strings.Contains(";"+a.signedHeaders+";", ";host;") {
			t.Fatalf("signed headers %q lack host", a.signedHeaders)
		}
	})
}

func FuzzCanonicalQuery(f *testing.F) {
	for _, s := range []string{
		"", "acl", "a=1&b=2", "b=a%2Fb&b=a-b", "X-Amz-Signature=abc&X-Amz-Date=20260314T150926Z",
		"a=x%20y+z&%C3%A9=%e2%82%ac&empty=&=v&&", "bad=%zz", "k=%", "semi;colon=1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		params, err := parseQuery(raw)
		if err != nil {
			return
		}
		canon := string(appendCanonicalQuery(nil, params, false))
		// The canonical form is its own canonical form.
		again, err := parseQuery(canon)
		if err != nil {
			t.Fatalf("canonical %q does not parse: %v", canon, err)
		}
		if got := string(appendCanonicalQuery(nil, again, false)); got != canon {
			t.Fatalf("canonical form of %q is %q, then %q", raw, canon, got)
		}
		for i := 0; i < len(canon); i++ {
			if c := canon[i]; !unreserved(c) && c != '%' && c != '=' && c != '&' {
				t.Fatalf("canonical %q has %q unencoded", canon, c)
			}
		}
	})
}

// FuzzVerify sends requests with fuzzed authentication through Verify:
// nothing panics, every failure is an *Error, and no message shows the
// secret.
func FuzzVerify(f *testing.F) {
	for _, s := range authorizationSeeds() {
		f.Add(s, "", "", "20260314T150926Z")
	}
	f.Add("", "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20260314%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20260314T150926Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature="+strings.Repeat("ab", 32), "", "")
	f.Add("", "X-Amz-Credential=x", "", "")
	f.Add(authorizationSeeds()[1], "", StreamingPayload, "20260314T150926Z")
	f.Add(authorizationSeeds()[1], "", strings.Repeat("A", 64), "20260314T150926Z")
	v := &Verifier{Service: "s3", S3: true, Lookup: func(id string) (string, bool) { return fuzzSecret, id == fuzzKeyID }, MaxBodyBytes: 1 << 10}
	f.Fuzz(func(t *testing.T, authz, query, contentSHA, date string) {
		r, err := http.NewRequest("PUT", "http://127.0.0.1/bucket/key", strings.NewReader("body"))
		if err != nil {
			t.Skip()
		}
		r.URL.RawQuery = query
		r.Header.Set("Authorization", authz)
		r.Header.Set("X-Amz-Content-Sha256", contentSHA)
		r.Header.Set("X-Amz-Date", date)
		if _, err := v.Verify(r, fuzzTime); err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *Error", err)
			}
			if strings.Contains(e.Error(), fuzzSecret) || strings.Contains(e.CanonicalRequest, fuzzSecret) {
				t.Fatal("an error shows the secret")
			}
		}
	})
}

// TestCRC64NVME checks the table against the catalogue's check value of
// CRC-64/NVME ("123456789").
func TestCRC64NVME(t *testing.T) {
	h := newChecksum("x-amz-checksum-crc64nvme")
	h.Write([]byte("123456789"))
	if got := fmt.Sprintf("%x", h.Sum(nil)); got != "ae8b14860a799888" {
		t.Fatalf("CRC-64/NVME of 123456789 = %s; want ae8b14860a799888", got)
	}
}

// TestFuzzSeedsVerify checks that the signed seeds are valid, so that the
// fuzzer starts from bodies that get through every check.
func TestFuzzSeedsVerify(t *testing.T) {
	date := fuzzTime.Format(timeFormat)
	key := deriveKey(fuzzSecret, date[:8], fuzzRegion, "s3")
	for _, s := range chunkedSeeds()[:4] {
		var declared []string
		if s.declared != "" {
			declared = strings.Split(s.declared, ",")
		}
		cr := newChunked(io.NopCloser(bytes.NewReader(s.body)), modes[s.mode], 1<<16, s.decodedLen, declared, key, date, date[:8]+"/us-east-1/s3/aws4_request", s.seedSig)
		if _, err := io.ReadAll(cr); err != nil {
			t.Errorf("seed %s: %v", s.name, err)
		}
	}
}

// TestWriteFuzzCorpus writes the seed corpus to testdata/fuzz when
// SIGV4_WRITE_FUZZ_CORPUS=1; the files are committed.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("SIGV4_WRITE_FUZZ_CORPUS") != "1" {
		t.Skip("set SIGV4_WRITE_FUZZ_CORPUS=1 to rewrite testdata/fuzz")
	}
	write := func(target, name string, values ...any) {
		var b strings.Builder
		b.WriteString("go test fuzz v1\n")
		for _, v := range values {
			switch v := v.(type) {
			case []byte:
				fmt.Fprintf(&b, "[]byte(%q)\n", v)
			case string:
				fmt.Fprintf(&b, "string(%q)\n", v)
			case uint8:
				fmt.Fprintf(&b, "byte(%q)\n", rune(v))
			case int64:
				fmt.Fprintf(&b, "int64(%d)\n", v)
			}
		}
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range chunkedSeeds() {
		write("FuzzChunkedReader", s.name, s.body, s.mode, s.seedSig, s.declared, s.decodedLen)
	}
	for i, s := range authorizationSeeds() {
		write("FuzzParseAuthorization", fmt.Sprintf("seed-%02d", i), s)
		write("FuzzVerify", fmt.Sprintf("header-%02d", i), s, "", "", "20260314T150926Z")
	}
	write("FuzzVerify", "presigned", "", "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20260314%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20260314T150926Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature="+strings.Repeat("ab", 32), "", "")
	for i, s := range []string{"", "acl", "b=a%2Fb&b=a-b", "a=x%20y+z&%C3%A9=%e2%82%ac&empty=&=v&&", "bad=%zz"} {
		write("FuzzCanonicalQuery", fmt.Sprintf("seed-%02d", i), s)
	}
}
