package app

import (
	"context"
	"crypto/subtle"
	"fmt"

	"github.com/hostless/hostless/internal/api"
	"github.com/hostless/hostless/internal/baas/auth"
	"github.com/hostless/hostless/internal/baas/docdb"
	"github.com/hostless/hostless/internal/function"
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
	rps := func(r float64) auth.RPS {
		if r < 0 {
			return auth.RPS{Burst: -1}
		}
		return auth.RPS{Rate: r, Burst: int(2 * r)}
	}
	a.auth = auth.New(auth.Config{
		Project: function.DefaultProject, Store: a.store, Sealer: a.masterKey, Log: a.log, Emit: a.emit,
		Mailer: mailer, PublicURL: a.cfg.PublicURL, AccessTTL: a.cfg.AccessTokenTTL,
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
