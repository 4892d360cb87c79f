package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/hostless/hostless/internal/apierror"
	"github.com/hostless/hostless/internal/async"
	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/gateway"
	"github.com/hostless/hostless/internal/store"
)

// Async runs async invocations and keeps their dead letters (the async
// package's Engine).
type Async interface {
	gateway.Async
	Get(ctx context.Context, project, id string) (function.AsyncInvocation, error)
	DeadLetters(ctx context.Context, project, name string, limit int) ([]async.DeadLetter, error)
	Redrive(ctx context.Context, project, name string) (int, error)
}

// AsyncState is how the API shows an async invocation: its state, and the
// function's answer with its body as text when it is UTF-8, else base64.
type AsyncState struct {
	ID          string       `json:"id"`
	Async       bool         `json:"async"`
	Function    string       `json:"function"`
	Qualifier   string       `json:"qualifier,omitempty"`
	Trigger     string       `json:"trigger"`
	Status      string       `json:"status"`
	Attempts    int          `json:"attempts"`
	AcceptedAt  time.Time    `json:"accepted_at"`
	UpdatedAt   time.Time    `json:"updated_at"`
	LastAttempt string       `json:"last_attempt,omitempty"`
	Result      *AsyncResult `json:"result,omitempty"`
	Error       string       `json:"error,omitempty"`
}

// AsyncResult is a function's answer to an async invocation.
type AsyncResult struct {
	Status     int         `json:"status"`
	Header     http.Header `json:"header,omitempty"`
	Body       string      `json:"body,omitempty"`
	BodyBase64 []byte      `json:"body_base64,omitempty"`
}

func asyncView(a function.AsyncInvocation) AsyncState {
	v := AsyncState{ID: a.ID, Async: true, Function: a.Function, Qualifier: a.Qualifier, Trigger: a.Trigger,
		Status: a.Status, Attempts: a.Attempts, AcceptedAt: a.AcceptedAt, UpdatedAt: a.UpdatedAt,
		LastAttempt: a.LastAttempt, Error: a.Error}
	if r := a.Result; r != nil {
		v.Result = &AsyncResult{Status: r.Status, Header: r.Header}
		if utf8.Valid(r.Body) {
			v.Result.Body = string(r.Body)
		} else {
			v.Result.BodyBase64 = r.Body
		}
	}
	return v
}

// getAsync answers GET /v1/invocations/{id} for an async invocation.
func (a *API) getAsync(w http.ResponseWriter, r *http.Request, id string) error {
	if a.cfg.Async == nil {
		return apierror.NotFound("invocation_not_found", "no invocation %q", id)
	}
	st, err := a.cfg.Async.Get(r.Context(), function.DefaultProject, id)
	if errors.Is(err, store.ErrNotFound) {
		return apierror.NotFound("invocation_not_found", "no invocation %q (an async one accepted a moment ago shows within milliseconds)", id)
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, asyncView(st))
}

func (a *API) deadLetters(w http.ResponseWriter, r *http.Request) error {
	if a.cfg.Async == nil {
		return apierror.BadRequest("async invocations are not available on this server")
	}
	name := r.PathValue("name")
	if _, err := a.cfg.Store.GetFunction(r.Context(), function.DefaultProject, name); err != nil {
		return storeErr(name, err)
	}
	limit, err := queryInt(r, "limit", 100, 1000)
	if err != nil {
		return err
	}
	ds, err := a.cfg.Async.DeadLetters(r.Context(), function.DefaultProject, name, limit)
	if err != nil {
		return err
	}
	if ds == nil {
		ds = []async.DeadLetter{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"dead_letters": ds})
}

func (a *API) redrive(w http.ResponseWriter, r *http.Request) error {
	if a.cfg.Async == nil {
		return apierror.BadRequest("async invocations are not available on this server")
	}
	name := r.PathValue("name")
	if _, err := a.cfg.Store.GetFunction(r.Context(), function.DefaultProject, name); err != nil {
		return storeErr(name, err)
	}
	n, err := a.cfg.Async.Redrive(r.Context(), function.DefaultProject, name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]int{"redriven": n})
}

// emit publishes a platform event, if the API was given a bus.
func (a *API) emit(name string, v any) {
	if a.cfg.Emit == nil {
		return
	}
	if b, err := json.Marshal(v); err == nil {
		a.cfg.Emit(name, b)
	}
}
