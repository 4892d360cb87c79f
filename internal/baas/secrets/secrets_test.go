package secrets_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/hostless/hostless/internal/baas/auth"
	"github.com/hostless/hostless/internal/baas/secrets"
	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/masterkey"
	"github.com/hostless/hostless/internal/store"
	"github.com/hostless/hostless/internal/store/sqlite"
)

func newKey(t testing.TB) *masterkey.Key {
	raw := make([]byte, masterkey.Size)
	_, _ = rand.Read(raw)
	k, err := masterkey.New(raw)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

type changes struct {
	mu    sync.Mutex
	names []string
}

func (c *changes) changed(_, name string) {
	c.mu.Lock()
	c.names = append(c.names, name)
	c.mu.Unlock()
}

func open(t testing.TB, ring *masterkey.Ring) (*secrets.Service, *sqlite.DB, *changes) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c := &changes{}
	return secrets.New(secrets.Config{Project: function.DefaultProject, Store: db, Keys: ring, Changed: c.changed}), db, c
}

func version(names ...string) *function.Version {
	return &function.Version{Project: function.DefaultProject, Function: "fn", Number: 1, Spec: function.Spec{Secrets: names}}
}

func TestSetEnvAndChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, db, ch := open(t, masterkey.NewRing(newKey(t)))
	const value = "s3cr3t-Value-9f1c"
	info, err := svc.Set(ctx, "DB_PASSWORD", []byte(value))
	if err != nil || info.Version != 1 {
		t.Fatalf("Set = %+v, %v", info, err)
	}
	if info, err = svc.Set(ctx, "DB_PASSWORD", []byte(value+"2")); err != nil || info.Version != 2 {
		t.Fatalf("Set again = %+v, %v", info, err)
	}
	env, err := svc.Env(ctx, version("DB_PASSWORD"))
	if err != nil || env["DB_PASSWORD"] != value+"2" {
		t.Fatalf("Env = %v, %v", env, err)
	}
	stored, _ := db.GetSecret(ctx, function.DefaultProject, "DB_PASSWORD")
	if bytes.Contains(stored.Ciphertext, []byte(value)) || bytes.Contains(stored.WrappedKey, []byte(value)) {
		t.Fatal("the store holds the value in clear")
	}
	if err := svc.Missing(ctx, []string{"DB_PASSWORD", "NOPE", "ALSO_NOPE"}); !errors.Is(err, function.ErrInvalid) || !strings.Contains(err.Error(), "NOPE, ALSO_NOPE") {
		t.Fatalf("Missing = %v", err)
	}
	if err := svc.Delete(ctx, "DB_PASSWORD"); err != nil {
		t.Fatal(err)
	}
	_, err = svc.Env(ctx, version("DB_PASSWORD"))
	if !errors.Is(err, function.ErrFunction) || !strings.Contains(err.Error(), "DB_PASSWORD") || strings.Contains(err.Error(), value) {
		t.Fatalf("Env of a deleted secret = %v", err)
	}
	if strings.Join(ch.names, ",") != "DB_PASSWORD,DB_PASSWORD,DB_PASSWORD" {
		t.Fatalf("Changed got %v, want a call per set and delete", ch.names)
	}
	for _, bad := range [][]byte{bytes.Repeat([]byte("x"), secrets.MaxValueBytes+1), []byte("a\x00b")} {
		if _, err := svc.Set(ctx, "X", bad); !errors.Is(err, function.ErrInvalid) || strings.Contains(err.Error(), string(bad)) {
			t.Fatalf("Set(bad) = %v", err)
		}
	}
}

// TestRowsDontSwap: a sealed row copied to another name, or back to an
// older version, doesn't open.
func TestRowsDontSwap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, db, _ := open(t, masterkey.NewRing(newKey(t)))
	for _, n := range []string{"A", "B"} {
		if _, err := svc.Set(ctx, n, []byte("value of "+n)); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := db.GetSecret(ctx, function.DefaultProject, "A")
	b, _ := db.GetSecret(ctx, function.DefaultProject, "B")
	b.Version, b.WrappedKey, b.Ciphertext = 2, a.WrappedKey, a.Ciphertext
	if err := db.PutSecret(ctx, b); err != nil {
		t.Fatal(err)
	}
	if env, err := svc.Env(ctx, version("B")); err == nil || strings.Contains(err.Error(), "value of") {
		t.Fatalf("B with A's row = %v, %v; want an error without the value", env, err)
	}
}

