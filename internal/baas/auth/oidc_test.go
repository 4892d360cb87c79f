package auth_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hostless/hostless/internal/baas/auth"
)

const (
	idpClientID     = "hostless-test-client"
	idpClientSecret = "idp-client-secret-0123456789abcdef"
	appURL          = "https://app.example.com/auth/done"
)

// idpUser is who the fake provider signs in next, and how it lies.
type idpUser struct {
	sub      string
	email    string
	verified any           // the email_verified claim; nil leaves it out
	aud      string        // the ID token's audience; "" is the client ID
	nonce    string        // the ID token's nonce; "" is the one asked for
	life     time.Duration // the ID token's lifetime; 0 is 5 minutes
	deny     string        // an error /authorize answers with instead of a code
}

type grant struct {
	challenge, nonce, redirect string
	user                       idpUser
}

// fakeIdP is a small OpenID Connect provider: discovery, a JWKS with an
// RS256 key, an /authorize that redirects back at once with a code, and a
// /token that checks the client's secret and the PKCE verifier.
type fakeIdP struct {
	t   testing.TB
	srv *httptest.Server
	key *rsa.PrivateKey
	now func() time.Time

	mu     sync.Mutex
	next   idpUser
	codes  map[string]grant
	tokens int // codes exchanged
}

func newIdP(t testing.TB) *fakeIdP {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &fakeIdP{t: t, key: key, now: time.Now, codes: make(map[string]grant)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET /jwks", p.jwks)
	mux.HandleFunc("GET /authorize", p.authorize)
	mux.HandleFunc("POST /token", p.token)
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *fakeIdP) signInAs(u idpUser) {
	p.mu.Lock()
	p.next = u
	p.mu.Unlock()
}

func (p *fakeIdP) discovery(w http.ResponseWriter, r *http.Request) {
	u := p.srv.URL
	json.NewEncoder(w).Encode(map[string]any{
		"issuer": u, "authorization_endpoint": u + "/authorize", "token_endpoint": u + "/token", "jwks_uri": u + "/jwks",
		"response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"}, "code_challenge_methods_supported": []string{"S256"},
	})
}

func (p *fakeIdP) jwks(w http.ResponseWriter, r *http.Request) {
	b64 := base64.RawURLEncoding.EncodeToString
	json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "alg": "RS256", "use": "sig", "kid": "k1",
		"n": b64(p.key.N.Bytes()), "e": b64(big.NewInt(int64(p.key.E)).Bytes()),
	}}})
}

func (p *fakeIdP) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect := q.Get("redirect_uri")
	if q.Get("client_id") != idpClientID || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" ||
		q.Get("code_challenge") == "" || q.Get("nonce") == "" || q.Get("state") == "" || !strings.Contains(q.Get("scope"), "openid") {
		http.Error(w, "bad authorization request: "+r.URL.RawQuery, http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	u := p.next
	code := fmt.Sprintf("code-%d-%d", len(p.codes), time.Now().UnixNano())
	p.codes[code] = grant{challenge: q.Get("code_challenge"), nonce: q.Get("nonce"), redirect: redirect, user: u}
	p.mu.Unlock()
	back := url.Values{"state": {q.Get("state")}}
	if u.deny != "" {
		back.Set("error", u.deny)
		back.Set("error_description", "the user said no")
	} else {
		back.Set("code", code)
	}
	http.Redirect(w, r, redirect+"?"+back.Encode(), http.StatusFound)
}

func (p *fakeIdP) token(w http.ResponseWriter, r *http.Request) {
	fail := func(code string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"error": code})
	}
	if err := r.ParseForm(); err != nil {
		fail("invalid_request")
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != idpClientID || secret != idpClientSecret {
		fail("invalid_client")
		return
	}
	p.mu.Lock()
	g, found := p.codes[r.PostForm.Get("code")]
	delete(p.codes, r.PostForm.Get("code"))
	p.tokens++
	p.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if !found || r.PostForm.Get("grant_type") != "authorization_code" || r.PostForm.Get("redirect_uri") != g.redirect ||
		base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
		fail("invalid_grant")
		return
	}
	u := g.user
	aud, nonce, life := idpClientID, g.nonce, 5*time.Minute
	if u.aud != "" {
		aud = u.aud
	}
	if u.nonce != "" {
		nonce = u.nonce
	}
	if u.life != 0 {
		life = u.life
	}
	now := p.now()
	claims := jwt.MapClaims{"iss": p.srv.URL, "sub": u.sub, "aud": aud, "nonce": nonce, "email": u.email,
		"iat": now.Add(-time.Minute).Unix(), "exp": now.Add(life).Unix()}
	if u.verified != nil {
		claims["email_verified"] = u.verified
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = "k1"
	idToken, err := tok.SignedString(p.key)
	if err != nil {
		p.t.Error(err)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"access_token": "idp-access-token", "token_type": "Bearer",
		"expires_in": 3600, "id_token": idToken})
}

