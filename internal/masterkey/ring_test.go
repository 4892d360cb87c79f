package masterkey

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func newKey(t *testing.T) (*Key, string) {
	t.Helper()
	raw := make([]byte, Size)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	k, err := New(raw)
	if err != nil {
		t.Fatal(err)
	}
	return k, base64.StdEncoding.EncodeToString(raw)
}

func TestRingRotation(t *testing.T) {
	t.Parallel()
	oldKey, oldText := newKey(t)
	_, newText := newKey(t)
	ad := []byte("secret:default/DB/1")
	sealedOld, err := oldKey.Seal([]byte("hunter2"), ad)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := LoadRing(newText, " "+oldText+" ,", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(ring.IDs()) != 2 || ring.IDs()[1] != oldKey.ID() {
		t.Fatalf("IDs = %v", ring.IDs())
	}
	if !ring.Stale(sealedOld) {
		t.Fatal("a value sealed by the previous key is not stale")
	}
	plain, err := ring.Open(sealedOld, ad)
	if err != nil || string(plain) != "hunter2" {
		t.Fatalf("Open(old) = %q, %v", plain, err)
	}
	resealed, err := ring.Reseal(sealedOld, ad)
	if err != nil {
		t.Fatal(err)
	}
	if ring.Stale(resealed) {
		t.Fatal("a resealed value is stale")
	}
	if _, err := oldKey.Open(resealed, ad); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("the old key opens a resealed value: %v", err)
	}
	if plain, err := ring.Open(resealed, ad); err != nil || string(plain) != "hunter2" {
		t.Fatalf("Open(resealed) = %q, %v", plain, err)
	}
	if _, err := ring.Open(resealed, []byte("secret:default/DB/2")); !errors.Is(err, ErrAuth) {
		t.Fatalf("Open with other associated data = %v, want ErrAuth", err)
	}
	// Without the previous key, the old value is lost, and says why.
	alone := NewRing(ring.Current())
	if _, err := alone.Open(sealedOld, ad); !errors.Is(err, ErrWrongKey) || !strings.Contains(err.Error(), PreviousEnvVar) {
		t.Fatalf("Open without the previous key = %v", err)
	}
	if _, err := alone.Open([]byte{9, 9}, ad); !errors.Is(err, ErrFormat) {
		t.Fatalf("Open(garbage) = %v, want ErrFormat", err)
	}
}

func TestLoadRingBadPrevious(t *testing.T) {
	t.Parallel()
	_, cur := newKey(t)
	_, err := LoadRing(cur, "c2VjcmV0", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), PreviousEnvVar+": key 1") || strings.Contains(err.Error(), "c2VjcmV0") {
		t.Fatalf("LoadRing = %v, want an error naming the key's position, not its text", err)
	}
	r := NewRing(mustKey(t, cur), mustKey(t, cur))
	if len(r.IDs()) != 1 {
		t.Fatalf("the current key given again as previous is kept twice: %v", r.IDs())
	}
	if bytes.Contains([]byte(r.String()), []byte(cur)) {
		t.Fatal("String shows the key")
	}
}

func mustKey(t *testing.T, s string) *Key {
	t.Helper()
	k, err := Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
