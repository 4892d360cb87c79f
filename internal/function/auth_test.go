package function_test

import (
	"net/http"
	"testing"

	"github.com/hostless/hostless/internal/function"
)

func TestStripIdentityEverySpelling(t *testing.T) {
	t.Parallel()
	h := http.Header{
		"X-Hostless-User-Id":    {"canonical"},
		"x-hostless-user-email": {"lower case"},
		"X-Hostless-User_Id":    {"underscore"},
		"X_HOSTLESS_USER_ROLES": {"underscores"},
		"X-Hostless-Caller":     {"admin"},
		"x_hostless_caller":     {"admin"},
		"X-HOSTLESS-TOKEN":      {"forged"},
		"X-Hostless-Token_":     {"kept: not a name the gateway sets"},
		"X-Request-Id":          {"kept"},
	}
	function.StripIdentity(h)
	want := map[string]bool{"X-Hostless-Token_": true, "X-Request-Id": true}
	for k := range h {
		if !want[k] {
			t.Errorf("header %q survived", k)
		}
	}
	if len(h) != len(want) {
		t.Errorf("left %v; want only %v", h, want)
	}
}
