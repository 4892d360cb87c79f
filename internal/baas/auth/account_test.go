package auth_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/baas/auth"
)

func TestVerifyEmail(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tk := e.signup("ada@example.com", goodPassword)
	tok := e.mailToken("ada@example.com", "Confirm")
	var u auth.UserView
	e.must(200, "POST", "/v1/auth/verify", map[string]string{"token": tok}, "", &u)
	if !u.EmailVerified || u.ID != tk.User.ID {
		t.Fatalf("verified user = %+v", u)
	}
	e.must(200, "GET", "/v1/auth/me", nil, tk.AccessToken, &u)
	if !u.EmailVerified {
		t.Errorf("me = %+v, want verified", u)
	}
	e.run(t, []scenario{
		{name: "second use", method: "POST", path: "/v1/auth/verify", body: map[string]string{"token": tok}, status: 400, want: []string{"invalid_token"}},
		{name: "unknown token", method: "POST", path: "/v1/auth/verify", body: map[string]string{"token": "nope"}, status: 400, want: []string{"invalid_token"}},
		{name: "no token", method: "POST", path: "/v1/auth/verify", body: `{}`, status: 400},
		{name: "a new mail for a verified address", method: "POST", path: "/v1/auth/verify/request", token: tk.AccessToken, status: 409, want: []string{"already_verified"}},
		{name: "a new mail needs a user", method: "POST", path: "/v1/auth/verify/request", token: adminKey, status: 401},
	})

	// An expired verification token.
	bob := e.signup("bob@example.com", goodPassword)
	e.must(202, "POST", "/v1/auth/verify/request", nil, bob.AccessToken, nil)
	late := e.mailToken("bob@example.com", "Confirm")
	e.clk.Advance(24*time.Hour + time.Second)
	if r := e.do("POST", "/v1/auth/verify", map[string]string{"token": late}, ""); r.status != 400 {
		t.Errorf("expired verification token = %d %s", r.status, r.body)
	}
}

func TestPasswordReset(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.signup("ada@example.com", goodPassword)
	b := e.login("ada@example.com", goodPassword)

	known := e.do("POST", "/v1/auth/reset/request", map[string]string{"email": "ADA@example.com"}, "")
	unknown := e.do("POST", "/v1/auth/reset/request", map[string]string{"email": "nobody@example.com"}, "")
	if known.status != 202 || unknown.status != 202 || known.body != unknown.body {
		t.Fatalf("reset request: known %d %s, unknown %d %s; want the same 202", known.status, known.body, unknown.status, unknown.body)
	}
	for _, m := range e.outbox() {
		if m.To == "nobody@example.com" {
			t.Errorf("a mail went to an address without an account: %+v", m)
		}
	}
	tok := e.mailToken("ada@example.com", "Reset")
	// A reset token is not a verification token.
	if r := e.do("POST", "/v1/auth/verify", map[string]string{"token": tok}, ""); r.status != 400 {
		t.Errorf("a reset token spent as a verification token = %d", r.status)
	}
	const newPassword = "a brand new passphrase"
	e.secret(newPassword)
	e.must(204, "POST", "/v1/auth/reset", map[string]string{"token": tok, "password": newPassword}, "", nil)

	if r := e.do("POST", "/v1/auth/login", map[string]string{"email": "ada@example.com", "password": goodPassword}, ""); r.status != 401 {
		t.Errorf("the old password after a reset = %d", r.status)
	}
	e.login("ada@example.com", newPassword)
	for i, rt := range []string{a.RefreshToken, b.RefreshToken} {
		if r := e.do("POST", "/v1/auth/refresh", map[string]string{"refresh_token": rt}, ""); r.status != 401 {
			t.Errorf("refresh token %d after a reset = %d %s, want 401", i, r.status, r.body)
		}
	}
	var me auth.UserView
	e.must(200, "GET", "/v1/users/"+a.User.ID, nil, adminKey, &me)
	if !me.EmailVerified {
		t.Errorf("a reset proves the address: %+v", me)
	}
	e.run(t, []scenario{
		{name: "the token again", method: "POST", path: "/v1/auth/reset", body: map[string]string{"token": tok, "password": "yet another passphrase"}, status: 400, want: []string{"invalid_token"}},
		{name: "a bad email", method: "POST", path: "/v1/auth/reset/request", body: map[string]string{"email": "nope"}, status: 400},
	})

	// A weak new password spends the token and says so. (The outbox is
	// newest first: the clock moves so that the new mail is.)
	e.clk.Advance(time.Second)
	e.must(202, "POST", "/v1/auth/reset/request", map[string]string{"email": "ada@example.com"}, "", nil)
	tok2 := e.mailToken("ada@example.com", "Reset")
	if tok2 == tok {
		t.Fatal("the same reset token twice")
	}
	r := e.do("POST", "/v1/auth/reset", map[string]string{"token": tok2, "password": "short"}, "")
	if r.status != 400 || !strings.Contains(r.body, "at least 8 characters") {
		t.Errorf("weak reset password = %d %s", r.status, r.body)
	}
	e.login("ada@example.com", newPassword)
}

