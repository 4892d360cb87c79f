package main

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/sandbox"
	"github.com/hostless/hostless/internal/wasmtest"
)

// TestThumbnailsExample deploys examples/thumbnails with the CLI, which
// creates its buckets with their rules, then uploads a photo as a user
// through the browser API: the S3 event runs the unchanged Lambda
// function, which reads the photo and writes its thumbnail with the AWS
// SDK on its temporary credentials; anyone can fetch the thumbnail.
func TestThumbnailsExample(t *testing.T) {
	if err := sandbox.Check(); err != nil {
		t.Skip("needs a host that can sandbox (CI runs as root): ", err)
	}
	t.Parallel()
	srv := serve(t, dataDir(t), env("HOSTLESS_ADMIN_KEY="+e2eKey))
	user := env("HOSTLESS_URL="+srv.url, "HOSTLESS_ADMIN_KEY="+e2eKey)
	dir := t.TempDir()
	ex := filepath.Join(wasmtest.Root(t), "examples", "thumbnails")
	for _, f := range []string{"hostless.yaml", "go.mod", "go.sum", "main.go"} {
		copyFile(t, filepath.Join(ex, f), filepath.Join(dir, f))
	}
	out, errOut, code := run(t, user, "deploy", "-f", filepath.Join(dir, "hostless.yaml"))
	if code != 0 {
		t.Fatalf("deploy: exit %d: %s %s", code, out, errOut)
	}
	for _, re := range []string{`(?m)^uploads\s+created\s+bucket$`, `(?m)^thumbnails\s+created\s+bucket$`, `(?m)^thumbnail\s+created\s+version 1$`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Fatalf("deploy output lacks %s:\n%s", re, out)
		}
	}

	do := func(method, path, token string, body []byte) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, srv.url+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	status, body := do("POST", "/v1/auth/signup", "", []byte(`{"email":"ann@example.com","password":"correct horse battery"}`))
	if status != 201 {
		t.Fatalf("signup: %d %s", status, body)
	}
	var tk struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tk); err != nil {
		t.Fatal(err)
	}

	// A 640x480 photo, with a gradient so that scaling has work to do.
	photo := image.NewRGBA(image.Rect(0, 0, 640, 480))
	for y := range 480 {
		for x := range 640 {
			photo.Set(x, y, color.RGBA{uint8(x), uint8(y), 128, 255})
		}
	}
	var jpg bytes.Buffer
	if err := jpeg.Encode(&jpg, photo, nil); err != nil {
		t.Fatal(err)
	}
	if status, body := do("PUT", "/v1/storage/uploads/my%20cat.jpg", "", jpg.Bytes()); status != 401 {
		t.Fatalf("an anonymous upload: %d %s", status, body)
	}
	if status, body := do("PUT", "/v1/storage/uploads/my%20cat.jpg", tk.AccessToken, jpg.Bytes()); status != 200 && status != 201 {
		t.Fatalf("upload: %d %s", status, body)
	}
	deadline := time.Now().Add(2 * time.Minute) // the first call starts the function's first instance
	for {
		status, body = do("GET", "/v1/storage/thumbnails/my%20cat.jpg", "", nil)
		if status == 200 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if status != 200 {
		logs, _, _ := run(t, user, "logs", "thumbnail")
		t.Fatalf("no thumbnail: %d %s\nlogs:\n%s", status, body, logs)
	}
	thumb, err := png.Decode(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("the thumbnail is not a PNG: %v", err)
	}
	if b := thumb.Bounds(); b.Dx() != 128 || b.Dy() != 96 {
		t.Errorf("thumbnail is %dx%d, want 128x96", b.Dx(), b.Dy())
	}
	// The uploads bucket has no read rule: nobody but admins reads photos
	// (a denied read is a 404, as a missing object is).
	if status, _ := do("GET", "/v1/storage/uploads/my%20cat.jpg", tk.AccessToken, nil); status != 404 {
		t.Errorf("a user reading the uploads bucket: %d, want 404", status)
	}
	if status, body := do("GET", "/v1/storage/uploads/my%20cat.jpg", e2eKey, nil); status != 200 || !bytes.Equal(body, jpg.Bytes()) {
		t.Errorf("an admin reading the photo: %d (%d bytes)", status, len(body))
	}
}
