package app

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/nats-io/nats.go/jetstream"
)

// TestS3ObjectsInNATS: with --object-store nats the S3 API keeps object
// bytes in the bus's JetStream (here the embedded server's), nothing under
// <data>/objects, and they are there after a restart.
func TestS3ObjectsInNATS(t *testing.T) {
	t.Parallel()
	cfg := newConfig(t)
	cfg.S3Addr = "127.0.0.1:0"
	cfg.AWSAccessKeyID, cfg.AWSSecretAccessKey = testAWSKeyID, testAWSSecret
	cfg.ObjectStore = "nats"
	ctx := context.Background()
	body := bytes.Repeat([]byte("0123456789abcdef"), 100_000) // 1.6 MB: several chunks

	a := startApp(t, cfg)
	c := s3Client(t, a.S3URL(), nil, testAWSKeyID, testAWSSecret)
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("photos")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("photos"), Key: aws.String("2026/cat.jpg"), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("photos"), Key: aws.String("gone"), Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("photos"), Key: aws.String("gone")}); err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(a.bus.Conn())
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, "OBJ_"+a.bus.Prefix()+"objects")
	if err != nil {
		t.Fatalf("the object store bucket: %v", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Bytes < uint64(len(body)) {
		t.Errorf("the bucket holds %d bytes, want at least %d", info.State.Bytes, len(body))
	}
	if entries, err := os.ReadDir(filepath.Join(cfg.DataDir, "objects")); err == nil && len(entries) > 0 {
		t.Errorf("<data>/objects has %d entries, want none", len(entries))
	}
	if err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	a = startApp(t, cfg)
	c = s3Client(t, a.S3URL(), nil, testAWSKeyID, testAWSSecret)
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("photos"), Key: aws.String("2026/cat.jpg")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("GET after a restart: %d bytes, %v; want %d", len(got), err, len(body))
	}
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("photos"), Key: aws.String("gone")}); err == nil || !strings.Contains(err.Error(), "NoSuchKey") {
		t.Errorf("GET of a deleted object: %v", err)
	}
}
