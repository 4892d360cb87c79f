package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/hostless/hostless/internal/apierror"
	"github.com/hostless/hostless/internal/function"
)

// Async accepts invocations that run later (the async package's Engine).
type Async interface {
	// EnqueueRef stores an event for what ref names ("name",
	// "name@{version}", "name@{alias}") and returns its ID; an
	// idempotencyKey seen within the window returns the first event's ID.
	EnqueueRef(ctx context.Context, project, ref, trigger string, req *function.Request, idempotencyKey string) (string, error)
}

// Headers of async calls.
const (
	// HeaderInvocationType is RequestResponse (the default: wait for the
	// answer) or Event (answer 202 once the event is stored).
	HeaderInvocationType = "X-Hostless-Invocation-Type"
	// HeaderIdempotencyKey dedupes async calls of a function.
	HeaderIdempotencyKey = "Idempotency-Key"
)

// WithAsync lets callers invoke asynchronously; call it before serving.
func (g *Gateway) WithAsync(a Async) *Gateway {
	g.async = a
	return g
}

// Accepted is the answer to an async call.
type Accepted struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	StatusURL string `json:"status_url"`
}

// InvocationType reads X-Hostless-Invocation-Type: whether the call is
// async, or a 400 naming the accepted values.
func InvocationType(h http.Header) (bool, error) {
	switch t := h.Get(HeaderInvocationType); t {
	case "", "RequestResponse":
		return false, nil
	case "Event":
		return true, nil
	default:
		return false, apierror.BadRequest("%s %q: want RequestResponse (wait for the answer) or Event (run later; answers 202)", HeaderInvocationType, t)
	}
}

// Enqueue accepts an async call of ref and answers 202 with its ID.
func Enqueue(w http.ResponseWriter, r *http.Request, a Async, ref, trigger string, req *function.Request) error {
	if a == nil {
		return apierror.BadRequest("async invocations are not available on this server")
	}
	key := r.Header.Get(HeaderIdempotencyKey)
	if len(key) > 256 {
		return apierror.BadRequest("%s is longer than 256 bytes", HeaderIdempotencyKey)
	}
	req.Header = req.Header.Clone()
	req.Header.Del(HeaderInvocationType)
	id, err := a.EnqueueRef(r.Context(), function.DefaultProject, ref, trigger, req, key)
	if err != nil {
		return EnqueueError(ref, err)
	}
	w.Header().Set("X-Hostless-Invocation-Id", id)
	w.Header().Set("Location", "/v1/invocations/"+id)
	w.Header().Set("Content-Type", "application/json")
	b, _ := json.Marshal(Accepted{ID: id, Status: function.StatusQueued, StatusURL: "/v1/invocations/" + id})
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(append(b, '\n'))
	return nil
}

// EnqueueError maps an Enqueue error to its HTTP error.
func EnqueueError(ref string, err error) error {
	switch {
	case errors.Is(err, function.ErrNotFound), errors.Is(err, function.ErrVersionNotFound),
		errors.Is(err, function.ErrAliasNotFound), errors.Is(err, function.ErrUnavailable), errors.Is(err, function.ErrThrottled):
		return InvokeError(ref, err)
	case tooLargeEvent(err):
		return apierror.New(http.StatusRequestEntityTooLarge, "request_too_large", "%v", err)
	case errors.Is(err, function.ErrInvalid):
		return apierror.BadRequest("%v", err)
	case errors.Is(err, context.Canceled):
		return apierror.New(499, "client_closed_request", "the client went away")
	}
	e := apierror.New(http.StatusServiceUnavailable, "bus_unavailable", "the event could not be stored; nothing was queued: retry shortly")
	e.Header = http.Header{"Retry-After": {"1"}}
	return e
}

// tooLargeEvent reports whether err says an event is larger than the bus
// takes.
func tooLargeEvent(err error) bool {
	tl, ok := errors.AsType[interface {
		error
		TooLarge() bool
	}](err)
	return ok && tl.TooLarge()
}
