package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestStorageBrowserAPI: the browser API is on the main server beside the
// S3 API over the same objects; the admin creates a bucket, opens it for
// public reads, and a presigned upload then works with no token.
func TestStorageBrowserAPI(t *testing.T) {
	t.Parallel()
	cfg := newConfig(t)
	cfg.S3Addr = "127.0.0.1:0"
	cfg.AWSAccessKeyID, cfg.AWSSecretAccessKey = testAWSKeyID, testAWSSecret
	a := startApp(t, cfg)
	admin := authHeader(testKey)
	if resp, b := a.do(http.MethodPut, "/v1/storage/photos", nil, admin); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create bucket: %d %s", resp.StatusCode, b)
	}
	if resp, b := a.do(http.MethodPut, "/v1/storage/photos/_rules", []byte(`{"read": "true"}`), admin); resp.StatusCode != http.StatusOK {
		t.Fatalf("put rules: %d %s", resp.StatusCode, b)
	}
	resp, b := a.do(http.MethodPost, "/v1/storage/photos/_presign", []byte(`{"key": "a/cat.txt", "method": "PUT", "content_type": "text/plain"}`), admin)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("presign: %d %s", resp.StatusCode, b)
	}
	var ps struct{ URL string }
	if err := json.Unmarshal(b, &ps); err != nil || !strings.HasPrefix(ps.URL, "/v1/storage/photos/a/cat.txt?") {
		t.Fatalf("presign: %s (%v)", b, err)
	}
	if resp, b := a.do(http.MethodPut, ps.URL, []byte("meow"), http.Header{"Content-Type": {"text/plain"}}); resp.StatusCode != http.StatusCreated {
		t.Fatalf("presigned PUT: %d %s", resp.StatusCode, b)
	}
	resp, b = a.do(http.MethodGet, "/v1/storage/photos/a/cat.txt", nil, nil)
	if resp.StatusCode != http.StatusOK || string(b) != "meow" || resp.Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("public GET: %d %q %s", resp.StatusCode, b, resp.Header.Get("Content-Type"))
	}
	// The S3 API sees the same object.
	c := s3Client(t, a.S3URL(), nil, testAWSKeyID, testAWSSecret)
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("photos"), Key: aws.String("a/cat.txt")})
	if err != nil {
		t.Fatalf("S3 GetObject: %v", err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(got) != "meow" {
		t.Fatalf("S3 GetObject = %q", got)
	}
}
