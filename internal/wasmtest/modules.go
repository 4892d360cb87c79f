package wasmtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"sync"

	"github.com/hostless/hostless/internal/function"
)

// Modules serves artifacts from memory by code reference, as a runtime's
// artifact source in tests. The zero value is ready to use.
type Modules struct {
	mu sync.Mutex
	m  map[string][]byte
}

// Add stores a module and returns its code reference.
func (ms *Modules) Add(b []byte) string {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	sum := sha256.Sum256(b)
	ref := "sha256:" + hex.EncodeToString(sum[:])
	if ms.m == nil {
		ms.m = map[string][]byte{}
	}
	ms.m[ref] = b
	return ref
}

// Get returns a stored module, or function.ErrNotFound.
func (ms *Modules) Get(_ context.Context, ref string) (io.ReadCloser, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	b, ok := ms.m[ref]
	if !ok {
		return nil, function.ErrNotFound
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}
