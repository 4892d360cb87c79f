// Package masterkey holds the platform's master key: the one 256-bit key
// that seals every secret Hostless must be able to recover later (the
// secrets of SigV4 access key pairs, function secrets), so that the store
// and its backups hold only ciphertext.
//
// The key comes from HOSTLESS_MASTER_KEY (base64 or hex of 32 bytes) when
// that is set, and otherwise from the file master.key in the data
// directory, which the first start creates with 32 random bytes and mode
// 0600. A server refuses to start if the file is readable by group or
// others, or does not hold a key.
//
// # What to back up
//
// Back up the master key separately from the data directory's backups:
// the value of HOSTLESS_MASTER_KEY, or the file master.key (its content is
// the base64 of the key, so it can also be given as HOSTLESS_MASTER_KEY).
// A database backup without its master key cannot be decrypted by anyone,
// including you: every sealed secret in it is lost. A master key stored next
// to the backups it protects protects nothing.
//
// # Sealed format
//
// Seal returns version (1 byte, 1) || key ID (4 bytes) || nonce (12 bytes)
// || AES-256-GCM ciphertext and tag. The version and key ID are
// authenticated with the associated data, so a later key rotation can tell
// which key sealed a value and a later format can coexist with this one.
// Random 96-bit nonces keep AES-GCM safe for far more values than a
// platform seals under one key (NIST's bound is 2^32 per key).
//
// The package never logs, and its errors never contain key material: a Key
// prints as its ID. It imports only the standard library and knows nothing
// of HTTP or the store.
package masterkey

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// EnvVar is the environment variable that holds the master key.
const EnvVar = "HOSTLESS_MASTER_KEY"

// FileName is the master key file in the data directory.
const FileName = "master.key"

// Size is the length of a master key in bytes.
const Size = 32

const (
	version    = 1
	keyIDSize  = 4
	nonceSize  = 12
	headerSize = 1 + keyIDSize + nonceSize
	tagSize    = 16
	// Overhead is how many bytes Seal adds to a plaintext.
	Overhead = headerSize + tagSize
)

// Errors of Open. They say what is wrong and never carry key material.
var (
	// ErrWrongKey means the value was sealed under another master key.
	ErrWrongKey = errors.New("the master key does not match the one that sealed this value (was HOSTLESS_MASTER_KEY or master.key changed?)")
	// ErrAuth means the ciphertext does not authenticate under this key: it
	// was modified, its associated data differs, or the master key does
	// not match.
	ErrAuth = errors.New("sealed value does not open: the master key does not match, or the value or its associated data was changed")
	// ErrFormat means the input is not a sealed value of a known version.
	ErrFormat = errors.New("not a sealed value of a known format")
)

// Key is a master key. It is safe for concurrent use. It prints as its ID,
// never as its bytes.
type Key struct {
	aead   cipher.AEAD
	id     [keyIDSize]byte
	source string
}

// New returns the key made of raw, which must be Size bytes. It copies
// nothing it keeps: raw may be reused after New returns.
func New(raw []byte) (*Key, error) {
	if len(raw) != Size {
		return nil, fmt.Errorf("master key is %d bytes; want %d", len(raw), Size)
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	k := &Key{aead: aead}
	// The ID is a domain-separated hash of the key, so it reveals nothing
	// usable about the key and can be logged.
	h := sha256.New()
	h.Write([]byte("hostless master key id\x00"))
	h.Write(raw)
	copy(k.id[:], h.Sum(nil))
	return k, nil
}

// Parse returns the key encoded in s: the standard or URL-safe base64
// (padded or not) or the hex of Size bytes, with surrounding white space
// ignored. Its errors describe s only by its length.
func Parse(s string) (*Key, error) {
	raw, err := decode(strings.TrimSpace(s))
	if err != nil {
		return nil, err
	}
	return New(raw)
}

func decode(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("is empty; want the base64 or hex of 32 bytes (e.g. openssl rand -base64 32)")
	}
	if len(s) == 2*Size {
		if raw, err := hex.DecodeString(s); err == nil {
			return raw, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw, err := enc.DecodeString(s); err == nil && len(raw) == Size {
			return raw, nil
		}
	}
	return nil, fmt.Errorf("is not the base64 or hex of %d bytes: it has %d characters (base64 has 43 or 44, hex 64; e.g. openssl rand -base64 32)", Size, len(s))
}

// Load returns the platform's master key: from envValue (the value of
// HOSTLESS_MASTER_KEY) when it is not empty, and otherwise from
// dataDir/master.key, which it creates on first start. When both are
// present and hold different keys, Load refuses: data sealed under one
// would not open under the other.
func Load(envValue, dataDir string) (*Key, error) {
	path := filepath.Join(dataDir, FileName)
	if envValue != "" {
		k, err := Parse(envValue)
		if err != nil {
			return nil, fmt.Errorf("%s %w", EnvVar, err)
		}
		k.source = EnvVar
		// A readable, valid key file that differs is a mistake worth
		// stopping for; a missing or unusable file is none of our business
		// when the environment names the key.
		if fk, err := readFile(path); err == nil && fk.id != k.id {
			return nil, fmt.Errorf("%s is set and differs from the key in %s (id %s vs %s): values sealed under one do not open under the other; unset %s or move %s away", EnvVar, path, k.ID(), fk.ID(), EnvVar, path)
		}
		return k, nil
	}
	if dataDir == "" {
		return nil, fmt.Errorf("master key: neither %s nor a data directory is set", EnvVar)
	}
	k, err := readFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		k, err = create(path)
	}
	if err != nil {
		return nil, err
	}
	return k, nil
}

