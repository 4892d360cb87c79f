package auth

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hostless/hostless/internal/apierror"
)

// RPS is a request rate per second with a burst; Burst < 0 turns the
// limit off.
type RPS struct {
	Rate  float64 `yaml:"rate" json:"rate"`
	Burst int     `yaml:"burst" json:"burst"`
}

func (r RPS) throttle(def RPS) *Throttle {
	if r.Burst < 0 {
		return nil
	}
	if r.Burst == 0 {
		r.Burst = def.Burst
	}
	if r.Rate <= 0 {
		r.Rate = def.Rate
	}
	return NewThrottle(r.Rate, r.Burst, 0)
}

// RequestLimits are the abuse limits of every backend endpoint. Defaults:
// 1,000 requests/s per IP (burst 2,000), 200/s per user (burst 400),
// 2,000/s per API key (burst 4,000). The admin is not limited.
type RequestLimits struct {
	PerIP   RPS `yaml:"per_ip" json:"per_ip"`
	PerUser RPS `yaml:"per_user" json:"per_user"`
	PerKey  RPS `yaml:"per_key" json:"per_key"`
}

// ClientIP is the host of a request's RemoteAddr. Forwarded headers are
// not trusted: behind a proxy, every client shares the proxy's limits.
func ClientIP(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

// Bearer returns the request's bearer credential, or "".
func Bearer(r *http.Request) string {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return strings.TrimSpace(tok)
}

// Caller applies the per-IP limit, authenticates the request's bearer
// credential, and applies the per-user or per-key limit: what every
// backend endpoint does first. A request without a credential is the
// anonymous principal; a wrong one is a 401, never anonymous.
func (s *Service) Caller(r *http.Request) (Principal, error) {
	now := time.Now()
	if ok, wait := s.reqIP.Allow(ClientIP(r), now); !ok {
		return Principal{}, tooMany("requests from this address", wait)
	}
	p, err := s.Authenticate(r.Context(), Bearer(r))
	if errors.Is(err, ErrInvalidToken) {
		s.cfg.Log.DebugContext(r.Context(), "refused a credential", "err", err)
		e := apierror.New(http.StatusUnauthorized, "invalid_token", "the bearer token is not valid or has expired; refresh it or log in again")
		e.Header = http.Header{"Www-Authenticate": {`Bearer realm="hostless", error="invalid_token"`}}
		return Principal{}, e
	}
	if err != nil {
		return Principal{}, err
	}
	var t *Throttle
	switch p.Kind {
	case User:
		t = s.reqUser
	case Key:
		t = s.reqKey
	}
	if t != nil {
		if ok, wait := t.Allow(string(p.Kind)+":"+p.ID, now); !ok {
			return Principal{}, tooMany("requests for this account", wait)
		}
	}
	return p, nil
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal ctx carries, or the anonymous one.
func FromContext(ctx context.Context) Principal {
	if p, ok := ctx.Value(principalKey{}).(Principal); ok {
		return p
	}
	return Principal{Kind: Anonymous}
}

// maxAuthBody bounds an auth request's JSON body.
const maxAuthBody = 16 << 10

func decode(w http.ResponseWriter, r *http.Request, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxAuthBody)
	d := json.NewDecoder(r.Body)
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return apierror.New(http.StatusRequestEntityTooLarge, "body_too_large", "the body is over %d bytes", maxAuthBody)
		}
		if errors.Is(err, io.EOF) {
			return apierror.BadRequest("send a JSON object")
		}
		return apierror.BadRequest("body: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}

func reply(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// Register adds the auth endpoints to mux.
func (s *Service) Register(mux *http.ServeMux, log *slog.Logger) {
	h := func(pattern string, fn apierror.Handler) { mux.Handle(pattern, apierror.Wrap(log, fn)) }
	// Endpoints for anyone, each limited per IP.
	h("POST /v1/auth/signup", s.public(s.handleSignup))
	h("POST /v1/auth/login", s.public(s.handleLogin))
	h("POST /v1/auth/refresh", s.public(s.handleRefresh))
	h("POST /v1/auth/logout", s.public(s.handleLogout))
	h("POST /v1/auth/verify", s.public(s.handleVerify))
	h("POST /v1/auth/reset/request", s.public(s.handleResetRequest))
	h("POST /v1/auth/reset", s.public(s.handleReset))
	h("GET /v1/auth/jwks", s.handleJWKS)
	h("GET /.well-known/jwks.json", s.handleJWKS)
	h("GET /v1/auth/providers", s.public(s.handleProviders))
	h("GET /v1/auth/oidc/{provider}/start", s.public(s.handleOIDCStart))
	h("GET /v1/auth/oidc/{provider}/callback", s.public(s.handleOIDCCallback))
	// A signed-in user.
	h("GET /v1/auth/me", s.signedIn(s.handleMe))
	h("POST /v1/auth/verify/request", s.signedIn(s.handleVerifyRequest))
	// Admins.
	h("GET /v1/users", s.admin(s.handleListUsers))
	h("POST /v1/users", s.admin(s.handleCreateUser))
	h("GET /v1/users/{id}", s.admin(s.handleGetUser))
	h("PATCH /v1/users/{id}", s.admin(s.handleUpdateUser))
	h("GET /v1/auth/keys", s.admin(s.handleListKeys))
	h("POST /v1/auth/keys", s.admin(s.handleCreateKey))
	h("DELETE /v1/auth/keys/{id}", s.admin(s.handleDeleteKey))
	h("GET /v1/auth/outbox", s.admin(s.handleOutbox))
}

func (s *Service) public(fn apierror.Handler) apierror.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if ok, wait := s.reqIP.Allow(ClientIP(r), time.Now()); !ok {
			return tooMany("requests from this address", wait)
		}
		return fn(w, r)
	}
}

func (s *Service) withCaller(fn apierror.Handler, allow func(Principal) error) apierror.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, err := s.Caller(r)
		if err != nil {
			return err
		}
		if err := allow(p); err != nil {
			return err
		}
		return fn(w, r.WithContext(WithPrincipal(r.Context(), p)))
	}
}

