package function

import (
	"regexp"
	"strings"
	"testing"
)

// dnsLabel is the grammar isDNSLabel implements by hand.
var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// FuzzDNSLabel: the hand-written check agrees with the grammar on any name.
func FuzzDNSLabel(f *testing.F) {
	for _, s := range []string{"", "a", "-", "a-", "-a", "a-b", "A", "hello", "x9", "a_b", "é", strings.Repeat("a", 63), strings.Repeat("a", 64), "a@1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := isDNSLabel(s), dnsLabel.MatchString(s); got != want {
			t.Fatalf("isDNSLabel(%q) = %v, the grammar says %v", s, got, want)
		}
	})
}

// allDigitsRe is what ValidAliasName refuses beyond the DNS label grammar.
var allDigitsRe = regexp.MustCompile(`^[0-9]+$`)

// FuzzAliasName: an alias name is a DNS label that is not a version number,
// and ParseRef reads every valid alias name as that alias.
func FuzzAliasName(f *testing.F) {
	for _, s := range []string{"", "live", "3", "007", "v3", "3-a", "-3", "+3", "beta", "Beta", "a@b", strings.Repeat("9", 63), "0x1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := dnsLabel.MatchString(s) && !allDigitsRe.MatchString(s)
		if got := ValidAliasName(s) == nil; got != want {
			t.Fatalf("ValidAliasName(%q) accepts = %v, the grammar says %v", s, got, want)
		}
		if want {
			if alias, _ := ParseRef(s); alias != s {
				t.Fatalf("ParseRef(%q) = alias %q, want the alias itself", s, alias)
			}
		}
	})
}