// oidcEnv is an auth service with two providers, "idp" and "other", both
// at the fake provider.
type oidcEnv struct {
	*env
	idp    *fakeIdP
	client *http.Client // follows no redirects
}

func newOIDCEnv(t *testing.T, opts ...func(*auth.Config)) *oidcEnv {
	idp := newIdP(t)
	e := newEnv(t, append([]func(*auth.Config){func(c *auth.Config) {
		for _, name := range []string{"idp", "other"} {
			c.Providers = append(c.Providers, auth.Provider{Name: name, Issuer: idp.srv.URL, ClientID: idpClientID,
				ClientSecret: idpClientSecret})
		}
		c.AllowedRedirects = []string{"https://app.example.com/auth/", "http://localhost:3000"}
	}}, opts...)...)
	idp.now = e.clk.Now
	e.secret(idpClientSecret)
	return &oidcEnv{env: e, idp: idp, client: &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}}
}

// get sends a GET that follows no redirect; an error answer must carry
// no known secret.
func (o *oidcEnv) get(t testing.TB, u string) resp {
	t.Helper()
	res, err := o.client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	r := resp{status: res.StatusCode, header: res.Header, body: string(b)}
	for _, s := range o.secrets() {
		if strings.Contains(r.body, s) || (r.status >= 400 && strings.Contains(r.header.Get("Location"), s)) {
			t.Errorf("GET %s: a secret (%.6s...) appears in the answer %d %s", u, s, r.status, r.body)
		}
	}
	if strings.Contains(res.Header.Get("Location"), idpClientSecret) {
		t.Errorf("GET %s: the client secret is in the redirect", u)
	}
	return r
}

// callbackURL starts a sign-in at provider for app and follows the
// provider's redirect: it returns the platform's callback URL, with the
// code and state, not yet visited.
func (o *oidcEnv) callbackURL(t testing.TB, provider, app string) string {
	t.Helper()
	r := o.get(t, o.srv.URL+"/v1/auth/oidc/"+provider+"/start?redirect_uri="+url.QueryEscape(app))
	if r.status != http.StatusFound {
		t.Fatalf("start = %d %s, want 302", r.status, r.body)
	}
	to := r.header.Get("Location")
	if !strings.HasPrefix(to, o.idp.srv.URL+"/authorize?") {
		t.Fatalf("start redirects to %s, want the provider", to)
	}
	r = o.get(t, to)
	if r.status != http.StatusFound {
		t.Fatalf("authorize = %d %s", r.status, r.body)
	}
	return r.header.Get("Location")
}

// signIn signs in through provider as u, and returns the callback's answer.
func (o *oidcEnv) signIn(t testing.TB, u idpUser) resp {
	t.Helper()
	o.idp.signInAs(u)
	return o.get(t, o.callbackURL(t, "idp", appURL))
}

