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

// Route is one entry of a table (the function package's Route).
type Route = function.Route

// MaxRoutes bounds a table.
const MaxRoutes = function.MaxRoutes

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
				return nil, &Error{Index: i, Other: -1, Msg: fmt.Sprintf("path %q is not a valid pattern: %v", function.Short(r.Path), inner)}
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
	// Host names are case-insensitive, and "host." is "host".
	m.req.Method, m.req.Host, m.req.URL, m.req.RequestURI = r.Method, normalHost(r.Host), r.URL, r.RequestURI
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

// normalHost lowers a Host header's name and drops a trailing dot (the
// port, if any, stays: ServeMux strips it).
func normalHost(h string) string {
	name, port := h, ""
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		name, port = h[:i], h[i:]
	}
	name = strings.TrimSuffix(name, ".")
	for i := 0; i < len(name); i++ {
		if c := name[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(name) + port
		}
	}
	return name + port
}