func TestRewrap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	oldKey, newKey := newKey(t), newKey(t)
	old, db, _ := open(t, masterkey.NewRing(oldKey))
	if _, err := old.Set(ctx, "TOKEN", []byte("t0k3n")); err != nil {
		t.Fatal(err)
	}
	if _, err := old.CreateKey(ctx, "orders", nil); err != nil {
		t.Fatal(err)
	}
	admin := auth.Principal{Kind: auth.Admin}
	ct, _, err := old.Encrypt(ctx, admin, "orders", []byte("card"), nil)
	if err != nil {
		t.Fatal(err)
	}
	// The new key alone can't read what the old one sealed.
	alone := secrets.New(secrets.Config{Project: function.DefaultProject, Store: db, Keys: masterkey.NewRing(newKey)})
	if _, err := alone.Env(ctx, version("TOKEN")); !errors.Is(err, masterkey.ErrWrongKey) {
		t.Fatalf("Env under another master key = %v, want ErrWrongKey", err)
	}
	// With both, it serves, and Rewrap moves everything to the new key.
	both := secrets.New(secrets.Config{Project: function.DefaultProject, Store: db, Keys: masterkey.NewRing(newKey, oldKey)})
	res, err := both.Rewrap(ctx)
	if err != nil || res.Secrets != 1 || res.KMSKeys != 1 || res.MasterKeyID != newKey.ID() {
		t.Fatalf("Rewrap = %+v, %v", res, err)
	}
	if res, _ := both.Rewrap(ctx); res.Secrets+res.KMSKeys != 0 {
		t.Fatalf("second Rewrap = %+v, want nothing left", res)
	}
	if env, err := alone.Env(ctx, version("TOKEN")); err != nil || env["TOKEN"] != "t0k3n" {
		t.Fatalf("Env after the rotation, new key alone = %v, %v", env, err)
	}
	if plain, err := alone.Decrypt(ctx, admin, "orders", ct, nil); err != nil || string(plain) != "card" {
		t.Fatalf("Decrypt after the rotation = %q, %v", plain, err)
	}
}

