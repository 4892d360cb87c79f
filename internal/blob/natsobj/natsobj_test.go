package natsobj_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	mrand "math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hostless/hostless/internal/blob"
	"github.com/hostless/hostless/internal/blob/blobtest"
	"github.com/hostless/hostless/internal/blob/natsobj"
	"github.com/hostless/hostless/internal/bus"
)

// backend gives a test a JetStream connection.
type backend struct {
	name string
	js   func(t testing.TB) jetstream.JetStream
}

// backends are a server embedded in the test (as the app embeds it, through
// the bus) always, and the server at HOSTLESS_TEST_NATS when it is set.
func backends() []backend {
	bs := []backend{{"embedded", func(t testing.TB) jetstream.JetStream { return connect(t, bus.Config{Dir: t.TempDir()}) }}}
	if url := os.Getenv("HOSTLESS_TEST_NATS"); url != "" {
		bs = append(bs, backend{"external", func(t testing.TB) jetstream.JetStream { return connect(t, bus.Config{URL: url}) }})
	}
	return bs
}

func connect(t testing.TB, cfg bus.Config) jetstream.JetStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := bus.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open the bus: %v", err)
	}
	t.Cleanup(b.Close)
	js, err := jetstream.New(b.Conn())
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// open opens a store on a bucket of its own, deleted when t ends, and
// returns the bucket's name too.
func open(t testing.TB, js jetstream.JetStream, cfg natsobj.Config) (*natsobj.Store, string) {
	t.Helper()
	cfg.Bucket = uniqueBucket(t, js)
	s := natsobj.New(js, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Open(ctx); err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s, cfg.Bucket
}

// uniqueBucket names a bucket for t alone, and deletes it when t ends.
func uniqueBucket(t testing.TB, js jetstream.JetStream) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	bucket := "test_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := js.DeleteStream(ctx, "OBJ_"+bucket); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("delete the bucket: %v", err)
		}
	})
	return bucket
}

// each runs f against every backend, with a store of cfg.
func each(t *testing.T, cfg natsobj.Config, f func(t *testing.T, js jetstream.JetStream, s *natsobj.Store, bucket string)) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			js := be.js(t)
			s, bucket := open(t, js, cfg)
			f(t, js, s, bucket)
		})
	}
}

func TestConformance(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			js := be.js(t)
			blobtest.Run(t, func(t *testing.T) blob.Store {
				s, _ := open(t, js, natsobj.Config{})
				return s
			})
		})
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	js := backends()[0].js(t)
	tests := []struct {
		name string
		cfg  natsobj.Config
		want string
	}{
		{"no bucket", natsobj.Config{}, "bucket"},
		{"bad bucket", natsobj.Config{Bucket: "a.b"}, "bucket"},
		{"replicas", natsobj.Config{Bucket: "b", Replicas: 7}, "replicas"},
		{"chunk larger than max_payload", natsobj.Config{Bucket: "b", ChunkSize: 8 << 20}, "chunk_size"},
		{"negative max bytes", natsobj.Config{Bucket: "b", MaxBytes: -1}, "max_bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := natsobj.New(js, tt.cfg).Open(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open: err = %v, want one naming %s", err, tt.want)
			}
		})
	}
}

