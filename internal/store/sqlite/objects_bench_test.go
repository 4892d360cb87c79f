package sqlite

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/store"
)

// BenchmarkGetObject is the metadata read of an S3 GET, on a request's
// (cancelable) context.
func BenchmarkGetObject(b *testing.B) {
	db, err := Open(context.Background(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := db.CreateBucket(ctx, store.Bucket{Project: "p", Name: "b", CreatedAt: time.Now()}); err != nil {
		b.Fatal(err)
	}
	if _, err := db.PutObject(ctx, store.Object{Project: "p", Bucket: "b", Key: "k", BlobKey: "x", ModTime: time.Now()}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := db.GetObject(ctx, "p", "b", "k"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPutObject is the metadata write of S3 PUTs by 16 concurrent
// clients, with data.db's default sync and with DataSyncFull.
func BenchmarkPutObject(b *testing.B) {
	for _, full := range []bool{false, true} {
		b.Run(map[bool]string{false: "default", true: "sync-full"}[full], func(b *testing.B) {
			ctx := context.Background()
			db, err := OpenWith(ctx, b.TempDir(), Options{DataSyncFull: full})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			if err := db.CreateBucket(ctx, store.Bucket{Project: "p", Name: "b", CreatedAt: time.Now()}); err != nil {
				b.Fatal(err)
			}
			var n atomic.Int64
			b.SetParallelism(8) // 16 goroutines on 2 CPUs
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					o := store.Object{Project: "p", Bucket: "b", Key: fmt.Sprintf("k%08d", n.Add(1)), BlobKey: "x",
						ETag: "0123456789abcdef0123456789abcdef", ModTime: time.Now()}
					if _, err := db.PutObject(ctx, o); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
