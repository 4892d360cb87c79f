// Package apierror is the one error type that renders every HTTP error of
// the platform, on the data plane and the control plane alike:
//
//	{"error": {"code": "function_not_found", "message": "no function named \"resize\""}}
//
// Messages are safe to show: they never carry secrets or internal details.
// Errors that are not *Error render as a 500 with a generic message and are
// logged once, here, at the boundary.
package apierror

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
)

// Error is an HTTP error with a stable code.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	// Header is added to the response (Retry-After, ...).
	Header http.Header `json:"-"`
	// Err is the cause, kept for logs only.
	Err error `json:"-"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }
func (e *Error) Unwrap() error { return e.Err }

// New returns an error with a formatted message.
func New(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Common errors.
func BadRequest(format string, args ...any) *Error {
	return New(http.StatusBadRequest, "bad_request", format, args...)
}

func NotFound(code, format string, args ...any) *Error {
	return New(http.StatusNotFound, code, format, args...)
}

// Write renders err. A nil err writes nothing.
func Write(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	if err == nil {
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		if log != nil {
			log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		e = New(http.StatusInternalServerError, "internal_error", "internal error; the server log has the details")
	}
	h := w.Header()
	for k, vs := range e.Header {
		h[k] = vs
	}
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(map[string]*Error{"error": e})
}

// Handler is an HTTP handler that returns its error.
type Handler func(w http.ResponseWriter, r *http.Request) error

// Wrap adapts h to http.Handler, rendering its error.
func Wrap(log *slog.Logger, h Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		Write(w, r, log, h(w, r))
	})
}
