package auth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/baas/auth"
)

const goodPassword = "correct horse battery staple"

func TestSignup(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *auth.Config) { c.SignupsPerIP = auth.Rate{Burst: 100, PerMinute: 1} })
	tk := e.signup("Ada@Example.com", goodPassword)
	if tk.AccessToken == "" || tk.RefreshToken == "" || tk.TokenType != "Bearer" || tk.ExpiresIn != 15*60 {
		t.Errorf("tokens = %+v", tk)
	}
	if tk.User.Email != "ada@example.com" || tk.User.EmailVerified || tk.User.ID == "" || tk.User.Disabled {
		t.Errorf("user = %+v", tk.User)
	}
	var me auth.UserView
	e.must(200, "GET", "/v1/auth/me", nil, tk.AccessToken, &me)
	if me.ID != tk.User.ID {
		t.Errorf("me = %+v, want user %s", me, tk.User.ID)
	}

	long := strings.Repeat("x", auth.MaxPasswordBytes+1)
	e.secret("Sh0rt", long, "hunter2hunter2")
	cred := func(email, password string) map[string]string {
		return map[string]string{"email": email, "password": password}
	}
	e.run(t, []scenario{
		{name: "the answer has no password hash", method: "POST", path: "/v1/auth/signup",
			body: cred("grace@example.com", "hunter2hunter2"), status: 201,
			want:    []string{`"access_token"`, `"refresh_token"`, `"email":"grace@example.com"`, `"roles":[]`},
			notWant: []string{"argon2", "password", "hunter2hunter2"}},
		{name: "short password", method: "POST", path: "/v1/auth/signup", body: cred("b@example.com", "Sh0rt"),
			status: 400, want: []string{"bad_request", "password: use at least 8 characters"}},
		{name: "long password", method: "POST", path: "/v1/auth/signup", body: cred("b@example.com", long),
			status: 400, want: []string{"password: use at most 256 bytes"}},
		{name: "common password", method: "POST", path: "/v1/auth/signup", body: cred("b@example.com", "Password123"),
			status: 400, want: []string{"among the most common"}},
		{name: "password is the email", method: "POST", path: "/v1/auth/signup", body: cred("bob@example.com", "BOB@example.com"),
			status: 400, want: []string{"can't be the email address"}},
		{name: "only spaces", method: "POST", path: "/v1/auth/signup", body: cred("b@example.com", "          "),
			status: 400, want: []string{"only spaces"}},
		{name: "no email", method: "POST", path: "/v1/auth/signup", body: cred("", goodPassword),
			status: 400, want: []string{"email: give an address"}},
		{name: "not an email", method: "POST", path: "/v1/auth/signup", body: cred("not-an-email", goodPassword),
			status: 400, want: []string{"email:", "name@example.com"}},
		{name: "email without a domain dot", method: "POST", path: "/v1/auth/signup", body: cred("a@localhost", goodPassword),
			status: 400, want: []string{"email:"}},
		{name: "email with a display name", method: "POST", path: "/v1/auth/signup", body: cred("Ada <a@example.com>", goodPassword),
			status: 400, want: []string{"email:"}},
		{name: "email with a header injection", method: "POST", path: "/v1/auth/signup", body: cred("a@example.com\r\nBcc: x@example.com", goodPassword),
			status: 400, want: []string{"email:"}},
		{name: "too long an email", method: "POST", path: "/v1/auth/signup", body: cred(strings.Repeat("a", 250)+"@example.com", goodPassword),
			status: 400, want: []string{"at most 254 bytes"}},
		{name: "duplicate email in another case", method: "POST", path: "/v1/auth/signup", body: cred("ADA@example.COM", goodPassword),
			status: 409, want: []string{"email_taken"}},
		{name: "unknown field", method: "POST", path: "/v1/auth/signup",
			body:   `{"email":"c@example.com","password":"` + goodPassword + `","roles":["admin"]}`,
			status: 400, want: []string{"bad_request", `unknown field \"roles\"`}},
		{name: "not JSON", method: "POST", path: "/v1/auth/signup", body: `email=c@example.com`, status: 400},
		{name: "empty body", method: "POST", path: "/v1/auth/signup", body: ``, status: 400, want: []string{"send a JSON object"}},
		{name: "oversized body", method: "POST", path: "/v1/auth/signup",
			body:   `{"email":"c@example.com","password":"` + strings.Repeat("p", 20<<10) + `"}`,
			status: 413, want: []string{"body_too_large"}},
	})
	// A refused sign-up made no account.
	var users struct{ Users []auth.UserView }
	e.must(200, "GET", "/v1/users", nil, adminKey, &users)
	if len(users.Users) != 2 {
		t.Errorf("users = %+v, want ada and grace", users.Users)
	}
}

func TestLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tk := e.signup("ada@example.com", goodPassword)
	e.secret("wrong password!")
	wrong := e.do("POST", "/v1/auth/login", map[string]string{"email": "ada@example.com", "password": "wrong password!"}, "")
	unknown := e.do("POST", "/v1/auth/login", map[string]string{"email": "nobody@example.com", "password": "wrong password!"}, "")
	if wrong.status != 401 || unknown.status != 401 {
		t.Fatalf("wrong password %d, unknown email %d; want 401 both", wrong.status, unknown.status)
	}
	if wrong.body != unknown.body || !strings.Contains(wrong.body, "invalid_credentials") {
		t.Errorf("a wrong password (%s) and an unknown email (%s) must answer the same", wrong.body, unknown.body)
	}
	in := e.login("  ADA@example.com ", goodPassword)
	if in.User.ID != tk.User.ID || in.RefreshToken == tk.RefreshToken || in.AccessToken == "" {
		t.Errorf("login = %+v", in)
	}
	e.run(t, []scenario{
		{name: "unknown field", method: "POST", path: "/v1/auth/login", body: `{"email":"ada@example.com","password":"x","otp":1}`, status: 400},
		{name: "too long a password is a wrong one", method: "POST", path: "/v1/auth/login",
			body: map[string]string{"email": "ada@example.com", "password": strings.Repeat("p", 300)}, status: 401, want: []string{"invalid_credentials"}},
		{name: "a JSON number for a password", method: "POST", path: "/v1/auth/login", body: `{"email":"ada@example.com","password":12345678}`, status: 400},
	})
}

func TestLoginThrottledPerAccount(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *auth.Config) {
		c.LoginFailuresPerAccount = auth.Rate{Burst: 3, PerMinute: 1}
	})
	e.signup("ada@example.com", goodPassword)
	e.secret("bad password 1")
	bad := map[string]string{"email": "ada@example.com", "password": "bad password 1"}
	for i := range 3 {
		if r := e.do("POST", "/v1/auth/login", bad, ""); r.status != 401 {
			t.Fatalf("failure %d = %d %s, want 401", i, r.status, r.body)
		}
	}
	r := e.do("POST", "/v1/auth/login", bad, "")
	if r.status != 429 || r.header.Get("Retry-After") == "" || !strings.Contains(r.body, "failed logins for this account") {
		t.Fatalf("after the burst = %d %q %s, want 429 with Retry-After", r.status, r.header.Get("Retry-After"), r.body)
	}
	// The right password is refused too until the bucket refills: the
	// throttle is there against guessing it.
	r = e.do("POST", "/v1/auth/login", map[string]string{"email": "ADA@example.com", "password": goodPassword}, "")
	if r.status != 429 {
		t.Fatalf("right password while throttled = %d %s, want 429", r.status, r.body)
	}
	// Another account is not throttled.
	e.signup("bob@example.com", goodPassword)
	e.login("bob@example.com", goodPassword)
	e.clk.Advance(61 * time.Second)
	e.login("ada@example.com", goodPassword)
}

func TestLoginThrottledPerIP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *auth.Config) {
		c.LoginFailuresPerIP = auth.Rate{Burst: 2, PerMinute: 1}
	})
	e.signup("ada@example.com", goodPassword)
	e.secret("bad password 1")
	for i, who := range []string{"x@example.com", "y@example.com"} {
		if r := e.do("POST", "/v1/auth/login", map[string]string{"email": who, "password": "bad password 1"}, ""); r.status != 401 {
			t.Fatalf("failure %d = %d %s", i, r.status, r.body)
		}
	}
	r := e.do("POST", "/v1/auth/login", map[string]string{"email": "ada@example.com", "password": goodPassword}, "")
	if r.status != 429 || r.header.Get("Retry-After") == "" || !strings.Contains(r.body, "failed logins from this address") {
		t.Fatalf("after the IP's burst = %d %s, want 429", r.status, r.body)
	}
	// Another address still logs in.
	if _, err := e.svc.Login(context.Background(), "ada@example.com", goodPassword, "192.0.2.7"); err != nil {
		t.Fatalf("login from another address: %v", err)
	}
	e.clk.Advance(time.Minute)
	e.login("ada@example.com", goodPassword)
}

func TestSignupThrottledPerIP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *auth.Config) {
		c.SignupsPerIP = auth.Rate{Burst: 2, PerMinute: 1}
	})
	e.signup("a@example.com", goodPassword)
	e.signup("b@example.com", goodPassword)
	r := e.do("POST", "/v1/auth/signup", map[string]string{"email": "c@example.com", "password": goodPassword}, "")
	if r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Fatalf("third sign-up = %d %s, want 429 with Retry-After", r.status, r.body)
	}
	e.clk.Advance(time.Minute)
	e.signup("c@example.com", goodPassword)
}

