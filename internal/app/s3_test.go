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

	"github.com/hostless/hostless/internal/function"
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

// TestWasmFunctionS3Credentials: a wasm function that names buckets finds
// temporary credentials in its environment, with AWS_ENDPOINT_URL_S3 at
// http://hostless.internal/s3; they reach what its grant says (tried here
// on the S3 listener, the same API) and end with the function's instances.
func TestWasmFunctionS3Credentials(t *testing.T) {
	t.Parallel()
	g := buildGuests(t)
	cfg := newConfig(t)
	cfg.S3Addr = "127.0.0.1:0"
	cfg.AWSAccessKeyID, cfg.AWSSecretAccessKey = testAWSKeyID, testAWSSecret
	a := startApp(t, cfg)
	ctx := context.Background()
	admin := s3Client(t, a.S3URL(), nil, testAWSKeyID, testAWSSecret)
	for _, b := range []string{"photos", "private"} {
		if _, err := admin.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	a.deploy("fn", g.sdk, function.Spec{Contract: function.ContractSDK, Buckets: map[string]string{"photos": "write"}})
	env := func(name string) string {
		t.Helper()
		resp, body := a.do("GET", "/fn/fn/secret?"+name, nil, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", name, resp.StatusCode, body)
		}
		return string(body)
	}
	if got := env("AWS_ENDPOINT_URL_S3"); got != "http://hostless.internal/s3" {
		t.Errorf("AWS_ENDPOINT_URL_S3 = %q", got)
	}
	id, secret, token := env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"), env("AWS_SESSION_TOKEN")
	if !strings.HasPrefix(id, "ASIA") || secret == "" || token == "" {
		t.Fatalf("credentials %q (secret set: %v, token set: %v)", id, secret != "", token != "")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	c := s3.New(s3.Options{
		Region: "us-east-1",
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: id, SecretAccessKey: secret, SessionToken: token}, nil
		}),
		HTTPClient: &http.Client{Transport: tr, Timeout: time.Minute}, BaseEndpoint: aws.String(a.S3URL()), UsePathStyle: true, RetryMaxAttempts: 1,
	})
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("photos"), Key: aws.String("up.txt"), Body: strings.NewReader("x")}); err != nil {
		t.Fatalf("write to the granted bucket: %v", err)
	}
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("photos"), Key: aws.String("up.txt")}); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Errorf("read of a write-only bucket: %v", err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("private"), Key: aws.String("x"), Body: strings.NewReader("x")}); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Errorf("write to another bucket: %v", err)
	}
	// Deleting the function stops its instances, and their credentials.
	if resp, body := a.do("DELETE", "/v1/functions/fn", nil, http.Header{"Authorization": {"Bearer " + testKey}}); resp.StatusCode >= 300 {
		t.Fatalf("delete: %d %s", resp.StatusCode, body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("photos"), Key: aws.String("late.txt"), Body: strings.NewReader("x")})
		if err != nil && strings.Contains(err.Error(), "InvalidToken") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("credentials of a deleted function's instance still work: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
