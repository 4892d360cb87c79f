package auth_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hostless/hostless/internal/baas/auth"
)

// forge signs claims with key under alg, with kid in the header.
func forge(t testing.TB, m jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// claimsFor are the claims the service would issue for user id now.
func claimsFor(id string, now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": auth.Issuer, "sub": id, "aud": []string{"default"}, "prj": "default", "use": "access",
		"iat": now.Unix(), "nbf": now.Add(-time.Second).Unix(), "exp": now.Add(10 * time.Minute).Unix(),
		"ius": now.UnixMicro(), "email": "ada@example.com",
	}
}

func with(c jwt.MapClaims, k string, v any) jwt.MapClaims {
	o := jwt.MapClaims{}
	for kk, vv := range c {
		o[kk] = vv
	}
	if v == nil {
		delete(o, k)
	} else {
		o[k] = v
	}
	return o
}

type jwks struct {
	Keys []auth.JWK `json:"keys"`
}

func TestAccessTokenAttacks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tk := e.signup("ada@example.com", goodPassword)
	id := tk.User.ID
	var set jwks
	e.must(200, "GET", "/v1/auth/jwks", nil, "", &set)
	if len(set.Keys) != 1 {
		t.Fatalf("jwks = %+v", set)
	}
	kid := set.Keys[0].Kid
	pub, err := base64.RawURLEncoding.DecodeString(set.Keys[0].X)
	if err != nil {
		t.Fatal(err)
	}
	real := e.signingKeys()[kid]
	if real == nil {
		t.Fatalf("no signing key %s in the store", kid)
	}
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	now := e.clk.Now()
	c := claimsFor(id, now)

	// The control: a token forged with the real key and the right claims
	// passes, so each refusal below is for the one thing it changes.
	control := forge(t, jwt.SigningMethodEdDSA, real, kid, c)
	e.must(200, "GET", "/v1/auth/me", nil, control, nil)

	// The service's own token with its payload changed to an admin's.
	parts := strings.Split(tk.AccessToken, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var pc map[string]any
	if err := json.Unmarshal(payload, &pc); err != nil {
		t.Fatal(err)
	}
	pc["roles"] = []string{"admin"}
	np, _ := json.Marshal(pc)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(np) + "." + parts[2]

	none := forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, kid, with(c, "roles", []string{"admin"}))
	bigClaims := with(c, "email", strings.Repeat("a", 5<<10)+"@example.com")
	attacks := map[string]string{
		"alg none":                     none,
		"alg none without a signature": strings.TrimSuffix(none, "."),
		"HS256 keyed with the public key": forge(t, jwt.SigningMethodHS256, pub, kid,
			with(c, "roles", []string{"admin"})),
		"HS256 keyed with the JWK x": forge(t, jwt.SigningMethodHS256, []byte(set.Keys[0].X), kid, c),
		"another Ed25519 key with the real kid": forge(t, jwt.SigningMethodEdDSA, other, kid,
			with(c, "roles", []string{"admin"})),
		"expired":                       forge(t, jwt.SigningMethodEdDSA, real, kid, with(c, "exp", now.Add(-time.Minute).Unix())),
		"no expiry":                     forge(t, jwt.SigningMethodEdDSA, real, kid, with(c, "exp", nil)),
		"not yet valid":                 forge(t, jwt.SigningMethodEdDSA, real, kid, with(c, "nbf", now.Add(time.Hour).Unix())),
		"tampered payload":              tampered,
		"wrong issuer":                  forge(t, jwt.SigningMethodEdDSA, real, kid, with(c, "iss", "evil")),
		"no issuer":                     forge(t, jwt.SigningMethodEdDSA, real, kid, with(c, "iss", nil)),
		"wrong audience":                forge(t, jwt.SigningMethodEdDSA, real, kid, with(c, "aud", []string{"other"})),
		"another project":               forge(t, jwt.SigningMethodEdDSA, real, kid, with(with(c, "aud", []string{"other"}), "prj", "other")),
		"prj differs from aud":          forge(t, jwt.SigningMethodEdDSA, real, kid, with(c, "prj", "other")),
		"not an access token":           forge(t, jwt.SigningMethodEdDSA, real, kid, with(c, "use", "refresh")),
		"no subject":                    forge(t, jwt.SigningMethodEdDSA, real, kid, with(c, "sub", nil)),
		"unknown kid":                   forge(t, jwt.SigningMethodEdDSA, real, "00000000deadbeef", c),
		"no kid":                        forge(t, jwt.SigningMethodEdDSA, real, "", c),
		"garbage":                       "garbage",
		"three garbage segments":        "a.b.c",
		"the refresh token":             tk.RefreshToken,
		"a 5 KB token otherwise good":   forge(t, jwt.SigningMethodEdDSA, real, kid, bigClaims),
		"an API key that doesn't exist": auth.APIKeyPrefix + "0123456789abcdef_" + strings.Repeat("s", 43),
	}
	if len(attacks["a 5 KB token otherwise good"]) < 5<<10 {
		t.Fatal("the big token is small")
	}
	var sc []scenario
	for name, tok := range attacks {
		e.secret(tok)
		sc = append(sc, scenario{name: name, method: "GET", path: "/v1/auth/me", token: tok, status: 401,
			want: []string{`"invalid_token"`}, notWant: []string{id}})
	}
	e.run(t, sc)
	// The refusals are logged at debug level, with their reasons, and
	// (checked at cleanup) without the tokens.
	if logs := e.logs.String(); !strings.Contains(logs, "refused a credential") || !strings.Contains(logs, "unknown key id") {
		t.Errorf("the debug log lacks the refusals:\n%s", logs)
	}
	// The tampered claims are not in the user's real token either: the
	// original still works, and is not an admin.
	e.must(200, "GET", "/v1/auth/me", nil, tk.AccessToken, nil)
	e.must(403, "GET", "/v1/users", nil, tk.AccessToken, nil)
}