func TestKMS(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, _, _ := open(t, masterkey.NewRing(newKey(t)))
	if _, err := svc.CreateKey(ctx, "orders", []string{"checkout"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateKey(ctx, "orders", nil); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("create twice = %v", err)
	}
	if _, err := svc.CreateKey(ctx, "other", nil); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "Orders", "keys", "a/b", strings.Repeat("a", 64)} {
		if _, err := svc.CreateKey(ctx, bad, nil); !errors.Is(err, function.ErrInvalid) {
			t.Errorf("CreateKey(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	var (
		admin    = auth.Principal{Kind: auth.Admin}
		enc      = auth.Principal{Kind: auth.Key, ID: "k1", Scopes: []string{"kms:orders:encrypt"}}
		dec      = auth.Principal{Kind: auth.Key, ID: "k2", Scopes: []string{"kms:orders:decrypt"}}
		all      = auth.Principal{Kind: auth.Key, ID: "k3", Scopes: []string{"kms:*"}}
		checkout = auth.Principal{Kind: auth.Function, ID: "checkout"}
		resize   = auth.Principal{Kind: auth.Function, ID: "resize"}
		user     = auth.Principal{Kind: auth.User, ID: "u1"}
	)
	cctx := map[string]string{"order": "42", "tenant": "acme"}
	ct, v, err := svc.Encrypt(ctx, enc, "orders", []byte("4111 1111"), cctx)
	if err != nil || v != 1 {
		t.Fatalf("Encrypt = %v, %v", v, err)
	}
	for _, p := range []auth.Principal{dec, all, checkout, admin} {
		if plain, err := svc.Decrypt(ctx, p, "orders", ct, map[string]string{"tenant": "acme", "order": "42"}); err != nil || string(plain) != "4111 1111" {
			t.Errorf("Decrypt as %+v = %q, %v", p, plain, err)
		}
	}
	for _, p := range []auth.Principal{enc, resize, user} {
		if _, err := svc.Decrypt(ctx, p, "orders", ct, cctx); !errors.Is(err, secrets.ErrForbidden) {
			t.Errorf("Decrypt as %+v = %v, want ErrForbidden", p, err)
		}
	}
	if _, _, err := svc.Encrypt(ctx, enc, "other", []byte("x"), nil); !errors.Is(err, secrets.ErrForbidden) {
		t.Errorf("Encrypt with another key's scope = %v", err)
	}
	if _, _, err := svc.Encrypt(ctx, enc, "missing", []byte("x"), nil); !errors.Is(err, secrets.ErrForbidden) {
		t.Errorf("Encrypt with a missing key = %v, want ErrForbidden (no enumeration)", err)
	}
	// Another context, another key, a changed byte: no plaintext.
	if _, err := svc.Decrypt(ctx, admin, "orders", ct, map[string]string{"order": "43", "tenant": "acme"}); !errors.Is(err, function.ErrInvalid) {
		t.Errorf("Decrypt with another context = %v", err)
	}
	if _, err := svc.Decrypt(ctx, admin, "other", ct, cctx); !errors.Is(err, function.ErrInvalid) {
		t.Errorf("Decrypt with another key = %v", err)
	}
	flipped := bytes.Clone(ct)
	flipped[len(flipped)-1] ^= 1
	if _, err := svc.Decrypt(ctx, admin, "orders", flipped, cctx); !errors.Is(err, function.ErrInvalid) {
		t.Errorf("Decrypt of a changed ciphertext = %v", err)
	}
	// A rotation: new ciphertexts use version 2, old ones still open.
	if k, err := svc.RotateKey(ctx, "orders"); err != nil || k.Version != 2 || k.Functions[0] != "checkout" {
		t.Fatalf("RotateKey = %+v, %v", k, err)
	}
	ct2, v, err := svc.Encrypt(ctx, checkout, "orders", []byte("new"), nil)
	if err != nil || v != 2 {
		t.Fatalf("Encrypt after rotation = %v, %v", v, err)
	}
	if p, err := svc.Decrypt(ctx, dec, "orders", ct2, nil); err != nil || string(p) != "new" {
		t.Fatalf("Decrypt v2 = %q, %v", p, err)
	}
	if p, err := svc.Decrypt(ctx, dec, "orders", ct, cctx); err != nil || string(p) != "4111 1111" {
		t.Fatalf("Decrypt v1 after rotation = %q, %v", p, err)
	}
	plain, sealed, _, err := svc.GenerateDataKey(ctx, checkout, "orders", 0, nil)
	if err != nil || len(plain) != 32 {
		t.Fatalf("GenerateDataKey = %d bytes, %v", len(plain), err)
	}
	if got, err := svc.Decrypt(ctx, checkout, "orders", sealed, nil); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Decrypt(data key) = %v", err)
	}
	if _, _, _, err := svc.GenerateDataKey(ctx, checkout, "orders", secrets.MaxDataKeyBytes+1, nil); !errors.Is(err, function.ErrInvalid) {
		t.Fatalf("GenerateDataKey too big = %v", err)
	}
	keys, err := svc.ListKeys(ctx)
	if err != nil || len(keys) != 2 || keys[0].Name != "orders" || keys[0].Version != 2 || keys[1].Name != "other" {
		t.Fatalf("ListKeys = %+v, %v", keys, err)
	}
}

// FuzzDecrypt feeds outside ciphertexts and contexts to Decrypt: it never
// panics, and nothing but the real ciphertext and context opens.
func FuzzDecrypt(f *testing.F) {
	ctx := context.Background()
	svc, _, _ := open(f, masterkey.NewRing(newKey(f)))
	if _, err := svc.CreateKey(ctx, "k", nil); err != nil {
		f.Fatal(err)
	}
	admin := auth.Principal{Kind: auth.Admin}
	ct, _, err := svc.Encrypt(ctx, admin, "k", []byte("plain"), map[string]string{"a": "b"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ct, "b")
	f.Add([]byte{}, "")
	f.Add([]byte{1, 0, 0, 0, 1}, "b")
	f.Add(append([]byte{1, 255, 255, 255, 255}, make([]byte, 40)...), "b")
	f.Add(append([]byte{2}, ct[1:]...), "b")
	f.Fuzz(func(t *testing.T, b []byte, value string) {
		if _, err := secrets.ParseCiphertext(b); err != nil && !errors.Is(err, function.ErrInvalid) {
			t.Fatalf("ParseCiphertext error %v is not ErrInvalid", err)
		}
		plain, err := svc.Decrypt(ctx, admin, "k", b, map[string]string{"a": value})
		if err == nil && (!bytes.Equal(b, ct) || value != "b" || string(plain) != "plain") {
			t.Fatalf("Decrypt opened a forged ciphertext: %q", plain)
		}
		if err != nil && !errors.Is(err, function.ErrInvalid) {
			t.Fatalf("Decrypt error %v is not ErrInvalid", err)
		}
	})
}

// racingStore deletes and sets a secret again right after Rewrap lists
// the secrets: the secret is back at version 1, under a new data key.
type racingStore struct {
	*sqlite.DB
	once  sync.Once
	again func()
}

func (s *racingStore) ListSecrets(ctx context.Context, project string) ([]store.Secret, error) {
	list, err := s.DB.ListSecrets(ctx, project)
	s.once.Do(s.again)
	return list, err
}

// A rotation that read a secret before it was deleted and set again (at
// the same version number) doesn't put the old data key over the new one.
func TestRewrapRacingDeleteAndSet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	oldKey, newKey := newKey(t), newKey(t)
	old, db, _ := open(t, masterkey.NewRing(oldKey))
	if _, err := old.Set(ctx, "TOKEN", []byte("before")); err != nil {
		t.Fatal(err)
	}
	ring := masterkey.NewRing(newKey, oldKey)
	plain := secrets.New(secrets.Config{Project: function.DefaultProject, Store: db, Keys: ring})
	rs := &racingStore{DB: db, again: func() {
		if err := plain.Delete(ctx, "TOKEN"); err != nil {
			t.Error(err)
		}
		if info, err := plain.Set(ctx, "TOKEN", []byte("after")); err != nil || info.Version != 1 {
			t.Errorf("set again = %+v, %v", info, err)
		}
	}}
	rotating := secrets.New(secrets.Config{Project: function.DefaultProject, Store: rs, Keys: ring})
	if _, err := rotating.Rewrap(ctx); err != nil {
		t.Fatal(err)
	}
	env, err := plain.Env(ctx, version("TOKEN"))
	if err != nil || env["TOKEN"] != "after" {
		t.Fatalf("Env after a rotation raced a delete and set = %q, %v; want the new value", env["TOKEN"], err)
	}
}
