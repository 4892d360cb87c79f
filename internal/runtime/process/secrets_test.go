package process

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/sandbox"
)

// A secret a version names reaches the process's environment, resolved
// at the instance's start; a failed resolution fails the start.
func TestSecretEnvironment(t *testing.T) {
	e := newEnv(t, sandbox.IsolationSandbox)
	resolved := 0
	e.rt.cfg.Secrets = func(_ context.Context, v *function.Version) (map[string]string, error) {
		resolved++
		if v.Spec.Secrets[0] != "MINE" {
			return nil, errors.New("unexpected secret")
		}
		return map[string]string{"MINE": "from-the-secret", "AWS_LAMBDA_RUNTIME_API": "not-mine"}, nil
	}
	v := e.version(t, zipDir(t, e.a, lambdaFn(t)), func(s *function.Spec) { s.Env = nil; s.Secrets = []string{"MINE"} })
	inst := start(t, e, v)
	resp, _, err := invoke(t, inst, event("context", ""), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(resp.Body, &c); err != nil || c["mine"] != "from-the-secret" {
		t.Fatalf("the function saw MINE = %v (%v), want the secret's value", c["mine"], err)
	}
	if resolved != 1 {
		t.Fatalf("secrets resolved %d times for one start, want 1", resolved)
	}
	e.rt.cfg.Secrets = func(context.Context, *function.Version) (map[string]string, error) {
		return nil, function.ErrFunction
	}
	if _, _, err := e.rt.Start(context.Background(), v); !errors.Is(err, function.ErrFunction) {
		t.Fatalf("start with an unresolvable secret = %v, want its error", err)
	}
}
