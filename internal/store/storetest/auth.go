package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/store"
)

var authTests = []struct {
	name string
	run  func(t *testing.T, s store.Store)
}{
	{"Auth/users", testUsers},
	{"Auth/user-conflict", testUserConflict},
	{"Auth/update-user", testUpdateUser},
	{"Auth/list-users", testListUsers},
	{"Auth/refresh-rotation", testRefreshRotation},
	{"Auth/refresh-reuse-revokes-family", testRefreshReuse},
	{"Auth/refresh-concurrent", testRefreshConcurrent},
	{"Auth/refresh-expired", testRefreshExpired},
	{"Auth/revoke", testRevoke},
	{"Auth/one-time-tokens", testOneTimeTokens},
	{"Auth/outbox", testOutbox},
	{"Auth/api-keys", testAPIKeys},
	{"Auth/signing-keys", testSigningKeys},
}

func user(project, id, email string) store.User {
	return store.User{Project: project, ID: id, Email: email, PasswordHash: "$argon2id$x", Roles: []string{"editor"},
		CreatedAt: base, UpdatedAt: base}
}

func tokenHash(s string) [32]byte { return sha256.Sum256([]byte(s)) }

func testUsers(t *testing.T, s store.Store) {
	ctx := context.Background()
	u := user(projA, "u1", "Ada@Example.com")
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetUser(ctx, projA, "u1")
	if err != nil {
		t.Fatal(err)
	}
	u.Email = "ada@example.com" // stored lower-cased
	if !reflect.DeepEqual(got, u) {
		t.Fatalf("GetUser = %+v, want %+v", got, u)
	}
	if got, err := s.GetUserByEmail(ctx, projA, "ADA@example.COM"); err != nil || got.ID != "u1" {
		t.Fatalf("GetUserByEmail = %+v, %v; want u1", got, err)
	}
	_, err = s.GetUser(ctx, projB, "u1")
	wantNotFound(t, "GetUser in another project", err)
	_, err = s.GetUserByEmail(ctx, projA, "nobody@example.com")
	wantNotFound(t, "GetUserByEmail of a stranger", err)
	// No roles reads back as an empty list, not nil.
	if err := s.CreateUser(ctx, store.User{Project: projA, ID: "u2", Email: "b@example.com", CreatedAt: base, UpdatedAt: base}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetUser(ctx, projA, "u2"); err != nil || got.Roles == nil || len(got.Roles) != 0 {
		t.Fatalf("GetUser(u2).Roles = %#v, %v; want []", got.Roles, err)
	}
}

func testUserConflict(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := s.CreateUser(ctx, user(projA, "u1", "a@example.com")); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, user(projA, "u2", "A@example.com")); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("CreateUser with a taken email (other case) = %v, want ErrConflict", err)
	}
	if err := s.CreateUser(ctx, user(projA, "u1", "c@example.com")); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("CreateUser with a taken ID = %v, want ErrConflict", err)
	}
	if err := s.CreateUser(ctx, user(projB, "u1", "a@example.com")); err != nil {
		t.Fatalf("the same email in another project: %v", err)
	}
}

