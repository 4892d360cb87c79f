// Package secrets is the backend's secrets and encryption: function
// secrets (set by the admin, stored encrypted, given to the functions that
// name them as environment variables when an instance starts) and a small
// KMS-like encryption API for apps (named keys; encrypt, decrypt and
// generate data keys, scoped by key and by caller).
//
// Everything is envelope encryption under the master key: a random data
// key per secret version (per KMS key version) does the work with
// AES-256-GCM, and only that data key is sealed by the master key, with
// associated data that binds it to its project, name and version. A master
// key rotation re-seals the data keys and touches no value (Rewrap).
//
// A value never leaves this package except to a runtime starting an
// instance (Env) and, for the KMS API, to the caller that asked for it:
// never in an error, a log line or a listing. Package secrets knows the
// store through store.Secrets and nothing of runtimes or the scheduler.
package secrets

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
)

// MaxValueBytes bounds a secret's value.
const MaxValueBytes = 64 << 10

// Keyring is the master key (masterkey.Ring): it seals with the current
// key and opens with any key it holds.
type Keyring interface {
	Seal(plaintext, associatedData []byte) ([]byte, error)
	Open(sealed, associatedData []byte) ([]byte, error)
	// Stale reports whether a sealed value was sealed by a key other than
	// the current one.
	Stale(sealed []byte) bool
	// ID is the current key's ID.
	ID() string
}

