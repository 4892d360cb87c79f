package sigv4_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/hostless/hostless/internal/sigv4"
)

// The tests in this file drive the real clients (aws-sdk-go-v2's lambda and
// s3 clients, minio-go) against a server that verifies with sigv4.

// payload returns n bytes that are not all alike and carry a marker that a
// tampering transport can find.
func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%23)
	}
	if n >= 64 {
		copy(b[n/2:], "MARKER")
	}
	return b
}

// tamper is a transport that changes the first "MARKER" in a request body
// to "MARKEX", keeping the body's length: the bytes a client signed are
// not the bytes the server gets.
type tamper struct{ base http.RoundTripper }

func (t tamper) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return t.base.RoundTrip(r)
	}
	b, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		return nil, err
	}
	b = bytes.Replace(b, []byte("MARKER"), []byte("MARKEX"), 1)
	c := r.Clone(r.Context())
	c.Body = io.NopCloser(bytes.NewReader(b))
	return t.base.RoundTrip(c)
}

func awsConfig(h *harness, creds aws.Credentials, transport http.RoundTripper) aws.Config {
	client := h.Client()
	if transport != nil {
		client.Transport = transport
	}
	return aws.Config{
		Region:           testRegion,
		Credentials:      credsProvider(creds),
		HTTPClient:       client,
		RetryMaxAttempts: 1,
	}
}

func TestLambdaClientInvoke(t *testing.T) {
	t.Parallel()
	v := &sigv4.Verifier{Service: "lambda", Lookup: lookup}
	h := newHarness(t, v, nil, false)
	big := `{"data":"` + strings.Repeat("x", 200<<10) + `"}`
	tests := []struct {
		name      string
		creds     aws.Credentials
		function  string
		qualifier string
		payload   string
		want      *sigv4.Error
	}{
		{name: "by name", function: "hello", payload: invokePayload},
		{name: "by ARN", function: "arn:aws:lambda:us-east-1:123456789012:function:hello", payload: invokePayload},
		{name: "with a qualifier", function: "hello", qualifier: "$LATEST", payload: invokePayload},
		{name: "partial ARN with version", function: "123456789012:function:hello:7", payload: invokePayload},
		{name: "no payload", function: "hello"},
		{name: "200 KiB payload", function: "hello", payload: big},
		{name: "wrong secret", function: "hello", creds: aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: wrongSecre}, payload: invokePayload, want: sigv4.ErrSignatureDoesNotMatch},
		{name: "unknown key", function: "hello", creds: aws.Credentials{AccessKeyID: "AKIDNOBODY", SecretAccessKey: testSecret}, payload: invokePayload, want: sigv4.ErrInvalidAccessKeyID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Not parallel: the outcomes of one server are read in order.
			creds := testCreds
			if tt.creds.AccessKeyID != "" {
				creds = tt.creds
			}
			client := lambda.NewFromConfig(awsConfig(h, creds, nil), func(o *lambda.Options) { o.BaseEndpoint = aws.String(h.URL) })
			in := &lambda.InvokeInput{FunctionName: aws.String(tt.function)}
			if tt.qualifier != "" {
				in.Qualifier = aws.String(tt.qualifier)
			}
			if tt.payload != "" {
				in.Payload = []byte(tt.payload)
			}
			out, err := client.Invoke(context.Background(), in)
			o := h.last(t)
			want(t, o, tt.want)
			if tt.want != nil {
				if err == nil {
					t.Fatal("the client saw no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(out.Payload) != `{"ok":true}` || string(o.body) != tt.payload || o.auth.Service != "lambda" || o.auth.Payload != sigv4.PayloadSigned {
				t.Errorf("payload out %q, body in %d bytes, auth %+v", out.Payload, len(o.body), o.auth)
			}
			if tt.payload != "" && !bytes.Equal(o.auth.Body, o.body) {
				t.Error("Auth.Body is not the body the handler read")
			}
		})
	}
}

func newS3Client(h *harness, creds aws.Credentials, transport http.RoundTripper) *s3.Client {
	return s3.NewFromConfig(awsConfig(h, creds, transport), func(o *s3.Options) {
		o.BaseEndpoint = aws.String(h.URL)
		o.UsePathStyle = true
	})
}

