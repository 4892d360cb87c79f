package app

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hostless/hostless/internal/baas/secrets"
	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
)

// startSecrets starts the secrets and KMS service over the master key
// ring, and re-seals, once, the data keys a previous master key sealed
// (a rotation; docs/SECRETS.md).
func (a *App) startSecrets(ctx context.Context) error {
	a.secrets = secrets.New(secrets.Config{
		Project: function.DefaultProject, Store: a.store, Keys: a.masterKey, Log: a.log, Changed: a.secretChanged,
		ResealOthers: a.resealPlatformKeys,
	})
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	a.secrets.RewrapAtStart(rctx)
	return nil
}

// resealPlatformKeys re-seals under the current master key what the
// platform itself keeps sealed by an older one: the auth signing keys,
// the stored AWS secret access key and the presigning key.
func (a *App) resealPlatformKeys(ctx context.Context) (int, error) {
	n, err := a.auth.ResealSigningKeys(ctx, a.masterKey.Stale)
	if err != nil {
		return n, err
	}
	names := []string{presignKeySetting}
	if id, err := a.store.GetSetting(ctx, awsKeyIDSetting); err == nil {
		names = append(names, awsKeySecretSetting+id)
	} else if !errors.Is(err, store.ErrNotFound) {
		return n, err
	}
	for _, name := range names {
		b64, err := a.store.GetSetting(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return n, err
		}
		sealed, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || !a.masterKey.Stale(sealed) {
			continue // corrupt values are reported where they are read
		}
		plain, err := a.masterKey.Open(sealed, []byte(name))
		if err != nil {
			return n, fmt.Errorf("open %s: %w", name, err)
		}
		resealed, err := a.masterKey.Seal(plain, []byte(name))
		clear(plain)
		if err != nil {
			return n, err
		}
		// The value is the same under either key: a node doing the same at
		// once writes an equivalent one.
		if err := a.store.PutSetting(ctx, name, base64.StdEncoding.EncodeToString(resealed)); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
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
