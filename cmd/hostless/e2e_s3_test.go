package main

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// pattern is an endless stream of bytes that differ from block to block,
// made as it is read: no test buffer holds the object.
type pattern struct {
	block  [1 << 20]byte
	n, max int64
}

func newPattern(size int64) *pattern {
	p := &pattern{max: size}
	for i := range p.block {
		p.block[i] = byte(i*7 + i/251)
	}
	return p
}

func (p *pattern) Read(b []byte) (int, error) {
	if p.n >= p.max {
		return 0, io.EOF
	}
	off := p.n % int64(len(p.block))
	if off == 0 {
		p.block[0]++ // each MiB differs from the one before
	}
	n := copy(b, p.block[off:])
	if rest := p.max - p.n; int64(n) > rest {
		n = int(rest)
	}
	p.n += int64(n)
	return n, nil
}

// peakRSS reads a process's peak resident memory (VmHWM) in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/PID/status")
	return 0
}

// TestLargeObjectBoundedMemory: a 2 GiB object goes up in one PUT through
// a presigned URL (one streamed body, UNSIGNED-PAYLOAD) and comes back
// whole, with S3's ETag, while the server's peak memory stays far below
// the object's size: objects stream, never held in memory.
func TestLargeObjectBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and reads 2 GiB")
	}
	t.Parallel()
	const size = 2 << 30
	const keyID, secret = "AKIAHOSTLESSE2ELARGE", "e2e-large-object-secret-0123456789"
	addr, s3addr := freeAddr(t), freeAddr(t)
	p := startProc(t, addr, env("HOSTLESS_ADMIN_KEY="+e2eKey, "HOSTLESS_AWS_ACCESS_KEY_ID="+keyID, "HOSTLESS_AWS_SECRET_ACCESS_KEY="+secret),
		"serve", "--addr", addr, "--data", dataDir(t), "--s3-addr", s3addr)
	p.waitOutput("hostless serving on "+p.url, 20*time.Second)
	p.waitReady()
	ctx := context.Background()
	c := s3.New(s3.Options{
		Region: "us-east-1",
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret}, nil
		}),
		BaseEndpoint: aws.String("http://" + s3addr), UsePathStyle: true, RetryMaxAttempts: 1,
	})
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("big")}); err != nil {
		t.Fatal(err)
	}
	before := peakRSS(t, p.cmd.Process.Pid)

	ps, err := s3.NewPresignClient(c).PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("big"), Key: aws.String("2g.bin")})
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.New()
	req, err := http.NewRequest(ps.Method, ps.URL, io.TeeReader(newPattern(size), sum))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = ps.SignedHeader.Clone()
	req.ContentLength = size
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := hex.EncodeToString(sum.Sum(nil))
	if resp.StatusCode != 200 || resp.Header.Get("ETag") != `"`+want+`"` {
		t.Fatalf("PUT of 2 GiB: %d ETag %s, want %q: %s", resp.StatusCode, resp.Header.Get("ETag"), want, body)
	}
	put := time.Since(start)

	start = time.Now()
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("big"), Key: aws.String("2g.bin")})
	if err != nil {
		t.Fatal(err)
	}
	got := md5.New()
	n, err := io.Copy(got, out.Body)
	out.Body.Close()
	if err != nil || n != size || hex.EncodeToString(got.Sum(nil)) != want {
		t.Fatalf("GET back: %d bytes, %v, md5 %x; want %d bytes, md5 %s", n, err, got.Sum(nil), int64(size), want)
	}
	peak := peakRSS(t, p.cmd.Process.Pid)
	t.Logf("2 GiB: PUT %s, GET %s; server peak RSS %d MiB (%d MiB before the object)", put.Round(time.Millisecond),
		time.Since(start).Round(time.Millisecond), peak>>20, before>>20)
	if peak > before+256<<20 {
		t.Errorf("the server's peak memory grew by %d MiB for a 2 GiB object: objects must stream", (peak-before)>>20)
	}
}