// TestS3ClientPlainHTTP: over plain HTTP, aws-sdk-go-v2 signs the body's
// SHA-256 (X-Amz-Content-Sha256 with its hex).
func TestS3ClientPlainHTTP(t *testing.T) {
	t.Parallel()
	v := &sigv4.Verifier{Service: "s3", S3: true, Lookup: lookup}
	h := newHarness(t, v, nil, false)
	client := newS3Client(h, testCreds, nil)
	ctx := context.Background()
	data := payload(100 << 10)
	for _, key := range []string{"plain.txt", "photos/2026 03/a+b%c é (1).jpg", "a//b/./c/../d", "~!*'()"} {
		if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bucket"), Key: aws.String(key), Body: bytes.NewReader(data)}); err != nil {
			t.Fatalf("PutObject %q: %v (server: %v)", key, err, h.last(t).err)
		}
		o := h.last(t)
		want(t, o, nil)
		if !bytes.Equal(o.body, data) || o.auth.Payload != sigv4.PayloadSigned {
			t.Fatalf("PutObject %q: body %d bytes, payload %v", key, len(o.body), o.auth.Payload)
		}
		if _, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bucket"), Key: aws.String(key)}); err != nil {
			t.Fatalf("GetObject %q: %v (server: %v)", key, err, h.last(t).err)
		}
		want(t, h.last(t), nil)
	}
	if _, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("bucket"), Prefix: aws.String("photos/2026 03/"), Delimiter: aws.String("/"), StartAfter: aws.String("a=b&c")}); err == nil {
		// The test server answers {"ok":true}, which is no ListBucketResult.
		t.Log("ListObjectsV2 parsed the answer")
	}
	want(t, h.last(t), nil)

	// The body changed on the way: the signed hash no longer matches.
	bad := newS3Client(h, testCreds, tamper{http.DefaultTransport})
	if _, err := bad.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bucket"), Key: aws.String("k"), Body: bytes.NewReader(data)}); err == nil {
		t.Fatal("a tampered upload succeeded")
	}
	want(t, h.last(t), sigv4.ErrContentSHA256Mismatch)

	wrong := newS3Client(h, aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: wrongSecre}, nil)
	if _, err := wrong.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bucket"), Key: aws.String("k")}); err == nil {
		t.Fatal("a wrong secret succeeded")
	}
	want(t, h.last(t), sigv4.ErrSignatureDoesNotMatch)
}

// TestS3ClientTLSTrailer: over HTTPS, aws-sdk-go-v2 uploads aws-chunked
// with STREAMING-UNSIGNED-PAYLOAD-TRAILER and a trailing checksum.
func TestS3ClientTLSTrailer(t *testing.T) {
	t.Parallel()
	v := &sigv4.Verifier{Service: "s3", S3: true, Lookup: lookup}
	h := newHarness(t, v, nil, true)
	client := newS3Client(h, testCreds, nil)
	ctx := context.Background()
	data := payload(300 << 10)
	tests := []struct {
		name    string
		alg     s3types.ChecksumAlgorithm
		trailer string
		body    func() io.Reader
	}{
		// Without an algorithm this SDK version sends UNSIGNED-PAYLOAD and
		// the checksum in a header.
		{name: "SDK defaults", body: func() io.Reader { return bytes.NewReader(data) }},
		{name: "CRC32", alg: s3types.ChecksumAlgorithmCrc32, trailer: "X-Amz-Checksum-Crc32", body: func() io.Reader { return bytes.NewReader(data) }},
		{name: "CRC32C", alg: s3types.ChecksumAlgorithmCrc32c, trailer: "X-Amz-Checksum-Crc32c", body: func() io.Reader { return bytes.NewReader(data) }},
		{name: "CRC64NVME", alg: s3types.ChecksumAlgorithmCrc64nvme, trailer: "X-Amz-Checksum-Crc64nvme", body: func() io.Reader { return bytes.NewReader(data) }},
		{name: "SHA1", alg: s3types.ChecksumAlgorithmSha1, trailer: "X-Amz-Checksum-Sha1", body: func() io.Reader { return bytes.NewReader(data) }},
		{name: "SHA256", alg: s3types.ChecksumAlgorithmSha256, trailer: "X-Amz-Checksum-Sha256", body: func() io.Reader { return bytes.NewReader(data) }},
		{name: "unseekable body of unknown length", alg: s3types.ChecksumAlgorithmCrc32, trailer: "X-Amz-Checksum-Crc32", body: func() io.Reader { return io.MultiReader(bytes.NewReader(data[:1000]), bytes.NewReader(data[1000:])) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &s3.PutObjectInput{Bucket: aws.String("bucket"), Key: aws.String("dir/obj " + tt.name), Body: tt.body(), ChecksumAlgorithm: tt.alg}
			if _, err := client.PutObject(ctx, in); err != nil {
				t.Fatalf("PutObject: %v (server: %v)", err, h.last(t).err)
			}
			o := h.last(t)
			want(t, o, nil)
			if tt.trailer != "" && o.auth.Payload != sigv4.PayloadStreamingUnsignedTrailer {
				t.Errorf("payload %v; want %v", o.auth.Payload, sigv4.PayloadStreamingUnsignedTrailer)
			}
			if !bytes.Equal(o.body, data) {
				t.Fatalf("decoded %d bytes; want the %d uploaded", len(o.body), len(data))
			}
			if tt.trailer != "" && o.trailer.Get(tt.trailer) == "" {
				t.Errorf("trailer %v has no %s", o.trailer, tt.trailer)
			}
		})
	}

	t.Run("tampered in flight", func(t *testing.T) {
		bad := newS3Client(h, testCreds, tamper{h.Client().Transport})
		in := &s3.PutObjectInput{Bucket: aws.String("bucket"), Key: aws.String("k"), Body: bytes.NewReader(data), ChecksumAlgorithm: s3types.ChecksumAlgorithmCrc32}
		if _, err := bad.PutObject(ctx, in); err == nil {
			t.Fatal("a tampered upload succeeded")
		}
		want(t, h.last(t), sigv4.ErrBadDigest)
	})
	t.Run("GetObject", func(t *testing.T) {
		if _, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bucket"), Key: aws.String("dir/a b")}); err != nil {
			t.Fatal(err)
		}
		want(t, h.last(t), nil)
	})
}

