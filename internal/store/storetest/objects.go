package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/store"
)

// objectTests are the conformance tests of store.Objects.
var objectTests = []struct {
	name string
	run  func(t *testing.T, s store.Store)
}{
	{"Objects/buckets", testBuckets},
	{"Objects/bucket-not-empty", testBucketNotEmpty},
	{"Objects/round-trip", testObjectRoundTrip},
	{"Objects/replace", testObjectReplace},
	{"Objects/no-bucket", testObjectNoBucket},
	{"Objects/nested-keys", testObjectNestedKeys},
	{"Objects/list", testListObjects},
	{"Objects/list-byte-order", testListByteOrder},
	{"Objects/concurrent-replace", testObjectConcurrentReplace},
	{"Objects/concurrent-no-bucket", testObjectConcurrentNoBucket},
	{"Objects/multipart", testMultipart},
	{"Objects/multipart-part-changed", testMultipartPartChanged},
	{"Objects/multipart-abort", testMultipartAbort},
	{"Objects/projects", testObjectProjects},
	{"Objects/prefix-end", testPrefixEnd},
}

var objTime = time.Date(2026, 11, 26, 7, 30, 0, 123456000, time.UTC)

func mkBucket(t *testing.T, s store.Store, project, name string) {
	t.Helper()
	if err := s.CreateBucket(t.Context(), store.Bucket{Project: project, Name: name, CreatedAt: objTime}); err != nil {
		t.Fatalf("CreateBucket %s: %v", name, err)
	}
}

func obj(bucket, key string) store.Object {
	return store.Object{
		Project: "p", Bucket: bucket, Key: key, Size: int64(len(key)), ETag: "etag-" + key,
		ModTime: objTime, BlobKey: "blob/" + key,
		ObjectMeta: store.ObjectMeta{ContentType: "text/plain"},
	}
}

func putObj(t *testing.T, s store.Store, o store.Object) string {
	t.Helper()
	old, err := s.PutObject(t.Context(), o)
	if err != nil {
		t.Fatalf("PutObject %s: %v", o.Key, err)
	}
	return old
}

func keys(objs []store.Object) []string {
	out := []string{}
	for _, o := range objs {
		out = append(out, o.Key)
	}
	return out
}