func TestRefresh(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	first := e.signup("ada@example.com", goodPassword)
	refresh := func(tok string) resp {
		return e.do("POST", "/v1/auth/refresh", map[string]string{"refresh_token": tok}, "")
	}

	var second auth.Tokens
	e.must(200, "POST", "/v1/auth/refresh", map[string]string{"refresh_token": first.RefreshToken}, "", &second)
	e.secret(second.AccessToken, second.RefreshToken)
	if second.RefreshToken == first.RefreshToken || second.User.ID != first.User.ID {
		t.Fatalf("refresh = %+v", second)
	}
	e.must(200, "GET", "/v1/auth/me", nil, second.AccessToken, nil)
	var third auth.Tokens
	e.must(200, "POST", "/v1/auth/refresh", map[string]string{"refresh_token": second.RefreshToken}, "", &third)
	e.secret(third.AccessToken, third.RefreshToken)

	// The first token again: someone holds a copy; the whole family goes.
	if r := refresh(first.RefreshToken); r.status != 401 || !strings.Contains(r.body, "refresh_token_reused") {
		t.Fatalf("reuse = %d %s, want 401 refresh_token_reused", r.status, r.body)
	}
	if r := refresh(third.RefreshToken); r.status != 401 {
		t.Fatalf("the newest token of a reused family = %d %s, want 401", r.status, r.body)
	}

	// Another login is another family, untouched; logout ends it.
	other := e.login("ada@example.com", goodPassword)
	e.must(204, "POST", "/v1/auth/logout", map[string]string{"refresh_token": other.RefreshToken}, "", nil)
	if r := refresh(other.RefreshToken); r.status != 401 {
		t.Fatalf("refresh after logout = %d %s", r.status, r.body)
	}

	// An expired refresh token.
	late := e.login("ada@example.com", goodPassword)
	e.clk.Advance(30*24*time.Hour + time.Second)
	if r := refresh(late.RefreshToken); r.status != 401 || !strings.Contains(r.body, "invalid_refresh_token") {
		t.Fatalf("expired refresh token = %d %s, want 401 invalid_refresh_token", r.status, r.body)
	}

	e.run(t, []scenario{
		{name: "unknown token", method: "POST", path: "/v1/auth/refresh", body: map[string]string{"refresh_token": "nope"}, status: 401, want: []string{"invalid_refresh_token"}},
		{name: "empty token", method: "POST", path: "/v1/auth/refresh", body: `{}`, status: 401},
		{name: "long token", method: "POST", path: "/v1/auth/refresh", body: map[string]string{"refresh_token": strings.Repeat("a", 200)}, status: 401},
		{name: "logout of an unknown token", method: "POST", path: "/v1/auth/logout", body: map[string]string{"refresh_token": "nope"}, status: 401},
		{name: "an access token is not a refresh token", method: "POST", path: "/v1/auth/refresh",
			body: map[string]string{"refresh_token": late.AccessToken}, status: 401},
	})
}

func TestAccessTokenExpiresWithTTL(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *auth.Config) { c.AccessTTL = 5 * time.Minute })
	tk := e.signup("ada@example.com", goodPassword)
	if tk.ExpiresIn != 300 {
		t.Errorf("expires_in = %d, want 300", tk.ExpiresIn)
	}
	e.must(200, "GET", "/v1/auth/me", nil, tk.AccessToken, nil) // now cached
	e.clk.Advance(5*time.Minute + 10*time.Second)
	r := e.do("GET", "/v1/auth/me", nil, tk.AccessToken)
	if r.status != 401 || !strings.Contains(r.body, "invalid_token") || r.header.Get("Www-Authenticate") == "" {
		t.Fatalf("expired access token = %d %s, want 401 invalid_token with WWW-Authenticate", r.status, r.body)
	}
}

func decodeJSON(t testing.TB, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
}

// TestLoginThrottleHoldsUnderConcurrency: guesses sent at once must not
// all pass the check before any of them is counted as a failure.
func TestLoginThrottleHoldsUnderConcurrency(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *auth.Config) {
		c.LoginFailuresPerAccount = auth.Rate{Burst: 3, PerMinute: 1}
	})
	e.signup("ada@example.com", goodPassword)
	const n = 12
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for i := range n {
		pw := fmt.Sprintf("guess number %d", i)
		e.secret(pw)
		wg.Go(func() {
			codes <- e.do("POST", "/v1/auth/login", map[string]string{"email": "ada@example.com", "password": pw}, "").status
		})
	}
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	if count[401] > 3 || count[401]+count[429] != n {
		t.Fatalf("%d concurrent guesses against a burst of 3: %v; want at most 3 checked (401), the rest 429", n, count)
	}
	// A success gives its event back: the owner can log in many times.
	e.clk.Advance(time.Hour)
	for range 5 {
		e.login("ada@example.com", goodPassword)
	}
}
