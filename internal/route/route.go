// Package route is the gateway's table of custom routes: API-gateway style
// entries ("GET /api/users/{id}" on an optional host) that send requests to
// a function. Compile validates a whole table and builds one
// net/http.ServeMux from it, so a route's pattern means exactly what it
// means to the standard library (the most specific pattern wins; {name}
// matches one segment, a trailing {rest...} the rest of the path), and a
// table whose patterns conflict is refused with both routes named.
//
// Package route must never import the store, the runtimes or the invoker:
// it knows routes and HTTP requests, nothing else.
package route

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/hostless/hostless/internal/function"
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

// Reserved are the path prefixes the platform serves itself: a route under
// one of them could never be reached.
var Reserved = []string{"/v1", "/fn", "/2015-03-31", "/healthz", "/readyz", "/metrics"}

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
	CORS *function.CORS `json:"cors,omitempty"`
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
// Errors wrap function.ErrInvalid and name the field.
func (r *Route) Validate() error {
	if m := r.Method; m != "" && m != AnyMethod {
		if len(m) > maxMethod || !upperToken(m) {
			return invalid("method %q must be an HTTP method in capitals such as GET, or ANY", short(m))
		}
	}
	p := r.Path
	switch {
	case p == "":
		return invalid("path is required, such as /api/users/{id}")
	case len(p) > MaxPathBytes:
		return invalid("path is %d bytes (at most %d)", len(p), MaxPathBytes)
	case p[0] != '/':
		return invalid("path %q must start with /", short(p))
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c == 0x7f || c == '?' || c == '#' {
			return invalid("path %q may not hold spaces, control characters, ? or #", short(p))
		}
	}
	if strings.Contains(p, "//") || strings.Contains(p+"/", "/./") || strings.Contains(p+"/", "/../") {
		return invalid("path %q must be a clean path, without //, /./ or /../ (no request could match it)", short(p))
	}
	for _, pre := range Reserved {
		if p == pre || strings.HasPrefix(p, pre+"/") {
			return invalid("path %q is under %s, which the platform serves itself (reserved: %s)", short(p), pre, strings.Join(Reserved, ", "))
		}
	}
	if h := r.Host; h != "" {
		if len(h) > MaxHostBytes || !hostName(h) {
			return invalid("host %q must be a lowercase host name such as api.example.com, without a port", short(h))
		}
	}
	if r.Function == "" {
		return invalid("function is required: name, name@alias or name@N")
	}
	name, at, pinned := strings.Cut(r.Function, "@")
	if function.ValidName(name) != nil {
		return invalid("function %q does not name a function: name, name@alias or name@N, where name is a DNS label", short(r.Function))
	}
	if pinned {
		alias, version := function.ParseRef(at)
		if alias == "" && version < 1 || alias != "" && function.ValidAliasName(alias) != nil {
			return invalid("function %q: after @ comes an alias (a DNS label) or a version number from 1", short(r.Function))
		}
	}
	if r.CORS != nil {
		if err := r.CORS.Validate(); err != nil {
			return err
		}
	}
	return nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", function.ErrInvalid, fmt.Sprintf(format, args...))
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

func short(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// Error is a problem with one route of a table (or two, for a conflict).
// It wraps function.ErrInvalid.
type Error struct {
	Index int    // the route's index in the table
	Other int    // the index of the route it conflicts with, or -1
	Msg   string // names the field or both patterns
}

func (e *Error) Error() string { return fmt.Sprintf("routes[%d]: %s", e.Index, e.Msg) }

// Unwrap returns function.ErrInvalid.
func (e *Error) Unwrap() error { return function.ErrInvalid }

// Table is a compiled route table. It is immutable and safe for concurrent
// use; a new table replaces an old one whole.
type Table struct {
	routes  []Route
	entries []entry
	mux     *http.ServeMux
	pool    sync.Pool // of *matcher
}

// entry is the handler registered for one route: matching it records it.
type entry struct {
	route  *Route
	params []string // wildcard names, in order
}

func (e *entry) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	if m, ok := w.(*matcher); ok {
		m.hit = e
	}
}

// matcher is what Match lends the mux: a copy of the request, which the mux
// marks with the pattern it matched, and a writer that records the route.
// Any other handler the mux picks (a redirect, a 405) writes into it and
// is ignored.
type matcher struct {
	req    http.Request
	hit    *entry
	header http.Header
}

func (m *matcher) Header() http.Header         { return m.header }
func (m *matcher) Write(p []byte) (int, error) { return len(p), nil }
func (m *matcher) WriteHeader(int)             {}

// Compile validates routes and compiles them. The table keeps its own copy.
// Errors are *Error values: the first invalid route, or the first pair of
// routes whose patterns conflict (the same requests would match both and
// neither is more specific), naming both.
func Compile(routes []Route) (*Table, error) {
	if len(routes) > MaxRoutes {
		return nil, fmt.Errorf("%w: %d routes (at most %d)", function.ErrInvalid, len(routes), MaxRoutes)
	}
	t := &Table{routes: make([]Route, len(routes)), entries: make([]entry, len(routes)), mux: http.NewServeMux()}
	copy(t.routes, routes)
	for i := range t.routes {
		r := &t.routes[i]
		if err := r.Validate(); err != nil {
			return nil, &Error{Index: i, Other: -1, Msg: strings.TrimPrefix(err.Error(), function.ErrInvalid.Error()+": ")}
		}
		t.entries[i] = entry{route: r, params: wildcards(r.Path)}
		if err := register(t.mux, r.Pattern(), &t.entries[i]); err != nil {
			if inner := errors.Unwrap(err); inner != nil {
				return nil, &Error{Index: i, Other: -1, Msg: fmt.Sprintf("path %q is not a valid pattern: %v", short(r.Path), inner)}
			}
			j := t.conflicting(i)
			why := ""
			if _, d, ok := strings.Cut(err.Error(), ":\n"); ok {
				why = ": " + d
			}
			return nil, &Error{Index: i, Other: j, Msg: fmt.Sprintf("%q conflicts with routes[%d] %q%s",
				r.Pattern(), j, t.routes[j].Pattern(), why)}
		}
	}
	// A catch-all that matches nothing: an unmatched request ends here
	// rather than in ServeMux's 404, 405 and redirect handlers, which cost
	// more than a match. A route of any method for "/" or "/{rest...}"
	// catches all itself, and the catch-all then conflicts with it.
	_ = register(t.mux, "/", &entry{})
	t.pool.New = func() any { return &matcher{header: make(http.Header)} }
	return t, nil
}

// register adds a pattern to mux, turning ServeMux's panic on a bad or
// conflicting pattern into an error.
func register(mux *http.ServeMux, pattern string, h http.Handler) (err error) {
	defer func() {
		if v := recover(); v != nil {
			if e, ok := v.(error); ok {
				err = e
			} else {
				err = fmt.Errorf("%v", v)
			}
		}
	}()
	mux.Handle(pattern, h)
	return nil
}

// conflicting finds the earlier route that route i conflicts with, by
// registering the pair alone: only a failing Compile pays for it.
func (t *Table) conflicting(i int) int {
	for j := range i {
		mux := http.NewServeMux()
		_ = register(mux, t.routes[j].Pattern(), http.NotFoundHandler())
		if register(mux, t.routes[i].Pattern(), http.NotFoundHandler()) != nil {
			return j
		}
	}
	return -1 // not reached: ServeMux only conflicts pairs
}

// wildcards returns the names of a valid pattern path's wildcards.
func wildcards(path string) []string {
	var names []string
	for seg := range strings.SplitSeq(path, "/") {
		if len(seg) < 3 || seg[0] != '{' || seg[len(seg)-1] != '}' {
			continue
		}
		name := strings.TrimSuffix(seg[1:len(seg)-1], "...")
		if name != "$" {
			names = append(names, name)
		}
	}
	return names
}

// Routes returns the table's routes, in order. The caller must not modify
// them.
func (t *Table) Routes() []Route { return t.routes }

// Len is the number of routes.
func (t *Table) Len() int { return len(t.routes) }

// Match finds the route for r, by ServeMux's rules, and the values of its
// path parameters (nil when it has none). It reports false when no route
// matches r's method, host and path (or r's path needs cleaning first).
func (t *Table) Match(r *http.Request) (*Route, map[string]string, bool) {
	if t == nil || len(t.routes) == 0 {
		return nil, nil, false
	}
	m := t.pool.Get().(*matcher)
	// Only what ServeMux reads: copying the whole request costs more than
	// the match.
	m.req.Method, m.req.Host, m.req.URL, m.req.RequestURI = r.Method, r.Host, r.URL, r.RequestURI
	t.mux.ServeHTTP(m, &m.req)
	e := m.hit
	if e != nil && e.route == nil {
		e = nil // the catch-all
	}
	var params map[string]string
	if e != nil && len(e.params) > 0 {
		params = make(map[string]string, len(e.params))
		for _, name := range e.params {
			params[name] = m.req.PathValue(name)
		}
	}
	m.req.URL = nil
	m.hit = nil
	if len(m.header) > 0 {
		clear(m.header)
	}
	t.pool.Put(m)
	if e == nil {
		return nil, nil, false
	}
	return e.route, params, true
}
