package masterkey_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/hostless/hostless/internal/masterkey"
)

var rawKey = bytes.Repeat([]byte{0xA5}, 32)

func mustNew(t *testing.T, raw []byte) *masterkey.Key {
	t.Helper()
	k, err := masterkey.New(raw)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	t.Parallel()
	k := mustNew(t, rawKey)
	other := mustNew(t, bytes.Repeat([]byte{0x5A}, 32))
	plain := []byte("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
	ad := []byte("sigv4-secret:AKIDEXAMPLE")

	sealed, err := k.Seal(plain, ad)
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed) != len(plain)+masterkey.Overhead {
		t.Errorf("sealed is %d bytes; want %d", len(sealed), len(plain)+masterkey.Overhead)
	}
	if bytes.Contains(sealed, plain) {
		t.Fatal("sealed value contains the plaintext")
	}
	again, _ := k.Seal(plain, ad)
	if bytes.Equal(sealed, again) {
		t.Error("two seals of one plaintext are equal: nonces repeat")
	}
	got, err := k.Open(sealed, ad)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, %v; want the plaintext", got, err)
	}
	empty, err := k.Seal(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := k.Open(empty, nil); err != nil || len(got) != 0 {
		t.Fatalf("Open(Seal(nil)) = %q, %v", got, err)
	}

	flip := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 1
		return b
	}
	tests := []struct {
		name    string
		key     *masterkey.Key
		sealed  []byte
		ad      []byte
		wantErr error
	}{
		{name: "wrong key", key: other, sealed: sealed, ad: ad, wantErr: masterkey.ErrWrongKey},
		{name: "wrong associated data", key: k, sealed: sealed, ad: []byte("sigv4-secret:AKIDOTHER"), wantErr: masterkey.ErrAuth},
		{name: "missing associated data", key: k, sealed: sealed, ad: nil, wantErr: masterkey.ErrAuth},
		{name: "tampered ciphertext", key: k, sealed: flip(len(sealed) - 20), ad: ad, wantErr: masterkey.ErrAuth},
		{name: "tampered tag", key: k, sealed: flip(len(sealed) - 1), ad: ad, wantErr: masterkey.ErrAuth},
		{name: "tampered nonce", key: k, sealed: flip(6), ad: ad, wantErr: masterkey.ErrAuth},
		{name: "tampered key id", key: k, sealed: flip(2), ad: ad, wantErr: masterkey.ErrWrongKey},
		{name: "unknown version", key: k, sealed: flip(0), ad: ad, wantErr: masterkey.ErrFormat},
		{name: "truncated", key: k, sealed: sealed[:masterkey.Overhead-1], ad: ad, wantErr: masterkey.ErrFormat},
		{name: "empty", key: k, sealed: nil, ad: ad, wantErr: masterkey.ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.key.Open(tt.sealed, tt.ad)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Open = %q, %v; want %v", got, err, tt.wantErr)
			}
			if got != nil {
				t.Errorf("Open returned plaintext %q with an error", got)
			}
		})
	}
	_, err = other.Open(sealed, ad)
	if msg := err.Error(); !strings.Contains(msg, "master key does not match") || !strings.Contains(msg, k.ID()) {
		t.Errorf("wrong-key error %q should say the master key does not match and name the sealing key's id", msg)
	}
}