func (s *Service) signedIn(fn apierror.Handler) apierror.Handler {
	return s.withCaller(fn, func(p Principal) error {
		if p.Kind != User {
			e := apierror.New(http.StatusUnauthorized, "unauthorized", "sign in: send a user's access token as \"Authorization: Bearer <token>\"")
			e.Header = http.Header{"Www-Authenticate": {`Bearer realm="hostless"`}}
			return e
		}
		return nil
	})
}

func (s *Service) admin(fn apierror.Handler) apierror.Handler {
	return s.withCaller(fn, func(p Principal) error {
		switch {
		case p.Kind == Anonymous:
			e := apierror.New(http.StatusUnauthorized, "unauthorized", "send the admin key, an admin's access token or an API key with the admin scope as \"Authorization: Bearer <token>\"")
			e.Header = http.Header{"Www-Authenticate": {`Bearer realm="hostless"`}}
			return e
		case !p.IsAdmin():
			return apierror.New(http.StatusForbidden, "forbidden", "this needs an admin")
		}
		return nil
	})
}

type credentials struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

func (s *Service) handleSignup(w http.ResponseWriter, r *http.Request) error {
	var c credentials
	if err := decode(w, r, &c); err != nil {
		return err
	}
	t, err := s.Signup(r.Context(), c.Email, c.Password, ClientIP(r))
	if err != nil {
		return err
	}
	return reply(w, http.StatusCreated, t)
}

func (s *Service) handleLogin(w http.ResponseWriter, r *http.Request) error {
	var c credentials
	if err := decode(w, r, &c); err != nil {
		return err
	}
	t, err := s.Login(r.Context(), c.Email, c.Password, ClientIP(r))
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, t)
}

type refreshBody struct {
	RefreshToken string `json:"refresh_token"`
}

func (s *Service) handleRefresh(w http.ResponseWriter, r *http.Request) error {
	var b refreshBody
	if err := decode(w, r, &b); err != nil {
		return err
	}
	t, err := s.Refresh(r.Context(), b.RefreshToken)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, t)
}