// tokens signs in and returns the tokens from the app URL's fragment.
func (o *oidcEnv) tokens(t testing.TB, u idpUser) url.Values {
	t.Helper()
	r := o.signIn(t, u)
	if r.status != http.StatusFound {
		t.Fatalf("callback = %d %s, want 302", r.status, r.body)
	}
	app, frag, ok := strings.Cut(r.header.Get("Location"), "#")
	if !ok || app != appURL {
		t.Fatalf("callback redirects to %s, want %s#...", r.header.Get("Location"), appURL)
	}
	v, err := url.ParseQuery(frag)
	if err != nil {
		t.Fatal(err)
	}
	o.secret(v.Get("access_token"), v.Get("refresh_token"))
	if v.Get("access_token") == "" || v.Get("refresh_token") == "" || v.Get("token_type") != "Bearer" || v.Get("expires_in") != "900" {
		t.Fatalf("fragment = %v", v)
	}
	if r.header.Get("Cache-Control") != "no-store" || r.header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("callback headers = %v", r.header)
	}
	return v
}

func (o *oidcEnv) me(t testing.TB, access string) auth.UserView {
	t.Helper()
	var me auth.UserView
	o.must(200, "GET", "/v1/auth/me", nil, access, &me)
	return me
}

func ada() idpUser { return idpUser{sub: "sub-ada", email: "Ada@Example.com", verified: true} }

func TestOIDCSignIn(t *testing.T) {
	t.Parallel()
	var (
		mu     sync.Mutex
		events []string
	)
	o := newOIDCEnv(t, func(c *auth.Config) {
		c.Emit = func(name string, data []byte) {
			mu.Lock()
			events = append(events, name+" "+string(data))
			mu.Unlock()
		}
	})
	// A new user is created, verified and signed in.
	v := o.tokens(t, ada())
	me := o.me(t, v.Get("access_token"))
	if me.Email != "ada@example.com" || !me.EmailVerified || me.Disabled {
		t.Errorf("me = %+v", me)
	}
	mu.Lock()
	if len(events) != 2 || !strings.HasPrefix(events[0], "auth.user.created ") || !strings.Contains(events[0], me.ID) ||
		!strings.HasPrefix(events[1], "auth.identity.linked ") || !strings.Contains(events[1], `"provider":"idp"`) {
		t.Errorf("events = %q, want auth.user.created and auth.identity.linked", events)
	}
	mu.Unlock()
	// The refresh token works as a login's.
	var tk auth.Tokens
	o.must(200, "POST", "/v1/auth/refresh", map[string]string{"refresh_token": v.Get("refresh_token")}, "", &tk)
	o.secret(tk.AccessToken, tk.RefreshToken)
	// The same subject is the same user, even with another email.
	again := ada()
	again.email = "ada.lovelace@example.com"
	if me2 := o.me(t, o.tokens(t, again).Get("access_token")); me2.ID != me.ID || me2.Email != "ada@example.com" {
		t.Errorf("second sign-in = %+v, want user %s", me2, me.ID)
	}
	// A provider that sends email_verified as a string.
	if me3 := o.me(t, o.tokens(t, idpUser{sub: "sub-bob", email: "bob@example.com", verified: "true"}).Get("access_token")); me3.ID == me.ID {
		t.Errorf("bob signed in as ada")
	}
	// The user has no password: a password login fails.
	o.secret("anything-at-all")
	o.must(401, "POST", "/v1/auth/login", map[string]string{"email": "ada@example.com", "password": "anything-at-all"}, "", nil)

	var ps struct {
		Providers []struct {
			Name     string `json:"name"`
			StartURL string `json:"start_url"`
		} `json:"providers"`
	}
	r := o.must(200, "GET", "/v1/auth/providers", nil, "", &ps)
	if len(ps.Providers) != 2 || ps.Providers[0].Name != "idp" || ps.Providers[1].StartURL != "/v1/auth/oidc/other/start" {
		t.Errorf("providers = %s", r.body)
	}
	if strings.Contains(r.body, idpClientID) || strings.Contains(r.body, o.idp.srv.URL) {
		t.Errorf("providers show more than names: %s", r.body)
	}
}