func TestKeyNeverPrints(t *testing.T) {
	t.Parallel()
	k := mustNew(t, rawKey)
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("loaded", "key", k)
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s", k, k, k, k), logged.String()} {
		if !strings.Contains(s, k.ID()) {
			t.Errorf("%q does not name the key id", s)
		}
		for _, leak := range []string{hex.EncodeToString(rawKey), base64.StdEncoding.EncodeToString(rawKey), "a5a5", "aead"} {
			if strings.Contains(strings.ToLower(s), leak) {
				t.Errorf("%q leaks %q", s, leak)
			}
		}
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	want := mustNew(t, rawKey).ID()
	secretish := strings.Repeat("Z", 40) // a value that must never be echoed
	tests := []struct {
		name    string
		value   string
		wantErr string
	}{
		{name: "std base64", value: base64.StdEncoding.EncodeToString(rawKey)},
		{name: "raw std base64", value: base64.RawStdEncoding.EncodeToString(rawKey)},
		{name: "url base64", value: base64.URLEncoding.EncodeToString(rawKey)},
		{name: "hex", value: hex.EncodeToString(rawKey)},
		{name: "upper hex with white space", value: " " + strings.ToUpper(hex.EncodeToString(rawKey)) + "\n"},
		{name: "empty", value: "", wantErr: "is empty"},
		{name: "16 bytes", value: base64.StdEncoding.EncodeToString(rawKey[:16]), wantErr: "it has 24 characters"},
		{name: "33 bytes", value: base64.StdEncoding.EncodeToString(append(bytes.Clone(rawKey), 1)), wantErr: "it has 44 characters"},
		{name: "not an encoding", value: secretish + "!", wantErr: "41 characters"},
		{name: "hex of 31 bytes", value: hex.EncodeToString(rawKey[:31]), wantErr: "not the base64 or hex"},
		{name: "passphrase", value: "correct horse battery staple", wantErr: "not the base64 or hex"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k, err := masterkey.Parse(tt.value)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if k.ID() != want {
					t.Fatalf("key id %s; want %s", k.ID(), want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v; want it to contain %q", err, tt.wantErr)
			}
			if v := strings.TrimSpace(tt.value); len(v) > 8 && strings.Contains(err.Error(), v) {
				t.Errorf("error %q echoes the value", err)
			}
		})
	}
}

