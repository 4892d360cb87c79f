// Package blobtest is the conformance suite every blob.Store implementation
// passes: Run(t, open) in each implementation's tests.
package blobtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/hostless/hostless/internal/blob"
)

// Run runs the suite. open returns a new, empty, opened store for each
// subtest; it registers its own cleanup with t.
func Run(t *testing.T, open func(t *testing.T) blob.Store) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, s blob.Store)
	}{
		{"PutGet", testPutGet},
		{"EmptyBlob", testEmptyBlob},
		{"Overwrite", testOverwrite},
		{"KeysArePathLike", testKeysArePathLike},
		{"Stat", testStat},
		{"Delete", testDelete},
		{"NotFound", testNotFound},
		{"InvalidKeys", testInvalidKeys},
		{"FailedReaderStoresNothing", testFailedReader},
		{"StreamingPut", testStreamingPut},
		{"ContextCancel", testContextCancel},
		{"ConcurrentPuts", testConcurrentPuts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, open(t))
		})
	}
}

// get reads key's bytes, failing the test on any error.
func get(t *testing.T, s blob.Store, key string) []byte {
	t.Helper()
	rc, info, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%q): read: %v", key, err)
	}
	if info.Size != int64(len(b)) {
		t.Errorf("Get(%q): Info.Size = %d, read %d bytes", key, info.Size, len(b))
	}
	if info.Key != key {
		t.Errorf("Get(%q): Info.Key = %q", key, info.Key)
	}
	return b
}

func put(t *testing.T, s blob.Store, key, value string) blob.Info {
	t.Helper()
	info, err := s.Put(context.Background(), key, strings.NewReader(value))
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	return info
}

func testPutGet(t *testing.T, s blob.Store) {
	info := put(t, s, "artifacts/sha256/abc", "hello, blob")
	if info.Key != "artifacts/sha256/abc" || info.Size != 11 || info.ModTime.IsZero() {
		t.Errorf("Put returned %+v", info)
	}
	if got := get(t, s, "artifacts/sha256/abc"); string(got) != "hello, blob" {
		t.Errorf("Get = %q, want %q", got, "hello, blob")
	}
}

func testEmptyBlob(t *testing.T, s blob.Store) {
	if info := put(t, s, "empty", ""); info.Size != 0 {
		t.Errorf("Put: Size = %d, want 0", info.Size)
	}
	if got := get(t, s, "empty"); len(got) != 0 {
		t.Errorf("Get = %q, want empty", got)
	}
}

func testOverwrite(t *testing.T, s blob.Store) {
	put(t, s, "k", "first, and longer")
	put(t, s, "k", "second")
	if got := get(t, s, "k"); string(got) != "second" {
		t.Errorf("Get after overwrite = %q, want %q", got, "second")
	}
}

func testKeysArePathLike(t *testing.T, s blob.Store) {
	// Keys that would clash or escape as file paths are independent names.
	keys := []string{"a", "a/b", "a/b/", "/a", "../a", "../../etc/passwd", ".", "..", "a\\b", "ünïcödé/ключ", strings.Repeat("x", blob.MaxKeyBytes)}
	for i, k := range keys {
		put(t, s, k, "value "+k+string(rune('0'+i)))
	}
	for i, k := range keys {
		if got, want := string(get(t, s, k)), "value "+k+string(rune('0'+i)); got != want {
			t.Errorf("Get(%q) = %q, want %q", k, got, want)
		}
	}
}

func testStat(t *testing.T, s blob.Store) {
	put(t, s, "k", "12345")
	info, err := s.Stat(context.Background(), "k")
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if info.Key != "k" || info.Size != 5 || info.ModTime.IsZero() {
		t.Errorf("Stat = %+v, want key k, size 5, a mod time", info)
	}
}

func testDelete(t *testing.T, s blob.Store) {
	ctx := context.Background()
	put(t, s, "a", "1")
	put(t, s, "a/b", "2")
	if err := s.Delete(ctx, "a"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Stat(ctx, "a"); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Stat after Delete: err = %v, want ErrNotFound", err)
	}
	if got := get(t, s, "a/b"); string(got) != "2" {
		t.Errorf("Delete(a) touched a/b: Get = %q", got)
	}
	if err := s.Delete(ctx, "a"); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("second Delete: err = %v, want ErrNotFound", err)
	}
	put(t, s, "a", "3")
	if got := get(t, s, "a"); string(got) != "3" {
		t.Errorf("Get after re-Put = %q, want 3", got)
	}
}

func testNotFound(t *testing.T, s blob.Store) {
	ctx := context.Background()
	tests := []struct {
		name string
		op   func() error
	}{
		{"Get", func() error {
			rc, _, err := s.Get(ctx, "missing")
			if rc != nil {
				rc.Close()
			}
			return err
		}},
		{"Stat", func() error { _, err := s.Stat(ctx, "missing"); return err }},
		{"Delete", func() error { return s.Delete(ctx, "missing") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.op(); !errors.Is(err, blob.ErrNotFound) {
				t.Errorf("err = %v, want ErrNotFound", err)
			}
		})
	}
}