func TestOIDCLinksByVerifiedEmail(t *testing.T) {
	t.Parallel()
	o := newOIDCEnv(t)
	// An admin made grace's account: her email counts as verified.
	var grace auth.UserView
	o.secret(goodPassword)
	o.must(201, "POST", "/v1/users", map[string]any{"email": "grace@example.com", "password": goodPassword}, adminKey, &grace)
	me := o.me(t, o.tokens(t, idpUser{sub: "g", email: "grace@example.com", verified: true}).Get("access_token"))
	if me.ID != grace.ID {
		t.Fatalf("signed in as %+v, want grace's account %s", me, grace.ID)
	}
	o.login("grace@example.com", goodPassword) // her password still works

	// Mallory signed up with ada's address, which she can't verify: ada's
	// sign-in through the provider takes the account over, its password and
	// Mallory's sessions go.
	mallory := o.signup("ada@example.com", goodPassword)
	me = o.me(t, o.tokens(t, ada()).Get("access_token"))
	if me.ID != mallory.User.ID || !me.EmailVerified {
		t.Fatalf("ada = %+v, want the account %s, verified", me, mallory.User.ID)
	}
	o.must(401, "POST", "/v1/auth/login", map[string]string{"email": "ada@example.com", "password": goodPassword}, "", nil)
	o.must(401, "POST", "/v1/auth/refresh", map[string]string{"refresh_token": mallory.RefreshToken}, "", nil)
	o.must(401, "GET", "/v1/auth/me", nil, mallory.AccessToken, nil)

	// An unverified email at the provider neither links nor creates.
	for _, verified := range []any{false, "false", nil} {
		r := o.signIn(t, idpUser{sub: "mallory", email: "grace@example.com", verified: verified})
		if r.status != 403 || !strings.Contains(r.body, "oidc_email_unverified") || !strings.Contains(r.body, "has not verified grace@example.com") {
			t.Errorf("email_verified %v: %d %s, want 403 oidc_email_unverified", verified, r.status, r.body)
		}
	}
	r := o.signIn(t, idpUser{sub: "nomail", verified: true})
	if r.status != 403 || !strings.Contains(r.body, "oidc_email_missing") {
		t.Errorf("no email: %d %s", r.status, r.body)
	}
	var users struct{ Users []auth.UserView }
	o.must(200, "GET", "/v1/users", nil, adminKey, &users)
	if len(users.Users) != 2 {
		t.Errorf("users = %+v, want ada and grace", users.Users)
	}
}

func TestOIDCDisabled(t *testing.T) {
	t.Parallel()
	o := newOIDCEnv(t)
	me := o.me(t, o.tokens(t, ada()).Get("access_token"))
	o.must(200, "PATCH", "/v1/users/"+me.ID, map[string]any{"disabled": true}, adminKey, nil)
	r := o.signIn(t, ada())
	if r.status != 403 || !strings.Contains(r.body, "account_disabled") {
		t.Errorf("disabled: %d %s, want 403 account_disabled", r.status, r.body)
	}
	// A disabled account with that email is not linked either.
	var u auth.UserView
	o.must(201, "POST", "/v1/users", map[string]any{"email": "off@example.com"}, adminKey, &u)
	o.must(200, "PATCH", "/v1/users/"+u.ID, map[string]any{"disabled": true}, adminKey, nil)
	if r := o.signIn(t, idpUser{sub: "off", email: "off@example.com", verified: true}); r.status != 403 {
		t.Errorf("disabled by email: %d %s", r.status, r.body)
	}
	o.must(200, "PATCH", "/v1/users/"+u.ID, map[string]any{"disabled": false}, adminKey, nil)
	if me := o.me(t, o.tokens(t, idpUser{sub: "off", email: "off@example.com", verified: true}).Get("access_token")); me.ID != u.ID {
		t.Errorf("enabled again: signed in as %s, want %s", me.ID, u.ID)
	}
}

