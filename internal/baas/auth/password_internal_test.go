package auth

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestHashVerify(t *testing.T) {
	t.Parallel()
	h := newHasher(2)
	ctx := context.Background()
	enc, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Contains(enc, "correct horse") {
		t.Fatalf("hash = %q", enc)
	}
	again, _ := h.Hash(ctx, "correct horse battery staple")
	if again == enc {
		t.Error("two hashes of a password are the same: no salt")
	}
	for _, tc := range []struct {
		name, password, hash string
		want                 bool
	}{
		{"right", "correct horse battery staple", enc, true},
		{"wrong", "correct horse battery stapler", enc, false},
		{"empty hash", "correct horse battery staple", "", false},
		{"malformed hash", "correct horse battery staple", "$argon2id$nope", false},
	} {
		ok, err := h.Verify(ctx, tc.password, tc.hash)
		if err != nil || ok != tc.want {
			t.Errorf("%s: Verify = %v, %v; want %v", tc.name, ok, err, tc.want)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	h.slots <- struct{}{} // both slots busy: the hash must wait, and give up
	h.slots <- struct{}{}
	if _, err := h.Verify(cancelled, "x", enc); err == nil {
		t.Error("Verify with a cancelled context and no free slot succeeded")
	}
}

func TestParsePHC(t *testing.T) {
	t.Parallel()
	const salt, key = "c2FsdHNhbHRzYWx0c2FsdA", "a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U"
	good := "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + key
	if _, _, m, tt, p, ok := parsePHC(good); !ok || m != 19456 || tt != 2 || p != 1 {
		t.Fatalf("parsePHC(good) = %d %d %d %v", m, tt, p, ok)
	}
	for _, bad := range []string{
		"",
		"$argon2i$v=19$m=19456,t=2,p=1$" + salt + "$" + key,
		"$argon2id$v=16$m=19456,t=2,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=4194304,t=2,p=1$" + salt + "$" + key, // 4 GiB
		"$argon2id$v=19$m=19456,t=1000,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=19456,t=2,p=255$" + salt + "$" + key,
		"$argon2id$v=19$m=19456,t=0,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=19456,t=2,p=0$" + salt + "$" + key,
		"$argon2id$v=19$m=8,t=2,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=-1,t=2,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + strings.Repeat("a", 200), // 150-byte key
		"$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$YQ",                          // 1-byte key
		"$argon2id$v=19$m=19456,t=2,p=1$YQ$" + key,                                // 1-byte salt
		"$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$not base64!",
		"$argon2id$v=19$m=19456,t=2,p=1$" + salt,
	} {
		if _, _, _, _, _, ok := parsePHC(bad); ok {
			t.Errorf("parsePHC(%q) accepted", bad)
		}
	}
}

// TestThrottleBoundedKeys: a flood of new keys costs memory once.
func TestThrottleBoundedKeys(t *testing.T) {
	t.Parallel()
	th := NewThrottle(1, 1, 100)
	now := testNow()
	for i := range 10_000 {
		th.Allow(strings.Repeat("k", i%7)+string(rune('a'+i%26))+itoa(i), now)
		if len(th.m) > 100 {
			t.Fatalf("the throttle tracks %d keys, max 100", len(th.m))
		}
	}
}

func testNow() time.Time { return time.Unix(1_900_000_000, 0) }

func itoa(i int) string { return strconv.Itoa(i) }
