package function_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hostless/hostless/internal/function"
)

func TestSpecSecrets(t *testing.T) {
	t.Parallel()
	many := make([]string, function.MaxSecrets+1)
	for i := range many {
		many[i] = fmt.Sprintf("S%d", i)
	}
	tests := []struct {
		name    string
		secrets []string
		want    string // error fragment; empty: valid
	}{
		{"none", nil, ""},
		{"some", []string{"DB_PASSWORD", "api_key"}, ""},
		{"max", many[:function.MaxSecrets], ""},
		{"too many", many, "at most 64"},
		{"digit first", []string{"1KEY"}, "must be letters"},
		{"dash", []string{"API-KEY"}, "must be letters"},
		{"empty", []string{""}, "1 to 128"},
		{"long", []string{strings.Repeat("A", 129)}, "1 to 128"},
		{"twice", []string{"A", "A"}, `names "A" twice`},
		{"platform prefix", []string{"HOSTLESS_API_URL"}, "platform's own"},
		{"lambda prefix", []string{"AWS_LAMBDA_FUNCTION_NAME"}, "platform's own"},
		{"handler", []string{"_HANDLER"}, "platform sets"},
		{"also env", []string{"GREETING"}, "both under env and under secrets"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := validSpec()
			s.Secrets = tt.secrets
			s.Normalize()
			err := s.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, function.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want ErrInvalid with %q", err, tt.want)
			}
		})
	}
}

func TestSpecSecretsEqual(t *testing.T) {
	t.Parallel()
	a, b := validSpec(), validSpec()
	a.Secrets, b.Secrets = []string{"B", "A"}, []string{"A", "B"}
	a.Normalize()
	b.Normalize()
	if !a.Equal(&b) {
		t.Fatal("specs naming the same secrets in another order differ")
	}
	b.Secrets = []string{"A"}
	if a.Equal(&b) {
		t.Fatal("specs naming other secrets are equal: a deploy would make no version")
	}
}