func testBuckets(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkBucket(t, s, "p", "b2")
	mkBucket(t, s, "p", "b1")
	if err := s.CreateBucket(ctx, store.Bucket{Project: "p", Name: "b1", CreatedAt: objTime}); !errors.Is(err, store.ErrBucketExists) {
		t.Fatalf("second CreateBucket: %v, want ErrBucketExists", err)
	}
	bs, err := s.ListBuckets(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Bucket{{Project: "p", Name: "b1", CreatedAt: objTime}, {Project: "p", Name: "b2", CreatedAt: objTime}}
	if !reflect.DeepEqual(bs, want) {
		t.Fatalf("ListBuckets = %+v, want %+v", bs, want)
	}
	b, err := s.GetBucket(ctx, "p", "b1")
	if err != nil || b != want[0] {
		t.Fatalf("GetBucket = %+v, %v", b, err)
	}
	if err := s.DeleteBucket(ctx, "p", "b1"); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetBucket(ctx, "p", "b1")
	wantNotFound(t, "GetBucket after delete", err)
	wantNotFound(t, "DeleteBucket twice", s.DeleteBucket(ctx, "p", "b1"))
}

func testBucketNotEmpty(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkBucket(t, s, "p", "b")
	putObj(t, s, obj("b", "k"))
	if err := s.DeleteBucket(ctx, "p", "b"); !errors.Is(err, store.ErrBucketNotEmpty) {
		t.Fatalf("DeleteBucket with an object: %v", err)
	}
	if _, err := s.DeleteObject(ctx, "p", "b", "k"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUpload(ctx, store.Upload{Project: "p", Bucket: "b", ID: "u1", Key: "k", CreatedAt: objTime}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteBucket(ctx, "p", "b"); !errors.Is(err, store.ErrBucketNotEmpty) {
		t.Fatalf("DeleteBucket with an upload: %v", err)
	}
	if _, err := s.AbortUpload(ctx, "p", "b", "u1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteBucket(ctx, "p", "b"); err != nil {
		t.Fatal(err)
	}
}

func testObjectRoundTrip(t *testing.T, s store.Store) {
	mkBucket(t, s, "p", "b")
	o := obj("b", "dir/file.txt")
	o.Metadata = map[string]string{"owner": "ann", "ünï": "cödé"}
	o.Headers = map[string]string{"Cache-Control": "no-cache"}
	if old := putObj(t, s, o); old != "" {
		t.Fatalf("first PutObject replaced %q", old)
	}
	got, err := s.GetObject(t.Context(), "p", "b", o.Key)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, o) {
		t.Fatalf("GetObject = %+v\nwant %+v", got, o)
	}
	_, err = s.GetObject(t.Context(), "p", "b", "nope")
	wantNotFound(t, "GetObject of a missing key", err)
	_, err = s.DeleteObject(t.Context(), "p", "b", "nope")
	wantNotFound(t, "DeleteObject of a missing key", err)
	blob, err := s.DeleteObject(t.Context(), "p", "b", o.Key)
	if err != nil || blob != o.BlobKey {
		t.Fatalf("DeleteObject = %q, %v", blob, err)
	}
}

func testObjectReplace(t *testing.T, s store.Store) {
	mkBucket(t, s, "p", "b")
	o := obj("b", "k")
	putObj(t, s, o)
	o2 := o
	o2.BlobKey, o2.ETag, o2.Size, o2.Metadata = "blob/new", "e2", 99, map[string]string{"v": "2"}
	if old := putObj(t, s, o2); old != o.BlobKey {
		t.Fatalf("replace returned %q, want %q", old, o.BlobKey)
	}
	got, err := s.GetObject(t.Context(), "p", "b", "k")
	if err != nil || !reflect.DeepEqual(got, o2) {
		t.Fatalf("GetObject = %+v, %v", got, err)
	}
}

func testObjectNoBucket(t *testing.T, s store.Store) {
	_, err := s.PutObject(t.Context(), obj("missing", "k"))
	wantNotFound(t, "PutObject without a bucket", err)
	err = s.CreateUpload(t.Context(), store.Upload{Project: "p", Bucket: "missing", ID: "u", Key: "k", CreatedAt: objTime})
	wantNotFound(t, "CreateUpload without a bucket", err)
}

// testObjectNestedKeys: "a" and "a/b" are two objects.
func testObjectNestedKeys(t *testing.T, s store.Store) {
	mkBucket(t, s, "p", "b")
	putObj(t, s, obj("b", "a"))
	putObj(t, s, obj("b", "a/b"))
	putObj(t, s, obj("b", "a/b/c"))
	for _, k := range []string{"a", "a/b", "a/b/c"} {
		if got, err := s.GetObject(t.Context(), "p", "b", k); err != nil || got.BlobKey != "blob/"+k {
			t.Fatalf("GetObject %s = %+v, %v", k, got, err)
		}
	}
}

func testListObjects(t *testing.T, s store.Store) {
	mkBucket(t, s, "p", "b")
	mkBucket(t, s, "p", "other")
	all := []string{"a", "a/1", "a/2", "a/3/x", "ab", "b", "b/1", "c%", "c\\", "c_"}
	for _, k := range slices.Backward(all) {
		putObj(t, s, obj("b", k))
	}
	putObj(t, s, obj("other", "a/9"))
	tests := []struct {
		name string
		f    store.ObjectFilter
		want []string
	}{
		{name: "all", f: store.ObjectFilter{}, want: all},
		{name: "prefix", f: store.ObjectFilter{Prefix: "a/"}, want: []string{"a/1", "a/2", "a/3/x"}},
		{name: "prefix is a key", f: store.ObjectFilter{Prefix: "a"}, want: []string{"a", "a/1", "a/2", "a/3/x", "ab"}},
		{name: "LIKE characters are literal", f: store.ObjectFilter{Prefix: "c_"}, want: []string{"c_"}},
		{name: "percent", f: store.ObjectFilter{Prefix: "c%"}, want: []string{"c%"}},
		{name: "after", f: store.ObjectFilter{After: "a/2"}, want: []string{"a/3/x", "ab", "b", "b/1", "c%", "c\\", "c_"}},
		{name: "from", f: store.ObjectFilter{From: "a/2"}, want: []string{"a/2", "a/3/x", "ab", "b", "b/1", "c%", "c\\", "c_"}},
		{name: "prefix and after", f: store.ObjectFilter{Prefix: "a/", After: "a/1"}, want: []string{"a/2", "a/3/x"}},
		{name: "limit", f: store.ObjectFilter{Limit: 2}, want: []string{"a", "a/1"}},
		{name: "no match", f: store.ObjectFilter{Prefix: "zz"}, want: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.f
			f.Project, f.Bucket = "p", "b"
			got, err := s.ListObjects(t.Context(), f)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(keys(got), tt.want) {
				t.Fatalf("ListObjects(%+v) = %q, want %q", tt.f, keys(got), tt.want)
			}
		})
	}
}

// testListByteOrder: keys list in UTF-8 byte order, whatever the locale.
func testListByteOrder(t *testing.T, s store.Store) {
	mkBucket(t, s, "p", "b")
	ks := []string{"B", "a", "Z", "é", "e", "\U0010FFFF", "日本", "~", "a b", "a-b", "\U0010FFFFx"}
	for _, k := range ks {
		putObj(t, s, obj("b", k))
	}
	got, err := s.ListObjects(t.Context(), store.ObjectFilter{Project: "p", Bucket: "b"})
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(ks)
	slices.Sort(want) // Go compares strings by bytes
	if !slices.Equal(keys(got), want) {
		t.Fatalf("order = %q, want %q", keys(got), want)
	}
	got, err = s.ListObjects(t.Context(), store.ObjectFilter{Project: "p", Bucket: "b", Prefix: "\U0010FFFF"})
	if err != nil || !slices.Equal(keys(got), []string{"\U0010FFFF", "\U0010FFFFx"}) {
		t.Fatalf("prefix U+10FFFF = %q, %v", keys(got), err)
	}
}

// testObjectConcurrentReplace: of concurrent writers of one key, each
// learns a distinct replaced blob, so every blob but the last is freed
// exactly once.
func testObjectConcurrentReplace(t *testing.T, s store.Store) {
	mkBucket(t, s, "p", "b")
	const n = 16
	var wg sync.WaitGroup
	replaced := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			o := obj("b", "k")
			o.BlobKey = fmt.Sprintf("blob/%d", i)
			replaced[i], errs[i] = s.PutObject(t.Context(), o)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetObject(t.Context(), "p", "b", "k")
	if err != nil {
		t.Fatal(err)
	}
	freed := map[string]bool{}
	for _, r := range replaced {
		if r == "" {
			continue
		}
		if freed[r] {
			t.Fatalf("blob %s replaced twice", r)
		}
		freed[r] = true
	}
	if len(freed) != n-1 || freed[got.BlobKey] {
		t.Fatalf("replaced %d blobs (%v), final %s", len(freed), freed, got.BlobKey)
	}
}

// testObjectConcurrentNoBucket: concurrent puts, some into a bucket that
// doesn't exist (stores may commit concurrent puts together): each of
// those fails with ErrNotFound alone, and the others are stored whole,
// metadata included.
func testObjectConcurrentNoBucket(t *testing.T, s store.Store) {
	mkBucket(t, s, "p", "b")
	const n = 32
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			bucket := "b"
			if i%3 == 0 {
				bucket = "missing"
			}
			o := obj(bucket, fmt.Sprintf("k%02d", i))
			if i%2 == 0 {
				o.Metadata = map[string]string{"n": fmt.Sprint(i)}
			}
			_, errs[i] = s.PutObject(t.Context(), o)
		})
	}
	wg.Wait()
	for i, err := range errs {
		key := fmt.Sprintf("k%02d", i)
		if i%3 == 0 {
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("PutObject %s into a missing bucket: %v, want ErrNotFound", key, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("PutObject %s: %v", key, err)
			continue
		}
		got, err := s.GetObject(t.Context(), "p", "b", key)
		if err != nil {
			t.Errorf("GetObject %s: %v", key, err)
			continue
		}
		want := obj("b", key)
		if i%2 == 0 {
			want.Metadata = map[string]string{"n": fmt.Sprint(i)}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("GetObject %s = %+v, want %+v", key, got, want)
		}
	}
}