// TestOpenExistingBucket: Open binds a bucket made elsewhere (here by
// nats.go), keeps what its Config leaves at zero and changes what it sets.
func TestOpenExistingBucket(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			js := be.js(t)
			ctx := context.Background()
			bucket := uniqueBucket(t, js)
			obs, err := js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: bucket, MaxBytes: 1 << 20, Storage: jetstream.FileStorage})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := obs.PutString(ctx, "made elsewhere", "hello"); err != nil {
				t.Fatal(err)
			}
			streamConfig := func() jetstream.StreamConfig {
				t.Helper()
				st, err := js.Stream(ctx, "OBJ_"+bucket)
				if err != nil {
					t.Fatal(err)
				}
				return st.CachedInfo().Config
			}
			s := natsobj.New(js, natsobj.Config{Bucket: bucket})
			if err := s.Open(ctx); err != nil {
				t.Fatal(err)
			}
			if c := streamConfig(); c.MaxBytes != 1<<20 || c.Replicas != 1 || !c.AllowDirect {
				t.Errorf("Open of a zero Config changed the bucket: max bytes %d, replicas %d, direct %v", c.MaxBytes, c.Replicas, c.AllowDirect)
			}
			if info, err := s.Stat(ctx, "made elsewhere"); err != nil || info.Size != 5 {
				t.Errorf("Stat = %+v, %v", info, err)
			}
			if err := natsobj.New(js, natsobj.Config{Bucket: bucket, MaxBytes: 2 << 20}).Open(ctx); err != nil {
				t.Fatal(err)
			}
			if c := streamConfig(); c.MaxBytes != 2<<20 {
				t.Errorf("Open with MaxBytes 2 MiB: the bucket's is %d", c.MaxBytes)
			}

			other := uniqueBucket(t, js)
			if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "OBJ_" + other, Subjects: []string{other + ".>"}}); err != nil {
				t.Fatal(err)
			}
			if err := natsobj.New(js, natsobj.Config{Bucket: other}).Open(ctx); err == nil || !strings.Contains(err.Error(), "not an object store") {
				t.Errorf("Open of a stream that is no bucket: err = %v", err)
			}
		})
	}
}

// messages counts the bucket's messages: metadata and chunks.
func messages(t *testing.T, js jetstream.JetStream, bucket string) (metas, chunks uint64) {
	t.Helper()
	st, err := js.Stream(context.Background(), "OBJ_"+bucket)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background(), jetstream.WithSubjectFilter("$O."+bucket+".>"))
	if err != nil {
		t.Fatal(err)
	}
	for subj, n := range info.State.Subjects {
		if strings.HasPrefix(subj, "$O."+bucket+".M.") {
			metas += n
		} else {
			chunks += n
		}
	}
	return metas, chunks
}

// TestNoGarbage checks that failed, canceled, concurrent and replacing Puts
// and Deletes leave exactly the live blobs' messages in the bucket.
func TestNoGarbage(t *testing.T) {
	each(t, natsobj.Config{ChunkSize: 1 << 10}, func(t *testing.T, js jetstream.JetStream, s *natsobj.Store, bucket string) {
		ctx := context.Background()
		put := func(key string, size int) {
			t.Helper()
			if _, err := s.Put(ctx, key, strings.NewReader(strings.Repeat("x", size))); err != nil {
				t.Fatal(err)
			}
		}
		put("keep", 2500)     // 3 chunks
		put("replaced", 5000) // replaced below
		put("replaced", 1500) // 2 chunks
		put("deleted", 4000)
		if err := s.Delete(ctx, "deleted"); err != nil {
			t.Fatal(err)
		}
		broken := io.MultiReader(strings.NewReader(strings.Repeat("y", 10_000)), iotest.ErrReader(errors.New("boom")))
		if _, err := s.Put(ctx, "keep", broken); err == nil {
			t.Fatal("Put of a failing reader succeeded")
		}
		cctx, cancel := context.WithCancel(ctx)
		r := &cancelAfter{n: 5000, cancel: cancel}
		if _, err := s.Put(cctx, "keep", r); !errors.Is(err, context.Canceled) {
			t.Fatalf("canceled Put: err = %v", err)
		}
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				if _, err := s.Put(ctx, "shared", strings.NewReader(strings.Repeat("z", 1000*(i+1)))); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		info, err := s.Stat(ctx, "shared")
		if err != nil {
			t.Fatal(err)
		}
		wantChunks := 3 + 2 + uint64((info.Size+1023)/1024)
		if metas, chunks := messages(t, js, bucket); metas != 3 || chunks != wantChunks {
			t.Errorf("bucket holds %d metadata and %d chunk messages, want 3 and %d", metas, chunks, wantChunks)
		}
	})
}

// cancelAfter yields n bytes, canceling its context on the way.
type cancelAfter struct {
	n      int
	read   int
	cancel context.CancelFunc
}

func (r *cancelAfter) Read(p []byte) (int, error) {
	if r.read >= r.n {
		r.cancel()
	}
	n := min(len(p), 100)
	r.read += n
	return copy(p, bytes.Repeat([]byte{'c'}, n)), nil
}

