package app

import (
	"bytes"
	"context"
	"crypto/subtle"
	"fmt"
	"os"
	"strings"

	"github.com/hostless/hostless/internal/api"
	"github.com/hostless/hostless/internal/baas/auth"
	"github.com/hostless/hostless/internal/baas/docdb"
	"github.com/hostless/hostless/internal/function"
	"gopkg.in/yaml.v3"
)

// startAuth starts the backend's auth service (users, tokens, API keys)
// and the document database.
// The admin keys (hashes) authenticate as the admin principal there too.
func (a *App) startAuth(ctx context.Context, hashes [][32]byte) error {
	var mailer auth.Mailer
	if a.cfg.SMTP != "" {
		m, err := auth.ParseSMTP(a.cfg.SMTP)
		if err != nil {
			return err
		}
		mailer = m
	}
	providers, redirects, err := loadProviders(a.cfg.AuthProviders, os.Getenv)
	if err != nil {
		return err
	}
	rps := func(r float64) auth.RPS {
		if r < 0 {
			return auth.RPS{Burst: -1}
		}
		return auth.RPS{Rate: r, Burst: int(2 * r)}
	}
	a.auth = auth.New(auth.Config{
		Project: function.DefaultProject, Store: a.store, Sealer: a.masterKey, Log: a.log, Emit: a.emit,
		Mailer: mailer, PublicURL: a.cfg.PublicURL, AccessTTL: a.cfg.AccessTokenTTL,
		Providers: providers, AllowedRedirects: redirects,
		Requests: auth.RequestLimits{PerIP: rps(a.cfg.RateLimitPerIP), PerUser: rps(a.cfg.RateLimitPerUser), PerKey: rps(a.cfg.RateLimitPerKey)},
		AdminKey: func(credential string) bool {
			sum := api.HashKey(credential)
			ok := 0
			for _, want := range hashes {
				ok |= subtle.ConstantTimeCompare(sum[:], want[:])
			}
			return ok == 1
		},
	})
	if err := a.auth.Start(ctx); err != nil {
		return fmt.Errorf("start auth: %w", err)
	}
	a.docdb = docdb.New(docdb.Config{Project: function.DefaultProject, Store: a.store, Log: a.log, Emit: a.emit})
	if err := a.docdb.Start(ctx); err != nil {
		return fmt.Errorf("start the document database: %w", err)
	}
	return nil
}

// loadProviders reads the OpenID Connect providers file (none without
// one). A provider's client secret may come from the environment:
// HOSTLESS_AUTH_PROVIDER_<NAME>_CLIENT_SECRET (name upper-cased, - as _).
func loadProviders(path string, getenv func(string) string) ([]auth.Provider, []string, error) {
	if path == "" {
		return nil, nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("auth-providers: %w", err)
	}
	if len(b) > 1<<20 {
		return nil, nil, fmt.Errorf("auth-providers: %s is over 1 MiB", path)
	}
	var f struct {
		Providers        []auth.Provider `yaml:"providers"`
		AllowedRedirects []string        `yaml:"allowed_redirects"`
	}
	d := yaml.NewDecoder(bytes.NewReader(b))
	d.KnownFields(true)
	if err := d.Decode(&f); err != nil {
		return nil, nil, fmt.Errorf("auth-providers %s: %w", path, err)
	}
	for i, p := range f.Providers {
		env := "HOSTLESS_AUTH_PROVIDER_" + strings.ToUpper(strings.ReplaceAll(p.Name, "-", "_")) + "_CLIENT_SECRET"
		if v := getenv(env); v != "" {
			f.Providers[i].ClientSecret = auth.Secret(v)
		}
	}
	if err := auth.ValidateProviders(f.Providers, f.AllowedRedirects); err != nil {
		return nil, nil, fmt.Errorf("auth-providers %s: %w", path, err)
	}
	return f.Providers, f.AllowedRedirects, nil
}