func (s *Service) handleLogout(w http.ResponseWriter, r *http.Request) error {
	var b refreshBody
	if err := decode(w, r, &b); err != nil {
		return err
	}
	if err := s.Logout(r.Context(), b.RefreshToken); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type tokenBody struct {
	Token    string `json:"token"`
	Password string `json:"password,omitempty"`
	Email    string `json:"email,omitempty"`
}

func (s *Service) handleVerify(w http.ResponseWriter, r *http.Request) error {
	var b tokenBody
	if err := decode(w, r, &b); err != nil {
		return err
	}
	u, err := s.Verify(r.Context(), b.Token)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, u)
}

func (s *Service) handleResetRequest(w http.ResponseWriter, r *http.Request) error {
	var b tokenBody
	if err := decode(w, r, &b); err != nil {
		return err
	}
	if err := s.RequestReset(r.Context(), b.Email, ClientIP(r)); err != nil {
		return err
	}
	return reply(w, http.StatusAccepted, map[string]string{"status": "if an account has that address, a reset token is on its way"})
}

func (s *Service) handleReset(w http.ResponseWriter, r *http.Request) error {
	var b tokenBody
	if err := decode(w, r, &b); err != nil {
		return err
	}
	if err := s.Reset(r.Context(), b.Token, b.Password); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) handleJWKS(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	return json.NewEncoder(w).Encode(map[string]any{"keys": s.JWKS()})
}

func (s *Service) handleMe(w http.ResponseWriter, r *http.Request) error {
	u, err := s.User(r.Context(), FromContext(r.Context()).ID)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, u)
}

func (s *Service) handleVerifyRequest(w http.ResponseWriter, r *http.Request) error {
	if err := s.RequestVerification(r.Context(), FromContext(r.Context()).ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (s *Service) handleListUsers(w http.ResponseWriter, r *http.Request) error {
	limit := 0
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return apierror.BadRequest("limit: want a positive integer")
		}
		limit = n
	}
	after := r.URL.Query().Get("after")
	if len(after) > maxEmailBytes {
		return apierror.BadRequest("after: at most %d bytes", maxEmailBytes)
	}
	us, err := s.ListUsers(r.Context(), after, limit)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, map[string]any{"users": us})
}

type newUser struct {
	Email    string   `json:"email"`
	Password string   `json:"password"`
	Roles    []string `json:"roles"`
}

func (s *Service) handleCreateUser(w http.ResponseWriter, r *http.Request) error {
	var b newUser
	if err := decode(w, r, &b); err != nil {
		return err
	}
	u, err := s.CreateUser(r.Context(), b.Email, b.Password, b.Roles)
	if err != nil {
		return err
	}
	return reply(w, http.StatusCreated, u)
}

func (s *Service) handleGetUser(w http.ResponseWriter, r *http.Request) error {
	u, err := s.User(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, u)
}

func (s *Service) handleUpdateUser(w http.ResponseWriter, r *http.Request) error {
	var c UserChange
	if err := decode(w, r, &c); err != nil {
		return err
	}
	u, err := s.UpdateUser(r.Context(), r.PathValue("id"), c)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, u)
}

func (s *Service) handleListKeys(w http.ResponseWriter, r *http.Request) error {
	ks, err := s.ListAPIKeys(r.Context())
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, map[string]any{"keys": ks})
}

type newKey struct {
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
}

func (s *Service) handleCreateKey(w http.ResponseWriter, r *http.Request) error {
	var b newKey
	if err := decode(w, r, &b); err != nil {
		return err
	}
	k, err := s.CreateAPIKey(r.Context(), b.Name, b.Scopes)
	if err != nil {
		return err
	}
	return reply(w, http.StatusCreated, k)
}

func (s *Service) handleDeleteKey(w http.ResponseWriter, r *http.Request) error {
	if err := s.DeleteAPIKey(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) handleOutbox(w http.ResponseWriter, r *http.Request) error {
	ms, err := s.Outbox(r.Context(), 50)
	if err != nil {
		return err
	}
	type mail struct {
		To        string    `json:"to"`
		Subject   string    `json:"subject"`
		Body      string    `json:"body"`
		CreatedAt time.Time `json:"created_at"`
	}
	out := make([]mail, len(ms))
	for i, m := range ms {
		out[i] = mail{To: m.To, Subject: m.Subject, Body: m.Body, CreatedAt: m.CreatedAt}
	}
	return reply(w, http.StatusOK, map[string]any{"mail": out})
}