func TestLoadEnv(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := base64.StdEncoding.EncodeToString(rawKey)
	k, err := masterkey.Load(env, dir)
	if err != nil {
		t.Fatal(err)
	}
	if k.Source() != masterkey.EnvVar || k.ID() != mustNew(t, rawKey).ID() {
		t.Fatalf("Load = %s from %s", k, k.Source())
	}
	if _, err := os.Stat(filepath.Join(dir, masterkey.FileName)); !os.IsNotExist(err) {
		t.Fatalf("Load with %s created a key file (stat: %v)", masterkey.EnvVar, err)
	}

	_, err = masterkey.Load("not-a-key-at-all-but-secret", dir)
	if err == nil || !strings.HasPrefix(err.Error(), masterkey.EnvVar+" ") || strings.Contains(err.Error(), "not-a-key") {
		t.Fatalf("bad env value: err = %v; want one that names %s and not the value", err, masterkey.EnvVar)
	}

	// A key file that holds another key is a conflict; the same key is not.
	fileKey, err := masterkey.Load("", dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = masterkey.Load(env, dir)
	if err == nil || !strings.Contains(err.Error(), "differs") || !strings.Contains(err.Error(), fileKey.ID()) {
		t.Fatalf("env key differing from the file: err = %v", err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, masterkey.FileName))
	if err != nil {
		t.Fatal(err)
	}
	same, err := masterkey.Load(string(raw), dir)
	if err != nil || same.ID() != fileKey.ID() {
		t.Fatalf("env key equal to the file: %v, %v", same, err)
	}
	if strings.Contains(err2s(masterkey.Load(env, dir)), strings.TrimSpace(string(raw))) {
		t.Fatal("the conflict error prints the file's key")
	}
}

func err2s(_ *masterkey.Key, err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestLoadFileCreatedOnceAndReused(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data", "nested")
	k1, err := masterkey.Load("", dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, masterkey.FileName)
	if k1.Source() != path {
		t.Errorf("source %q; want %q", k1.Source(), path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %04o; want 0600", fi.Mode().Perm())
	}
	content, _ := os.ReadFile(path)
	if _, err := masterkey.Parse(string(content)); err != nil {
		t.Errorf("the key file is not usable as %s: %v", masterkey.EnvVar, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("data dir holds %d entries; want only the key file (no temporary left)", len(entries))
	}

	sealed, err := k1.Seal([]byte("secret"), []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	k2, err := masterkey.Load("", dir)
	if err != nil {
		t.Fatal(err)
	}
	if k2.ID() != k1.ID() {
		t.Fatalf("second load has key %s; want the first's %s", k2.ID(), k1.ID())
	}
	if got, err := k2.Open(sealed, []byte("ad")); err != nil || string(got) != "secret" {
		t.Fatalf("a value sealed before a restart does not open after it: %q, %v", got, err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, content) {
		t.Fatal("the second load rewrote the key file")
	}
}

func TestLoadConcurrentFirstStarts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var wg sync.WaitGroup
	ids := make([]string, 8)
	errs := make([]error, 8)
	for i := range ids {
		wg.Go(func() {
			k, err := masterkey.Load("", dir)
			errs[i] = err
			if err == nil {
				ids[i] = k.ID()
			}
		})
	}
	wg.Wait()
	for i := range ids {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if ids[i] != ids[0] {
			t.Fatalf("concurrent first starts got different keys: %v", ids)
		}
	}
}

func TestLoadFileRefusals(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("file modes")
	}
	encoded := base64.StdEncoding.EncodeToString(rawKey) + "\n"
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		dir     bool
		wantErr []string
	}{
		{name: "group readable", content: encoded, mode: 0o640, wantErr: []string{"mode 0640", "chmod 600"}},
		{name: "world readable", content: encoded, mode: 0o604, wantErr: []string{"mode 0604"}},
		{name: "short", content: "c2hvcnQ=\n", mode: 0o600, wantErr: []string{"it has 8 characters", "the file has 9 bytes"}},
		{name: "empty", content: "", mode: 0o600, wantErr: []string{"is empty"}},
		{name: "garbage", content: strings.Repeat("#", 100), mode: 0o600, wantErr: []string{"not the base64 or hex", "100 bytes"}},
		{name: "huge", content: strings.Repeat("A", 1<<20), mode: 0o600, wantErr: []string{"master key file"}},
		{name: "directory", dir: true, wantErr: []string{"not a regular file"}},
		{name: "owner-only 0400 is fine", content: encoded, mode: 0o400},
		{name: "raw 32 bytes are fine", content: string(rawKey), mode: 0o600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, masterkey.FileName)
			if tt.dir {
				if err := os.Mkdir(path, 0o700); err != nil {
					t.Fatal(err)
				}
			} else {
				if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tt.mode); err != nil {
					t.Fatal(err)
				}
			}
			k, err := masterkey.Load("", dir)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if k.ID() != mustNew(t, rawKey).ID() {
					t.Fatalf("key id %s", k.ID())
				}
				return
			}
			if err == nil {
				t.Fatal("Load accepted the file")
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("err %q does not contain %q", err, want)
				}
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("err %q does not name the file", err)
			}
			if strings.Contains(err.Error(), strings.TrimSpace(encoded)) {
				t.Errorf("err %q prints the key", err)
			}
			// A refused file is left as it was: no replacement key.
			if !tt.dir {
				if after, _ := os.ReadFile(path); string(after) != tt.content {
					t.Error("Load changed a key file it refused")
				}
			}
		})
	}
}

func TestLoadNoSource(t *testing.T) {
	t.Parallel()
	if _, err := masterkey.Load("", ""); err == nil || !strings.Contains(err.Error(), masterkey.EnvVar) {
		t.Fatalf("err = %v", err)
	}
}

func TestNewWrongLength(t *testing.T) {
	t.Parallel()
	if _, err := masterkey.New(rawKey[:31]); err == nil {
		t.Fatal("New accepted 31 bytes")
	}
}

func BenchmarkSealOpen(b *testing.B) {
	k, _ := masterkey.New(rawKey)
	plain := []byte("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
	ad := []byte("sigv4-secret:AKIDEXAMPLE")
	for b.Loop() {
		s, _ := k.Seal(plain, ad)
		if _, err := k.Open(s, ad); err != nil {
			b.Fatal(err)
		}
	}
}
