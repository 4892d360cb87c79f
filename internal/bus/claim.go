package bus

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// claimsMaxBytes bounds a claims bucket: past it, a new claim fails (and
// its call with it) until old ones expire.
const claimsMaxBytes = 256 << 20

// Claims remember keys for a while, across nodes and restarts: the first
// Claim of a key stores its value; later ones within the window get that
// value back. Idempotency keys use them.
type Claims struct {
	b      *Bus
	name   string
	window time.Duration

	mu sync.Mutex
	kv jetstream.KeyValue
}

// Claims returns the claims kept for window (rounded up to a second), in a
// key-value bucket named after name.
func (b *Bus) Claims(name string, window time.Duration) (*Claims, error) {
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("%w: claims name %q: letters, digits, '_' or '-'", ErrInvalid, name)
	}
	if window < time.Second {
		return nil, fmt.Errorf("%w: claims window %s: at least a second", ErrInvalid, window)
	}
	return &Claims{b: b, name: b.cfg.Prefix + name, window: window}, nil
}

func (c *Claims) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.kv != nil {
		return c.kv, nil
	}
	kv, err := c.b.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: c.name, TTL: c.window, Storage: jetstream.FileStorage, History: 1, MaxBytes: claimsMaxBytes,
		Description: "hostless claims (idempotency keys)",
	})
	if err != nil {
		return nil, fmt.Errorf("claims bucket: %w", err)
	}
	c.kv = kv
	return kv, nil
}

// Claim stores value under key unless key was claimed within the window.
// It returns the value of the first claim, and whether it is this one.
// Keys may be any string: they are hashed.
func (c *Claims) Claim(ctx context.Context, key, value string) (string, bool, error) {
	kv, err := c.bucket(ctx)
	if err != nil {
		return "", false, err
	}
	sum := sha256.Sum256([]byte(key))
	k := hex.EncodeToString(sum[:])
	for range 3 {
		_, err = kv.Create(ctx, k, []byte(value))
		if err == nil {
			return value, true, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return "", false, fmt.Errorf("claim: %w", err)
		}
		e, gerr := kv.Get(ctx, k)
		if errors.Is(gerr, jetstream.ErrKeyNotFound) {
			continue // expired in between: claim again
		}
		if gerr != nil {
			return "", false, fmt.Errorf("claim: %w", gerr)
		}
		return strings.Clone(string(e.Value())), false, nil
	}
	return "", false, fmt.Errorf("claim: %w", err)
}

// Release forgets a claimed key (its work could not be done).
func (c *Claims) Release(ctx context.Context, key string) error {
	kv, err := c.bucket(ctx)
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(key))
	if err := kv.Delete(ctx, hex.EncodeToString(sum[:])); err != nil {
		return fmt.Errorf("release claim: %w", err)
	}
	return nil
}
