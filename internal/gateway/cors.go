package gateway

import (
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hostless/hostless/internal/apierror"
	"github.com/hostless/hostless/internal/function"
)

// safelistedMethods are what a policy without methods allows: the methods
// a browser sends cross-origin without asking (CORS-safelisted).
const safelistedMethods = "GET, HEAD, POST"

// IsPreflight reports whether r is a CORS preflight request: OPTIONS with
// an Origin and an Access-Control-Request-Method.
func IsPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
}

// allowedOrigin returns what Access-Control-Allow-Origin says to origin
// under c: the origin itself when c lists it, "*" when c allows any origin
// without credentials, or "" when origin is not allowed.
func allowedOrigin(c *function.CORS, origin string) string {
	if origin == "" {
		return ""
	}
	for _, o := range c.Origins {
		switch {
		case o == "*" && !c.Credentials:
			return "*"
		case o == "*":
			// Never every origin with credentials (deploys refuse the
			// policy; this holds even for one that got past them).
			continue
		case strings.EqualFold(o, origin):
			return origin
		}
	}
	return ""
}

// Preflight answers a preflight request under c, without invoking the
// function: 204 with the policy's headers, or 403 naming what the policy
// refuses (the origin, the method or a header).
func Preflight(w http.ResponseWriter, r *http.Request, c *function.CORS) error {
	h := w.Header()
	h.Add("Vary", "Origin")
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	origin := r.Header.Get("Origin")
	allow := allowedOrigin(c, origin)
	if allow == "" {
		return apierror.New(http.StatusForbidden, "cors_forbidden", "origin %q is not allowed (CORS)", function.Short(origin))
	}
	method := r.Header.Get("Access-Control-Request-Method")
	methods := safelistedMethods
	if len(c.Methods) > 0 {
		methods = strings.Join(c.Methods, ", ")
	}
	if !listed(methods, method) {
		return apierror.New(http.StatusForbidden, "cors_forbidden", "method %q is not allowed (CORS); allowed: %s", function.Short(method), methods)
	}
	asked := r.Header.Values("Access-Control-Request-Headers")
	allowHeaders := strings.Join(c.Headers, ", ")
	anyHeader := false
	for _, v := range c.Headers {
		anyHeader = anyHeader || v == "*"
	}
	if anyHeader {
		allowHeaders = strings.Join(asked, ", ")
	} else {
		for _, line := range asked {
			for name := range strings.SplitSeq(line, ",") {
				if name = strings.TrimSpace(name); name != "" && !listed(allowHeaders, name) {
					return apierror.New(http.StatusForbidden, "cors_forbidden", "header %q is not allowed (CORS); allowed: %s", function.Short(name), allowHeaders)
				}
			}
		}
	}
	h.Set("Access-Control-Allow-Origin", allow)
	h.Set("Access-Control-Allow-Methods", methods)
	if allowHeaders != "" {
		h.Set("Access-Control-Allow-Headers", allowHeaders)
	}
	if c.Credentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	if c.MaxAge > 0 {
		h.Set("Access-Control-Max-Age", strconv.FormatInt(int64(time.Duration(c.MaxAge)/time.Second), 10))
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// listed reports whether name is in a comma-separated list, ignoring case.
func listed(list, name string) bool {
	for v := range strings.SplitSeq(list, ",") {
		if strings.EqualFold(strings.TrimSpace(v), name) {
			return true
		}
	}
	return false
}

// applyCORS adds the headers of an actual (not preflight) response under
// c. The policy's headers replace any the function set.
func applyCORS(h http.Header, r *http.Request, c *function.CORS) {
	if c == nil {
		return
	}
	addVary(h, "Origin")
	allow := allowedOrigin(c, r.Header.Get("Origin"))
	if allow == "" {
		// Not the function's to allow either.
		for _, k := range []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Expose-Headers"} {
			h.Del(k)
		}
		return
	}
	h.Set("Access-Control-Allow-Origin", allow)
	if c.Credentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	} else {
		h.Del("Access-Control-Allow-Credentials")
	}
	if len(c.ExposeHeaders) > 0 {
		h.Set("Access-Control-Expose-Headers", strings.Join(c.ExposeHeaders, ", "))
	}
}

// addVary adds name to the Vary header unless it is there already.
func addVary(h http.Header, name string) {
	for _, line := range h.Values("Vary") {
		if listed(line, name) {
			return
		}
	}
	h.Add("Vary", name)
}

// CORSHandler applies c to every request next serves, for APIs a page on
// another origin calls (the backend's): a preflight is answered at once,
// and responses get the Access-Control-* headers.
func CORSHandler(c *function.CORS, next http.Handler, log *slog.Logger) http.Handler {
	preflight := apierror.Wrap(log, func(w http.ResponseWriter, r *http.Request) error { return Preflight(w, r, c) })
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if IsPreflight(r) {
			preflight.ServeHTTP(w, r)
			return
		}
		if r.Header.Get("Origin") != "" {
			applyCORS(w.Header(), r, c)
		}
		next.ServeHTTP(w, r)
	})
}
