package gateway

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/hostless/hostless/internal/apierror"
	"github.com/hostless/hostless/internal/baas/auth"
	"github.com/hostless/hostless/internal/function"
)

// Authenticator verifies callers and mints the tokens functions get.
type Authenticator interface {
	Authenticate(ctx context.Context, credential string) (auth.Principal, error)
	FunctionToken(fn string, p auth.Principal) (string, error)
}

// WithAuth makes the gateway verify callers (auth modes, identities);
// without it, only public functions and routes are served.
func (g *Gateway) WithAuth(a Authenticator) *Gateway {
	g.auth = a
	return g
}

// identify applies an auth mode to r and passes the verified identity to
// the function in req: the identity headers (whatever the client sent
// under those names is removed first) and a token for the platform's
// APIs. Under public, a credential that doesn't verify identifies no one
// (the function still sees its Authorization header, to check itself).
func (g *Gateway) identify(r *http.Request, req *function.Request, fn, mode string) error {
	function.StripIdentity(req.Header)
	if g.auth == nil {
		if mode != "" && mode != function.AuthPublic {
			return apierror.New(http.StatusServiceUnavailable, "auth_unavailable", "this server has no auth service, so it can't check who may call %q", fn)
		}
		return nil
	}
	p := auth.Principal{Kind: auth.Anonymous}
	if cred := auth.Bearer(r); cred != "" {
		got, err := g.auth.Authenticate(r.Context(), cred)
		switch {
		case err == nil:
			p = got
		case errors.Is(err, auth.ErrInvalidToken):
			if mode != "" && mode != function.AuthPublic {
				e := apierror.New(http.StatusUnauthorized, "invalid_token", "the bearer token is not valid or has expired; refresh it or log in again")
				e.Header = http.Header{"Www-Authenticate": {`Bearer realm="hostless", error="invalid_token"`}}
				return e
			}
		default:
			return err
		}
	}
	if err := allowed(p, fn, mode); err != nil {
		return err
	}
	var id *function.Identity
	if p.Kind != auth.Anonymous {
		id = &function.Identity{Kind: string(p.Kind), ID: p.ID, Email: p.Email, Roles: p.Roles, Scopes: p.Scopes}
	}
	name, _, _ := strings.Cut(fn, "@")
	tok, err := g.auth.FunctionToken(name, p)
	if err != nil {
		return err
	}
	req.Identity = id
	function.SetIdentity(req.Header, id, tok)
	return nil
}

// allowed applies mode to p.
func allowed(p auth.Principal, fn, mode string) error {
	unauthorized := func(what string) error {
		e := apierror.New(http.StatusUnauthorized, "unauthorized", "%q is for %s: send a token as \"Authorization: Bearer <token>\"", fn, what)
		e.Header = http.Header{"Www-Authenticate": {`Bearer realm="hostless"`}}
		return e
	}
	switch {
	case mode == "" || mode == function.AuthPublic:
		return nil
	case p.IsAdmin():
		return nil
	case p.Kind == auth.Anonymous:
		switch mode {
		case function.AuthUser:
			return unauthorized("signed-in users")
		case function.AuthAdmin:
			return unauthorized("admins")
		}
		return unauthorized("API keys with the scope " + strings.TrimPrefix(mode, function.AuthKeyPrefix))
	case mode == function.AuthUser:
		if p.Kind == auth.User {
			return nil
		}
		return apierror.New(http.StatusForbidden, "forbidden", "%q is for signed-in users", fn)
	case mode == function.AuthAdmin:
		return apierror.New(http.StatusForbidden, "forbidden", "%q is for admins", fn)
	}
	scope := strings.TrimPrefix(mode, function.AuthKeyPrefix)
	if p.Kind == auth.Key && p.HasScope(scope) {
		return nil
	}
	return apierror.New(http.StatusForbidden, "forbidden", "%q is for API keys with the scope %s", fn, scope)
}
