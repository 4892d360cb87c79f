package masterkey

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
)

// PreviousEnvVar is the environment variable that lists master keys a
// rotation replaces: comma-separated, each in HOSTLESS_MASTER_KEY's form.
const PreviousEnvVar = "HOSTLESS_MASTER_KEY_PREVIOUS"

// Ring is the current master key and the previous ones a rotation
// replaces. It seals with the current key only and opens a value with
// whichever key sealed it (the key ID in the sealed value says which), so
// a node given the new key and the old one serves through a rotation
// while the stored values are re-sealed. It is safe for concurrent use.
type Ring struct {
	current  *Key
	previous []*Key
}

// NewRing returns a ring that seals with current and also opens with
// previous. Keys equal to current or to each other are kept once.
func NewRing(current *Key, previous ...*Key) *Ring {
	r := &Ring{current: current}
	for _, k := range previous {
		if k == nil || k.id == current.id || r.find(k.id[:]) != nil {
			continue
		}
		r.previous = append(r.previous, k)
	}
	return r
}

// LoadRing loads the current key as Load does, and the previous keys from
// previous (PreviousEnvVar's value: comma-separated keys; may be empty).
// Its errors describe a key by its position and length only.
func LoadRing(envValue, previous, dataDir string) (*Ring, error) {
	cur, err := Load(envValue, dataDir)
	if err != nil {
		return nil, err
	}
	var prev []*Key
	for i, s := range strings.Split(previous, ",") {
		if strings.TrimSpace(s) == "" {
			continue
		}
		k, err := Parse(s)
		if err != nil {
			return nil, fmt.Errorf("%s: key %d %w", PreviousEnvVar, i+1, err)
		}
		k.source = PreviousEnvVar
		prev = append(prev, k)
	}
	return NewRing(cur, prev...), nil
}

func (r *Ring) find(id []byte) *Key {
	if bytes.Equal(r.current.id[:], id) {
		return r.current
	}
	for _, k := range r.previous {
		if bytes.Equal(k.id[:], id) {
			return k
		}
	}
	return nil
}

// Current returns the key that seals.
func (r *Ring) Current() *Key { return r.current }

// ID returns the current key's ID.
func (r *Ring) ID() string { return r.current.ID() }

// IDs returns the IDs of every key, the current one first.
func (r *Ring) IDs() []string {
	ids := []string{r.current.ID()}
	for _, k := range r.previous {
		ids = append(ids, k.ID())
	}
	return ids
}

// String returns "master keys <current id> (+N previous)"; never key bytes.
func (r *Ring) String() string {
	return fmt.Sprintf("master key %s (+%d previous)", r.current.ID(), len(r.previous))
}

// LogValue keeps slog from printing key schedules.
func (r *Ring) LogValue() slog.Value { return slog.StringValue(r.String()) }

// Seal seals with the current key (see Key.Seal).
func (r *Ring) Seal(plaintext, associatedData []byte) ([]byte, error) {
	return r.current.Seal(plaintext, associatedData)
}

// Open opens a value sealed by any key of the ring (see Key.Open). A value
// sealed by a key the ring lacks fails with ErrWrongKey.
func (r *Ring) Open(sealed, associatedData []byte) ([]byte, error) {
	if len(sealed) >= Overhead && sealed[0] == version {
		if k := r.find(sealed[1 : 1+keyIDSize]); k != nil {
			return k.Open(sealed, associatedData)
		}
		return nil, fmt.Errorf("open: %w: sealed under key id %s, which is neither the current key %s nor a previous one (%s)",
			ErrWrongKey, hex.EncodeToString(sealed[1:1+keyIDSize]), r.current.ID(), PreviousEnvVar)
	}
	return r.current.Open(sealed, associatedData) // reports the format error
}

// Stale reports whether a sealed value was sealed by a key other than the
// current one: a rotation re-seals it.
func (r *Ring) Stale(sealed []byte) bool {
	return len(sealed) < 1+keyIDSize || !bytes.Equal(sealed[1:1+keyIDSize], r.current.id[:])
}

// Reseal opens a value with whichever key of the ring sealed it and seals
// it again with the current key, under the same associated data.
func (r *Ring) Reseal(sealed, associatedData []byte) ([]byte, error) {
	plain, err := r.Open(sealed, associatedData)
	if err != nil {
		return nil, err
	}
	defer clear(plain)
	return r.Seal(plain, associatedData)
}
