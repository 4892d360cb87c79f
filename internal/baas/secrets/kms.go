package secrets

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/hostless/hostless/internal/baas/auth"
	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
)

// Limits of the KMS API.
const (
	// MaxPlaintextBytes bounds what encrypt takes.
	MaxPlaintextBytes = 64 << 10
	// MaxDataKeyBytes bounds a generated data key.
	MaxDataKeyBytes = 1024
	// MaxContextPairs and MaxContextBytes bound an encryption context.
	MaxContextPairs = 16
	MaxContextBytes = 4 << 10
	// MaxKeyFunctions bounds the functions a key names.
	MaxKeyFunctions = 64
)

// ErrForbidden means the caller may not use the key that way.
var ErrForbidden = errors.New("forbidden")

var kmsKeyName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// ValidKeyName checks a KMS key's name: 1 to 63 lowercase letters, digits,
// '-' and '_', starting with a letter or digit ("keys" is taken by the API).
func ValidKeyName(name string) error {
	if !kmsKeyName.MatchString(name) || name == "keys" {
		return fmt.Errorf("%w: key name %q must be 1 to 63 lowercase letters, digits, '-' and '_', starting with a letter or digit (and not \"keys\")", ErrInvalid, short(name))
	}
	return nil
}

func short(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// KeyInfo is what may be shown of a KMS key: never its material.
type KeyInfo struct {
	Name string `json:"name"`
	// Version is the newest version, the one encrypt uses.
	Version   int       `json:"version"`
	Functions []string  `json:"functions"`
	CreatedAt time.Time `json:"created_at"`
}

// CreateKey makes a KMS key (version 1) that functions may use, or fails
// with store.ErrConflict if it exists.
func (s *Service) CreateKey(ctx context.Context, name string, functions []string) (KeyInfo, error) {
	if err := ValidKeyName(name); err != nil {
		return KeyInfo{}, err
	}
	if len(functions) > MaxKeyFunctions {
		return KeyInfo{}, fmt.Errorf("%w: functions has %d names (at most %d)", ErrInvalid, len(functions), MaxKeyFunctions)
	}
	for _, f := range functions {
		if err := function.ValidName(f); err != nil {
			return KeyInfo{}, fmt.Errorf("%w: functions: %q is not a function name", ErrInvalid, short(f))
		}
	}
	functions = slices.Compact(slices.Sorted(slices.Values(functions)))
	return s.putKeyVersion(ctx, name, 1, functions)
}

// RotateKey adds a version to a key: encrypt uses it from now on, and
// decrypt still opens what older versions made.
func (s *Service) RotateKey(ctx context.Context, name string) (KeyInfo, error) {
	if err := ValidKeyName(name); err != nil {
		return KeyInfo{}, err
	}
	for range 5 {
		cur, err := s.cfg.Store.GetKMSKey(ctx, s.cfg.Project, name, 0)
		if err != nil {
			return KeyInfo{}, err
		}
		ki, err := s.putKeyVersion(ctx, name, cur.Version+1, cur.Functions)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		return ki, err
	}
	return KeyInfo{}, fmt.Errorf("rotate key %s: %w: rotated by others at the same time", name, store.ErrConflict)
}

func (s *Service) putKeyVersion(ctx context.Context, name string, version int, functions []string) (KeyInfo, error) {
	material := make([]byte, 32)
	defer clear(material)
	if _, err := rand.Read(material); err != nil {
		return KeyInfo{}, err
	}
	wrapped, err := s.cfg.Keys.Seal(material, kmsKeyAD(s.cfg.Project, name, version))
	if err != nil {
		return KeyInfo{}, err
	}
	k := store.KMSKey{Project: s.cfg.Project, Name: name, Version: version, Wrapped: wrapped, Functions: functions,
		CreatedAt: s.cfg.Now().UTC().Truncate(time.Microsecond)}
	if err := s.cfg.Store.PutKMSKey(ctx, k); err != nil {
		return KeyInfo{}, err
	}
	return keyInfo(k), nil
}

func keyInfo(k store.KMSKey) KeyInfo {
	fs := k.Functions
	if fs == nil {
		fs = []string{}
	}
	return KeyInfo{Name: k.Name, Version: k.Version, Functions: fs, CreatedAt: k.CreatedAt}
}

// ListKeys returns every key at its newest version, by name.
func (s *Service) ListKeys(ctx context.Context) ([]KeyInfo, error) {
	all, err := s.cfg.Store.ListKMSKeys(ctx, s.cfg.Project)
	if err != nil {
		return nil, err
	}
	out := []KeyInfo{}
	for _, k := range all {
		if n := len(out); n > 0 && out[n-1].Name == k.Name {
			out[n-1] = keyInfo(k) // versions come in order: keep the newest
			continue
		}
		out = append(out, keyInfo(k))
	}
	return out, nil
}

// Operations on a KMS key, as API key scopes name them:
// kms:{key}:encrypt (encrypt, generate-data-key), kms:{key}:decrypt.
const (
	OpEncrypt = "encrypt"
	OpDecrypt = "decrypt"
)

// allow says whether p may do op with the key: the admin may; an API key
// with scope kms:{key}:{op} (or a wildcard holding it) may; a function,
// through its own token, may use the keys that name it. Users may not: a
// function called by a signed-in user holds the user's token, and the
// user's power, which doesn't reach keys.
func allow(p auth.Principal, k *store.KMSKey, op string) bool {
	switch p.Kind {
	case auth.Admin:
		return true
	case auth.Key:
		return p.HasScope("kms:" + k.Name + ":" + op)
	case auth.Function:
		return slices.Contains(k.Functions, p.ID)
	case auth.User:
		return p.IsAdmin()
	}
	return false
}

// key reads a key's version (newest for 0) and checks p may do op with it.
// A key p may not use is ErrForbidden whether or not it exists, so that
// callers learn nothing of other keys.
func (s *Service) key(ctx context.Context, p auth.Principal, name string, version int, op string) (*store.KMSKey, []byte, error) {
	if ValidKeyName(name) != nil {
		return nil, nil, ErrForbidden
	}
	k, err := s.cfg.Store.GetKMSKey(ctx, s.cfg.Project, name, version)
	if errors.Is(err, store.ErrNotFound) {
		if p.IsAdmin() {
			return nil, nil, err
		}
		return nil, nil, ErrForbidden
	}
	if err != nil {
		return nil, nil, err
	}
	if !allow(p, &k, op) {
		return nil, nil, ErrForbidden
	}
	material, err := s.cfg.Keys.Open(k.Wrapped, kmsKeyAD(k.Project, k.Name, k.Version))
	if err != nil {
		return nil, nil, fmt.Errorf("KMS key %s version %d: %w: %w", k.Name, k.Version, errCorrupt, err)
	}
	return &k, material, nil
}

// Encrypt seals plaintext under the key's newest version, bound to the
// key and to encryption context ctxPairs (which Decrypt must be given
// again).
func (s *Service) Encrypt(ctx context.Context, p auth.Principal, name string, plaintext []byte, ctxPairs map[string]string) ([]byte, int, error) {
	if len(plaintext) > MaxPlaintextBytes {
		return nil, 0, fmt.Errorf("%w: plaintext is %d bytes (at most %d; encrypt more with a data key)", ErrInvalid, len(plaintext), MaxPlaintextBytes)
	}
	cctx, err := canonicalContext(ctxPairs)
	if err != nil {
		return nil, 0, err
	}
	k, material, err := s.key(ctx, p, name, 0, OpEncrypt)
	if err != nil {
		return nil, 0, err
	}
	defer clear(material)
	out, err := sealCiphertext(material, uint32(k.Version), plaintext, kmsAD(k.Project, k.Name, k.Version, cctx))
	return out, k.Version, err
}

// Decrypt opens a ciphertext Encrypt made with the same key and context.
// Whatever is wrong with it (another key, another context, a changed
// byte) is one error: ErrInvalid "does not decrypt".
func (s *Service) Decrypt(ctx context.Context, p auth.Principal, name string, ciphertext []byte, ctxPairs map[string]string) ([]byte, error) {
	cctx, err := canonicalContext(ctxPairs)
	if err != nil {
		return nil, err
	}
	c, err := ParseCiphertext(ciphertext)
	if err != nil {
		return nil, err
	}
	k, material, err := s.key(ctx, p, name, int(c.KeyVersion), OpDecrypt)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNoDecrypt
	}
	if err != nil {
		return nil, err
	}
	defer clear(material)
	return c.open(material, kmsAD(k.Project, k.Name, k.Version, cctx))
}

