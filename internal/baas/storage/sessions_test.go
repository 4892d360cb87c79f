package storage_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/hostless/hostless/internal/baas/storage"
)

// sessionClient is an S3 client configured the way a Lambda function's
// SDK configures itself from its environment: AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN and AWS_ENDPOINT_URL_S3, and
// nothing about addressing (an endpoint on an IP address makes the SDK
// use path-style requests).
func sessionClient(endpoint string, creds storage.Credentials) *s3.Client {
	return s3.New(s3.Options{
		Region: testRegion,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken}, nil
		}),
		BaseEndpoint:               aws.String(endpoint),
		RetryMaxAttempts:           1,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// TestTemporaryCredentials: credentials issued with a grant reach the
// granted buckets for what the grant says, through the API served under a
// path prefix (as a function's instance endpoint serves it), and nothing
// else; once revoked, they reach nothing.
func TestTemporaryCredentials(t *testing.T) {
	t.Parallel()
	srv := newServer(t, serverOptions{})
	admin := srv.awsClient(testCreds)
	ctx := t.Context()
	for _, b := range []string{"photos", "thumbs", "private"} {
		_, err := admin.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)})
		must(t, err)
	}
	put := func(c *s3.Client, bucket, key, body string) error {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body)})
		return err
	}
	get := func(c *s3.Client, bucket, key string) (string, error) {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			return "", err
		}
		return string(readAll(t, out.Body)), nil
	}
	must(t, put(admin, "photos", "cat.jpg", "meow"))
	must(t, put(admin, "private", "salaries.csv", "secret numbers"))

	creds, revoke := srv.h.Issue(map[string]storage.Access{"photos": storage.AccessRead, "thumbs": storage.AccessReadWrite})
	if !strings.HasPrefix(creds.AccessKeyID, "ASIA") || len(creds.AccessKeyID) != 20 || creds.SecretAccessKey == "" || creds.SessionToken == "" {
		t.Fatalf("credentials %q look nothing like AWS's temporary ones", creds.AccessKeyID)
	}
	prefixed := httptest.NewServer(srv.h.Prefixed("/s3"))
	t.Cleanup(prefixed.Close)
	c := sessionClient(prefixed.URL+"/s3", creds)

	// What the grant allows.
	lb, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
	must(t, err)
	var names []string
	for _, b := range lb.Buckets {
		names = append(names, aws.ToString(b.Name))
	}
	if !slices.Equal(names, []string{"photos", "thumbs"}) {
		t.Errorf("ListBuckets = %v, want the granted buckets [photos thumbs]", names)
	}
	if body, err := get(c, "photos", "cat.jpg"); err != nil || body != "meow" {
		t.Fatalf("GetObject of a readable bucket = %q, %v", body, err)
	}
	lo, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("photos")})
	must(t, err)
	if len(lo.Contents) != 1 {
		t.Errorf("ListObjectsV2 of photos: %d objects, want 1", len(lo.Contents))
	}
	must(t, put(c, "thumbs", "cat.jpg", "small meow"))
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("thumbs"), Key: aws.String("copy.jpg"), CopySource: aws.String("photos/cat.jpg")})
	must(t, err)
	if body, err := get(admin, "thumbs", "copy.jpg"); err != nil || body != "meow" {
		t.Fatalf("the copy = %q, %v", body, err)
	}
	_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("thumbs"), Key: aws.String("copy.jpg")})
	must(t, err)

	// What it does not.
	wantCode(t, put(c, "photos", "dog.jpg", "woof"), "AccessDenied")
	_, err = get(c, "private", "salaries.csv")
	wantCode(t, err, "AccessDenied")
	_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("private"), Key: aws.String("salaries.csv")})
	if errStatus(err) != http.StatusForbidden {
		t.Errorf("HeadObject of an ungranted bucket: %v, want 403", err)
	}
	_, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("private")})
	wantCode(t, err, "AccessDenied")
	_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("photos"), Key: aws.String("cat.jpg")})
	wantCode(t, err, "AccessDenied")
	_, err = c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("photos"), Delete: &types.Delete{Objects: []types.ObjectIdentifier{{Key: aws.String("cat.jpg")}}}})
	wantCode(t, err, "AccessDenied")
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("thumbs"), Key: aws.String("leak.csv"), CopySource: aws.String("private/salaries.csv")})
	wantCode(t, err, "AccessDenied")
	_, err = c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("photos"), Key: aws.String("big")})
	wantCode(t, err, "AccessDenied")
	_, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("mine")})
	wantCode(t, err, "AccessDenied")
	_, err = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("thumbs")})
	wantCode(t, err, "AccessDenied")
	if body, err := get(admin, "photos", "cat.jpg"); err != nil || body != "meow" {
		t.Fatalf("photos/cat.jpg after the refused writes = %q, %v", body, err)
	}

	// A presigned URL made with the credentials carries the token.
	ps, err := s3.NewPresignClient(c).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("photos"), Key: aws.String("cat.jpg")})
	must(t, err)
	if !strings.Contains(ps.URL, "X-Amz-Security-Token=") {
		t.Fatalf("presigned URL without the token: %s", ps.URL)
	}
	resp, err := http.Get(ps.URL)
	must(t, err)
	if b := readAll(t, resp.Body); resp.StatusCode != 200 || string(b) != "meow" {
		t.Errorf("presigned GET: %d %q", resp.StatusCode, b)
	}

	// Another session's token, and the credentials once revoked.
	other, revokeOther := srv.h.Issue(map[string]storage.Access{"private": storage.AccessRead})
	defer revokeOther()
	_, err = get(sessionClient(prefixed.URL+"/s3", storage.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: other.SessionToken}), "photos", "cat.jpg")
	wantCode(t, err, "InvalidToken")
	revoke()
	_, err = get(c, "photos", "cat.jpg")
	wantCode(t, err, "InvalidToken")
	revoke() // twice is harmless
	// The long-term key is untouched by any of it, on the prefixed API too.
	if body, err := get(sessionClient(prefixed.URL+"/s3", storage.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret}), "private", "salaries.csv"); err != nil || body != "secret numbers" {
		t.Fatalf("long-term key through the prefix: %q, %v", body, err)
	}
	// The prefix is part of what is signed: a request outside it is refused.
	resp, err = http.Get(prefixed.URL + "/photos/cat.jpg")
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode < 400 {
		t.Errorf("GET outside the prefix: %d", resp.StatusCode)
	}
}

