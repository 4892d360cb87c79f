// Package runtimetest gives a test package one wasm runtime that all its
// tests share, with the test guests added and the SDK guest compiled once:
// compiling a Go guest takes seconds, and far longer under -race.
//
// It is imported only by tests.
package runtimetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/runtime/wasm"
	"github.com/hostless/hostless/internal/wasmtest"
)

// MemoryMB is the memory limit the SDK guest is compiled for: versions that
// use it share the compiled code.
const MemoryMB = 64

// Shared is the runtime and the code references of the test guests.
type Shared struct {
	RT   *wasm.Runtime
	Mods *wasmtest.Modules // add more modules here; the runtime reads them
	SDK  string            // the SDK test guest (reactor)
	CGI  string            // the CGI test guest (command)
}

var (
	shared *Shared
	once   sync.Once
)

const guests = "internal/runtime/wasm/testdata/guests"

// Get returns the package's shared runtime, built on first use.
func Get(t testing.TB) *Shared {
	t.Helper()
	once.Do(func() {
		s := &Shared{Mods: &wasmtest.Modules{}}
		s.SDK = s.Mods.Add(wasmtest.ReadFile(t, wasmtest.Build(t, guests, "./sdk", true)))
		s.CGI = s.Mods.Add(wasmtest.ReadFile(t, wasmtest.Build(t, guests, "./cgi", false)))
		s.RT = wasm.New(wasm.Config{CacheDir: wasmtest.CompilationCacheDir(t), Artifacts: s.Mods.Get})
		if err := s.RT.Open(); err != nil {
			t.Fatal(err)
		}
		v := &function.Version{Project: function.DefaultProject, Function: "warmup", Number: 1,
			Spec: function.Spec{Runtime: function.RuntimeWasm, Code: s.SDK, MemoryMB: MemoryMB}}
		v.Spec.Normalize()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := s.RT.Prepare(ctx, v); err != nil {
			_ = s.RT.Close(context.Background())
			t.Fatalf("compile the SDK guest: %v", err)
		}
		shared = s
	})
	if shared == nil {
		t.Fatal("the shared runtime failed to start in an earlier test")
	}
	return shared
}

// Close closes the shared runtime; call it from TestMain after the tests.
func Close() {
	if shared != nil {
		_ = shared.RT.Close(context.Background())
	}
}
