package function

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCORSValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		c    CORS
		want string // "" for valid; else a fragment of the error
	}{
		{"any origin", CORS{Origins: []string{"*"}}, ""},
		{"full", CORS{Origins: []string{"https://app.example.com", "http://localhost:3000"}, Methods: []string{"GET", "PUT"},
			Headers: []string{"Content-Type", "Authorization"}, ExposeHeaders: []string{"X-Total"}, Credentials: true,
			MaxAge: Duration(10 * time.Minute)}, ""},
		{"no origins", CORS{}, "cors.origins is required"},
		{"star with credentials", CORS{Origins: []string{"*"}, Credentials: true}, "can't go with cors.credentials"},
		{"origin with path", CORS{Origins: []string{"https://app.example.com/x"}}, "is not an origin"},
		{"origin without scheme", CORS{Origins: []string{"app.example.com"}}, "is not an origin"},
		{"uppercase origin", CORS{Origins: []string{"https://App.example.com"}}, "is not an origin"},
		{"bad method", CORS{Origins: []string{"*"}, Methods: []string{"GE T"}}, "cors.methods"},
		{"bad header", CORS{Origins: []string{"*"}, Headers: []string{"a:b"}}, "cors.headers"},
		{"max age too long", CORS{Origins: []string{"*"}, MaxAge: Duration(48 * time.Hour)}, "cors.max_age"},
		{"too many", CORS{Origins: []string{"*"}, Headers: make([]string, MaxCORSEntries+1)}, "at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate: %v, want an ErrInvalid containing %q", err, tt.want)
			}
		})
	}
}

func TestSpecEqualCORS(t *testing.T) {
	t.Parallel()
	a := Spec{Runtime: RuntimeWasm}
	b := a
	if !a.Equal(&b) {
		t.Fatal("equal specs differ")
	}
	b.CORS = &CORS{Origins: []string{"*"}}
	if a.Equal(&b) || b.Equal(&a) {
		t.Fatal("a CORS policy does not change the spec")
	}
	a.CORS = &CORS{Origins: []string{"*"}}
	if !a.Equal(&b) {
		t.Fatal("equal policies differ")
	}
	a.CORS.MaxAge = Duration(time.Minute)
	if a.Equal(&b) {
		t.Fatal("max_age does not change the spec")
	}
}
