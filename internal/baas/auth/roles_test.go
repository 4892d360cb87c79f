package auth_test

import (
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
