package sigv4_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/hostless/hostless/internal/sigv4"
)

// capture is one request as a real client sent it: method, request URI,
// headers and raw (still aws-chunked) body.
type capture struct {
	method, uri, host string
	header            http.Header
	body              []byte
	at                time.Time
}

// recordOne runs send against a server that records the first request and
// answers 200, and returns the recording.
func recordOne(t *testing.T, useTLS bool, send func(srv *httptest.Server)) capture {
	t.Helper()
	var (
		mu  sync.Mutex
		got []capture
	)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("recording: %v", err)
		}
		mu.Lock()
		got = append(got, capture{method: r.Method, uri: r.RequestURI, host: r.Host, header: r.Header.Clone(), body: b, at: time.Now()})
		mu.Unlock()
		w.Header().Set("ETag", `"0123456789abcdef0123456789abcdef"`)
	})
	var srv *httptest.Server
	if useTLS {
		srv = httptest.NewTLSServer(h)
	} else {
		srv = httptest.NewServer(h)
	}
	defer srv.Close()
	send(srv)
	mu.Lock()
	defer mu.Unlock()
	if len(got) == 0 {
		t.Fatal("the client sent nothing")
	}
	return got[0]
}

// request rebuilds the captured request as net/http's server would hand
// it to a handler, with body instead of the captured one.
func (c capture) request(body []byte) *http.Request {
	r := httptest.NewRequest(c.method, c.uri, bytes.NewReader(body))
	r.Host = c.host
	r.Header = c.header.Clone()
	// Content-Length stays as sent: aws-sdk-go-v2 signs it.
	r.ContentLength, _ = strconv.ParseInt(c.header.Get("Content-Length"), 10, 64)
	return r
}

func captureMinio(t *testing.T, size int, trailing bool, opts minio.PutObjectOptions) capture {
	return recordOne(t, false, func(srv *httptest.Server) {
		u, _ := url.Parse(srv.URL)
		c, err := minio.New(u.Host, &minio.Options{Creds: miniocreds.NewStaticV4(testKeyID, testSecret, ""), Region: testRegion, TrailingHeaders: trailing, MaxRetries: 1})
		if err != nil {
			t.Fatal(err)
		}
		data := payload(size)
		if _, err := c.PutObject(context.Background(), "bucket", "obj", bytes.NewReader(data), int64(len(data)), opts); err != nil {
			t.Fatal(err)
		}
	})
}

