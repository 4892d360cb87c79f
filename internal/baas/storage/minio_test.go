package storage_test

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

func minioCode(err error) string { return minio.ToErrorResponse(err).Code }

// TestMinioClient drives the API with minio-go over plain HTTP (every
// 64 KiB chunk signed: STREAMING-AWS4-HMAC-SHA256-PAYLOAD) and HTTPS.
func TestMinioClient(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		tls      bool
		wantMode string
	}{
		{name: "http", wantMode: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"},
		{name: "https", tls: true, wantMode: "UNSIGNED-PAYLOAD"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, serverOptions{tls: tc.tls, maxObjectBytes: 20 << 20})
			c := srv.minioClient(t, testKeyID, testSecret)
			for _, sc := range minioScenarios {
				t.Run(sc.name, func(t *testing.T) { sc.run(t, srv, c) })
			}
			if !srv.sawMode(tc.wantMode) {
				t.Errorf("no PUT used %s: %v", tc.wantMode, srv.modes)
			}
		})
	}
}

var minioScenarios = []struct {
	name string
	run  func(t *testing.T, srv *server, c *minio.Client)
}{
	{"MakeBucket", func(t *testing.T, srv *server, c *minio.Client) {
		must(t, c.MakeBucket(t.Context(), "mbucket", minio.MakeBucketOptions{Region: testRegion}))
		err := c.MakeBucket(t.Context(), "mbucket", minio.MakeBucketOptions{Region: testRegion})
		if minioCode(err) != "BucketAlreadyOwnedByYou" {
			t.Fatalf("second MakeBucket: %v", err)
		}
		ok, err := c.BucketExists(t.Context(), "mbucket")
		if err != nil || !ok {
			t.Fatalf("BucketExists = %v, %v", ok, err)
		}
		bs, err := c.ListBuckets(t.Context())
		if err != nil || len(bs) != 1 || bs[0].Name != "mbucket" {
			t.Fatalf("ListBuckets = %+v, %v", bs, err)
		}
	}},
	{"PutObject, GetObject, StatObject", func(t *testing.T, srv *server, c *minio.Client) {
		ctx := t.Context()
		body := data(300<<10, 9)
		info, err := c.PutObject(ctx, "mbucket", "docs/report.pdf", bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{
			ContentType: "application/pdf", UserMetadata: map[string]string{"author": "bo"},
		})
		must(t, err)
		if info.ETag != md5hex(body) {
			t.Fatalf("ETag %s, want %s", info.ETag, md5hex(body))
		}
		obj, err := c.GetObject(ctx, "mbucket", "docs/report.pdf", minio.GetObjectOptions{})
		must(t, err)
		got, err := io.ReadAll(obj)
		must(t, err)
		if !bytes.Equal(got, body) {
			t.Fatal("GetObject returned other bytes")
		}
		st, err := c.StatObject(ctx, "mbucket", "docs/report.pdf", minio.StatObjectOptions{})
		must(t, err)
		if st.Size != int64(len(body)) || st.ContentType != "application/pdf" || st.UserMetadata["Author"] != "bo" {
			t.Fatalf("StatObject: %+v", st)
		}
		var opts minio.GetObjectOptions
		must(t, opts.SetRange(100, 199))
		obj, err = c.GetObject(ctx, "mbucket", "docs/report.pdf", opts)
		must(t, err)
		got, err = io.ReadAll(obj)
		must(t, err)
		if !bytes.Equal(got, body[100:200]) {
			t.Fatalf("range: %d bytes", len(got))
		}
		// Read at an offset through minio's ReaderAt/Seek, which use ranges.
		obj, err = c.GetObject(ctx, "mbucket", "docs/report.pdf", minio.GetObjectOptions{})
		must(t, err)
		buf := make([]byte, 10)
		if _, err := obj.ReadAt(buf, 5000); err != nil || !bytes.Equal(buf, body[5000:5010]) {
			t.Fatalf("ReadAt: %v", err)
		}
		obj.Close()
		_, err = c.StatObject(ctx, "mbucket", "nope", minio.StatObjectOptions{})
		if minioCode(err) != "NoSuchKey" {
			t.Fatalf("StatObject of a missing key: %v", err)
		}
	}},
	{"unknown size streams", func(t *testing.T, srv *server, c *minio.Client) {
		body := data(3<<20, 10)
		_, err := c.PutObject(t.Context(), "mbucket", "stream", io.MultiReader(bytes.NewReader(body)), -1, minio.PutObjectOptions{PartSize: 5 << 20})
		must(t, err)
		st, err := c.StatObject(t.Context(), "mbucket", "stream", minio.StatObjectOptions{})
		if err != nil || st.Size != int64(len(body)) {
			t.Fatalf("StatObject = %+v, %v", st, err)
		}
	}},
	{"multipart", func(t *testing.T, srv *server, c *minio.Client) {
		body := data(16<<20, 11)
		info, err := c.PutObject(t.Context(), "mbucket", "big", bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{PartSize: 5 << 20})
		must(t, err)
		if !strings.HasSuffix(info.ETag, "-4") {
			t.Fatalf("multipart ETag %s, want 4 parts", info.ETag)
		}
		obj, err := c.GetObject(t.Context(), "mbucket", "big", minio.GetObjectOptions{})
		must(t, err)
		got, err := io.ReadAll(obj)
		must(t, err)
		if !bytes.Equal(got, body) {
			t.Fatal("multipart object read back as other bytes")
		}
	}},
	{"ListObjects", func(t *testing.T, srv *server, c *minio.Client) {
		ctx := t.Context()
		for _, k := range []string{"l/a", "l/b/1", "l/b/2", "l/c d", "l/é"} {
			_, err := c.PutObject(ctx, "mbucket", k, strings.NewReader(k), int64(len(k)), minio.PutObjectOptions{})
			must(t, err)
		}
		var got []string
		for o := range c.ListObjects(ctx, "mbucket", minio.ListObjectsOptions{Prefix: "l/", MaxKeys: 2}) {
			must(t, o.Err)
			got = append(got, o.Key)
		}
		if want := []string{"l/a", "l/b/", "l/c d", "l/é"}; !slices.Equal(got, want) {
			t.Fatalf("ListObjects = %q, want %q", got, want)
		}
		got = nil
		for o := range c.ListObjects(ctx, "mbucket", minio.ListObjectsOptions{Prefix: "l/", Recursive: true}) {
			must(t, o.Err)
			got = append(got, o.Key)
		}
		if want := []string{"l/a", "l/b/1", "l/b/2", "l/c d", "l/é"}; !slices.Equal(got, want) {
			t.Fatalf("recursive ListObjects = %q, want %q", got, want)
		}
	}},
	{"CopyObject and RemoveObjects", func(t *testing.T, srv *server, c *minio.Client) {
		ctx := t.Context()
		_, err := c.CopyObject(ctx, minio.CopyDestOptions{Bucket: "mbucket", Object: "l/copy"}, minio.CopySrcOptions{Bucket: "mbucket", Object: "l/c d"})
		must(t, err)
		must(t, c.RemoveObject(ctx, "mbucket", "l/copy", minio.RemoveObjectOptions{}))
		ch := make(chan minio.ObjectInfo, 5)
		for _, k := range []string{"l/a", "l/b/1", "l/b/2", "l/c d", "l/é"} {
			ch <- minio.ObjectInfo{Key: k}
		}
		close(ch)
		for e := range c.RemoveObjects(ctx, "mbucket", ch, minio.RemoveObjectsOptions{}) {
			t.Errorf("RemoveObjects: %s: %v", e.ObjectName, e.Err)
		}
		for o := range c.ListObjects(ctx, "mbucket", minio.ListObjectsOptions{Prefix: "l/", Recursive: true}) {
			t.Errorf("left after RemoveObjects: %s %v", o.Key, o.Err)
		}
	}},
	{"presigned GET", func(t *testing.T, srv *server, c *minio.Client) {
		u, err := c.PresignedGetObject(t.Context(), "mbucket", "stream", time.Minute, url.Values{})
		must(t, err)
		resp, err := srv.httpClient().Get(u.String())
		must(t, err)
		b := readAll(t, resp.Body)
		if resp.StatusCode != http.StatusOK || len(b) != 3<<20 {
			t.Fatalf("presigned GET: %s, %d bytes", resp.Status, len(b))
		}
	}},
	{"too large", func(t *testing.T, srv *server, c *minio.Client) {
		before := srv.blobFiles(t)
		body := data(21<<20, 12)
		_, err := c.PutObject(t.Context(), "mbucket", "huge", bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{DisableMultipart: true})
		if minioCode(err) != "EntityTooLarge" {
			t.Fatalf("too large: %v", err)
		}
		if after := srv.blobFiles(t); after != before {
			t.Fatalf("%d blob files before, %d after", before, after)
		}
	}},
	{"wrong credentials", func(t *testing.T, srv *server, c *minio.Client) {
		bad := srv.minioClient(t, testKeyID, "not-the-secret-0123456789")
		_, err := bad.PutObject(t.Context(), "mbucket", "forged", strings.NewReader("x"), 1, minio.PutObjectOptions{})
		if minioCode(err) != "SignatureDoesNotMatch" {
			t.Fatalf("wrong secret: %v", err)
		}
		unknown := srv.minioClient(t, "AKIANOBODY0000000000", testSecret)
		_, err = unknown.ListBuckets(t.Context())
		if minioCode(err) != "InvalidAccessKeyId" {
			t.Fatalf("unknown key: %v", err)
		}
	}},
	{"RemoveBucket", func(t *testing.T, srv *server, c *minio.Client) {
		err := c.RemoveBucket(t.Context(), "mbucket")
		if minioCode(err) != "BucketNotEmpty" {
			t.Fatalf("RemoveBucket of a full bucket: %v", err)
		}
		for _, k := range []string{"docs/report.pdf", "stream", "big"} {
			must(t, c.RemoveObject(t.Context(), "mbucket", k, minio.RemoveObjectOptions{}))
		}
		must(t, c.RemoveBucket(t.Context(), "mbucket"))
		if n := srv.blobFiles(t); n != 0 {
			t.Fatalf("%d blob files left after every object is gone", n)
		}
	}},
}
