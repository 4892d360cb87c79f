package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/hostless/hostless/internal/store"
)

// Sealer seals and opens secrets under the platform's master key.
type Sealer interface {
	Seal(plaintext, associatedData []byte) ([]byte, error)
	Open(sealed, associatedData []byte) ([]byte, error)
}

type signingKey struct {
	id      string
	private ed25519.PrivateKey
	public  ed25519.PublicKey
	created time.Time
	retire  time.Time
}

// keyring holds the signing keys: the newest signs, every key not retired
// verifies and is published in the JWKS. Keys live in the store, private
// halves sealed by the master key, so that every node of a cluster signs
// and verifies with the same ones.
type keyring struct {
	st       store.Auth
	seal     Sealer
	rotate   time.Duration // a key signs for this long
	lifetime time.Duration // then verifies for this long more

	mu         sync.RWMutex
	keys       map[string]*signingKey
	current    *signingKey
	lastReload time.Time
}

func keyAD(id string) []byte { return []byte("hostless auth signing key " + id) }

// reload reads the keys from the store, adds a key when the newest is due
// for rotation (or there is none), and keeps them.
func (k *keyring) reload(ctx context.Context, now time.Time) error {
	stored, err := k.st.ListSigningKeys(ctx, now)
	if err != nil {
		return err
	}
	if len(stored) == 0 || !now.Before(stored[len(stored)-1].CreatedAt.Add(k.rotate)) {
		nk, err := k.newKey(ctx, now)
		if err != nil {
			return err
		}
		stored = append(stored, nk)
	}
	keys := make(map[string]*signingKey, len(stored))
	var current *signingKey
	for _, s := range stored {
		priv, err := k.seal.Open(s.Sealed, keyAD(s.ID))
		if err != nil {
			return fmt.Errorf("open signing key %s (was it sealed by another master key?): %w", s.ID, err)
		}
		if len(priv) != ed25519.PrivateKeySize {
			return fmt.Errorf("signing key %s is %d bytes", s.ID, len(priv))
		}
		sk := &signingKey{id: s.ID, private: priv, public: ed25519.PrivateKey(priv).Public().(ed25519.PublicKey),
			created: s.CreatedAt, retire: s.RetireAt}
		keys[s.ID] = sk
		if current == nil || !sk.created.Before(current.created) {
			current = sk
		}
	}
	k.mu.Lock()
	k.keys, k.current, k.lastReload = keys, current, now
	k.mu.Unlock()
	return nil
}

func (k *keyring) newKey(ctx context.Context, now time.Time) (store.SigningKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return store.SigningKey{}, err
	}
	idb := make([]byte, 8)
	if _, err := rand.Read(idb); err != nil {
		return store.SigningKey{}, err
	}
	id := hex.EncodeToString(idb)
	sealed, err := k.seal.Seal(priv, keyAD(id))
	if err != nil {
		return store.SigningKey{}, err
	}
	sk := store.SigningKey{ID: id, Sealed: sealed, Public: pub, CreatedAt: now, RetireAt: now.Add(k.rotate + k.lifetime)}
	if err := k.st.PutSigningKey(ctx, sk); err != nil {
		return store.SigningKey{}, err
	}
	return sk, nil
}

func (k *keyring) signer() *signingKey {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.current
}

// key returns the verifying key id names, reloading once a second at most
// when it is unknown (another node may have rotated).
func (k *keyring) key(ctx context.Context, id string, now time.Time) (*signingKey, bool) {
	k.mu.RLock()
	sk, ok := k.keys[id]
	last := k.lastReload
	k.mu.RUnlock()
	if ok || now.Sub(last) < time.Second {
		return sk, ok
	}
	if err := k.reload(ctx, now); err != nil {
		return nil, false
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	sk, ok = k.keys[id]
	return sk, ok
}

// JWK is a published public key.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
}

func (k *keyring) jwks() []JWK {
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([]JWK, 0, len(k.keys))
	for _, sk := range k.keys {
		out = append(out, JWK{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(sk.public),
			Kid: sk.id, Use: "sig", Alg: "EdDSA"})
	}
	return out
}