func captureSDKTrailer(t *testing.T, size int) capture {
	return recordOne(t, true, func(srv *httptest.Server) {
		client := s3.NewFromConfig(aws.Config{Region: testRegion, Credentials: credsProvider(testCreds), HTTPClient: srv.Client(), RetryMaxAttempts: 1}, func(o *s3.Options) {
			o.BaseEndpoint = aws.String(srv.URL)
			o.UsePathStyle = true
		})
		in := &s3.PutObjectInput{Bucket: aws.String("bucket"), Key: aws.String("obj"), Body: bytes.NewReader(payload(size)), ChecksumAlgorithm: s3types.ChecksumAlgorithmCrc32}
		if _, err := client.PutObject(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	})
}

// frames splits an aws-chunked body into its data chunks (each with its
// header line and CRLF) and what follows them: the final chunk and trailer.
func frames(t *testing.T, body []byte) (chunks [][]byte, rest []byte) {
	t.Helper()
	for {
		i := bytes.Index(body, []byte("\r\n"))
		if i < 0 {
			t.Fatalf("no chunk header in %q", body)
		}
		sizeHex, _, _ := strings.Cut(string(body[:i]), ";")
		var size int
		for _, c := range sizeHex {
			size = size*16 + strings.IndexRune("0123456789abcdef", c)
		}
		if size == 0 {
			return chunks, body
		}
		end := i + 2 + size + 2
		chunks = append(chunks, body[:end])
		body = body[end:]
	}
}

func join(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// TestChunkedMutations replays aws-chunked bodies recorded from minio-go
// (signed chunks, signed trailer) and aws-sdk-go-v2 (unsigned, trailing
// checksum), changed in every way that must fail.
func TestChunkedMutations(t *testing.T) {
	t.Parallel()
	signed := captureMinio(t, 200<<10, false, minio.PutObjectOptions{})
	signedTrailer := captureMinio(t, 200<<10, true, minio.PutObjectOptions{Checksum: minio.ChecksumCRC32C})
	unsigned := captureSDKTrailer(t, 200<<10)
	if got := unsigned.header.Get("X-Amz-Content-Sha256"); got != sigv4.StreamingUnsignedPayloadTrailer {
		t.Fatalf("the SDK sent %s", got)
	}

	sc, srest := frames(t, signed.body)
	tc, trest := frames(t, signedTrailer.body)
	uc, urest := frames(t, unsigned.body)
	if len(sc) != 4 || len(tc) != 4 || len(uc) < 1 {
		t.Fatalf("chunks: minio %d, minio trailer %d, SDK %d", len(sc), len(tc), len(uc))
	}
	edit := func(b []byte, from, to string) []byte {
		if !bytes.Contains(b, []byte(from)) {
			t.Fatalf("%q not in %q", from, b)
		}
		return bytes.Replace(bytes.Clone(b), []byte(from), []byte(to), 1)
	}
	crcValue := func(rest []byte) string {
		_, v, _ := strings.Cut(string(rest), "x-amz-checksum-crc32")
		v = strings.TrimPrefix(v, "c")
		v = strings.TrimPrefix(v, ":")
		return v[:8]
	}
	sigOf := func(chunk []byte) string {
		_, v, _ := strings.Cut(string(chunk), "chunk-signature=")
		return v[:64]
	}

	_, trailerSig, _ := strings.Cut(string(trest), "x-amz-trailer-signature:")
	trailerSig = "x-amz-trailer-signature:" + trailerSig[:4]

	tests := []struct {
		name     string
		c        capture
		body     []byte
		header   func(http.Header)
		maxChunk int
		want     *sigv4.Error
		wantN    int // decoded bytes read before the error, -1 to skip
	}{
		{name: "minio signed as sent", c: signed, body: signed.body},
		{name: "minio signed trailer as sent", c: signedTrailer, body: signedTrailer.body},
		{name: "SDK unsigned trailer as sent", c: unsigned, body: unsigned.body},

		{name: "signed: data changed", c: signed, body: join(sc[0], edit(sc[1], "klmn", "klmN"), sc[2], sc[3], srest), want: sigv4.ErrSignatureDoesNotMatch, wantN: 64 << 10},
		{name: "signed: chunk dropped", c: signed, body: join(sc[0], sc[2], sc[3], srest), want: sigv4.ErrSignatureDoesNotMatch, wantN: 64 << 10},
		{name: "signed: chunks swapped", c: signed, body: join(sc[0], sc[2], sc[1], sc[3], srest), want: sigv4.ErrSignatureDoesNotMatch, wantN: 64 << 10},
		{name: "signed: another chunk's signature", c: signed, body: join(sc[0], edit(sc[1], sigOf(sc[1]), sigOf(sc[2])), sc[2], sc[3], srest), want: sigv4.ErrSignatureDoesNotMatch, wantN: 64 << 10},
		{name: "signed: final chunk's signature changed", c: signed, body: join(sc[0], sc[1], sc[2], sc[3], edit(srest, sigOf(srest)[:4], "0000")), want: sigv4.ErrSignatureDoesNotMatch, wantN: 200 << 10},
		{name: "signed: no final chunk", c: signed, body: join(sc[0], sc[1], sc[2], sc[3]), want: sigv4.ErrIncompleteBody, wantN: 200 << 10},
		{name: "signed: cut inside a chunk", c: signed, body: join(sc[0], sc[1][:1000]), want: sigv4.ErrIncompleteBody, wantN: 64 << 10},
		{name: "signed: cut inside a chunk header", c: signed, body: join(sc[0], sc[1][:20]), want: sigv4.ErrIncompleteBody, wantN: 64 << 10},
		{name: "signed: data after the final chunk", c: signed, body: join(signed.body, []byte("0;chunk-signature=x\r\n")), want: sigv4.ErrMalformedChunk, wantN: 200 << 10},
		{name: "signed: chunk without signature", c: signed, body: join(sc[0], edit(sc[1], ";chunk-signature="+sigOf(sc[1]), ""), sc[2], sc[3], srest), want: sigv4.ErrMalformedChunk, wantN: 64 << 10},
		{name: "signed: chunk over MaxChunkBytes", c: signed, body: signed.body, maxChunk: 32 << 10, want: sigv4.ErrChunkTooLarge, wantN: 0},
		{name: "signed: decoded length changed", c: signed, body: signed.body, header: func(h http.Header) { h.Set("X-Amz-Decoded-Content-Length", "1") }, want: sigv4.ErrSignatureDoesNotMatch, wantN: -1},

		{name: "signed trailer: checksum changed", c: signedTrailer, body: join(tc[0], tc[1], tc[2], tc[3], edit(trest, crcValue(trest)[:4], "AAAA")), want: sigv4.ErrSignatureDoesNotMatch, wantN: 200 << 10},
		{name: "signed trailer: trailer signature changed", c: signedTrailer, body: join(tc[0], tc[1], tc[2], tc[3], edit(trest, trailerSig, "x-amz-trailer-signature:0000")), want: sigv4.ErrSignatureDoesNotMatch, wantN: 200 << 10},
		{name: "signed trailer: trailer signature removed", c: signedTrailer, body: join(tc[0], tc[1], tc[2], tc[3], trest[:bytes.Index(trest, []byte("x-amz-trailer-signature"))], []byte("\r\n")), want: sigv4.ErrIncompleteBody, wantN: 200 << 10},
		{name: "signed trailer: lines after the trailer signature", c: signedTrailer, body: join(tc[0], tc[1], tc[2], tc[3], bytes.TrimSuffix(trest, []byte("\r\n")), []byte("x-amz-checksum-crc32c:AAAAAA==\r\n\r\n")), want: sigv4.ErrMalformedChunk, wantN: 200 << 10},

		{name: "unsigned: data changed", c: unsigned, body: join(edit(uc[0], "klmn", "klmN"), join(uc[1:]...), urest), want: sigv4.ErrBadDigest, wantN: -1},
		{name: "unsigned: checksum changed", c: unsigned, body: join(join(uc...), edit(urest, crcValue(urest)[:4], "AAAA")), want: sigv4.ErrBadDigest, wantN: 200 << 10},
		{name: "unsigned: trailer missing", c: unsigned, body: join(join(uc...), []byte("0\r\n\r\n")), want: sigv4.ErrIncompleteBody, wantN: 200 << 10},
		{name: "unsigned: undeclared trailer", c: unsigned, body: join(join(uc...), edit(urest, "x-amz-checksum-crc32:", "x-amz-meta-evil:x\r\nx-amz-checksum-crc32:")), want: sigv4.ErrMalformedChunk, wantN: 200 << 10},
		{name: "unsigned: chunk dropped", c: unsigned, body: join(join(uc[1:]...), urest), want: sigv4.ErrIncompleteBody, wantN: -1},
		{name: "unsigned: cut", c: unsigned, body: unsigned.body[:len(unsigned.body)/2], want: sigv4.ErrIncompleteBody, wantN: -1},
		{name: "unsigned: bad chunk size", c: unsigned, body: join([]byte("zz\r\n"), unsigned.body), want: sigv4.ErrMalformedChunk, wantN: 0},
		{name: "unsigned: chunk size over 64 bits", c: unsigned, body: join([]byte("10000000000000000\r\n"), unsigned.body), want: sigv4.ErrMalformedChunk, wantN: 0},
		{name: "unsigned: data not followed by CRLF", c: unsigned, body: join(uc[0][:len(uc[0])-2], []byte("X\r\n"), join(uc[1:]...), urest), want: sigv4.ErrMalformedChunk, wantN: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := &sigv4.Verifier{Service: "s3", S3: true, Lookup: lookup, MaxChunkBytes: tt.maxChunk}
			r := tt.c.request(tt.body)
			if tt.header != nil {
				tt.header(r.Header)
			}
			auth, err := v.Verify(r, tt.c.at)
			var got []byte
			if err == nil {
				got, err = io.ReadAll(r.Body)
			}
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, payload(200<<10)) {
					t.Fatalf("decoded %d bytes; want the 200 KiB sent", len(got))
				}
				if auth.Trailer() == nil && auth.Payload != sigv4.PayloadStreaming {
					t.Error("no trailer")
				}
				return
			}
			if !errorsIs(err, tt.want) {
				t.Fatalf("err = %v; want %s (%s)", err, tt.want.Code, tt.want.Message)
			}
			if tt.wantN >= 0 && len(got) != tt.wantN {
				t.Errorf("read %d decoded bytes before the error; want %d", len(got), tt.wantN)
			}
			if auth != nil && auth.Trailer() != nil {
				t.Error("Trailer() is set on a body that failed")
			}
			checkNoSecrets(t, err.(*sigv4.Error))
			// Errors are sticky.
			if auth == nil {
				return
			}
			if n, err2 := r.Body.Read(make([]byte, 10)); n != 0 || err2 != err {
				t.Errorf("a read after the error = %d, %v", n, err2)
			}
		})
	}
}
