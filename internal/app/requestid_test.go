package app

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/requestid"
)

// TestRequestID: every answer of the main server carries an X-Request-Id
// (the client's, when it sent a sane one), a synchronous call's record
// names it, and the platform's JSON log lines about the request carry it.
func TestRequestID(t *testing.T) {
	t.Parallel()
	g := buildGuests(t)
	ta, logs := startLoggedApp(t, newConfig(t))
	ta.deploy("api", g.sdk, function.Spec{Contract: function.ContractSDK})

	for _, s := range []scenario{
		{name: "health", path: "/healthz", status: 200},
		{name: "a function", path: "/fn/api/echo", status: 201},
		{name: "no such function", path: "/fn/nope", status: 404, code: "function_not_found"},
		{name: "the API without a key", path: "/v1/functions", status: 401, code: "unauthorized"},
		{name: "nothing there", path: "/nothing", status: 404, code: "not_found"},
	} {
		s.check = func(t *testing.T, resp *http.Response, _ []byte) {
			if id := resp.Header.Get(requestid.Header); len(id) != 32 {
				t.Errorf("X-Request-Id = %q, want a new ID", id)
			}
		}
		t.Run(s.name, func(t *testing.T) { s.run(t, ta) })
	}

	h := http.Header{requestid.Header: {"client-chosen-1"}}
	resp, _ := ta.do("GET", "/fn/api/echo", nil, h)
	if got := resp.Header.Get(requestid.Header); got != "client-chosen-1" {
		t.Fatalf("X-Request-Id = %q, want the client's", got)
	}
	if rec := ta.record(resp.Header.Get("X-Hostless-Invocation-Id")); rec.RequestID != "client-chosen-1" {
		t.Errorf("the record's request_id = %q", rec.RequestID)
	}
	h.Set(requestid.Header, "not\tsane")
	if resp, _ := ta.do("GET", "/healthz", nil, h); len(resp.Header.Get(requestid.Header)) != 32 {
		t.Errorf("an insane ID was kept: %q", resp.Header.Get(requestid.Header))
	}

	// A failed sign-in is logged, with the request's ID.
	resp, _ = ta.do("POST", "/v1/auth/login", []byte(`{"email":"nobody@example.com","password":"wrong password here"}`),
		http.Header{"Content-Type": {"application/json"}})
	id := resp.Header.Get(requestid.Header)
	if resp.StatusCode < 400 || id == "" {
		t.Fatalf("login: %d, X-Request-Id %q", resp.StatusCode, id)
	}
	var found bool
	for line := range strings.SplitSeq(string(logs.Bytes()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil || m["msg"] != "failed login" {
			continue
		}
		found = true
		if m["request_id"] != id {
			t.Errorf("log line %s: want request_id %q", line, id)
		}
	}
	if !found {
		t.Fatalf("no log line about the failed login in:\n%s", string(logs.Bytes()))
	}
}
