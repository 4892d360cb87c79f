package fs_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/hostless/hostless/internal/blob"
	"github.com/hostless/hostless/internal/blob/blobtest"
	blobfs "github.com/hostless/hostless/internal/blob/fs"
)

func open(t *testing.T) blob.Store {
	s := blobfs.New(filepath.Join(t.TempDir(), "blobs"))
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	blobtest.Run(t, open)
}

// files lists the regular files under dir, relative to it.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, path)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestLayout(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	dir := filepath.Join(root, "blobs")
	s := blobfs.New(dir)
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("New touched the disk: %v", err)
	}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("Open: dir %v, err %v; want mode 0700", fi.Mode(), err)
	}
	ctx := context.Background()
	tests := []struct {
		name string
		key  string
	}{
		{"plain", "a"},
		{"slash", "a/b"},
		{"parent", "../../escape"},
		{"absolute", "/etc/passwd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Put(ctx, tt.key, strings.NewReader("x")); err != nil {
				t.Fatal(err)
			}
		})
	}
	// Nothing outside the directory; inside, only ab/<62 hex> files.
	outside := files(t, root)
	if len(outside) != len(tests) {
		t.Errorf("files under the parent: %v", outside)
	}
	for _, f := range files(t, dir) {
		sub, name := filepath.Split(f)
		if len(sub) != 3 || len(name) != 62 || strings.Trim(sub[:2]+name, "0123456789abcdef") != "" {
			t.Errorf("unexpected file %q", f)
		}
	}
}

func TestFailedPutLeavesNoTempFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := blobfs.New(dir)
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		r    io.Reader
	}{
		{"canceled", ctx, strings.NewReader("x")},
		{"reader fails", context.Background(), io.MultiReader(strings.NewReader("partial"), iotest.ErrReader(errors.New("boom")))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Put(tt.ctx, "k", tt.r); err == nil {
				t.Fatal("Put succeeded")
			}
		})
	}
	if got := files(t, dir); len(got) != 0 {
		t.Errorf("files left behind: %v", got)
	}
}

func TestOpenSweepsTempFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := blobfs.New(dir)
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(context.Background(), "keep", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	kept := files(t, dir)
	sub := filepath.Join(dir, filepath.Dir(kept[0]))
	if err := os.WriteFile(filepath.Join(sub, ".tmp-123"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := blobfs.New(dir).Open(); err != nil {
		t.Fatal(err)
	}
	if got := files(t, dir); len(got) != 1 || got[0] != kept[0] {
		t.Errorf("after Open: files %v, want only %v", got, kept)
	}
}

// A key directory removed behind the store's back (which remembers the
// directories it made) is made again by the next Put into it.
func TestPutRemakesARemovedDirectory(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "blobs")
	s := blobfs.New(dir)
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.Put(ctx, "k", strings.NewReader("one")); err != nil {
		t.Fatal(err)
	}
	subs, err := os.ReadDir(dir)
	if err != nil || len(subs) != 1 {
		t.Fatalf("key directories: %v %v", subs, err)
	}
	if err := os.RemoveAll(filepath.Join(dir, subs[0].Name())); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "k", strings.NewReader("two")); err != nil {
		t.Fatalf("Put after the directory went: %v", err)
	}
	rc, _, err := s.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if b, _ := io.ReadAll(rc); string(b) != "two" {
		t.Fatalf("Get = %q", b)
	}
}

// A blob larger than a writeback chunk, fsynced, reads back whole.
func TestPutLargeSynced(t *testing.T) {
	t.Parallel()
	s := open(t)
	want := make([]byte, 20<<20+12345)
	for i := range want {
		want[i] = byte(i * 31 / 7)
	}
	ctx := context.Background()
	info, err := s.Put(ctx, "big", iotest.HalfReader(bytes.NewReader(want)))
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != int64(len(want)) {
		t.Fatalf("Put size %d, want %d", info.Size, len(want))
	}
	rc, _, err := s.Get(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("Get: %d bytes, equal %v, err %v", len(got), bytes.Equal(got, want), err)
	}
}
