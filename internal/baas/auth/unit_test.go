package auth_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/baas/auth"
)

func TestCheckPassword(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, password, email, want string
	}{
		{"good", "correct horse battery staple", "a@example.com", ""},
		{"eight characters", "abcdefgh", "", ""},
		{"eight runes in more bytes", "ééééçççç", "", ""},
		{"seven characters", "abcdefg", "", "at least 8 characters"},
		{"empty", "", "", "at least 8 characters"},
		{"256 bytes", strings.Repeat("a", 256), "", ""},
		{"257 bytes", strings.Repeat("a", 257), "", "at most 256 bytes"},
		{"only spaces", "         ", "", "only spaces"},
		{"common", "password123", "", "most common"},
		{"common in capitals", "PASSWORD123", "", "most common"},
		{"the email", "Ada@Example.com", "ada@example.com", "email address"},
		{"not UTF-8", "abcdefgh\xff", "", "UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := auth.CheckPassword(tc.password, tc.email)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("CheckPassword = %v", err)
				}
				return
			}
			if !errors.Is(err, auth.ErrWeakPassword) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CheckPassword = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestThrottle(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_900_000_000, 0)
	th := auth.NewThrottle(1, 2, 0) // 2 at once, then 1 a second
	if ok, _ := th.Has("a", now); !ok {
		t.Fatal("a new key has no event")
	}
	for i := range 2 {
		if ok, _ := th.Allow("a", now); !ok {
			t.Fatalf("event %d refused", i)
		}
	}
	ok, wait := th.Allow("a", now)
	if ok || wait <= 0 || wait > time.Second {
		t.Fatalf("third event = %v, %v; want refused for up to a second", ok, wait)
	}
	if ok, wait := th.Has("a", now); ok || wait <= 0 || wait > time.Second {
		t.Fatalf("Has on an empty bucket = %v %v", ok, wait)
	}
	if ok, _ := th.Allow("b", now); !ok {
		t.Fatal("another key is limited")
	}
	// A refusal spends nothing: after a second, one event is there.
	later := now.Add(time.Second)
	if ok, _ := th.Has("a", later); !ok {
		t.Fatal("no event after the refill")
	}
	if ok, _ := th.Allow("a", later); !ok {
		t.Fatal("refill refused")
	}
	if ok, _ := th.Allow("a", later); ok {
		t.Fatal("two events after a one-second refill")
	}
	var none *auth.Throttle
	if ok, _ := none.Allow("a", now); !ok {
		t.Fatal("a nil throttle limits")
	}
	if ok, _ := auth.NewThrottle(0, 1, 0).Allow("a", now); !ok {
		t.Fatal("a zero rate limits")
	}
}

func TestPrincipal(t *testing.T) {
	t.Parallel()
	key := func(scopes ...string) auth.Principal { return auth.Principal{Kind: auth.Key, ID: "k", Scopes: scopes} }
	for _, tc := range []struct {
		name    string
		p       auth.Principal
		admin   bool
		has     []string
		hasNone []string
	}{
		{name: "anonymous", p: auth.Principal{Kind: auth.Anonymous}, hasNone: []string{"db:read", ""}},
		{name: "admin key", p: auth.Principal{Kind: auth.Admin}, admin: true},
		{name: "user", p: auth.Principal{Kind: auth.User, Roles: []string{"editor"}}, hasNone: []string{"db:read"}},
		{name: "admin user", p: auth.Principal{Kind: auth.User, Roles: []string{"editor", "admin"}}, admin: true},
		{name: "a user's admin scope is nothing", p: auth.Principal{Kind: auth.User, Scopes: []string{"admin"}}},
		{name: "a key's admin role is nothing", p: auth.Principal{Kind: auth.Key, Roles: []string{"admin"}}, hasNone: []string{"db:read"}},
		{name: "exact scope", p: key("db:read"), has: []string{"db:read"}, hasNone: []string{"db:write", "db:read:x", "db", "storage:read"}},
		{name: "wildcard", p: key("db:*"), has: []string{"db:read", "db:todos:write"}, hasNone: []string{"dbx:read", "storage:read", "db"}},
		{name: "nested wildcard", p: key("db:todos:*"), has: []string{"db:todos:read"}, hasNone: []string{"db:notes:read", "db:read"}},
		{name: "star", p: key("*"), has: []string{"db:read", "storage:write", "admin"}},
		{name: "admin scope", p: key("admin"), admin: true, has: []string{"db:read", "anything"}},
		{name: "no scopes", p: key(), hasNone: []string{"db:read"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.p.IsAdmin(); got != tc.admin {
				t.Errorf("IsAdmin = %v", got)
			}
			for _, s := range tc.has {
				if !tc.p.HasScope(s) {
					t.Errorf("HasScope(%q) = false", s)
				}
			}
			for _, s := range tc.hasNone {
				if tc.p.HasScope(s) {
					t.Errorf("HasScope(%q) = true", s)
				}
			}
		})
	}
}