func part(upload string, n int) store.Part {
	return store.Part{Project: "p", Bucket: "b", UploadID: upload, Number: n, Size: int64(n * 10),
		ETag: fmt.Sprintf("e%d", n), ModTime: objTime, BlobKey: fmt.Sprintf("part/%s/%d", upload, n)}
}

func testMultipart(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkBucket(t, s, "p", "b")
	putObj(t, s, obj("b", "k")) // replaced by the upload
	u := store.Upload{Project: "p", Bucket: "b", ID: "u1", Key: "k", CreatedAt: objTime,
		ObjectMeta: store.ObjectMeta{ContentType: "image/png", Metadata: map[string]string{"a": "b"}}}
	if err := s.CreateUpload(ctx, u); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetUpload(ctx, "p", "b", "u1")
	if err != nil || !reflect.DeepEqual(got, u) {
		t.Fatalf("GetUpload = %+v, %v", got, err)
	}
	_, err = s.GetUpload(ctx, "p", "b", "nope")
	wantNotFound(t, "GetUpload of a missing upload", err)
	for _, n := range []int{3, 1, 2} {
		if old, err := s.PutPart(ctx, part("u1", n)); err != nil || old != "" {
			t.Fatalf("PutPart %d = %q, %v", n, old, err)
		}
	}
	p2 := part("u1", 2)
	p2.BlobKey = "part/u1/2-again"
	if old, err := s.PutPart(ctx, p2); err != nil || old != "part/u1/2" {
		t.Fatalf("PutPart 2 again = %q, %v", old, err)
	}
	_, err = s.PutPart(ctx, part("nope", 1))
	wantNotFound(t, "PutPart of a missing upload", err)
	parts, err := s.ListParts(ctx, "p", "b", "u1", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := []store.Part{part("u1", 1), p2, part("u1", 3)}; !reflect.DeepEqual(parts, want) {
		t.Fatalf("ListParts = %+v\nwant %+v", parts, want)
	}
	page, err := s.ListParts(ctx, "p", "b", "u1", 1, 1)
	if err != nil || len(page) != 1 || page[0].Number != 2 {
		t.Fatalf("ListParts after 1, limit 1 = %+v, %v", page, err)
	}
	o := obj("b", "k")
	o.BlobKey, o.ETag = "blob/joined", "abc-2"
	obsolete, err := s.CompleteUpload(ctx, "u1", parts[:2], o)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(obsolete)
	if want := []string{"blob/k", "part/u1/1", "part/u1/2-again", "part/u1/3"}; !slices.Equal(obsolete, want) {
		t.Fatalf("obsolete = %q, want %q", obsolete, want)
	}
	if got, err := s.GetObject(ctx, "p", "b", "k"); err != nil || got.BlobKey != "blob/joined" {
		t.Fatalf("GetObject = %+v, %v", got, err)
	}
	_, err = s.GetUpload(ctx, "p", "b", "u1")
	wantNotFound(t, "GetUpload after complete", err)
	_, err = s.CompleteUpload(ctx, "u1", nil, o)
	wantNotFound(t, "CompleteUpload twice", err)
	if parts, err := s.ListParts(ctx, "p", "b", "u1", 0, 0); err != nil || len(parts) != 0 {
		t.Fatalf("ListParts after complete = %+v, %v", parts, err)
	}
}

func testMultipartPartChanged(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkBucket(t, s, "p", "b")
	if err := s.CreateUpload(ctx, store.Upload{Project: "p", Bucket: "b", ID: "u", Key: "k", CreatedAt: objTime}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutPart(ctx, part("u", 1)); err != nil {
		t.Fatal(err)
	}
	stale := part("u", 1)
	stale.BlobKey = "part/u/1-old"
	_, err := s.CompleteUpload(ctx, "u", []store.Part{stale}, obj("b", "k"))
	if !errors.Is(err, store.ErrPartChanged) {
		t.Fatalf("CompleteUpload with a stale part: %v", err)
	}
	_, err = s.CompleteUpload(ctx, "u", []store.Part{part("u", 2)}, obj("b", "k"))
	if !errors.Is(err, store.ErrPartChanged) {
		t.Fatalf("CompleteUpload with a missing part: %v", err)
	}
	if _, err := s.GetObject(ctx, "p", "b", "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a failed complete stored the object: %v", err)
	}
	if _, err := s.GetUpload(ctx, "p", "b", "u"); err != nil {
		t.Fatalf("a failed complete dropped the upload: %v", err)
	}
}

func testMultipartAbort(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkBucket(t, s, "p", "b")
	if err := s.CreateUpload(ctx, store.Upload{Project: "p", Bucket: "b", ID: "u", Key: "k", CreatedAt: objTime}); err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 2; n++ {
		if _, err := s.PutPart(ctx, part("u", n)); err != nil {
			t.Fatal(err)
		}
	}
	blobs, err := s.AbortUpload(ctx, "p", "b", "u")
	slices.Sort(blobs)
	if err != nil || !slices.Equal(blobs, []string{"part/u/1", "part/u/2"}) {
		t.Fatalf("AbortUpload = %q, %v", blobs, err)
	}
	_, err = s.AbortUpload(ctx, "p", "b", "u")
	wantNotFound(t, "AbortUpload twice", err)
}

func testObjectProjects(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkBucket(t, s, "p", "b")
	mkBucket(t, s, "q", "b")
	putObj(t, s, obj("b", "k"))
	if _, err := s.GetObject(ctx, "q", "b", "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("project q sees p's object: %v", err)
	}
	if bs, err := s.ListBuckets(ctx, "q"); err != nil || len(bs) != 1 {
		t.Fatalf("ListBuckets q = %+v, %v", bs, err)
	}
	if err := s.DeleteBucket(ctx, "q", "b"); err != nil {
		t.Fatalf("q's empty bucket: %v", err)
	}
}

func testPrefixEnd(t *testing.T, _ store.Store) {
	tests := []struct {
		name, prefix, end string
		ok                bool
	}{
		{name: "empty", prefix: ""},
		{name: "ascii", prefix: "a/", end: "a0", ok: true},
		{name: "multibyte", prefix: "é", end: "ê", ok: true},
		{name: "max rune", prefix: "a\U0010FFFF", end: "b", ok: true},
		{name: "only max runes", prefix: "\U0010FFFF\U0010FFFF"},
		{name: "before surrogates", prefix: "\uD7FF", end: "\uE000", ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			end, ok := store.PrefixEnd(tt.prefix)
			if end != tt.end || ok != tt.ok {
				t.Fatalf("PrefixEnd(%q) = %q, %v; want %q, %v", tt.prefix, end, ok, tt.end, tt.ok)
			}
		})
	}
}
