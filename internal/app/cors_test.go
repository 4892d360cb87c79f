package app

import (
	"net/http"
	"testing"
)

// TestBackendCORS: --cors-origins opens the backend's APIs (auth,
// documents, storage, KMS) to pages of the listed origins: preflights are
// answered, responses carry Access-Control-Allow-Origin; other origins
// and the control API stay closed.
func TestBackendCORS(t *testing.T) {
	t.Parallel()
	const app = "https://app.example.com"
	cfg := newConfig(t)
	cfg.CORSOrigins = []string{app}
	a := startApp(t, cfg)

	preflight := func(path, origin, method, headers string) *http.Response {
		t.Helper()
		h := http.Header{"Origin": {origin}, "Access-Control-Request-Method": {method}}
		if headers != "" {
			h.Set("Access-Control-Request-Headers", headers)
		}
		resp, _ := a.do("OPTIONS", path, nil, h)
		return resp
	}
	resp := preflight("/v1/auth/login", app, "POST", "content-type")
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != app ||
		resp.Header.Get("Access-Control-Allow-Headers") == "" || resp.Header.Get("Access-Control-Max-Age") != "600" {
		t.Errorf("preflight of login: %d %v", resp.StatusCode, resp.Header)
	}
	if resp := preflight("/v1/db/todos/1", app, "PATCH", "authorization, content-type, if-match"); resp.StatusCode != 204 {
		t.Errorf("preflight of a document PATCH: %d", resp.StatusCode)
	}
	if resp := preflight("/v1/auth/login", "https://evil.example", "POST", "content-type"); resp.StatusCode != 403 {
		t.Errorf("preflight from another origin: %d", resp.StatusCode)
	}
	resp, body := a.do("POST", "/v1/auth/signup", []byte(`{"email":"ann@example.com","password":"correct horse battery"}`),
		http.Header{"Origin": {app}, "Content-Type": {"application/json"}})
	if resp.StatusCode != 201 || resp.Header.Get("Access-Control-Allow-Origin") != app || resp.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("signup from the app: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	resp, _ = a.do("GET", "/v1/functions", nil, http.Header{"Origin": {app}, "Authorization": {"Bearer " + testKey}})
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("the control API answered a page: %d %v", resp.StatusCode, resp.Header)
	}

	// Without --cors-origins, nothing is opened.
	closed := startApp(t, newConfig(t))
	resp, _ = closed.do("POST", "/v1/auth/signup", []byte(`{"email":"bob@example.com","password":"correct horse battery"}`),
		http.Header{"Origin": {app}, "Content-Type": {"application/json"}})
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("a server without cors-origins allowed %v", resp.Header)
	}
}
