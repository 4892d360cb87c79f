package function

import (
	"context"
	"fmt"
	"strings"
)

// MaxSecrets bounds the secrets one function names.
const MaxSecrets = 64

// MaxSecretNameBytes bounds a secret's name.
const MaxSecretNameBytes = 128

// SecretEnv returns the values of the secrets v's spec names, by name: a
// runtime calls it when it starts an instance of v, and puts the values in
// the instance's environment only. It fails when a named secret no longer
// exists or can't be decrypted; its errors never carry a value.
type SecretEnv func(ctx context.Context, v *Version) (map[string]string, error)

// ValidSecretName checks the name of a secret: what an environment
// variable's name may be (letters, digits and '_', not starting with a
// digit), at most MaxSecretNameBytes, and not one the platform sets
// (HOSTLESS_*, AWS_LAMBDA_*, LAMBDA_*, _HANDLER).
func ValidSecretName(name string) error {
	if name == "" || len(name) > MaxSecretNameBytes {
		return fmt.Errorf("%w: secret name %q must be 1 to %d characters", ErrInvalid, short(name), MaxSecretNameBytes)
	}
	for i, c := range name {
		ok := c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (i > 0 && c >= '0' && c <= '9')
		if !ok {
			return fmt.Errorf("%w: secret name %q must be letters, digits and '_', not starting with a digit (it becomes an environment variable)", ErrInvalid, short(name))
		}
	}
	for _, p := range []string{"HOSTLESS_", "AWS_LAMBDA_", "LAMBDA_"} {
		if strings.HasPrefix(name, p) {
			return fmt.Errorf("%w: secret name %q starts with %s, which the platform's own variables use", ErrInvalid, name, p)
		}
	}
	if name == "_HANDLER" {
		return fmt.Errorf("%w: secret name %q is a variable the platform sets", ErrInvalid, name)
	}
	return nil
}

func short(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// validSecrets checks a spec's secrets: at most MaxSecrets valid names,
// each once, none also a name under env (which would hide one of them).
func (s *Spec) validSecrets() error {
	if len(s.Secrets) > MaxSecrets {
		return fmt.Errorf("%w: secrets has %d names (at most %d)", ErrInvalid, len(s.Secrets), MaxSecrets)
	}
	seen := make(map[string]bool, len(s.Secrets))
	for _, n := range s.Secrets {
		if err := ValidSecretName(n); err != nil {
			return err
		}
		if seen[n] {
			return fmt.Errorf("%w: secrets names %q twice", ErrInvalid, n)
		}
		seen[n] = true
		if _, ok := s.Env[n]; ok {
			return fmt.Errorf("%w: %q is both under env and under secrets; a variable comes from one of them", ErrInvalid, n)
		}
	}
	return nil
}
