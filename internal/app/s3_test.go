package app

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func s3Client(t *testing.T, url string, tlsCfg *tls.Config, id, secret string) *s3.Client {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	return s3.New(s3.Options{
		Region: "us-east-1",
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}, nil
		}),
		HTTPClient:   &http.Client{Transport: tr, Timeout: time.Minute},
		BaseEndpoint: aws.String(url), UsePathStyle: true, RetryMaxAttempts: 1,
	})
}

// TestS3API serves the S3 API with --s3-addr over TLS (--tls-cert), with
// the managed access key pair, and keeps objects across a restart that
// names no key (the stored pair is used).
func TestS3API(t *testing.T) {
	t.Parallel()
	cfg := newConfig(t)
	cfg.S3Addr = "127.0.0.1:0"
	cfg.AWSAccessKeyID, cfg.AWSSecretAccessKey = testAWSKeyID, testAWSSecret
	certFile, keyFile, pool := selfSigned(t, t.TempDir())
	cfg.TLSCert, cfg.TLSKey = certFile, keyFile
	tlsCfg := &tls.Config{RootCAs: pool}
	ctx := context.Background()

	a := New(cfg, nil)
	if err := a.Start(ctx); err != nil {
		_ = a.Close(ctx)
		t.Fatal(err)
	}
	if !strings.HasPrefix(a.S3URL(), "https://") {
		t.Fatalf("S3URL = %q", a.S3URL())
	}
	c := s3Client(t, a.S3URL(), tlsCfg, testAWSKeyID, testAWSSecret)
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("photos")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("photos"), Key: aws.String("cat.jpg"), Body: strings.NewReader("meow")}); err != nil {
		t.Fatal(err)
	}
	bad := s3Client(t, a.S3URL(), tlsCfg, testAWSKeyID, "wrong-secret-0123456789")
	if _, err := bad.ListBuckets(ctx, &s3.ListBucketsInput{}); err == nil || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
		t.Fatalf("wrong secret: %v", err)
	}
	if err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	// Restart without the key in the environment: the stored pair serves.
	cfg.AWSAccessKeyID, cfg.AWSSecretAccessKey = "", ""
	a = New(cfg, nil)
	if err := a.Start(ctx); err != nil {
		_ = a.Close(ctx)
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Shutdown(context.Background()) })
	c = s3Client(t, a.S3URL(), tlsCfg, testAWSKeyID, testAWSSecret)
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("photos"), Key: aws.String("cat.jpg")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(b) != "meow" {
		t.Fatalf("after restart: %q", b)
	}
}

// TestS3NeedsKey: --s3-addr without any access key pair refuses to start.
func TestS3NeedsKey(t *testing.T) {
	t.Parallel()
	cfg := newConfig(t)
	cfg.S3Addr = "127.0.0.1:0"
	a := New(cfg, nil)
	err := a.Start(context.Background())
	_ = a.Close(context.Background())
	if err == nil || !strings.Contains(err.Error(), "HOSTLESS_AWS_ACCESS_KEY_ID") {
		t.Fatalf("Start = %v", err)
	}
}
