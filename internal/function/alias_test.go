package function_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/hostless/hostless/internal/function"
)

func TestAliasValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		alias function.Alias
		want  string // a fragment of the error; "" for valid
	}{
		{name: "plain", alias: function.Alias{Name: "live", Version: 1}},
		{name: "canary", alias: function.Alias{Name: "live", Version: 1, CanaryVersion: 2, CanaryWeight: 10}},
		{name: "canary older than version", alias: function.Alias{Name: "beta", Version: 5, CanaryVersion: 2, CanaryWeight: 99}},
		{name: "smallest weight", alias: function.Alias{Name: "b-2", Version: 1, CanaryVersion: 2, CanaryWeight: 1}},
		{name: "digits with a letter", alias: function.Alias{Name: "3a", Version: 1}},
		{name: "all digits", alias: function.Alias{Name: "3", Version: 1}, want: "version number"},
		{name: "uppercase", alias: function.Alias{Name: "Beta", Version: 1}, want: "DNS label"},
		{name: "empty name", alias: function.Alias{Version: 1}, want: "DNS label"},
		{name: "version 0", alias: function.Alias{Name: "live"}, want: "version 0"},
		{name: "negative version", alias: function.Alias{Name: "live", Version: -1}, want: "numbered from 1"},
		{name: "canary is the version", alias: function.Alias{Name: "live", Version: 2, CanaryVersion: 2, CanaryWeight: 10}, want: "another version"},
		{name: "weight without canary", alias: function.Alias{Name: "live", Version: 2, CanaryWeight: 10}, want: "without a canary_version"},
		{name: "canary without weight", alias: function.Alias{Name: "live", Version: 2, CanaryVersion: 3}, want: "canary_weight is missing"},
		{name: "weight 100", alias: function.Alias{Name: "live", Version: 2, CanaryVersion: 3, CanaryWeight: 100}, want: "promote it"},
		{name: "weight 150", alias: function.Alias{Name: "live", Version: 2, CanaryVersion: 3, CanaryWeight: 150}, want: "1 to 99 percent"},
		{name: "negative weight", alias: function.Alias{Name: "live", Version: 2, CanaryVersion: 3, CanaryWeight: -5}, want: "1 to 99 percent"},
		{name: "negative canary", alias: function.Alias{Name: "live", Version: 2, CanaryVersion: -3, CanaryWeight: 5}, want: "canary_version -3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.alias.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate(%+v) = %v, want nil", tt.alias, err)
				}
				return
			}
			if !errors.Is(err, function.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate(%+v) = %v, want ErrInvalid saying %q", tt.alias, err, tt.want)
			}
		})
	}
}

func TestAliasServes(t *testing.T) {
	t.Parallel()
	a := function.Alias{Name: "live", Version: 2, CanaryVersion: 3, CanaryWeight: 10}
	if !a.Serves(2) || !a.Serves(3) || a.Serves(1) || a.Serves(0) || !a.HasCanary() {
		t.Errorf("%+v: Serves(2, 3, 1, 0) = %v %v %v %v", a, a.Serves(2), a.Serves(3), a.Serves(1), a.Serves(0))
	}
	b := function.Alias{Name: "live", Version: 2}
	if b.Serves(0) || !b.Serves(2) || b.HasCanary() {
		t.Errorf("%+v: a version-only alias serves 0 or lacks its version", b)
	}
}

func TestParseRef(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ref     string
		alias   string
		version int
	}{
		{"", "live", 0},
		{"live", "live", 0},
		{"beta", "beta", 0},
		{"3", "", 3},
		{"007", "", 7},
		{"0", "", 0},
		{"-1", "", -1},
		{"v3", "v3", 0},
		{"Bad_Name", "Bad_Name", 0}, // not valid: the invoker refuses it
	}
	for _, tt := range tests {
		alias, version := function.ParseRef(tt.ref)
		if alias != tt.alias || version != tt.version {
			t.Errorf("ParseRef(%q) = %q, %d; want %q, %d", tt.ref, alias, version, tt.alias, tt.version)
		}
	}
}
