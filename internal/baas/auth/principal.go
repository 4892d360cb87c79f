package auth

import (
	"slices"
	"strings"
)

// Kind is what sort of caller a principal is.
type Kind string

// The kinds of principals.
const (
	Anonymous Kind = "anonymous"
	User      Kind = "user"
	Key       Kind = "key" // a service API key
	Admin     Kind = "admin"
	Function  Kind = "function" // a function instance acting as itself
)

// RoleAdmin is the role that makes a user an admin of the platform.
const RoleAdmin = "admin"

// ScopeAdmin is the scope that makes an API key an admin key.
const ScopeAdmin = "admin"

// Principal is who is calling, verified: every API decides from it alone.
type Principal struct {
	Kind   Kind     `json:"kind"`
	ID     string   `json:"id,omitempty"`
	Email  string   `json:"email,omitempty"`
	Roles  []string `json:"roles,omitempty"`
	Scopes []string `json:"scopes,omitempty"`
}

// IsAdmin reports whether p may do anything: the admin key, a user with
// the admin role, an API key with the admin scope.
func (p Principal) IsAdmin() bool {
	switch p.Kind {
	case Admin:
		return true
	case User:
		return slices.Contains(p.Roles, RoleAdmin)
	case Key:
		return slices.Contains(p.Scopes, ScopeAdmin)
	}
	return false
}

// HasScope reports whether an API key principal holds scope, directly or
// through a wildcard ("db:*" holds "db:read"; "*" holds all). Users and
// admins have no scopes: they are checked by rules and roles.
func (p Principal) HasScope(scope string) bool {
	for _, s := range p.Scopes {
		if s == scope || s == "*" || s == ScopeAdmin {
			return true
		}
		if prefix, ok := strings.CutSuffix(s, "*"); ok && strings.HasPrefix(scope, prefix) {
			return true
		}
	}
	return false
}

// Vars returns p as the access rules see it: auth.id, auth.email,
// auth.roles, auth.kind, auth.scopes (never nil lists).
func (p Principal) Vars() map[string]any {
	roles, scopes := p.Roles, p.Scopes
	if roles == nil {
		roles = []string{}
	}
	if scopes == nil {
		scopes = []string{}
	}
	return map[string]any{"id": p.ID, "email": p.Email, "roles": roles, "kind": string(p.Kind), "scopes": scopes}
}