// TestVirtualHostedStyle: with a domain configured, BUCKET.DOMAIN/KEY
// names the bucket in the host, as the SDKs address S3 by default;
// path-style requests still work.
func TestVirtualHostedStyle(t *testing.T) {
	t.Parallel()
	srv := newServer(t, serverOptions{})
	vh := storage.New(storage.Config{Objects: srv.db, Blobs: srv.blobs, Lookup: lookup, Domain: "s3.hostless.test"})
	ts := httptest.NewServer(vh)
	t.Cleanup(ts.Close)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(ts.URL, "http://"))
	addr := ts.Listener.Addr().String()
	var hosts []string
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr) // every name resolves to the test server
	}}
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		hosts = append(hosts, r.URL.Host)
		return tr.RoundTrip(r)
	})}
	c := s3.New(s3.Options{
		Region:      testRegion,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return testCreds, nil }),
		HTTPClient:  client, BaseEndpoint: aws.String("http://s3.hostless.test:" + port), RetryMaxAttempts: 1,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	ctx := t.Context()
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("pics")})
	must(t, err)
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("pics"), Key: aws.String("a/b.txt"), Body: bytes.NewReader([]byte("hello"))})
	must(t, err)
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("pics"), Key: aws.String("a/b.txt")})
	must(t, err)
	if b := readAll(t, out.Body); string(b) != "hello" {
		t.Errorf("GetObject = %q", b)
	}
	if !slices.Contains(hosts, "pics.s3.hostless.test:"+port) {
		t.Errorf("the SDK addressed %v, not pics.s3.hostless.test", hosts)
	}
	// The same object path-style, by the admin client on the first server.
	out, err = srv.awsClient(testCreds).GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("pics"), Key: aws.String("a/b.txt")})
	must(t, err)
	if b := readAll(t, out.Body); string(b) != "hello" {
		t.Errorf("path-style GetObject = %q", b)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