// kidOf reads a JWT's kid without verifying it.
func kidOf(t testing.TB, tok string) string {
	t.Helper()
	p, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := p.Header["kid"].(string)
	return kid
}

// verifyWithJWKS checks tok against the key of the JWKS its kid names, as a
// third party would.
func verifyWithJWKS(t testing.TB, set jwks, tok string) error {
	t.Helper()
	_, err := jwt.Parse(tok, func(tk *jwt.Token) (any, error) {
		for _, k := range set.Keys {
			if k.Kid == tk.Header["kid"] {
				if k.Kty != "OKP" || k.Crv != "Ed25519" || k.Alg != "EdDSA" || k.Use != "sig" {
					t.Errorf("jwk = %+v", k)
				}
				x, err := base64.RawURLEncoding.DecodeString(k.X)
				return ed25519.PublicKey(x), err
			}
		}
		return nil, jwt.ErrTokenUnverifiable
	}, jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithTimeFunc(time.Now), jwt.WithoutClaimsValidation())
	return err
}

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	const rotation, ttl = time.Hour, 15 * time.Minute
	e := newEnv(t, func(c *auth.Config) { c.KeyRotation, c.AccessTTL = rotation, ttl })
	e.signup("ada@example.com", goodPassword)

	// A token of the first key, issued a minute before it rotates.
	e.clk.Advance(rotation - time.Minute)
	e.reloadKeys()
	old := e.login("ada@example.com", goodPassword)
	oldKid := kidOf(t, old.AccessToken)

	e.clk.Advance(2 * time.Minute)
	e.reloadKeys()
	cur := e.login("ada@example.com", goodPassword)
	newKid := kidOf(t, cur.AccessToken)
	if newKid == oldKid || newKid == "" {
		t.Fatalf("kid after rotation = %q, before %q", newKid, oldKid)
	}
	e.must(200, "GET", "/v1/auth/me", nil, old.AccessToken, nil)
	e.must(200, "GET", "/v1/auth/me", nil, cur.AccessToken, nil)

	var a, b jwks
	e.must(200, "GET", "/v1/auth/jwks", nil, "", &a)
	e.must(200, "GET", "/.well-known/jwks.json", nil, "", &b)
	if len(a.Keys) != 2 || a.Keys[0] != b.Keys[0] || a.Keys[1] != b.Keys[1] {
		t.Fatalf("jwks = %+v and %+v, want the same two keys", a, b)
	}
	for _, tok := range []string{old.AccessToken, cur.AccessToken} {
		if err := verifyWithJWKS(t, a, tok); err != nil {
			t.Errorf("the JWKS does not verify a token of kid %s: %v", kidOf(t, tok), err)
		}
	}

	// The old key's token expires; then the old key retires.
	e.clk.Advance(ttl)
	if r := e.do("GET", "/v1/auth/me", nil, old.AccessToken); r.status != 401 {
		t.Fatalf("the old token past its expiry = %d", r.status)
	}
	e.clk.Advance(time.Minute)
	e.reloadKeys()
	e.must(200, "GET", "/v1/auth/jwks", nil, "", &a)
	if len(a.Keys) != 1 || a.Keys[0].Kid != newKid {
		t.Fatalf("jwks after the old key retired = %+v, want only %s", a, newKid)
	}

	// A restart on the same store keeps the keys: a token issued before
	// it still verifies after.
	before := e.login("ada@example.com", goodPassword)
	e.restart()
	e.must(200, "GET", "/v1/auth/me", nil, before.AccessToken, nil)
	if again := e.login("ada@example.com", goodPassword); kidOf(t, again.AccessToken) != newKid {
		t.Errorf("after a restart, tokens are signed by %s, want %s", kidOf(t, again.AccessToken), newKid)
	}
}
