package wasm

import (
	"context"

	"github.com/tetratelabs/wazero"

	"github.com/hostless/hostless/internal/function"
)

// withSecrets adds the values of the secrets v names to an instance's
// environment, resolved now, at its start: they live in the instance's
// module config only, never in v.
func withSecrets(ctx context.Context, resolve function.SecretEnv, v *function.Version, base wazero.ModuleConfig) (wazero.ModuleConfig, error) {
	if resolve == nil || len(v.Spec.Secrets) == 0 {
		return base, nil
	}
	env, err := resolve(ctx, v)
	if err != nil {
		return base, err
	}
	for k, val := range env {
		if k != "HOSTLESS_API_URL" {
			base = base.WithEnv(k, val)
		}
	}
	return base, nil
}
