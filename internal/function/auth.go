package function

import (
	"net/http"
	"strings"
)

// Auth modes of a function URL (Spec.Auth) and of a route (Route.Auth):
// who may call. The gateway verifies the caller's bearer credential and
// passes the verified identity to the function; a function never sees an
// unverified one.
const (
	// AuthPublic (the default): anyone; a valid credential still
	// identifies its caller to the function.
	AuthPublic = "public"
	// AuthUser: a signed-in user of the app.
	AuthUser = "user"
	// AuthAdmin: the platform's admin (key, admin user, admin-scoped key).
	AuthAdmin = "admin"
	// AuthKeyPrefix starts "key:SCOPE": an API key holding SCOPE (or an
	// admin).
	AuthKeyPrefix = "key:"
)

// ValidateAuth checks an auth mode: "", public, user, admin or key:SCOPE.
func ValidateAuth(mode string) error {
	switch mode {
	case "", AuthPublic, AuthUser, AuthAdmin:
		return nil
	}
	if scope, ok := strings.CutPrefix(mode, AuthKeyPrefix); ok && validScope(scope) {
		return nil
	}
	return invalid("auth %q: want public, user, admin or key:SCOPE (a scope such as db:read)", Short(mode))
}

func validScope(s string) bool {
	if s == "" || len(s) > 100 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == ':' || c == '_' || c == '-' || c == '*') {
			return false
		}
	}
	return true
}

// Identity is a verified caller, as a function receives it.
type Identity struct {
	// Kind is user, key, admin or function.
	Kind   string
	ID     string
	Email  string
	Roles  []string
	Scopes []string
}

// The headers that carry the verified identity to a function. The gateway
// removes whatever a client sent under these names before it sets them.
const (
	HeaderCaller    = "X-Hostless-Caller" // the kind: user, key, admin or anonymous
	HeaderUserID    = "X-Hostless-User-Id"
	HeaderUserEmail = "X-Hostless-User-Email"
	HeaderUserRoles = "X-Hostless-User-Roles" // comma-separated
	// HeaderToken is a short-lived token for the platform's APIs: the
	// signed-in user's identity (their rules apply), or the function's own
	// when no user called.
	HeaderToken = "X-Hostless-Token"
)

// StripIdentity removes identity headers a client may have forged, in
// any spelling: any case, and _ for - (a Lambda event keeps
// "x-hostless-user_id" apart, but CGI-style adapters such as WSGI map it
// onto the same variable as the real header).
func StripIdentity(h http.Header) {
	for k := range h {
		n := strings.ReplaceAll(strings.ToLower(k), "_", "-")
		if strings.HasPrefix(n, "x-hostless-user-") || n == "x-hostless-caller" || n == "x-hostless-token" {
			delete(h, k)
		}
	}
}

// SetIdentity sets the identity headers of a verified caller (nil: an
// anonymous one) and the function's token.
func SetIdentity(h http.Header, id *Identity, token string) {
	if id == nil {
		h.Set(HeaderCaller, "anonymous")
	} else {
		h.Set(HeaderCaller, id.Kind)
		if id.ID != "" {
			h.Set(HeaderUserID, id.ID)
		}
		if id.Email != "" {
			h.Set(HeaderUserEmail, id.Email)
		}
		if len(id.Roles) > 0 {
			h.Set(HeaderUserRoles, strings.Join(id.Roles, ","))
		}
	}
	if token != "" {
		h.Set(HeaderToken, token)
	}
}

// HeaderCallDepth counts the calls between functions that led to a
// request: a function's call through its platform endpoint carries its own
// call's depth plus one. The gateway refuses a depth over MaxCallDepth
// (508), as Lambda stops recursive loops: a chain of calls that loops back
// on itself ends there instead of running forever.
const HeaderCallDepth = "X-Hostless-Call-Depth"

// MaxCallDepth is the deepest chain of calls between functions.
const MaxCallDepth = 16

// CallDepth reads a request's call depth (0 when absent or malformed).
func CallDepth(h http.Header) int {
	v := h.Get(HeaderCallDepth)
	if v == "" || len(v) > 4 {
		return 0
	}
	n := 0
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0
		}
		n = n*10 + int(v[i]-'0')
	}
	return n
}
