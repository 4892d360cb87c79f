// Package requestid gives every request of the main server an ID: the
// X-Request-Id the client sent when it is a sane one (a proxy's or a
// caller's, so one ID follows a request across systems), else a new one.
// The response carries it in X-Request-Id, the request's context carries
// it, and the platform's log lines about the request carry it as
// request_id: Handler adds it to every record logged with that context
// (slog's InfoContext, WarnContext, ...).
//
// It knows nothing of the platform's other packages.
package requestid

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
)

// Header is the request's and the response's header.
const Header = "X-Request-Id"

// MaxLen bounds an ID taken from a client.
const MaxLen = 128

// LogKey is the attribute of log records.
const LogKey = "request_id"

// New returns a new ID: 128 random bits in hex.
func New() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Valid reports whether a client's ID is taken as it is: 1 to MaxLen
// letters, digits and - _ . : + / = @ (UUIDs, hex, base64, a proxy's
// "host/ID"), nothing that could forge a log line or a header.
func Valid(id string) bool {
	if id == "" || len(id) > MaxLen {
		return false
	}
	for i := range len(id) {
		switch c := id[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '_', c == '.', c == ':', c == '+', c == '/', c == '=', c == '@':
		default:
			return false
		}
	}
	return true
}

type key struct{}

// With returns ctx carrying id.
func With(ctx context.Context, id string) context.Context { return context.WithValue(ctx, key{}, id) }

// From returns the ID ctx carries, or "".
func From(ctx context.Context) string {
	id, _ := ctx.Value(key{}).(string)
	return id
}

// Middleware gives each request its ID, sets it on the response, and
// passes it on in the request's context and its X-Request-Id (which a
// function then sees too).
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, h := r.Header.Get(Header), r.Header
		if !Valid(id) || len(h.Values(Header)) > 1 {
			id, h = New(), h.Clone() // a handler leaves its request as it came
			h.Set(Header, id)
		}
		w.Header().Set(Header, id)
		r2 := r.WithContext(With(r.Context(), id))
		r2.Header = h
		next.ServeHTTP(w, r2)
	})
}

// Handler adds request_id to the records logged with a context that
// carries an ID.
type Handler struct{ slog.Handler }

// NewHandler wraps h.
func NewHandler(h slog.Handler) *Handler { return &Handler{h} }

// Handle implements slog.Handler.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if id := From(ctx); id != "" {
		r = r.Clone()
		r.AddAttrs(slog.String(LogKey, id))
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler { return &Handler{h.Handler.WithAttrs(as)} }

// WithGroup implements slog.Handler.
func (h *Handler) WithGroup(name string) slog.Handler { return &Handler{h.Handler.WithGroup(name)} }