// Config configures the service.
type Config struct {
	Project string
	Store   store.Secrets
	Keys    Keyring
	Log     *slog.Logger
	// Changed is told that a secret's value changed or it was deleted,
	// after the store has it: the instances holding the old value must go.
	Changed func(project, name string)
	// ResealOthers, when set, re-seals the platform's other values sealed
	// by an older master key (signing keys, stored access keys) as part
	// of Rewrap, and says how many it re-sealed.
	ResealOthers func(ctx context.Context) (int, error)
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Service serves secrets and the KMS API.
type Service struct {
	cfg Config
}

// New returns the service.
func New(cfg Config) *Service {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Changed == nil {
		cfg.Changed = func(string, string) {}
	}
	return &Service{cfg: cfg}
}

// Errors of the service, matched with errors.Is.
var (
	ErrNotFound = store.ErrNotFound
	ErrInvalid  = function.ErrInvalid
)

// Info is what may be shown of a secret: never its value.
type Info struct {
	Name      string    `json:"name"`
	Version   int       `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func info(s store.Secret) Info {
	return Info{Name: s.Name, Version: s.Version, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt}
}

// checkValue refuses what can't be an environment variable's value.
func checkValue(value []byte) error {
	if len(value) > MaxValueBytes {
		return fmt.Errorf("%w: a secret's value is at most %d bytes; this one has %d", ErrInvalid, MaxValueBytes, len(value))
	}
	for _, c := range value {
		if c == 0 {
			return fmt.Errorf("%w: a secret's value can't contain a NUL byte (it becomes an environment variable)", ErrInvalid)
		}
	}
	return nil
}

// Set stores value as name's next version and tells Changed.
func (s *Service) Set(ctx context.Context, name string, value []byte) (Info, error) {
	if err := function.ValidSecretName(name); err != nil {
		return Info{}, err
	}
	if err := checkValue(value); err != nil {
		return Info{}, err
	}
	// Writers racing on one name retry with the next version.
	for range 5 {
		cur, err := s.cfg.Store.GetSecret(ctx, s.cfg.Project, name)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return Info{}, err
		}
		now := s.cfg.Now().UTC().Truncate(time.Microsecond)
		next := store.Secret{Project: s.cfg.Project, Name: name, Version: cur.Version + 1, CreatedAt: now, UpdatedAt: now}
		if next.Version > 1 {
			next.CreatedAt = cur.CreatedAt
		}
		if next.WrappedKey, next.Ciphertext, err = s.seal(secretAD(s.cfg.Project, name, next.Version), value); err != nil {
			return Info{}, err
		}
		err = s.cfg.Store.PutSecret(ctx, next)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return Info{}, err
		}
		s.cfg.Changed(s.cfg.Project, name)
		return info(next), nil
	}
	return Info{}, fmt.Errorf("set secret %s: %w: it is being set by others at the same time; try again", name, store.ErrConflict)
}

// List returns every secret's name, version and times, by name.
func (s *Service) List(ctx context.Context) ([]Info, error) {
	list, err := s.cfg.Store.ListSecrets(ctx, s.cfg.Project)
	if err != nil {
		return nil, err
	}
	out := make([]Info, 0, len(list))
	for _, sec := range list {
		out = append(out, info(sec))
	}
	return out, nil
}

// Delete deletes a secret and tells Changed.
func (s *Service) Delete(ctx context.Context, name string) error {
	if err := function.ValidSecretName(name); err != nil {
		return err
	}
	if err := s.cfg.Store.DeleteSecret(ctx, s.cfg.Project, name); err != nil {
		return err
	}
	s.cfg.Changed(s.cfg.Project, name)
	return nil
}

// Missing returns an error naming the secrets of names that don't exist:
// a deploy of a function that names them is refused.
func (s *Service) Missing(ctx context.Context, names []string) error {
	var missing []string
	for _, n := range names {
		if _, err := s.cfg.Store.GetSecret(ctx, s.cfg.Project, n); errors.Is(err, store.ErrNotFound) {
			missing = append(missing, n)
		} else if err != nil {
			return err
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("%w: secrets %s do not exist; set them first (hostless secrets set NAME)", ErrInvalid, strings.Join(missing, ", "))
}

// Env returns the values of the secrets v names: a function.SecretEnv,
// which runtimes call when they start an instance.
func (s *Service) Env(ctx context.Context, v *function.Version) (map[string]string, error) {
	if len(v.Spec.Secrets) == 0 {
		return nil, nil
	}
	env := make(map[string]string, len(v.Spec.Secrets))
	for _, name := range v.Spec.Secrets {
		sec, err := s.cfg.Store.GetSecret(ctx, v.Project, name)
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("%w: function %s names secret %s, which no longer exists; set it (hostless secrets set %s) or deploy without it",
				function.ErrFunction, v.Function, name, name)
		}
		if err != nil {
			return nil, fmt.Errorf("read secret %s: %w", name, err)
		}
		value, err := s.open(secretAD(sec.Project, sec.Name, sec.Version), sec.WrappedKey, sec.Ciphertext)
		if err != nil {
			return nil, fmt.Errorf("secret %s (version %d): %w", name, sec.Version, err)
		}
		env[name] = string(value)
	}
	return env, nil
}

// secretAD binds a secret version's data key and value to where they
// live: copied to another row, or to another version, they don't open.
func secretAD(project, name string, version int) []byte {
	return []byte("hostless-secret/v1\x00" + project + "\x00" + name + "\x00" + strconv.Itoa(version))
}

// valueFormat is the first byte of a sealed value: its format's version.
const valueFormat = 1

// seal makes a data key, seals plaintext with it, and wraps the data key
// with the master key; both under ad. The ciphertext is
// valueFormat || nonce (12 bytes) || AES-256-GCM ciphertext and tag.
func (s *Service) seal(ad, plaintext []byte) (wrapped, ciphertext []byte, err error) {
	dataKey := make([]byte, 32)
	defer clear(dataKey)
	if _, err := rand.Read(dataKey); err != nil {
		return nil, nil, err
	}
	aead, err := newGCM(dataKey)
	if err != nil {
		return nil, nil, err
	}
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(plaintext)+aead.Overhead())
	out[0] = valueFormat
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, nil, err
	}
	ciphertext = aead.Seal(out, out[1:], plaintext, ad)
	if wrapped, err = s.cfg.Keys.Seal(dataKey, ad); err != nil {
		return nil, nil, err
	}
	return wrapped, ciphertext, nil
}

// errCorrupt is what open says of a value that doesn't open: the cause
// (wrong master key, tampering) is in the wrapped error, never the value.
var errCorrupt = errors.New("the stored value does not decrypt")

func (s *Service) open(ad, wrapped, ciphertext []byte) ([]byte, error) {
	dataKey, err := s.cfg.Keys.Open(wrapped, ad)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errCorrupt, err)
	}
	defer clear(dataKey)
	aead, err := newGCM(dataKey)
	if err != nil {
		return nil, err
	}
	if len(ciphertext) < 1+aead.NonceSize()+aead.Overhead() || ciphertext[0] != valueFormat {
		return nil, fmt.Errorf("%w: unknown format", errCorrupt)
	}
	n := 1 + aead.NonceSize()
	plain, err := aead.Open(nil, ciphertext[1:n], ciphertext[n:], ad)
	if err != nil {
		return nil, fmt.Errorf("%w: it was changed", errCorrupt)
	}
	return plain, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// RewrapResult says what Rewrap did.
type RewrapResult struct {
	MasterKeyID string `json:"master_key_id"`
	Secrets     int    `json:"secrets"`
	KMSKeys     int    `json:"kms_keys"`
	// PlatformKeys are the platform's own sealed keys (Config.ResealOthers).
	PlatformKeys int `json:"platform_keys"`
}

// Rewrap re-seals, under the current master key, every data key that
// another key of the ring sealed: a master key rotation. Values are not
// touched, and serving goes on (the ring opens both). A secret set
// meanwhile is skipped: its new version was sealed by the current key
// (even when a delete restarted its versions at the one read here).
func (s *Service) Rewrap(ctx context.Context) (RewrapResult, error) {
	res := RewrapResult{MasterKeyID: s.cfg.Keys.ID()}
	list, err := s.cfg.Store.ListSecrets(ctx, s.cfg.Project)
	if err != nil {
		return res, err
	}
	for _, sec := range list {
		if !s.cfg.Keys.Stale(sec.WrappedKey) {
			continue
		}
		wrapped, err := s.reseal(sec.WrappedKey, secretAD(sec.Project, sec.Name, sec.Version))
		if err != nil {
			return res, fmt.Errorf("rewrap secret %s: %w", sec.Name, err)
		}
		// Only over the data key it read: the secret may have been deleted
		// and set again at the same version number meanwhile, with a data
		// key of its own that this one must not replace.
		err = s.cfg.Store.RewrapSecret(ctx, sec.Project, sec.Name, sec.Version, sec.WrappedKey, wrapped)
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return res, err
		}
		res.Secrets++
	}
	keys, err := s.cfg.Store.ListKMSKeys(ctx, s.cfg.Project)
	if err != nil {
		return res, err
	}
	for _, k := range keys {
		if !s.cfg.Keys.Stale(k.Wrapped) {
			continue
		}
		wrapped, err := s.reseal(k.Wrapped, kmsKeyAD(k.Project, k.Name, k.Version))
		if err != nil {
			return res, fmt.Errorf("rewrap KMS key %s version %d: %w", k.Name, k.Version, err)
		}
		if err := s.cfg.Store.RewrapKMSKey(ctx, k.Project, k.Name, k.Version, wrapped); err != nil && !errors.Is(err, store.ErrNotFound) {
			return res, err
		}
		res.KMSKeys++
	}
	if s.cfg.ResealOthers != nil {
		if res.PlatformKeys, err = s.cfg.ResealOthers(ctx); err != nil {
			return res, fmt.Errorf("re-seal the platform's keys: %w", err)
		}
	}
	if res.Secrets+res.KMSKeys+res.PlatformKeys > 0 {
		s.cfg.Log.Info("re-sealed data keys under the current master key", "master_key", res.MasterKeyID, "secrets", res.Secrets,
			"kms_keys", res.KMSKeys, "platform_keys", res.PlatformKeys)
	}
	return res, nil
}

func (s *Service) reseal(sealed, ad []byte) ([]byte, error) {
	plain, err := s.cfg.Keys.Open(sealed, ad)
	if err != nil {
		return nil, err
	}
	defer clear(plain)
	return s.cfg.Keys.Seal(plain, ad)
}