// TestS3PresignClient uses the s3 presign client's URLs with a plain HTTP
// client, as a browser or curl would.
func TestS3PresignClient(t *testing.T) {
	t.Parallel()
	v := &sigv4.Verifier{Service: "s3", S3: true, Lookup: lookup, Region: testRegion}
	h := newHarness(t, v, nil, false)
	presign := s3.NewPresignClient(newS3Client(h, testCreds, nil), s3.WithPresignExpires(10*time.Minute))
	ctx := context.Background()
	key := "shared/report 2026+final.pdf"

	get, err := presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bucket"), Key: aws.String(key), ResponseContentDisposition: aws.String(`attachment; filename="r.pdf"`)})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(get.Method, get.URL, nil)
	for k, vs := range get.SignedHeader {
		if k != "Host" {
			req.Header[k] = vs
		}
	}
	o := h.do(t, req)
	want(t, o, nil)
	if !o.auth.Presigned || o.auth.Payload != sigv4.PayloadUnsigned || o.auth.Expires.Sub(o.auth.Time) != 10*time.Minute {
		t.Errorf("auth %+v", o.auth)
	}

	put, err := presign.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bucket"), Key: aws.String(key), ContentType: aws.String("application/pdf")})
	if err != nil {
		t.Fatal(err)
	}
	req, _ = http.NewRequest(put.Method, put.URL, strings.NewReader("%PDF-1.7"))
	for k, vs := range put.SignedHeader {
		if k != "Host" {
			req.Header[k] = vs
		}
	}
	o = h.do(t, req)
	want(t, o, nil)
	if string(o.body) != "%PDF-1.7" {
		t.Errorf("body %q", o.body)
	}

	// The signed Content-Type is changed.
	req, _ = http.NewRequest(put.Method, put.URL, strings.NewReader("%PDF-1.7"))
	req.Header.Set("Content-Type", "text/html")
	want(t, h.do(t, req), sigv4.ErrSignatureDoesNotMatch)

	// The key is changed.
	u, _ := url.Parse(get.URL)
	u.Path = "/bucket/shared/other.pdf"
	u.RawPath = ""
	req, _ = http.NewRequest("GET", u.String(), nil)
	want(t, h.do(t, req), sigv4.ErrSignatureDoesNotMatch)
}

