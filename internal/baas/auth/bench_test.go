package auth_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// BenchmarkAuthenticate is the hot path of every backend request: a
// verified access token, from the cache.
func BenchmarkAuthenticate(b *testing.B) {
	e := newEnv(b)
	tk := e.signup("ada@example.com", goodPassword)
	ctx := context.Background()
	if _, err := e.svc.Authenticate(ctx, tk.AccessToken); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.svc.Authenticate(ctx, tk.AccessToken); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyUncached verifies a new access token each time: the
// signature check, as on a token's first use.
func BenchmarkVerifyUncached(b *testing.B) {
	e := newEnv(b)
	tk := e.signup("ada@example.com", goodPassword)
	var kid string
	priv := e.signingKeys()
	for k := range priv {
		kid = k
	}
	// Distinct tokens, made before the timer: each iteration misses the cache.
	toks := make([]string, 4096)
	now := e.clk.Now()
	for i := range toks {
		c := claimsFor(tk.User.ID, now)
		c["jti"] = strconv.Itoa(i)
		toks[i] = forge(b, jwt.SigningMethodEdDSA, priv[kid], kid, c)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if i == len(toks) {
			// Every token is cached now: a restarted service (same
			// store, same keys) has an empty cache.
			b.StopTimer()
			e.restart()
			i = 0
			b.StartTimer()
		}
		if _, err := e.svc.Authenticate(ctx, toks[i]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