// TestFullBucketKeepsEarlierValue: a Put the bucket refuses midway (past
// MaxBytes) stores nothing and leaves the earlier value whole; nats.go's own
// Put would have published the metadata anyway and lost it.
func TestFullBucketKeepsEarlierValue(t *testing.T) {
	each(t, natsobj.Config{MaxBytes: 1 << 20, ChunkSize: 64 << 10}, func(t *testing.T, js jetstream.JetStream, s *natsobj.Store, bucket string) {
		ctx := context.Background()
		if _, err := s.Put(ctx, "k", strings.NewReader("earlier")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Put(ctx, "k", io.LimitReader(mrand.NewChaCha8([32]byte{}), 2<<20)); err == nil {
			t.Fatal("Put past MaxBytes succeeded")
		}
		rc, _, err := s.Get(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		if b, err := io.ReadAll(rc); err != nil || string(b) != "earlier" {
			t.Errorf("Get = %q, %v; want the earlier value", b, err)
		}
		if metas, chunks := messages(t, js, bucket); metas != 1 || chunks != 1 {
			t.Errorf("bucket holds %d metadata and %d chunk messages, want 1 and 1", metas, chunks)
		}
	})
}

// TestReplacedWhileReading: a Get streaming a blob that is replaced fails
// with ErrChanged instead of mixing old and new bytes.
func TestReplacedWhileReading(t *testing.T) {
	each(t, natsobj.Config{ChunkSize: 1 << 10}, func(t *testing.T, js jetstream.JetStream, s *natsobj.Store, bucket string) {
		ctx := context.Background()
		if _, err := s.Put(ctx, "k", strings.NewReader(strings.Repeat("a", 10_000))); err != nil {
			t.Fatal(err)
		}
		rc, _, err := s.Get(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		if _, err := io.ReadFull(rc, make([]byte, 1500)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Put(ctx, "k", strings.NewReader(strings.Repeat("b", 10_000))); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(rc); !errors.Is(err, natsobj.ErrChanged) {
			t.Errorf("read after the replacement: err = %v, want ErrChanged", err)
		}
	})
}

// TestNATSObjectStoreCompatible: nats.go's object store (and so the `nats
// object` command) reads what Store writes, and Store reads what it writes.
func TestNATSObjectStoreCompatible(t *testing.T) {
	each(t, natsobj.Config{}, func(t *testing.T, js jetstream.JetStream, s *natsobj.Store, bucket string) {
		ctx := context.Background()
		obs, err := js.ObjectStore(ctx, bucket)
		if err != nil {
			t.Fatal(err)
		}
		long := strings.Repeat("ключ/", blob.MaxKeyBytes/len("ключ/")) // multi-byte runes and slashes, ~1 KB
		big := strings.Repeat("0123456789", 50_000)                    // 4 chunks
		tests := []struct {
			name, key, value string
		}{
			{"small", "a/b c", "hello"},
			{"long key", long, "long"},
			{"several chunks", "big", big},
			{"empty", "empty", ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if _, err := s.Put(ctx, tt.key, strings.NewReader(tt.value)); err != nil {
					t.Fatal(err)
				}
				got, err := obs.GetBytes(ctx, tt.key)
				if err != nil || string(got) != tt.value {
					t.Errorf("nats.go GetBytes = %d bytes, %v; want %d", len(got), err, len(tt.value))
				}
				if _, err := obs.PutBytes(ctx, tt.key, []byte(tt.value+"!")); err != nil {
					t.Fatal(err)
				}
				rc, info, err := s.Get(ctx, tt.key)
				if err != nil {
					t.Fatal(err)
				}
				defer rc.Close()
				if b, err := io.ReadAll(rc); err != nil || string(b) != tt.value+"!" || info.Size != int64(len(b)) {
					t.Errorf("Get of nats.go's value = %d bytes (size %d), %v", len(b), info.Size, err)
				}
				if err := obs.Delete(ctx, tt.key); err != nil {
					t.Fatal(err)
				}
				if _, err := s.Stat(ctx, tt.key); !errors.Is(err, blob.ErrNotFound) {
					t.Errorf("Stat after nats.go's Delete: err = %v, want ErrNotFound", err)
				}
			})
		}
	})
}

// TestStreamsWithBoundedMemory puts and gets 128 MiB from a generator that
// never holds them, and checks the live heap stays well under that. With
// the embedded server the heap includes the server's: it caches the blocks
// it reads and writes (8 MiB each), which is all this test sees grow.
func TestStreamsWithBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 128 MiB")
	}
	// Not parallel: it measures the process's heap.
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			const size = 128 << 20
			limit := uint64(size / 4) // measured: 25 MiB, the server's block caches
			if be.name == "external" {
				limit = 4 << 20 // the client alone; measured: under 1 MiB
			}
			js := be.js(t)
			s, _ := open(t, js, natsobj.Config{})
			runtime.GC()
			var base runtime.MemStats
			runtime.ReadMemStats(&base)
			var peak uint64
			// The live heap, not garbage awaiting collection.
			sample := func() {
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapAlloc)
			}
			want := sha256.New()
			src := &sampling{r: io.TeeReader(io.LimitReader(mrand.NewChaCha8([32]byte{7}), size), want), every: 4 << 20, sample: sample}
			if _, err := s.Put(context.Background(), "big", src); err != nil {
				t.Fatal(err)
			}
			rc, _, err := s.Get(context.Background(), "big")
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			got := sha256.New()
			if _, err := io.Copy(got, &sampling{r: rc, every: 4 << 20, sample: sample}); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
				t.Fatal("Get returned other bytes")
			}
			grew := peak - min(peak, base.HeapAlloc)
			t.Logf("live heap grew by at most %d MiB while moving %d MiB", grew>>20, size>>20)
			if grew > limit {
				t.Errorf("heap grew by %d MiB moving a %d MiB blob (limit %d MiB)", grew>>20, size>>20, limit>>20)
			}
		})
	}
}

