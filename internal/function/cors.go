package function

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Bounds on a CORS policy.
const (
	MaxCORSEntries = 64
	MaxCORSValue   = 256
	MaxCORSMaxAge  = 24 * time.Hour
)

// CORS is a cross-origin policy, per route or per function, that the
// gateway applies itself: it answers preflight requests without invoking
// the function and adds the Access-Control-* headers to actual responses.
type CORS struct {
	// Origins are the allowed origins ("https://app.example.com"), or "*"
	// for any origin.
	Origins []string `json:"origins"`
	// Methods are the allowed methods; empty allows the CORS-safelisted
	// ones (GET, HEAD, POST).
	Methods []string `json:"methods,omitempty"`
	// Headers are the request headers a preflight may ask for, or "*".
	Headers []string `json:"headers,omitempty"`
	// ExposeHeaders are the response headers a browser shows the page.
	ExposeHeaders []string `json:"expose_headers,omitempty"`
	// Credentials allows cookies and Authorization; it can't go with "*".
	Credentials bool `json:"credentials,omitempty"`
	// MaxAge is how long a browser may cache a preflight answer.
	MaxAge Duration `json:"max_age,omitzero"`
}

// Validate checks a policy; errors name the field and wrap ErrInvalid.
func (c *CORS) Validate() error {
	if len(c.Origins) == 0 {
		return fmt.Errorf("%w: cors.origins is required (origins such as \"https://app.example.com\", or \"*\")", ErrInvalid)
	}
	for _, f := range []struct {
		name string
		list []string
	}{{"origins", c.Origins}, {"methods", c.Methods}, {"headers", c.Headers}, {"expose_headers", c.ExposeHeaders}} {
		if len(f.list) > MaxCORSEntries {
			return fmt.Errorf("%w: cors.%s has %d entries (at most %d)", ErrInvalid, f.name, len(f.list), MaxCORSEntries)
		}
		for _, v := range f.list {
			if v == "" || len(v) > MaxCORSValue {
				return fmt.Errorf("%w: cors.%s entries must be 1 to %d characters", ErrInvalid, f.name, MaxCORSValue)
			}
		}
	}
	for _, o := range c.Origins {
		if o == "*" {
			if c.Credentials {
				return fmt.Errorf("%w: cors.origins \"*\" can't go with cors.credentials: true (browsers refuse it); list the origins", ErrInvalid)
			}
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" ||
			u.Fragment != "" || u.User != nil || strings.ToLower(o) != o {
			return fmt.Errorf("%w: cors.origins %q is not an origin such as \"https://app.example.com\" (lowercase scheme and host, an optional port, no path) or \"*\"", ErrInvalid, o)
		}
	}
	for _, m := range c.Methods {
		if !isToken(m) || m == "*" {
			return fmt.Errorf("%w: cors.methods %q is not an HTTP method such as GET", ErrInvalid, m)
		}
	}
	for _, h := range c.Headers {
		if !isToken(h) {
			return fmt.Errorf("%w: cors.headers %q is not a header name (or \"*\")", ErrInvalid, h)
		}
	}
	for _, h := range c.ExposeHeaders {
		if !isToken(h) {
			return fmt.Errorf("%w: cors.expose_headers %q is not a header name", ErrInvalid, h)
		}
	}
	if t := time.Duration(c.MaxAge); t < 0 || t > MaxCORSMaxAge {
		return fmt.Errorf("%w: cors.max_age %s is out of range (0 to %s)", ErrInvalid, t, MaxCORSMaxAge)
	}
	return nil
}

// isToken reports whether s is an HTTP token (RFC 9110), as method and
// header names are.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// Equal reports whether two policies are the same (nil equals nil only).
func (c *CORS) Equal(o *CORS) bool {
	if c == nil || o == nil {
		return c == o
	}
	eq := func(a, b []string) bool {
		if len(a) != len(b) {
			return false
		}
		for i := range a {
			if a[i] != b[i] {
				return false
			}
		}
		return true
	}
	return eq(c.Origins, o.Origins) && eq(c.Methods, o.Methods) && eq(c.Headers, o.Headers) &&
		eq(c.ExposeHeaders, o.ExposeHeaders) && c.Credentials == o.Credentials && c.MaxAge == o.MaxAge
}