func TestAdminEndpoints(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	user := e.signup("user@example.com", goodPassword)
	var admin auth.UserView
	e.must(201, "POST", "/v1/users", map[string]any{"email": "boss@example.com", "password": goodPassword, "roles": []string{"admin"}}, adminKey, &admin)
	if !admin.EmailVerified || !slices.Equal(admin.Roles, []string{"admin"}) {
		t.Fatalf("created admin = %+v", admin)
	}
	boss := e.login("boss@example.com", goodPassword)

	var adminAPIKey, dbKey auth.APIKeyView
	e.must(201, "POST", "/v1/auth/keys", map[string]any{"name": "ci", "scopes": []string{"admin"}}, adminKey, &adminAPIKey)
	e.must(201, "POST", "/v1/auth/keys", map[string]any{"name": "app server", "scopes": []string{"db:*", "storage:read"}}, boss.AccessToken, &dbKey)
	e.secret(adminAPIKey.Key, dbKey.Key)
	if !strings.HasPrefix(dbKey.Key, auth.APIKeyPrefix+dbKey.ID+"_") {
		t.Fatalf("key = %+v", dbKey)
	}
	// hlk_<id>_<secret>: the id is hex, the secret base64url (which may
	// hold '_' itself).
	secretOf := func(k string) string {
		_, secret, _ := strings.Cut(strings.TrimPrefix(k, auth.APIKeyPrefix), "_")
		return secret
	}

	var sc []scenario
	for _, ep := range []struct{ method, path string }{{"GET", "/v1/users"}, {"GET", "/v1/auth/keys"}, {"GET", "/v1/auth/outbox"}, {"GET", "/v1/users/" + user.User.ID}} {
		for _, who := range []struct {
			name, token string
			status      int
		}{
			{"admin key", adminKey, 200},
			{"admin user", boss.AccessToken, 200},
			{"API key with the admin scope", adminAPIKey.Key, 200},
			{"API key without it", dbKey.Key, 403},
			{"ordinary user", user.AccessToken, 403},
			{"no credential", "", 401},
			{"a wrong API key", auth.APIKeyPrefix + dbKey.ID + "_" + strings.Repeat("A", 43), 401},
		} {
			sc = append(sc, scenario{name: ep.method + " " + ep.path + " as " + who.name, method: ep.method, path: ep.path, token: who.token,
				status: who.status, notWant: []string{secretOf(adminAPIKey.Key), secretOf(dbKey.Key), "argon2"}})
		}
	}
	sc = append(sc,
		scenario{name: "keys are listed without secrets", method: "GET", path: "/v1/auth/keys", token: adminKey, status: 200,
			want: []string{adminAPIKey.ID, dbKey.ID, `"db:*"`}, notWant: []string{`"key"`, secretOf(dbKey.Key)}},
		scenario{name: "users are listed without hashes", method: "GET", path: "/v1/users?limit=10", token: adminKey, status: 200,
			want: []string{"boss@example.com", "user@example.com"}, notWant: []string{"argon2", "password"}},
		scenario{name: "bad limit", method: "GET", path: "/v1/users?limit=0", token: adminKey, status: 400},
		scenario{name: "bad scope", method: "POST", path: "/v1/auth/keys", body: map[string]any{"name": "x", "scopes": []string{"DB READ"}}, token: adminKey, status: 400},
		scenario{name: "no scopes", method: "POST", path: "/v1/auth/keys", body: map[string]any{"name": "x"}, token: adminKey, status: 400},
		scenario{name: "bad key name", method: "POST", path: "/v1/auth/keys", body: map[string]any{"name": "", "scopes": []string{"db:read"}}, token: adminKey, status: 400},
		scenario{name: "an ordinary user can't make keys", method: "POST", path: "/v1/auth/keys", body: map[string]any{"name": "x", "scopes": []string{"admin"}}, token: user.AccessToken, status: 403},
		scenario{name: "an ordinary user can't grant roles", method: "PATCH", path: "/v1/users/" + user.User.ID, body: map[string]any{"roles": []string{"admin"}}, token: user.AccessToken, status: 403},
		scenario{name: "bad role", method: "PATCH", path: "/v1/users/" + user.User.ID, body: map[string]any{"roles": []string{"Admin!"}}, token: adminKey, status: 400},
		scenario{name: "unknown user", method: "PATCH", path: "/v1/users/nope", body: map[string]any{"roles": []string{}}, token: adminKey, status: 404, want: []string{"user_not_found"}},
		scenario{name: "set roles", method: "PATCH", path: "/v1/users/" + user.User.ID, body: map[string]any{"roles": []string{"editor"}}, token: adminKey, status: 200, want: []string{`"roles":["editor"]`}},
		scenario{name: "delete an unknown key", method: "DELETE", path: "/v1/auth/keys/0000000000000000", token: adminKey, status: 404},
	)
	e.run(t, sc)

	// The API key authenticates as itself, with its scopes.
	p, err := e.svc.Authenticate(context.Background(), dbKey.Key)
	if err != nil || p.Kind != auth.Key || p.ID != dbKey.ID || !p.HasScope("db:todos:write") || p.HasScope("storage:write") || p.IsAdmin() {
		t.Fatalf("Authenticate(key) = %+v, %v", p, err)
	}
	e.must(204, "DELETE", "/v1/auth/keys/"+dbKey.ID, nil, adminKey, nil)
	if _, err := e.svc.Authenticate(context.Background(), dbKey.Key); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("a deleted key authenticates: %v", err)
	}
	if r := e.do("GET", "/v1/auth/me", nil, dbKey.Key); r.status != 401 {
		t.Errorf("a deleted key = %d", r.status)
	}
}

func TestDisableUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tk := e.signup("ada@example.com", goodPassword)
	e.must(200, "GET", "/v1/auth/me", nil, tk.AccessToken, nil) // cached now
	var u auth.UserView
	e.must(200, "PATCH", "/v1/users/"+tk.User.ID, map[string]any{"disabled": true}, adminKey, &u)
	if !u.Disabled {
		t.Fatalf("user = %+v", u)
	}
	if r := e.do("GET", "/v1/auth/me", nil, tk.AccessToken); r.status != 401 {
		t.Errorf("a disabled user's access token = %d %s, want 401", r.status, r.body)
	}
	if r := e.do("POST", "/v1/auth/refresh", map[string]string{"refresh_token": tk.RefreshToken}, ""); r.status != 401 && r.status != 403 {
		t.Errorf("a disabled user's refresh token = %d %s", r.status, r.body)
	}
	r := e.do("POST", "/v1/auth/login", map[string]string{"email": "ada@example.com", "password": goodPassword}, "")
	if r.status != 403 || !strings.Contains(r.body, "account_disabled") {
		t.Errorf("login of a disabled account = %d %s, want 403", r.status, r.body)
	}
	// A wrong password tells nothing of the account's state.
	e.secret("wrong password!")
	if r := e.do("POST", "/v1/auth/login", map[string]string{"email": "ada@example.com", "password": "wrong password!"}, ""); r.status != 401 {
		t.Errorf("wrong password of a disabled account = %d", r.status)
	}
	// No reset mail for a disabled account, but the same answer.
	e.must(202, "POST", "/v1/auth/reset/request", map[string]string{"email": "ada@example.com"}, "", nil)
	for _, m := range e.outbox() {
		if strings.Contains(m.Subject, "Reset") {
			t.Errorf("a reset mail went to a disabled account")
		}
	}
	e.must(200, "PATCH", "/v1/users/"+tk.User.ID, map[string]any{"disabled": false}, adminKey, &u)
	again := e.login("ada@example.com", goodPassword)
	e.must(200, "GET", "/v1/auth/me", nil, again.AccessToken, nil)
}

func TestPrincipalFromContext(t *testing.T) {
	t.Parallel()
	if p := auth.FromContext(context.Background()); p.Kind != auth.Anonymous {
		t.Errorf("FromContext(empty) = %+v", p)
	}
	want := auth.Principal{Kind: auth.User, ID: "u1", Roles: []string{"x"}}
	if p := auth.FromContext(auth.WithPrincipal(context.Background(), want)); p.ID != "u1" || p.Kind != auth.User {
		t.Errorf("FromContext = %+v", p)
	}
}

// TestVerificationMailsThrottled: an unverified address may be a
// stranger's; signing up with it must not let anyone flood it.
func TestVerificationMailsThrottled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *auth.Config) { c.SignupsPerIP = auth.Rate{Burst: 3, PerMinute: 1} })
	tk := e.signup("victim@example.com", goodPassword)
	for i := range 3 {
		if r := e.do("POST", "/v1/auth/verify/request", nil, tk.AccessToken); r.status != 202 {
			t.Fatalf("request %d = %d %s", i, r.status, r.body)
		}
	}
	r := e.do("POST", "/v1/auth/verify/request", nil, tk.AccessToken)
	if r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Fatalf("fourth verification mail in a row = %d %s, want 429", r.status, r.body)
	}
	if n := len(e.outbox()); n != 4 {
		t.Errorf("outbox has %d mails, want the sign-up's and 3 more", n)
	}
}
