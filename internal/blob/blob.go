// Package blob stores artifact and object bytes, streaming; implementations
// live in subpackages named after what they depend on (blob/fs) and pass the
// one conformance suite in blob/blobtest.
//
// Package blob must never import HTTP, runtimes or the store: it moves bytes
// under keys and knows nothing of what they mean.
package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"
)

// ErrNotFound is returned, matched with errors.Is, when no blob has the key.
var ErrNotFound = errors.New("blob not found")

// MaxKeyBytes is the longest key a store accepts.
const MaxKeyBytes = 1024

// Info describes a stored blob.
type Info struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// Store keeps blobs under keys. Bytes are streamed in and out: no
// implementation holds a whole blob in memory.
type Store interface {
	// Put stores r's bytes under key, replacing any; the write is atomic and
	// durable (fsync) when Put returns nil. If r returns an error, or ctx is
	// done before the write completes, nothing is stored and any earlier
	// value under key is unchanged.
	Put(ctx context.Context, key string, r io.Reader) (Info, error)
	// Get opens the blob under key for reading; the caller closes it.
	// It returns ErrNotFound if there is none.
	Get(ctx context.Context, key string) (io.ReadCloser, Info, error)
	// Stat describes the blob under key, or returns ErrNotFound.
	Stat(ctx context.Context, key string) (Info, error)
	// Delete removes the blob under key, or returns ErrNotFound if absent.
	Delete(ctx context.Context, key string) error
}

// ValidKey reports whether key can name a blob: 1 to MaxKeyBytes bytes of
// valid UTF-8 without NUL. Any other byte is allowed, '/' included: keys are
// names, not paths, and implementations must not let one escape its store.
func ValidKey(key string) error {
	switch {
	case key == "":
		return errors.New("blob key is empty")
	case len(key) > MaxKeyBytes:
		return fmt.Errorf("blob key is %d bytes (at most %d)", len(key), MaxKeyBytes)
	case !utf8.ValidString(key):
		return errors.New("blob key is not valid UTF-8")
	}
	for i := 0; i < len(key); i++ {
		if key[i] == 0 {
			return errors.New("blob key contains a NUL byte")
		}
	}
	return nil
}