// GenerateDataKey returns a random key of n bytes in clear and sealed
// under the named key (as Encrypt would seal it): the app encrypts its
// data with the clear one, keeps the sealed one beside the data, and
// forgets the clear one.
func (s *Service) GenerateDataKey(ctx context.Context, p auth.Principal, name string, n int, ctxPairs map[string]string) (plain, sealed []byte, version int, err error) {
	if n == 0 {
		n = 32
	}
	if n < 1 || n > MaxDataKeyBytes {
		return nil, nil, 0, fmt.Errorf("%w: bytes must be 1 to %d", ErrInvalid, MaxDataKeyBytes)
	}
	plain = make([]byte, n)
	if _, err := rand.Read(plain); err != nil {
		return nil, nil, 0, err
	}
	sealed, version, err = s.Encrypt(ctx, p, name, plain, ctxPairs)
	if err != nil {
		return nil, nil, 0, err
	}
	return plain, sealed, version, nil
}

// kmsKeyAD binds a KMS key version's material to its row.
func kmsKeyAD(project, name string, version int) []byte {
	return []byte("hostless-kms-key/v1\x00" + project + "\x00" + name + "\x00" + strconv.Itoa(version))
}

// kmsAD binds a ciphertext to its key, key version and context.
func kmsAD(project, name string, version int, cctx []byte) []byte {
	ad := []byte("hostless-kms/v1\x00" + project + "\x00" + name + "\x00" + strconv.Itoa(version) + "\x00")
	return append(ad, cctx...)
}

