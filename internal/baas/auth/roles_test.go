package auth_test

import (
	"context"
	"slices"
	"testing"
	"time"
)

// A demoted admin's access token carries the admin role: it is refused
// from the change on, and a refresh brings a token with the new roles.
func TestRoleChangeRefusesOldTokens(t *testing.T) {
	e := newEnv(t)
	tk := e.signup("ada@example.com", goodPassword)
	e.must(200, "PATCH", "/v1/users/"+tk.User.ID, map[string]any{"roles": []string{"admin"}}, adminKey, nil)
	e.clk.Advance(time.Second)
	admin := e.login("ada@example.com", goodPassword)
	e.must(200, "GET", "/v1/users", nil, admin.AccessToken, nil)

	e.clk.Advance(time.Second)
	e.must(200, "PATCH", "/v1/users/"+tk.User.ID, map[string]any{"roles": []string{}}, adminKey, nil)
	e.must(401, "GET", "/v1/users", nil, admin.AccessToken, nil)

	e.clk.Advance(time.Second)
	var fresh struct {
		AccessToken string `json:"access_token"`
	}
	e.must(200, "POST", "/v1/auth/refresh", map[string]string{"refresh_token": admin.RefreshToken}, "", &fresh)
	e.must(403, "GET", "/v1/users", nil, fresh.AccessToken, nil)
	e.must(200, "GET", "/v1/auth/me", nil, fresh.AccessToken, nil)
}

// A function called by an admin user acts as that user, without the admin
// role: the admin's power is never handed on to a function.
func TestFunctionTokenOfAnAdminUserIsNotAdmin(t *testing.T) {
	e := newEnv(t)
	tk := e.signup("ada@example.com", goodPassword)
	e.must(200, "PATCH", "/v1/users/"+tk.User.ID, map[string]any{"roles": []string{"admin", "editor"}}, adminKey, nil)
	e.clk.Advance(time.Second)
	admin := e.login("ada@example.com", goodPassword)
	p, err := e.svc.Authenticate(context.Background(), admin.AccessToken)
	if err != nil || !p.IsAdmin() {
		t.Fatalf("the admin's own token: %+v, %v", p, err)
	}
	ft, err := e.svc.FunctionToken("resize", p)
	if err != nil {
		t.Fatal(err)
	}
	fp, err := e.svc.Authenticate(context.Background(), ft)
	if err != nil {
		t.Fatal(err)
	}
	if fp.IsAdmin() || fp.ID != tk.User.ID || !slices.Equal(fp.Roles, []string{"editor"}) {
		t.Fatalf("function token of an admin user: %+v; want the user without the admin role", fp)
	}
	e.must(403, "GET", "/v1/users", nil, ft, nil)
}