func testUpdateUser(t *testing.T, s store.Store) {
	ctx := context.Background()
	for _, u := range []store.User{user(projA, "u1", "a@example.com"), user(projA, "u2", "b@example.com")} {
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	later := base.Add(time.Hour)
	got, err := s.UpdateUser(ctx, projA, "u1", func(u *store.User) error {
		u.Disabled, u.EmailVerified, u.Roles, u.UpdatedAt = true, true, []string{"admin"}, later
		u.ID, u.CreatedAt = "hijack", later // ignored
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	read, err := s.GetUser(ctx, projA, "u1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, read) || !read.Disabled || !read.EmailVerified || !reflect.DeepEqual(read.Roles, []string{"admin"}) ||
		!read.UpdatedAt.Equal(later) || !read.CreatedAt.Equal(base) {
		t.Fatalf("after UpdateUser: returned %+v, read %+v", got, read)
	}
	if _, err := s.GetUser(ctx, projA, "hijack"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdateUser changed the ID: %v", err)
	}
	boom := errors.New("boom")
	if _, err := s.UpdateUser(ctx, projA, "u1", func(u *store.User) error { u.Disabled = false; return boom }); !errors.Is(err, boom) {
		t.Fatalf("UpdateUser with a failing change = %v, want boom", err)
	}
	if read, _ := s.GetUser(ctx, projA, "u1"); !read.Disabled {
		t.Fatal("a failed change was written")
	}
	if _, err := s.UpdateUser(ctx, projA, "u1", func(u *store.User) error { u.Email = "B@example.com"; return nil }); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("UpdateUser to a taken email = %v, want ErrConflict", err)
	}
	_, err = s.UpdateUser(ctx, projA, "nobody", func(*store.User) error { return nil })
	wantNotFound(t, "UpdateUser of a stranger", err)
}

func testListUsers(t *testing.T, s store.Store) {
	ctx := context.Background()
	for i := 4; i >= 0; i-- {
		if err := s.CreateUser(ctx, user(projA, fmt.Sprint("u", i), fmt.Sprintf("user%d@example.com", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateUser(ctx, user(projB, "x", "other@example.com")); err != nil {
		t.Fatal(err)
	}
	var got []string
	after := ""
	for {
		page, err := s.ListUsers(ctx, projA, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, u := range page {
			got = append(got, u.ID)
		}
		after = page[len(page)-1].Email
	}
	if want := []string{"u0", "u1", "u2", "u3", "u4"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("ListUsers pages = %v, want %v", got, want)
	}
}

func refresh(project, value string, expires time.Time) store.RefreshToken {
	return store.RefreshToken{Project: project, Hash: tokenHash(value), Family: "fam-" + value, UserID: "u1",
		CreatedAt: base, ExpiresAt: expires}
}

func testRefreshRotation(t *testing.T, s store.Store) {
	ctx := context.Background()
	exp := base.Add(24 * time.Hour)
	if err := s.PutRefreshToken(ctx, refresh(projA, "t1", exp)); err != nil {
		t.Fatal(err)
	}
	old, err := s.RotateRefreshToken(ctx, projA, tokenHash("t1"), store.RefreshToken{Hash: tokenHash("t2"), CreatedAt: base, ExpiresAt: exp}, base)
	if err != nil {
		t.Fatal(err)
	}
	if old.UserID != "u1" || old.Family != "fam-t1" {
		t.Fatalf("spent token = %+v", old)
	}
	// t2 inherited the family and the user: rotating it works, and its
	// successor is in the same family.
	old2, err := s.RotateRefreshToken(ctx, projA, tokenHash("t2"), store.RefreshToken{Hash: tokenHash("t3"), CreatedAt: base, ExpiresAt: exp}, base)
	if err != nil || old2.Family != "fam-t1" || old2.UserID != "u1" {
		t.Fatalf("rotate t2 = %+v, %v; want family fam-t1 of u1", old2, err)
	}
	_, err = s.RotateRefreshToken(ctx, projA, tokenHash("nope"), store.RefreshToken{Hash: tokenHash("t9"), ExpiresAt: exp}, base)
	wantNotFound(t, "rotate an unknown token", err)
	_, err = s.RotateRefreshToken(ctx, projB, tokenHash("t3"), store.RefreshToken{Hash: tokenHash("t9"), ExpiresAt: exp}, base)
	wantNotFound(t, "rotate another project's token", err)
}

func testRefreshReuse(t *testing.T, s store.Store) {
	ctx := context.Background()
	exp := base.Add(24 * time.Hour)
	if err := s.PutRefreshToken(ctx, refresh(projA, "t1", exp)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RotateRefreshToken(ctx, projA, tokenHash("t1"), store.RefreshToken{Hash: tokenHash("t2"), CreatedAt: base, ExpiresAt: exp}, base); err != nil {
		t.Fatal(err)
	}
	// A thief replays t1: refused, and the family goes.
	if _, err := s.RotateRefreshToken(ctx, projA, tokenHash("t1"), store.RefreshToken{Hash: tokenHash("t3"), CreatedAt: base, ExpiresAt: exp}, base); !errors.Is(err, store.ErrTokenReused) {
		t.Fatalf("replay of a spent token = %v, want ErrTokenReused", err)
	}
	// So the legitimate holder's t2 no longer works either.
	if _, err := s.RotateRefreshToken(ctx, projA, tokenHash("t2"), store.RefreshToken{Hash: tokenHash("t4"), CreatedAt: base, ExpiresAt: exp}, base); !errors.Is(err, store.ErrTokenReused) {
		t.Fatalf("t2 after its family's revocation = %v, want ErrTokenReused", err)
	}
}

func testRefreshConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	exp := base.Add(24 * time.Hour)
	if err := s.PutRefreshToken(ctx, refresh(projA, "t1", exp)); err != nil {
		t.Fatal(err)
	}
	const n = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		oks  int
		errs []error
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.RotateRefreshToken(ctx, projA, tokenHash("t1"),
				store.RefreshToken{Hash: tokenHash(fmt.Sprint("next", i)), CreatedAt: base, ExpiresAt: exp}, base)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				oks++
			} else if !errors.Is(err, store.ErrTokenReused) {
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	if oks != 1 || len(errs) > 0 {
		t.Fatalf("%d concurrent rotations of one token: %d succeeded (want 1), other errors %v", n, oks, errs)
	}
}

func testRefreshExpired(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := s.PutRefreshToken(ctx, refresh(projA, "t1", base.Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	_, err := s.RotateRefreshToken(ctx, projA, tokenHash("t1"), store.RefreshToken{Hash: tokenHash("t2"), ExpiresAt: base.Add(time.Hour)}, base.Add(time.Minute))
	if !errors.Is(err, store.ErrTokenExpired) {
		t.Fatalf("rotate an expired token = %v, want ErrTokenExpired", err)
	}
}

func testRevoke(t *testing.T, s store.Store) {
	ctx := context.Background()
	exp := base.Add(24 * time.Hour)
	for _, v := range []string{"a", "b"} {
		if err := s.PutRefreshToken(ctx, refresh(projA, v, exp)); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.RevokeRefreshToken(ctx, projA, tokenHash("a")); err != nil || got.Family != "fam-a" {
		t.Fatalf("RevokeRefreshToken = %+v, %v", got, err)
	}
	if _, err := s.RotateRefreshToken(ctx, projA, tokenHash("a"), store.RefreshToken{Hash: tokenHash("a2"), ExpiresAt: exp}, base); !errors.Is(err, store.ErrTokenReused) {
		t.Fatalf("rotate a revoked token = %v, want ErrTokenReused", err)
	}
	if _, err := s.RotateRefreshToken(ctx, projA, tokenHash("b"), store.RefreshToken{Hash: tokenHash("b2"), ExpiresAt: exp}, base); err != nil {
		t.Fatalf("another family was revoked too: %v", err)
	}
	if err := s.RevokeUserTokens(ctx, projA, "u1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RotateRefreshToken(ctx, projA, tokenHash("b2"), store.RefreshToken{Hash: tokenHash("b3"), ExpiresAt: exp}, base); !errors.Is(err, store.ErrTokenReused) {
		t.Fatalf("rotate after RevokeUserTokens = %v, want ErrTokenReused", err)
	}
	_, err := s.RevokeRefreshToken(ctx, projA, tokenHash("nope"))
	wantNotFound(t, "revoke an unknown token", err)
}

func testOneTimeTokens(t *testing.T, s store.Store) {
	ctx := context.Background()
	tok := store.OneTimeToken{Project: projA, Hash: tokenHash("v1"), UserID: "u1", Purpose: "verify", ExpiresAt: base.Add(time.Hour)}
	if err := s.PutOneTimeToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	_, err := s.UseOneTimeToken(ctx, projA, tokenHash("v1"), "reset", base)
	wantNotFound(t, "use a verify token to reset", err)
	got, err := s.UseOneTimeToken(ctx, projA, tokenHash("v1"), "verify", base)
	if err != nil || got.UserID != "u1" {
		t.Fatalf("UseOneTimeToken = %+v, %v", got, err)
	}
	if _, err := s.UseOneTimeToken(ctx, projA, tokenHash("v1"), "verify", base); !errors.Is(err, store.ErrTokenReused) {
		t.Fatalf("second use = %v, want ErrTokenReused", err)
	}
	old := store.OneTimeToken{Project: projA, Hash: tokenHash("r1"), UserID: "u1", Purpose: "reset", ExpiresAt: base.Add(time.Minute)}
	if err := s.PutOneTimeToken(ctx, old); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UseOneTimeToken(ctx, projA, tokenHash("r1"), "reset", base.Add(time.Minute)); !errors.Is(err, store.ErrTokenExpired) {
		t.Fatalf("use an expired token = %v, want ErrTokenExpired", err)
	}
}

func testOutbox(t *testing.T, s store.Store) {
	ctx := context.Background()
	for i := range 3 {
		m := store.Mail{Project: projA, ID: fmt.Sprint("m", i), To: "a@example.com", Subject: fmt.Sprint("s", i), Body: "b",
			CreatedAt: base.Add(time.Duration(i) * time.Second)}
		if err := s.PutMail(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	ms, err := s.ListMail(ctx, projA, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].ID != "m2" || ms[1].ID != "m1" || ms[0].To != "a@example.com" || !ms[0].CreatedAt.Equal(base.Add(2*time.Second)) {
		t.Fatalf("ListMail = %+v, want m2, m1", ms)
	}
	if ms, err := s.ListMail(ctx, projB, 10); err != nil || len(ms) != 0 {
		t.Fatalf("another project's outbox = %+v, %v", ms, err)
	}
}

func testAPIKeys(t *testing.T, s store.Store) {
	ctx := context.Background()
	k := store.APIKey{Project: projA, ID: "k1", Name: "ci", SecretHash: tokenHash("secret"), Scopes: []string{"db:read", "db:write"}, CreatedAt: base}
	if err := s.PutAPIKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	if err := s.PutAPIKey(ctx, k); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("PutAPIKey twice = %v, want ErrConflict", err)
	}
	got, err := s.GetAPIKey(ctx, projA, "k1")
	if err != nil || !reflect.DeepEqual(got, k) {
		t.Fatalf("GetAPIKey = %+v, %v; want %+v", got, err, k)
	}
	ks, err := s.ListAPIKeys(ctx, projA)
	if err != nil || len(ks) != 1 || ks[0].ID != "k1" {
		t.Fatalf("ListAPIKeys = %+v, %v", ks, err)
	}
	if err := s.DeleteAPIKey(ctx, projA, "k1"); err != nil {
		t.Fatal(err)
	}
	wantNotFound(t, "DeleteAPIKey twice", s.DeleteAPIKey(ctx, projA, "k1"))
	_, err = s.GetAPIKey(ctx, projA, "k1")
	wantNotFound(t, "GetAPIKey after delete", err)
}

func testSigningKeys(t *testing.T, s store.Store) {
	ctx := context.Background()
	k1 := store.SigningKey{ID: "k1", Sealed: []byte("sealed1"), Public: []byte("pub1"), CreatedAt: base, RetireAt: base.Add(time.Hour)}
	k2 := store.SigningKey{ID: "k2", Sealed: []byte("sealed2"), Public: []byte("pub2"), CreatedAt: base.Add(time.Minute), RetireAt: base.Add(3 * time.Hour)}
	for _, k := range []store.SigningKey{k2, k1} {
		if err := s.PutSigningKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutSigningKey(ctx, k1); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("PutSigningKey twice = %v, want ErrConflict", err)
	}
	ks, err := s.ListSigningKeys(ctx, base)
	if err != nil || !reflect.DeepEqual(ks, []store.SigningKey{k1, k2}) {
		t.Fatalf("ListSigningKeys = %+v, %v; want k1, k2", ks, err)
	}
	// Past k1's retirement it is gone, for good.
	if ks, err := s.ListSigningKeys(ctx, base.Add(2*time.Hour)); err != nil || len(ks) != 1 || ks[0].ID != "k2" {
		t.Fatalf("ListSigningKeys later = %+v, %v; want k2", ks, err)
	}
	if ks, err := s.ListSigningKeys(ctx, base); err != nil || len(ks) != 1 {
		t.Fatalf("a retired key came back: %+v, %v", ks, err)
	}
	// A master key rotation re-seals k2, once: a second pass from the old
	// value conflicts; a missing key is not found.
	if err := s.RewrapSigningKey(ctx, "k2", []byte("sealed2"), []byte("resealed2")); err != nil {
		t.Fatal(err)
	}
	if err := s.RewrapSigningKey(ctx, "k2", []byte("sealed2"), []byte("other")); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("RewrapSigningKey from a stale value = %v, want ErrConflict", err)
	}
	if err := s.RewrapSigningKey(ctx, "k1", []byte("sealed1"), []byte("x")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("RewrapSigningKey of a retired key = %v, want ErrNotFound", err)
	}
	if ks, err := s.ListSigningKeys(ctx, base); err != nil || len(ks) != 1 || string(ks[0].Sealed) != "resealed2" || string(ks[0].Public) != "pub2" {
		t.Fatalf("after the rewrap: %+v, %v", ks, err)
	}
}
