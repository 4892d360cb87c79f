package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Issuer is the iss claim of every access token.
const Issuer = "hostless"

// ErrInvalidToken is every verification failure: a caller learns no more
// than that (the log has the reason).
var ErrInvalidToken = errors.New("invalid or expired token")

// claims are an access token's claims.
type claims struct {
	jwt.RegisteredClaims
	Project string   `json:"prj"`
	Email   string   `json:"email,omitempty"`
	Roles   []string `json:"roles,omitempty"`
	// Use is "access": the only kind of JWT this package issues today; a
	// token of another use never authenticates a request.
	Use string `json:"use"`
	// Issued is when it was issued in Unix microseconds (iat has whole
	// seconds): a revocation at time T refuses the tokens issued before.
	Issued int64 `json:"ius"`
	// Function names the function a "function" token was given to.
	Function string `json:"fn,omitempty"`
}

// issue signs an access token for p.
func (s *Service) issue(p Principal, now time.Time) (string, time.Time, error) {
	return s.sign(p, "access", "", now)
}

// sign signs a token of use for p; fn names a function token's function.
func (s *Service) sign(p Principal, use, fn string, now time.Time) (string, time.Time, error) {
	sk := s.keys.signer()
	if sk == nil {
		return "", time.Time{}, errors.New("no signing key")
	}
	exp := now.Add(s.cfg.AccessTTL)
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: Issuer, Subject: p.ID, Audience: jwt.ClaimStrings{s.cfg.Project},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now.Add(-time.Second)),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
		Project: s.cfg.Project, Email: p.Email, Roles: p.Roles, Use: use, Issued: now.UnixMicro(), Function: fn,
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	t.Header["kid"] = sk.id
	signed, err := t.SignedString(sk.private)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign access token: %w", err)
	}
	return signed, exp, nil
}

// verify checks an access token: EdDSA only (alg "none", HMAC with the
// public key and every other alg are refused before any key is used), a
// known kid, the signature, iss, aud, exp and nbf.
func (s *Service) verify(ctx context.Context, token string, now time.Time) (Principal, time.Time, time.Time, error) {
	var c claims
	_, err := jwt.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		sk, ok := s.keys.key(ctx, kid, now)
		if !ok {
			return nil, fmt.Errorf("unknown key id %q", kid)
		}
		return sk.public, nil
	}, jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}), jwt.WithIssuer(Issuer),
		jwt.WithAudience(s.cfg.Project), jwt.WithExpirationRequired(), jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithLeeway(5*time.Second))
	if err != nil {
		return Principal{}, time.Time{}, time.Time{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if c.Project != s.cfg.Project || c.Issued <= 0 {
		return Principal{}, time.Time{}, time.Time{}, fmt.Errorf("%w: not an access token of this project", ErrInvalidToken)
	}
	switch {
	case c.Use == "access" && c.Subject != "":
	case c.Use == "function" && c.Function != "":
		if c.Subject == "" {
			return Principal{Kind: Function, ID: c.Function}, c.ExpiresAt.Time, time.UnixMicro(c.Issued), nil
		}
	default:
		return Principal{}, time.Time{}, time.Time{}, fmt.Errorf("%w: not an access token of this project", ErrInvalidToken)
	}
	return Principal{Kind: User, ID: c.Subject, Email: c.Email, Roles: c.Roles}, c.ExpiresAt.Time, time.UnixMicro(c.Issued), nil
}

// tokenCache keeps verified credentials until they expire: verifying an
// Ed25519 JWT costs ~40 µs here, and a busy client sends the same token
// thousands of times. Bounded: when full, expired entries go, and if
// none has expired the cache starts over.
type tokenCache struct {
	max int
	mu  sync.RWMutex
	m   map[string]cached
}

type cached struct {
	p      Principal
	exp    time.Time
	issued time.Time
}

func newTokenCache(max int) *tokenCache { return &tokenCache{max: max, m: make(map[string]cached)} }

func (c *tokenCache) get(token string, now time.Time) (cached, bool) {
	c.mu.RLock()
	e, ok := c.m[token]
	c.mu.RUnlock()
	if !ok || !now.Before(e.exp) {
		return cached{}, false
	}
	return e, true
}

func (c *tokenCache) put(token string, e cached, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for k, e := range c.m {
			if !now.Before(e.exp) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= c.max {
			clear(c.m)
		}
	}
	c.m[token] = e
}

// drop forgets every cached credential of a user or key (disabled, roles
// changed, key deleted).
func (c *tokenCache) drop(kind Kind, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.m {
		if e.p.Kind == kind && e.p.ID == id {
			delete(c.m, k)
		}
	}
}

// FunctionToken returns a short-lived token that function fn receives
// with a call by p: p's identity when p is a signed-in user (the user's
// rules apply to what the function does with it), else the function's own
// (kind function: rules see auth.kind == "function", auth.id == fn). An
// API key's or the admin's power is never handed on. Tokens are cached
// and reused while at least half their life is left.
func (s *Service) FunctionToken(fn string, p Principal) (string, error) {
	key := "fn\x00" + fn
	subject := Principal{Kind: Function}
	var roles []string
	if p.Kind == User {
		key += "\x00" + p.ID
		// An admin user's admin role stays with the user: the function
		// acts as the user without it, under the rules like anyone.
		roles = slices.DeleteFunc(slices.Clone(p.Roles), func(r string) bool { return r == RoleAdmin })
		subject = Principal{Kind: User, ID: p.ID, Email: p.Email, Roles: roles}
	}
	now := s.now()
	s.fnMu.Lock()
	defer s.fnMu.Unlock()
	if t, ok := s.fnTokens[key]; ok && t.exp.Sub(now) > s.cfg.AccessTTL/2 && (p.Kind != User || slices.Equal(t.roles, roles)) {
		return t.token, nil
	}
	tok, exp, err := s.sign(subject, "function", fn, now)
	if err != nil {
		return "", err
	}
	if len(s.fnTokens) >= 100_000 {
		clear(s.fnTokens)
	}
	s.fnTokens[key] = fnToken{token: tok, exp: exp, roles: roles}
	return tok, nil
}

type fnToken struct {
	token string
	exp   time.Time
	roles []string
}
