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
