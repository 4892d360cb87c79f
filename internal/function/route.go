package function

import (
	"fmt"
	"strings"
)

// Bounds on a route table.
const (
	MaxRoutes    = 1000
	MaxPathBytes = 1024
	MaxHostBytes = 253
	maxMethod    = 32
)

// AnyMethod is how a route of any method is written; an empty method means
// the same.
const AnyMethod = "ANY"

// Reserved are the path prefixes the platform serves itself: no route may
// be under one of them, and the gateway never gives a request under one
// to a route (a catch-all route included), whatever its method.
var Reserved = []string{"/v1", "/fn", "/2015-03-31", "/healthz", "/readyz", "/metrics", "/console"}

// IsReserved reports whether path is one of Reserved or under one.
func IsReserved(path string) bool {
	for _, pre := range Reserved {
		if path == pre || strings.HasPrefix(path, pre+"/") {
			return true
		}
	}
	return false
}

// paramName reports whether s is an ASCII identifier.
func paramName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// Route sends the requests that match Method, Host and Path to Function.
type Route struct {
	// Method is an HTTP method in capitals (GET also matches HEAD), or ANY
	// or empty for any method.
	Method string `json:"method,omitempty"`
	// Path is a net/http.ServeMux path pattern: /api/users/{id},
	// /static/{rest...}, /exact/{$}; a path ending in / matches its subtree.
	Path string `json:"path"`
	// Host, when set, limits the route to requests for that host
	// (api.example.com, without a port); host routes win over others.
	Host string `json:"host,omitempty"`
	// Function is what the route invokes: "name" (its live alias),
	// "name@alias" or "name@N" (version N).
	Function string `json:"function"`
	// CORS, when set, is the route's cross-origin policy; otherwise the
	// function's applies, if it has one.
	CORS *CORS `json:"cors,omitempty"`
	// Auth is who may call through the route: public, user, admin or
	// key:SCOPE (see ValidateAuth); empty takes the function's.
	Auth string `json:"auth,omitempty"`
}

// Key is the route as API Gateway's routeKey writes it: "GET /path", or
// "ANY /path" for any method. A host route's key has no host, as in API
// Gateway, where the host is the API's domain.
func (r *Route) Key() string {
	m := r.Method
	if m == "" {
		m = AnyMethod
	}
	return m + " " + r.Path
}

// Pattern is the route's net/http.ServeMux pattern: "[METHOD ][HOST]/PATH".
func (r *Route) Pattern() string {
	var b strings.Builder
	if r.Method != "" && r.Method != AnyMethod {
		b.WriteString(r.Method)
		b.WriteByte(' ')
	}
	b.WriteString(r.Host)
	b.WriteString(r.Path)
	return b.String()
}

// FunctionName is the name part of Function ("resize" of "resize@live").
func (r *Route) FunctionName() string {
	name, _, _ := strings.Cut(r.Function, "@")
	return name
}

// Validate checks one route on its own; Compile checks the table as a whole.
// Errors wrap ErrInvalid and name the field.
func (r *Route) Validate() error {
	if m := r.Method; m != "" && m != AnyMethod {
		if len(m) > maxMethod || !upperToken(m) {
			return invalid("method %q must be an HTTP method in capitals such as GET, or ANY", Short(m))
		}
	}
	p := r.Path
	switch {
	case p == "":
		return invalid("path is required, such as /api/users/{id}")
	case len(p) > MaxPathBytes:
		return invalid("path is %d bytes (at most %d)", len(p), MaxPathBytes)
	case p[0] != '/':
		return invalid("path %q must start with /", Short(p))
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c == 0x7f || c == '?' || c == '#' || c == '%' {
			// '%': ServeMux unescapes a pattern's literal segments, so an
			// escape could spell a reserved path ("/%68ealthz").
			return invalid("path %q may not hold spaces, control characters, %%, ? or #", Short(p))
		}
	}
	seen := map[string]bool{}
	for _, seg := range strings.Split(p, "/") {
		name, ok := strings.CutPrefix(seg, "{")
		if !ok {
			continue
		}
		name = strings.TrimSuffix(strings.TrimSuffix(name, "}"), "...")
		if name == "$" {
			continue
		}
		if !paramName(name) {
			return invalid("path %q: parameter {%s} must be a name of ASCII letters, digits and '_', not starting with a digit", Short(p), Short(name))
		}
		if up := strings.ToUpper(name); seen[up] {
			return invalid("path %q names the parameter %s twice (letter case aside: CGI modules see HOSTLESS_PATH_%s)", Short(p), name, up)
		} else {
			seen[up] = true
		}
	}
	if strings.Contains(p, "//") || strings.Contains(p+"/", "/./") || strings.Contains(p+"/", "/../") {
		return invalid("path %q must be a clean path, without //, /./ or /../ (no request could match it)", Short(p))
	}
	for _, pre := range Reserved {
		if p == pre || strings.HasPrefix(p, pre+"/") {
			return invalid("path %q is under %s, which the platform serves itself (reserved: %s)", Short(p), pre, strings.Join(Reserved, ", "))
		}
	}
	if h := r.Host; h != "" {
		if len(h) > MaxHostBytes || !hostName(h) {
			return invalid("host %q must be a lowercase host name such as api.example.com, without a port", Short(h))
		}
	}
	if r.Function == "" {
		return invalid("function is required: name, name@alias or name@N")
	}
	name, at, pinned := strings.Cut(r.Function, "@")
	if ValidName(name) != nil {
		return invalid("function %q does not name a function: name, name@alias or name@N, where name is a DNS label", Short(r.Function))
	}
	if pinned {
		alias, version := ParseRef(at)
		if alias == "" && version < 1 || alias != "" && ValidAliasName(alias) != nil {
			return invalid("function %q: after @ comes an alias (a DNS label) or a version number from 1", Short(r.Function))
		}
	}
	if r.CORS != nil {
		if err := r.CORS.Validate(); err != nil {
			return err
		}
	}
	return ValidateAuth(r.Auth)
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

func upperToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'A' && c <= 'Z' || c == '-' || c == '_') {
			return false
		}
	}
	return s != ""
}

func hostName(s string) bool {
	if s[0] == '.' || s[0] == '-' || s[len(s)-1] == '.' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return !strings.Contains(s, "..")
}

// Short truncates s for a message.
func Short(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