func newMinio(t *testing.T, h *harness, trailing bool, transport http.RoundTripper) *minio.Client {
	t.Helper()
	u, _ := url.Parse(h.URL)
	if transport == nil {
		transport = http.DefaultTransport
	}
	c, err := minio.New(u.Host, &minio.Options{
		Creds:           miniocreds.NewStaticV4(testKeyID, testSecret, ""),
		Region:          testRegion,
		Transport:       transport,
		TrailingHeaders: trailing,
		MaxRetries:      1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestMinioClient: minio-go over plain HTTP signs every 64 KiB chunk
// (STREAMING-AWS4-HMAC-SHA256-PAYLOAD), and with trailing headers adds a
// signed trailing checksum.
func TestMinioClient(t *testing.T) {
	t.Parallel()
	v := &sigv4.Verifier{Service: "s3", S3: true, Lookup: lookup, Region: testRegion}
	h := newHarness(t, v, nil, false)
	ctx := context.Background()
	tests := []struct {
		name     string
		size     int
		trailing bool
		opts     minio.PutObjectOptions
		payload  sigv4.Payload
		trailer  string
	}{
		{name: "one chunk", size: 1000, payload: sigv4.PayloadStreaming},
		{name: "exactly one full chunk", size: 64 << 10, payload: sigv4.PayloadStreaming},
		{name: "several chunks", size: 200 << 10, payload: sigv4.PayloadStreaming},
		{name: "empty object", size: 0, payload: sigv4.PayloadStreaming},
		{name: "signed trailer CRC32C", size: 200 << 10, trailing: true, opts: minio.PutObjectOptions{Checksum: minio.ChecksumCRC32C}, payload: sigv4.PayloadStreamingTrailer, trailer: "X-Amz-Checksum-Crc32c"},
		{name: "signed trailer SHA256", size: 70 << 10, trailing: true, opts: minio.PutObjectOptions{Checksum: minio.ChecksumSHA256}, payload: sigv4.PayloadStreamingTrailer, trailer: "X-Amz-Checksum-Sha256"},
		{name: "signed trailer CRC64NVME", size: 70 << 10, trailing: true, opts: minio.PutObjectOptions{Checksum: minio.ChecksumCRC64NVME}, payload: sigv4.PayloadStreamingTrailer, trailer: "X-Amz-Checksum-Crc64nvme"},
		{name: "unsigned trailer", size: 200 << 10, trailing: true, opts: minio.PutObjectOptions{DisableContentSha256: true, Checksum: minio.ChecksumCRC32C}, payload: sigv4.PayloadStreamingUnsignedTrailer, trailer: "X-Amz-Checksum-Crc32c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newMinio(t, h, tt.trailing, nil)
			data := payload(tt.size)
			before := h.count()
			_, err := c.PutObject(ctx, "bucket", "dir/obj "+tt.name, bytes.NewReader(data), int64(len(data)), tt.opts)
			if err != nil {
				t.Fatalf("PutObject: %v (server: %v)", err, h.last(t).err)
			}
			if h.count() != before+1 {
				t.Fatalf("PutObject sent %d requests; want 1", h.count()-before)
			}
			o := h.last(t)
			want(t, o, nil)
			if o.auth.Payload != tt.payload {
				t.Errorf("payload %v; want %v", o.auth.Payload, tt.payload)
			}
			if !bytes.Equal(o.body, data) {
				t.Fatalf("decoded %d bytes; want the %d uploaded", len(o.body), len(data))
			}
			if o.auth.DecodedLength != int64(len(data)) {
				t.Errorf("DecodedLength %d", o.auth.DecodedLength)
			}
			if tt.trailer != "" && o.trailer.Get(tt.trailer) == "" {
				t.Errorf("trailer %v has no %s", o.trailer, tt.trailer)
			}
		})
	}

	for _, tt := range []struct {
		name     string
		trailing bool
		opts     minio.PutObjectOptions
		want     *sigv4.Error
	}{
		{name: "tampered signed chunk", want: sigv4.ErrSignatureDoesNotMatch},
		{name: "tampered signed chunk with trailer", trailing: true, opts: minio.PutObjectOptions{Checksum: minio.ChecksumCRC32C}, want: sigv4.ErrSignatureDoesNotMatch},
		{name: "tampered unsigned chunk", trailing: true, opts: minio.PutObjectOptions{DisableContentSha256: true, Checksum: minio.ChecksumCRC32C}, want: sigv4.ErrBadDigest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newMinio(t, h, tt.trailing, tamper{http.DefaultTransport})
			data := payload(200 << 10)
			if _, err := c.PutObject(ctx, "bucket", "k", bytes.NewReader(data), int64(len(data)), tt.opts); err == nil {
				t.Fatal("a tampered upload succeeded")
			}
			o := h.last(t)
			want(t, o, tt.want)
			// No byte of a chunk that failed its signature reached the
			// handler: it read only the chunks before it.
			if tt.want == sigv4.ErrSignatureDoesNotMatch && bytes.Contains(o.body, []byte("MARKEX")) {
				t.Error("the handler read bytes of the tampered chunk")
			}
		})
	}

	t.Run("wrong secret", func(t *testing.T) {
		u, _ := url.Parse(h.URL)
		c, err := minio.New(u.Host, &minio.Options{Creds: miniocreds.NewStaticV4(testKeyID, wrongSecre, ""), Region: testRegion, MaxRetries: 1})
		if err != nil {
			t.Fatal(err)
		}
		data := payload(1000)
		if _, err := c.PutObject(ctx, "bucket", "k", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err == nil {
			t.Fatal("a wrong secret succeeded")
		}
		want(t, h.last(t), sigv4.ErrSignatureDoesNotMatch)
	})
}