// sampling calls sample every so many bytes read.
type sampling struct {
	r      io.Reader
	every  int
	n      int
	sample func()
}

func (s *sampling) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.n += n
	if s.n >= s.every {
		s.n = 0
		s.sample()
	}
	return n, err
}

// reordering passes publishes through but reports the third one as stored
// before the others, as a resent chunk would be.
type reordering struct {
	jetstream.JetStream
	n atomic.Int32
}

func (r *reordering) PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	ack, err := r.PublishMsg(context.Background(), m, opts...)
	if err != nil {
		return nil, err
	}
	if r.n.Add(1) == 3 {
		ack.Sequence = 1
	}
	return doneFuture{ack, m}, nil
}

type doneFuture struct {
	ack *jetstream.PubAck
	msg *nats.Msg
}

func (f doneFuture) Ok() <-chan *jetstream.PubAck {
	c := make(chan *jetstream.PubAck, 1)
	c <- f.ack
	return c
}
func (f doneFuture) Err() <-chan error { return make(chan error) }
func (f doneFuture) Msg() *nats.Msg    { return f.msg }

// TestChunksOutOfOrder: a Put whose chunks were stored out of order fails
// and leaves nothing.
func TestChunksOutOfOrder(t *testing.T) {
	t.Parallel()
	js := backends()[0].js(t)
	_, bucket := open(t, js, natsobj.Config{})
	s := natsobj.New(&reordering{JetStream: js}, natsobj.Config{Bucket: bucket, ChunkSize: 64 << 10})
	ctx := context.Background()
	if err := s.Open(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := s.Put(ctx, "k", io.LimitReader(mrand.NewChaCha8([32]byte{}), 1<<20))
	if err == nil || !strings.Contains(err.Error(), "out of order") {
		t.Fatalf("Put: err = %v, want chunks out of order", err)
	}
	if _, err := s.Stat(ctx, "k"); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Stat: err = %v, want ErrNotFound", err)
	}
	if metas, chunks := messages(t, js, bucket); metas != 0 || chunks != 0 {
		t.Errorf("bucket holds %d metadata and %d chunk messages, want none", metas, chunks)
	}
}