func TestOIDCRefusals(t *testing.T) {
	t.Parallel()
	o := newOIDCEnv(t)
	start := func(provider, app string) string {
		return o.srv.URL + "/v1/auth/oidc/" + provider + "/start?redirect_uri=" + url.QueryEscape(app)
	}
	// tamper flips one character of the state in a callback URL.
	tamper := func(cb string) string {
		u, _ := url.Parse(cb)
		q := u.Query()
		s := []byte(q.Get("state"))
		s[len(s)/2] ^= 'A' ^ 'B'
		q.Set("state", string(s))
		u.RawQuery = q.Encode()
		return u.String()
	}
	tests := []struct {
		name   string
		user   idpUser
		url    func() string // the URL to GET, after the provider's step
		status int
		want   []string
	}{
		{name: "unknown provider", url: func() string { return start("nope", appURL) },
			status: 404, want: []string{"oidc_provider_not_found", `no identity provider named \"nope\"`}},
		{name: "unknown provider's callback", url: func() string { return o.srv.URL + "/v1/auth/oidc/nope/callback?code=x&state=y" },
			status: 404, want: []string{"oidc_provider_not_found"}},
		{name: "no redirect_uri", url: func() string { return o.srv.URL + "/v1/auth/oidc/idp/start" },
			status: 400, want: []string{"redirect_uri_not_allowed"}},
		{name: "another host", url: func() string { return start("idp", "https://evil.example/auth/done") },
			status: 400, want: []string{"redirect_uri_not_allowed"}},
		{name: "a host that extends the allowed one", url: func() string { return start("idp", "https://app.example.com.evil.example/auth/") },
			status: 400, want: []string{"redirect_uri_not_allowed"}},
		{name: "a path beside the prefix", url: func() string { return start("idp", "https://app.example.com/authx") },
			status: 400, want: []string{"redirect_uri_not_allowed"}},
		{name: "dot segments", url: func() string { return start("idp", "https://app.example.com/auth/../admin") },
			status: 400, want: []string{"redirect_uri_not_allowed"}},
		{name: "encoded dot segments", url: func() string { return start("idp", "https://app.example.com/auth/%2e%2e/admin") },
			status: 400, want: []string{"redirect_uri_not_allowed"}},
		{name: "http for an https prefix", url: func() string { return start("idp", "http://app.example.com/auth/done") },
			status: 400, want: []string{"redirect_uri_not_allowed"}},
		{name: "userinfo", url: func() string { return start("idp", "https://evil@app.example.com/auth/") },
			status: 400, want: []string{"redirect_uri_not_allowed"}},
		{name: "a fragment", url: func() string { return start("idp", appURL+"#x") },
			status: 400, want: []string{"redirect_uri_not_allowed"}},
		{name: "a port beside the allowed one", url: func() string { return start("idp", "http://localhost:30001/") },
			status: 400, want: []string{"redirect_uri_not_allowed"}},
		{name: "no state", url: func() string { return o.srv.URL + "/v1/auth/oidc/idp/callback?code=x" },
			status: 400, want: []string{"oidc_state_invalid"}},
		{name: "tampered state", user: ada(), url: func() string { return tamper(o.callbackURL(t, "idp", appURL)) },
			status: 400, want: []string{"oidc_state_invalid", "start the sign-in again"}},
		{name: "another provider's state", user: ada(), url: func() string {
			return strings.Replace(o.callbackURL(t, "idp", appURL), "/oidc/idp/", "/oidc/other/", 1)
		}, status: 400, want: []string{"oidc_state_invalid"}},
		{name: "reused state", user: ada(), url: func() string {
			cb := o.callbackURL(t, "idp", appURL)
			if r := o.get(t, cb); r.status != 302 {
				t.Fatalf("first use = %d %s", r.status, r.body)
			}
			return cb
		}, status: 400, want: []string{"oidc_state_used"}},
		{name: "expired state", user: ada(), url: func() string {
			cb := o.callbackURL(t, "idp", appURL)
			o.clk.Advance(10*time.Minute + time.Second)
			return cb
		}, status: 400, want: []string{"oidc_state_expired", "over 10 minutes"}},
		{name: "wrong code", user: ada(), url: func() string {
			return strings.Replace(o.callbackURL(t, "idp", appURL), "code=code-", "code=forged-", 1)
		}, status: 400, want: []string{"oidc_exchange_failed"}},
		{name: "wrong nonce", user: idpUser{sub: "x", email: "x@example.com", verified: true, nonce: "another-nonce"},
			status: 401, want: []string{"oidc_id_token_invalid", "nonce"}},
		{name: "wrong audience", user: idpUser{sub: "x", email: "x@example.com", verified: true, aud: "another-client"},
			status: 401, want: []string{"oidc_id_token_invalid", "audience"}},
		{name: "expired ID token", user: idpUser{sub: "x", email: "x@example.com", verified: true, life: -time.Second},
			status: 401, want: []string{"oidc_id_token_invalid", "expired"}},
		{name: "unverified email", user: idpUser{sub: "x", email: "x@example.com", verified: false},
			status: 403, want: []string{"oidc_email_unverified"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o.idp.signInAs(tt.user)
			var u string
			if tt.url != nil {
				u = tt.url()
			} else {
				u = o.callbackURL(t, "idp", appURL)
			}
			r := o.get(t, u)
			if r.status != tt.status {
				t.Errorf("status = %d %s, want %d", r.status, r.body, tt.status)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.body, w) {
					t.Errorf("body lacks %q: %s", w, r.body)
				}
			}
			if loc := r.header.Get("Location"); loc != "" {
				t.Errorf("a refusal redirects to %s", loc)
			}
		})
	}
	// None of the refusals made an account: only the reused state's
	// first use did.
	var users struct{ Users []auth.UserView }
	o.must(200, "GET", "/v1/users", nil, adminKey, &users)
	if len(users.Users) != 1 || users.Users[0].Email != "ada@example.com" {
		t.Errorf("users = %+v, want ada alone", users.Users)
	}
}

