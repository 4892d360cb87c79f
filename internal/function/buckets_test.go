package function_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hostless/hostless/internal/function"
)

func TestSpecBuckets(t *testing.T) {
	t.Parallel()
	many := map[string]string{}
	for i := range function.MaxBuckets + 1 {
		many[fmt.Sprintf("bucket-%03d", i)] = "read"
	}
	tests := []struct {
		name    string
		buckets map[string]string
		env     map[string]string
		want    string // error fragment; empty: valid
	}{
		{"none", nil, nil, ""},
		{"each access", map[string]string{"photos": "read", "thumbs": "write", "logs.v2": "read-write"}, nil, ""},
		{"too many", many, nil, "at most 64"},
		{"upper case", map[string]string{"Photos": "read"}, nil, "lower-case"},
		{"short", map[string]string{"ab": "read"}, nil, "3 to 63"},
		{"long", map[string]string{strings.Repeat("a", 64): "read"}, nil, "3 to 63"},
		{"dash first", map[string]string{"-photos": "read"}, nil, "starting and ending"},
		{"two dots", map[string]string{"a..b": "read"}, nil, "lower-case"},
		{"slash", map[string]string{"a/b": "read"}, nil, "lower-case"},
		{"unknown access", map[string]string{"photos": "admin"}, nil, "read, write or read-write"},
		{"empty access", map[string]string{"photos": ""}, nil, "read, write or read-write"},
		{"env sets the key", map[string]string{"photos": "read"}, map[string]string{"AWS_ACCESS_KEY_ID": "x"}, "AWS_ACCESS_KEY_ID"},
		{"env sets the endpoint", map[string]string{"photos": "read"}, map[string]string{"AWS_ENDPOINT_URL_S3": "http://x"}, "AWS_ENDPOINT_URL_S3"},
		{"env's AWS keys without buckets", nil, map[string]string{"AWS_ACCESS_KEY_ID": "x"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := validSpec()
			s.Buckets = tt.buckets
			for k, v := range tt.env {
				if s.Env == nil {
					s.Env = map[string]string{}
				}
				s.Env[k] = v
			}
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
	a, b := validSpec(), validSpec()
	a.Buckets, b.Buckets = map[string]string{"photos": "read"}, map[string]string{"photos": "read"}
	if !a.Equal(&b) {
		t.Fatal("specs granting the same buckets differ")
	}
	b.Buckets["photos"] = "read-write"
	if a.Equal(&b) {
		t.Fatal("specs granting other access are equal: a deploy would make no version")
	}
}
