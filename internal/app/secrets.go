package app

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/hostless/hostless/internal/baas/secrets"
	"github.com/hostless/hostless/internal/function"
)

// startSecrets starts the secrets and KMS service over the master key
// ring, and re-seals, once, the data keys a previous master key sealed
// (a rotation; docs/SECRETS.md).
func (a *App) startSecrets(ctx context.Context) error {
	a.secrets = secrets.New(secrets.Config{
		Project: function.DefaultProject, Store: a.store, Keys: a.masterKey, Log: a.log, Changed: a.secretChanged,
	})
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	a.secrets.RewrapAtStart(rctx)
	return nil
}

// secretEnv resolves the secrets a version names when its runtime starts
// an instance.
func (a *App) secretEnv(ctx context.Context, v *function.Version) (map[string]string, error) {
	if a.secrets == nil {
		return nil, fmt.Errorf("%w: secrets are not available yet", function.ErrUnavailable)
	}
	return a.secrets.Env(ctx, v)
}

// secretChanged recycles the instances that hold a secret's old value:
// the pools of every version naming it retire (idle instances stop now,
// busy ones when their call ends), so the next call starts an instance
// that reads the new value; versions kept warm are warmed again.
func (a *App) secretChanged(project, name string) {
	warm := a.sched.Recycle(func(v *function.Version) bool {
		return v.Project == project && slices.Contains(v.Spec.Secrets, name)
	})
	for _, v := range warm {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := a.sched.Warm(ctx, v); err != nil {
				a.log.Warn("warm instances again after a secret changed", "function", v.Function, "secret", name, "err", err)
			}
		}()
	}
}

// checkSecrets refuses a deploy that names secrets that don't exist.
func (a *App) checkSecrets(s *function.Spec) error {
	if len(s.Secrets) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return a.secrets.Missing(ctx, s.Secrets)
}