func TestOIDCProviderError(t *testing.T) {
	t.Parallel()
	o := newOIDCEnv(t)
	r := o.signIn(t, idpUser{deny: "access_denied"})
	loc := r.header.Get("Location")
	if r.status != 302 || loc != appURL+"#error=access_denied&error_description=the+user+said+no" {
		t.Errorf("denied: %d %s, Location %s", r.status, r.body, loc)
	}
	// Without a valid state, there is nowhere safe to send the browser.
	r = o.get(t, o.srv.URL+"/v1/auth/oidc/idp/callback?error=access_denied&state=forged")
	if r.status != 400 || r.header.Get("Location") != "" || !strings.Contains(r.body, "oidc_state_invalid") {
		t.Errorf("denied without a state: %d %s", r.status, r.body)
	}
	// The allowed redirect keeps its query; localhost apps with any path.
	o.idp.signInAs(ada())
	cb := o.callbackURL(t, "idp", "http://localhost:3000/cb?next=%2Fhome")
	r = o.get(t, cb)
	if loc := r.header.Get("Location"); r.status != 302 || !strings.HasPrefix(loc, "http://localhost:3000/cb?next=%2Fhome#access_token=") {
		t.Errorf("localhost app: %d, Location %.60s", r.status, loc)
	}
	if v, err := url.ParseQuery(strings.SplitN(r.header.Get("Location"), "#", 2)[1]); err == nil {
		o.secret(v.Get("access_token"), v.Get("refresh_token"))
	}
}

