package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hostless/hostless/internal/client"
	"github.com/hostless/hostless/internal/config"
	"github.com/hostless/hostless/internal/deploy"
	"github.com/hostless/hostless/internal/manifest"
	"github.com/hostless/hostless/internal/wasmtest"
)

// BenchmarkDeploy200 deploys a manifest of 200 functions to a real server
// (SQLite with fsync'd commits): "changed" gives every function a new
// version each iteration, "unchanged" deploys the same manifest again (no
// version is made). Compilation happens after, in the background, and is
// not part of it, as with the CLI.
func BenchmarkDeploy200(b *testing.B) {
	const n = 200
	dir := b.TempDir()
	a := New(config.Config{Addr: "127.0.0.1:0", DataDir: filepath.Join(dir, "data"), AdminKey: benchKey}, nil)
	if err := a.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = a.Shutdown(context.Background()) })
	c := client.New(a.URL(), benchKey)
	if err := os.WriteFile(filepath.Join(dir, "tiny.wasm"), wasmtest.Tiny("hi"), 0o644); err != nil {
		b.Fatal(err)
	}
	load := func(rev int) *manifest.Manifest {
		var y strings.Builder
		y.WriteString("functions:\n")
		for i := range n {
			fmt.Fprintf(&y, "  fn-%03d: {runtime: wasm, code: tiny.wasm, env: {REV: \"%d\"}}\n", i, rev)
		}
		m, err := manifest.Parse([]byte(y.String()), dir)
		if err != nil {
			b.Fatal(err)
		}
		return m
	}
	ctx := context.Background()
	if _, err := deploy.Apply(ctx, c, load(0), nil); err != nil {
		b.Fatal(err)
	}
	b.Run("changed", func(b *testing.B) {
		rev := 0
		for b.Loop() {
			rev++
			m := load(rev)
			if _, err := deploy.Apply(ctx, c, m, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unchanged", func(b *testing.B) {
		m := load(-1)
		if _, err := deploy.Apply(ctx, c, m, nil); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			res, err := deploy.Apply(ctx, c, m, nil)
			if err != nil {
				b.Fatal(err)
			}
			if res[0].Action != "unchanged" {
				b.Fatalf("redeploy: %s", res[0].Action)
			}
		}
	})
}