func testInvalidKeys(t *testing.T, s blob.Store) {
	ctx := context.Background()
	tests := []struct {
		name string
		key  string
	}{
		{"empty", ""},
		{"NUL", "a\x00b"},
		{"invalid UTF-8", "a\xffb"},
		{"too long", strings.Repeat("x", blob.MaxKeyBytes+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if blob.ValidKey(tt.key) == nil {
				t.Errorf("ValidKey(%q) = nil", tt.key)
			}
			if _, err := s.Put(ctx, tt.key, strings.NewReader("x")); err == nil {
				t.Error("Put: err = nil")
			}
			if _, _, err := s.Get(ctx, tt.key); err == nil || errors.Is(err, blob.ErrNotFound) {
				t.Errorf("Get: err = %v, want an invalid key error", err)
			}
			if _, err := s.Stat(ctx, tt.key); err == nil || errors.Is(err, blob.ErrNotFound) {
				t.Errorf("Stat: err = %v, want an invalid key error", err)
			}
			if err := s.Delete(ctx, tt.key); err == nil || errors.Is(err, blob.ErrNotFound) {
				t.Errorf("Delete: err = %v, want an invalid key error", err)
			}
		})
	}
}

var errBroken = errors.New("broken reader")

// failingReader yields n bytes, then fails.
type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, errBroken
	}
	k := min(len(p), r.n)
	for i := range p[:k] {
		p[i] = 'x'
	}
	r.n -= k
	return k, nil
}

func testFailedReader(t *testing.T, s blob.Store) {
	ctx := context.Background()
	tests := []struct {
		name     string
		existing string // "" for no earlier value
		n        int    // bytes read before the failure
	}{
		{"new key, fails at once", "", 0},
		{"new key, fails midway", "", 100 << 10},
		{"existing key, fails midway", "keep me", 100 << 10},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := "k" + string(rune('0'+i))
			if tt.existing != "" {
				put(t, s, key, tt.existing)
			}
			if _, err := s.Put(ctx, key, &failingReader{n: tt.n}); !errors.Is(err, errBroken) {
				t.Fatalf("Put: err = %v, want the reader's error", err)
			}
			if tt.existing == "" {
				if _, err := s.Stat(ctx, key); !errors.Is(err, blob.ErrNotFound) {
					t.Errorf("Stat after failed Put: err = %v, want ErrNotFound", err)
				}
				return
			}
			if got := get(t, s, key); string(got) != tt.existing {
				t.Errorf("Get after failed Put = %q, want %q unchanged", got, tt.existing)
			}
		})
	}
}

func testStreamingPut(t *testing.T, s blob.Store) {
	const size = 8 << 20
	src := io.LimitReader(rand.NewChaCha8([32]byte{1}), size)
	want := sha256.New()
	info, err := s.Put(context.Background(), "big", io.TeeReader(src, want))
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if info.Size != size {
		t.Errorf("Put: Size = %d, want %d", info.Size, size)
	}
	rc, info, err := s.Get(context.Background(), "big")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	defer rc.Close()
	got := sha256.New()
	n, err := io.Copy(got, rc)
	if err != nil {
		t.Fatalf("Get: read: %v", err)
	}
	if n != size || info.Size != size {
		t.Errorf("Get: read %d bytes, Info.Size %d, want %d", n, info.Size, size)
	}
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Error("Get returned different bytes than were put")
	}
}

// cancelingReader cancels its context after its first read.
type cancelingReader struct {
	cancel context.CancelFunc
	reads  int
}

func (r *cancelingReader) Read(p []byte) (int, error) {
	r.reads++
	if r.reads > 1 {
		r.cancel()
	}
	if r.reads > 1000 {
		return 0, errors.New("store kept reading after its context was canceled")
	}
	return copy(p, "data"), nil
}

func testContextCancel(t *testing.T, s blob.Store) {
	tests := []struct {
		name     string
		existing string
		midway   bool // cancel during the copy rather than before Put
	}{
		{"canceled before Put", "", false},
		{"canceled during Put", "", true},
		{"canceled during Put over an existing value", "old", true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := "c" + string(rune('0'+i))
			if tt.existing != "" {
				put(t, s, key, tt.existing)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var r io.Reader = strings.NewReader("data")
			if tt.midway {
				r = &cancelingReader{cancel: cancel}
			} else {
				cancel()
			}
			if _, err := s.Put(ctx, key, r); !errors.Is(err, context.Canceled) {
				t.Fatalf("Put: err = %v, want context.Canceled", err)
			}
			if tt.existing == "" {
				if _, err := s.Stat(context.Background(), key); !errors.Is(err, blob.ErrNotFound) {
					t.Errorf("Stat after canceled Put: err = %v, want ErrNotFound", err)
				}
				return
			}
			if got := get(t, s, key); string(got) != tt.existing {
				t.Errorf("Get after canceled Put = %q, want %q unchanged", got, tt.existing)
			}
		})
	}
}

func testConcurrentPuts(t *testing.T, s blob.Store) {
	const writers = 8
	values := make(map[string]bool)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		v := strings.Repeat(string(rune('a'+i)), 64<<10)
		values[v] = true
		wg.Go(func() {
			_, err := s.Put(context.Background(), "shared", strings.NewReader(v))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Put: %v", err)
		}
	}
	if got := get(t, s, "shared"); !values[string(got)] {
		t.Errorf("Get after concurrent Puts returned a mix of writes (%d bytes)", len(got))
	}
}