func TestOIDCSecretHidden(t *testing.T) {
	t.Parallel()
	p := auth.Provider{Name: "corp", Issuer: "https://sso.example.com", ClientID: "cid", ClientSecret: idpClientSecret}
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	log.Info("provider", "p", p, "secret", p.ClientSecret)
	j, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{
		"%v": fmt.Sprintf("%v", p), "%+v": fmt.Sprintf("%+v", p), "%#v": fmt.Sprintf("%#v", p), "%s": fmt.Sprintf("%s", p.ClientSecret),
		"slog": logs.String(), "json": string(j), "list": fmt.Sprint([]auth.Provider{p}),
	} {
		if strings.Contains(s, idpClientSecret) {
			t.Errorf("%s shows the secret: %s", name, s)
		}
	}
	if string(p.ClientSecret) != idpClientSecret {
		t.Error("string(secret) is not the secret")
	}
	var back auth.Provider
	if err := json.Unmarshal([]byte(`{"client_secret":"s3cret"}`), &back); err != nil || string(back.ClientSecret) != "s3cret" {
		t.Errorf("unmarshal = %q, %v", back.ClientSecret, err)
	}
}

func TestOIDCConfig(t *testing.T) {
	t.Parallel()
	good := auth.Provider{Name: "corp", Issuer: "https://sso.example.com", ClientID: "cid", ClientSecret: "s"}
	with := func(f func(*auth.Provider)) []auth.Provider {
		p := good
		f(&p)
		return []auth.Provider{p}
	}
	apps := []string{"https://app.example.com/"}
	tests := []struct {
		name      string
		providers []auth.Provider
		allowed   []string
		want      string // "" is valid
	}{
		{name: "good", providers: []auth.Provider{good}, allowed: apps},
		{name: "none", providers: nil, allowed: nil},
		{name: "loopback http issuer", providers: with(func(p *auth.Provider) { p.Issuer = "http://127.0.0.1:8080" }), allowed: apps},
		{name: "name not a label", providers: with(func(p *auth.Provider) { p.Name = "Corp SSO" }), allowed: apps, want: "name:"},
		{name: "empty name", providers: with(func(p *auth.Provider) { p.Name = "" }), allowed: apps, want: "name:"},
		{name: "http issuer", providers: with(func(p *auth.Provider) { p.Issuer = "http://sso.example.com" }), allowed: apps, want: "issuer:"},
		{name: "no issuer", providers: with(func(p *auth.Provider) { p.Issuer = "" }), allowed: apps, want: "issuer:"},
		{name: "no client", providers: with(func(p *auth.Provider) { p.ClientID = "" }), allowed: apps, want: "client_id:"},
		{name: "bad scope", providers: with(func(p *auth.Provider) { p.Scopes = []string{"openid email"} }), allowed: apps, want: "scopes:"},
		{name: "twice", providers: []auth.Provider{good, good}, allowed: apps, want: "given twice"},
		{name: "no allowed redirects", providers: []auth.Provider{good}, want: "allowed_redirects:"},
		{name: "relative redirect", providers: []auth.Provider{good}, allowed: []string{"/auth/"}, want: "allowed_redirects[0]:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := auth.ValidateProviders(tt.providers, tt.allowed)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("err = %v, want none", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("err = %v, want %q", err, tt.want)
			case err != nil && strings.Contains(err.Error(), "s3cret"):
				t.Errorf("err shows the secret: %v", err)
			}
		})
	}
	// Start refuses a bad config.
	e := newEnv(t)
	cfg := e.cfg
	cfg.Providers = with(func(p *auth.Provider) { p.Issuer = "ftp://x" })
	cfg.AllowedRedirects = apps
	svc := auth.New(cfg)
	if err := svc.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "issuer") {
		t.Errorf("Start = %v, want an issuer error", err)
		svc.Close()
	}
}