// LoadFile reads the master key from the file at path. It refuses a file
// that group or others may read, or that does not hold a key.
func LoadFile(path string) (*Key, error) { return readFile(path) }

func readFile(path string) (*Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("master key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("master key file %s has mode %04o: it must not be readable or writable by group or others; run: chmod 600 %s", path, perm, path)
	}
	// A key file is at most a few dozen bytes; read a little more than
	// the largest encoding to report a wrong length without reading a
	// huge file.
	buf := make([]byte, 256)
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return nil, fmt.Errorf("master key file %s: %w", path, err)
	}
	data := buf[:n]
	defer clear(buf)
	var raw []byte
	if len(data) == Size {
		// Raw bytes (head -c 32 /dev/urandom > master.key): 32 bytes is
		// no length of a text encoding of a 32-byte key.
		raw = data
	} else {
		raw, err = decode(string(bytes.TrimSpace(data)))
		if err != nil {
			return nil, fmt.Errorf("master key file %s %w; the file has %d bytes", path, err, len(data))
		}
	}
	k, err := New(raw)
	if err != nil {
		return nil, fmt.Errorf("master key file %s: %w", path, err)
	}
	k.source = path
	return k, nil
}

// create makes a new key file at path: a temporary file in the same
// directory, written and fsynced, then linked into place so that two
// servers starting at once never replace each other's key; the loser uses
// the winner's.
func create(path string) (*Key, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	raw := make([]byte, Size)
	defer clear(raw)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	text := make([]byte, base64.StdEncoding.EncodedLen(Size)+1)
	defer clear(text)
	base64.StdEncoding.Encode(text, raw)
	text[len(text)-1] = '\n'

	tmp, err := os.CreateTemp(dir, ".master.key-*") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	if err := tmp.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		tmp.Close()
		return nil, fmt.Errorf("master key: %w", err)
	}
	if _, err := tmp.Write(text); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("master key: write %s: %w", tmpName, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("master key: sync %s: %w", tmpName, err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readFile(path)
		}
		return nil, fmt.Errorf("master key: create %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return nil, fmt.Errorf("master key: sync %s: %w", dir, err)
	}
	k, err := New(raw)
	if err != nil {
		return nil, err
	}
	k.source = path
	return k, nil
}

func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ID returns the key's ID in hex: the first bytes of a hash of the key,
// safe to log, stored in every sealed value.
func (k *Key) ID() string { return hex.EncodeToString(k.id[:]) }

// Source says where the key came from: EnvVar or the key file's path.
func (k *Key) Source() string { return k.source }

// String returns "master key <id>"; the key's bytes never print.
func (k *Key) String() string { return "master key " + k.ID() }

// GoString keeps %#v from printing the key schedule.
func (k *Key) GoString() string { return k.String() }

// LogValue keeps slog from printing the key schedule.
func (k *Key) LogValue() slog.Value { return slog.StringValue(k.String()) }

// Seal encrypts and authenticates plaintext, and authenticates
// associatedData, which Open must be given again. Bind a value to where it
// lives with associatedData (e.g. "sigv4-secret:" + access key ID), so that
// a sealed value copied to another row does not open there.
func (k *Key) Seal(plaintext, associatedData []byte) ([]byte, error) {
	out := make([]byte, headerSize, headerSize+len(plaintext)+tagSize)
	out[0] = version
	copy(out[1:], k.id[:])
	if _, err := rand.Read(out[1+keyIDSize : headerSize]); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	nonce := out[1+keyIDSize : headerSize]
	return k.aead.Seal(out, nonce, plaintext, k.ad(out[:1+keyIDSize], associatedData)), nil
}

// Open decrypts a value that Seal returned, given the same associated data.
// A value sealed under another key fails with ErrWrongKey; a modified value
// or different associated data fails with ErrAuth; input that is not a
// sealed value fails with ErrFormat.
func (k *Key) Open(sealed, associatedData []byte) ([]byte, error) {
	if len(sealed) < 1 {
		return nil, fmt.Errorf("open: %w (empty)", ErrFormat)
	}
	if sealed[0] != version {
		return nil, fmt.Errorf("open: %w (version %d; this server reads version %d)", ErrFormat, sealed[0], version)
	}
	if len(sealed) < Overhead {
		return nil, fmt.Errorf("open: %w (%d bytes is too short)", ErrFormat, len(sealed))
	}
	if subtle.ConstantTimeCompare(sealed[1:1+keyIDSize], k.id[:]) != 1 {
		return nil, fmt.Errorf("open: %w: sealed under key id %s, this key is %s", ErrWrongKey, hex.EncodeToString(sealed[1:1+keyIDSize]), k.ID())
	}
	nonce := sealed[1+keyIDSize : headerSize]
	plain, err := k.aead.Open(nil, nonce, sealed[headerSize:], k.ad(sealed[:1+keyIDSize], associatedData))
	if err != nil {
		return nil, fmt.Errorf("open: %w", ErrAuth)
	}
	return plain, nil
}

// ad is the GCM associated data: the header, then the caller's data. The
// header's length is fixed, so the concatenation is unambiguous.
func (k *Key) ad(header, associatedData []byte) []byte {
	ad := make([]byte, 0, len(header)+len(associatedData))
	ad = append(ad, header...)
	return append(ad, associatedData...)
}