// canonicalContext encodes an encryption context so that equal maps give
// equal bytes: JSON with sorted keys; no context and an empty one are the
// same.
func canonicalContext(m map[string]string) ([]byte, error) {
	if len(m) > MaxContextPairs {
		return nil, fmt.Errorf("%w: context has %d pairs (at most %d)", ErrInvalid, len(m), MaxContextPairs)
	}
	if len(m) == 0 {
		return []byte("{}"), nil
	}
	b, err := json.Marshal(m) // sorts keys
	if err != nil {
		return nil, err
	}
	if len(b) > MaxContextBytes {
		return nil, fmt.Errorf("%w: context is %d bytes (at most %d)", ErrInvalid, len(b), MaxContextBytes)
	}
	return b, nil
}

// Ciphertext format: ciphertextFormat (1 byte) || key version (4 bytes,
// big-endian) || nonce (12 bytes) || AES-256-GCM ciphertext and tag. The
// key version says which version of the named key opens it; the key's
// name and the context are bound by the associated data, not stored.
const (
	ciphertextFormat = 1
	nonceSize        = 12
	tagSize          = 16
	headerSize       = 1 + 4 + nonceSize
)

var errNoDecrypt = fmt.Errorf("%w: the ciphertext does not decrypt with this key and context", ErrInvalid)

// Ciphertext is a parsed KMS ciphertext.
type Ciphertext struct {
	KeyVersion uint32
	nonce      []byte
	sealed     []byte
}

// ParseCiphertext reads a ciphertext's header. Its errors are ErrInvalid
// and say nothing of the bytes.
func ParseCiphertext(b []byte) (Ciphertext, error) {
	if len(b) < headerSize+tagSize {
		return Ciphertext{}, fmt.Errorf("%w: the ciphertext is too short (%d bytes)", ErrInvalid, len(b))
	}
	if b[0] != ciphertextFormat {
		return Ciphertext{}, fmt.Errorf("%w: the ciphertext is not of a known format", ErrInvalid)
	}
	v := binary.BigEndian.Uint32(b[1:5])
	if v == 0 || v > 1<<30 {
		return Ciphertext{}, fmt.Errorf("%w: the ciphertext names no valid key version", ErrInvalid)
	}
	return Ciphertext{KeyVersion: v, nonce: b[5:headerSize], sealed: b[headerSize:]}, nil
}

func (c Ciphertext) open(material, ad []byte) ([]byte, error) {
	aead, err := newGCM(material)
	if err != nil {
		return nil, err
	}
	plain, err := aead.Open(nil, c.nonce, c.sealed, ad)
	if err != nil {
		return nil, errNoDecrypt
	}
	return plain, nil
}

func sealCiphertext(material []byte, version uint32, plaintext, ad []byte) ([]byte, error) {
	aead, err := newGCM(material)
	if err != nil {
		return nil, err
	}
	out := make([]byte, headerSize, headerSize+len(plaintext)+tagSize)
	out[0] = ciphertextFormat
	binary.BigEndian.PutUint32(out[1:5], version)
	if _, err := rand.Read(out[5:headerSize]); err != nil {
		return nil, err
	}
	return aead.Seal(out, out[5:headerSize], plaintext, ad), nil
}
