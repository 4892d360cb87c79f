package natsobj_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/hostless/hostless/internal/blob"
	blobfs "github.com/hostless/hostless/internal/blob/fs"
	"github.com/hostless/hostless/internal/blob/natsobj"
	"github.com/hostless/hostless/internal/bus"
)

// BenchmarkPutGet puts a blob and reads it back, on the local disk store and
// on this one over the embedded server, each with and without an fsync per
// write, so the README can quote ratios from one run:
//
//	go test -run '^$' -bench PutGet ./internal/blob/natsobj
func BenchmarkPutGet(b *testing.B) {
	stores := []struct {
		name string
		open func(b *testing.B) blob.Store
	}{
		{"fs", func(b *testing.B) blob.Store { return openFS(b, false) }},
		{"fs-fsync", func(b *testing.B) blob.Store { return openFS(b, true) }},
		{"natsobj", func(b *testing.B) blob.Store {
			s, _ := open(b, connect(b, bus.Config{Dir: b.TempDir()}), natsobj.Config{})
			return s
		}},
		{"natsobj-syncalways", func(b *testing.B) blob.Store {
			s, _ := open(b, connect(b, bus.Config{Dir: b.TempDir(), SyncAlways: true}), natsobj.Config{})
			return s
		}},
	}
	sizes := []struct {
		name string
		size int
	}{
		{"4KB", 4 << 10},
		{"16MiB", 16 << 20},
	}
	for _, sz := range sizes {
		data := bytes.Repeat([]byte("0123456789abcdef"), sz.size/16)
		for _, st := range stores {
			b.Run(sz.name+"/"+st.name, func(b *testing.B) {
				s := st.open(b)
				ctx := context.Background()
				r := bytes.NewReader(data)
				b.SetBytes(int64(sz.size))
				for b.Loop() {
					r.Reset(data)
					if _, err := s.Put(ctx, "bench/blob", r); err != nil {
						b.Fatal(err)
					}
					rc, _, err := s.Get(ctx, "bench/blob")
					if err != nil {
						b.Fatal(err)
					}
					if n, err := io.Copy(io.Discard, rc); err != nil || n != int64(sz.size) {
						b.Fatalf("Get: %d bytes, %v", n, err)
					}
					rc.Close()
				}
			})
		}
	}
}

func openFS(b *testing.B, fsync bool) blob.Store {
	s := blobfs.New(b.TempDir())
	if !fsync {
		s.WithoutSync()
	}
	if err := s.Open(); err != nil {
		b.Fatal(err)
	}
	return s
}
