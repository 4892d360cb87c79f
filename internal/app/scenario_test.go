package app

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/client"
	"github.com/hostless/hostless/internal/function"
)

// Limits of the scenario app, small so the tests can cross them cheaply.
const (
	scenarioMaxRequest  = 64 << 10
	scenarioMaxResponse = 256 << 10
)

// scenarioApp starts the app the API scenarios share, with these functions:
// sdk (the SDK test guest, env GREETING=hi), cgi (the CGI test guest),
// slow (sdk with a 300ms timeout) and small (sdk with 32 MB of memory). It
// returns the app and the code references of the sdk guest and of a text
// file uploaded as an artifact.
func scenarioApp(t *testing.T) (a *testApp, sdkRef, textRef string) {
	t.Helper()
	g := buildGuests(t)
	cfg := newConfig(t)
	cfg.MaxRequestBytes = scenarioMaxRequest
	cfg.MaxResponseBytes = scenarioMaxResponse
	a = startApp(t, cfg)
	res := a.deploy("sdk", g.sdk, function.Spec{Contract: function.ContractSDK, Env: map[string]string{"GREETING": "hi"}})
	sdkRef = res.Version.Spec.Code
	a.deploy("cgi", g.cgi, function.Spec{Contract: function.ContractCGI, MemoryMB: 32})
	a.deploy("slow", g.sdk, function.Spec{Contract: function.ContractSDK, Timeout: function.Duration(300 * time.Millisecond)})
	a.deploy("small", g.sdk, function.Spec{Contract: function.ContractSDK, MemoryMB: 32})

	// A text file is a valid artifact (the store holds bytes) but no function's code.
	text := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(text, []byte("these are not the bytes of a WebAssembly module\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var err error
	if textRef, err = a.c.UploadArtifact(t.Context(), text); err != nil {
		t.Fatalf("upload text: %v", err)
	}
	return a, sdkRef, textRef
}

// TestAPIScenarios drives the control API and the gateway of a real server
// with scenario tables. Groups run in order: deploys build on each other.
func TestAPIScenarios(t *testing.T) {
	a, sdkRef, textRef := scenarioApp(t)
	missingRef := sha256Ref([]byte("never uploaded " + randomSuffix()))
	spec := func(extra string) []byte {
		return fmt.Appendf(nil, `{"runtime":"wasm","code":%q,"contract":"sdk"%s}`, sdkRef, extra)
	}
	key := authHeader(testKey)
	jsonKey := authHeader(testKey)
	jsonKey.Set("Content-Type", "application/json")

	t.Run("auth", func(t *testing.T) {
		endpoints := []struct{ method, path string }{
			{"GET", "/v1/functions"},
			{"GET", "/v1/functions/sdk"},
			{"PUT", "/v1/functions/intruder"},
			{"DELETE", "/v1/functions/sdk"},
			{"GET", "/v1/functions/sdk/versions"},
			{"POST", "/v1/functions/sdk/rollback"},
			{"GET", "/v1/functions/sdk/aliases"},
			{"GET", "/v1/functions/sdk/aliases/live"},
			{"PUT", "/v1/functions/sdk/aliases/intruder"},
			{"DELETE", "/v1/functions/sdk/aliases/live"},
			{"POST", "/v1/functions/sdk/aliases/live/promote"},
			{"POST", "/v1/functions/sdk/invoke"},
			{"HEAD", "/v1/artifacts/" + sdkRef},
			{"PUT", "/v1/artifacts/" + missingRef},
			{"GET", "/v1/invocations"},
			{"GET", "/v1/invocations/01abc"},
			{"GET", "/v1/logs"},
			{"GET", "/v1/logs?follow=true"},
		}
		var scenarios []scenario
		for _, e := range endpoints {
			var body []byte
			if e.method == "PUT" || e.method == "POST" {
				body = spec("")
			}
			code := func(c string) string {
				if e.method == "HEAD" {
					return "" // no body to read
				}
				return c
			}
			scenarios = append(scenarios,
				scenario{
					name: "no key " + e.method + " " + e.path, method: e.method, path: e.path, body: body,
					status: http.StatusUnauthorized, code: code("unauthorized"),
					header: map[string]string{"Www-Authenticate": `Bearer realm="hostless"`},
				},
				scenario{
					name: "basic auth " + e.method + " " + e.path, method: e.method, path: e.path, body: body,
					headers: http.Header{"Authorization": {"Basic " + testKey}},
					status:  http.StatusUnauthorized, code: code("unauthorized"),
				},
				scenario{
					name: "empty bearer " + e.method + " " + e.path, method: e.method, path: e.path, body: body,
					headers: http.Header{"Authorization": {"Bearer "}},
					status:  http.StatusUnauthorized, code: code("unauthorized"),
				},
				scenario{
					name: "wrong key " + e.method + " " + e.path, method: e.method, path: e.path, body: body,
					headers: authHeader(testKey[:len(testKey)-1] + "h"),
					status:  http.StatusForbidden, code: code("forbidden"),
				},
				scenario{
					name: "key prefix " + e.method + " " + e.path, method: e.method, path: e.path, body: body,
					headers: authHeader(testKey[:16]),
					status:  http.StatusForbidden, code: code("forbidden"),
				},
			)
		}
		scenarios = append(scenarios,
			scenario{name: "right key lists", path: "/v1/functions", headers: key, status: http.StatusOK,
				contains: []string{`"name":"sdk"`, `"name":"cgi"`}},
			scenario{name: "right key heads an artifact", method: "HEAD", path: "/v1/artifacts/" + sdkRef, headers: key, status: http.StatusOK},
			// The refused DELETE and PUT above changed nothing.
			scenario{name: "refused delete kept sdk", path: "/v1/functions/sdk", headers: key, status: http.StatusOK,
				contains: []string{`"name":"sdk"`, `"version":1`}},
			scenario{name: "refused put stored nothing", path: "/v1/functions/intruder", headers: key,
				status: http.StatusNotFound, code: "function_not_found"},
			scenario{name: "refused alias put stored nothing", path: "/v1/functions/sdk/aliases/intruder", headers: key,
				status: http.StatusNotFound, code: "alias_not_found"},
		)
		for _, s := range scenarios {
			t.Run(s.name, func(t *testing.T) { s.run(t, a) })
		}
	})

	t.Run("deploy", func(t *testing.T) {
		version := func(want int, action string) func(*testing.T, *http.Response, []byte) {
			return func(t *testing.T, _ *http.Response, body []byte) {
				var r client.PutResult
				if err := json.Unmarshal(body, &r); err != nil {
					t.Fatal(err)
				}
				if r.Action != action || r.Version.Number != want || r.Function.Version != want {
					t.Errorf("action %q version %d (function at %d), want %q %d", r.Action, r.Version.Number, r.Function.Version, action, want)
				}
			}
		}
		scenarios := []scenario{
			{name: "create", method: "PUT", path: "/v1/functions/alpha", headers: jsonKey,
				body: spec(`,"env":{"GREETING":"a"}`), status: http.StatusCreated,
				contains: []string{`"action":"created"`}, check: version(1, "created")},
			{name: "same spec is unchanged", method: "PUT", path: "/v1/functions/alpha", headers: jsonKey,
				body: spec(`,"env":{"GREETING":"a"}`), status: http.StatusOK,
				contains: []string{`"action":"unchanged"`}, check: version(1, "unchanged")},
			{name: "defaults spelled out are unchanged", method: "PUT", path: "/v1/functions/alpha", headers: jsonKey,
				body: spec(`,"memory":128,"timeout":"10s","env":{"GREETING":"a"}`), status: http.StatusOK,
				check: version(1, "unchanged")},
			{name: "changed env updates", method: "PUT", path: "/v1/functions/alpha", headers: jsonKey,
				body: spec(`,"env":{"GREETING":"b"}`), status: http.StatusOK,
				contains: []string{`"action":"updated"`}, check: version(2, "updated")},
			{name: "versions", path: "/v1/functions/alpha/versions", headers: key, status: http.StatusOK,
				check: func(t *testing.T, _ *http.Response, body []byte) {
					var r struct{ Versions []function.Version }
					if err := json.Unmarshal(body, &r); err != nil {
						t.Fatal(err)
					}
					if len(r.Versions) != 2 || r.Versions[0].Number != 2 || r.Versions[0].Spec.Env["GREETING"] != "b" {
						t.Errorf("versions %+v, want 2 then 1", r.Versions)
					}
				}},
			{name: "get shows the serving spec", path: "/v1/functions/alpha", headers: key, status: http.StatusOK,
				contains: []string{`"version":2`, `"GREETING":"b"`, `"timeout":"10s"`, `"memory":128`}},
			{name: "invalid name", method: "PUT", path: "/v1/functions/Bad_Name", headers: jsonKey, body: spec(""),
				status: http.StatusBadRequest, code: "bad_request", contains: []string{"Bad_Name", "not a DNS label"}},
			{name: "name too long", method: "PUT", path: "/v1/functions/" + strings.Repeat("a", 64), headers: jsonKey, body: spec(""),
				status: http.StatusBadRequest, code: "bad_request", contains: []string{"not a DNS label"}},
			{name: "unknown runtime", method: "PUT", path: "/v1/functions/beta", headers: jsonKey,
				body:   fmt.Appendf(nil, `{"runtime":"ruby","code":%q}`, sdkRef),
				status: http.StatusBadRequest, code: "bad_request", contains: []string{"runtime", "ruby", "not supported", "wasm, process, nodejs, python"}},
			{name: "missing runtime", method: "PUT", path: "/v1/functions/beta", headers: jsonKey,
				body:   fmt.Appendf(nil, `{"code":%q}`, sdkRef),
				status: http.StatusBadRequest, code: "bad_request", contains: []string{"runtime"}},
			{name: "malformed code reference", method: "PUT", path: "/v1/functions/beta", headers: jsonKey,
				body:   []byte(`{"runtime":"wasm","code":"hello.wasm"}`),
				status: http.StatusBadRequest, code: "bad_request", contains: []string{"code", "sha256"}},
			{name: "artifact not uploaded", method: "PUT", path: "/v1/functions/beta", headers: jsonKey,
				body:   fmt.Appendf(nil, `{"runtime":"wasm","code":%q}`, missingRef),
				status: http.StatusBadRequest, code: "bad_request", contains: []string{missingRef, "not uploaded"}},
			{name: "artifact is not wasm", method: "PUT", path: "/v1/functions/notwasm", headers: jsonKey,
				body:   fmt.Appendf(nil, `{"runtime":"wasm","code":%q}`, textRef),
				status: http.StatusBadRequest, code: "bad_request", contains: []string{textRef, "not a WebAssembly module"}},
			{name: "nothing stored for a refused deploy", path: "/v1/functions/notwasm", headers: key,
				status: http.StatusNotFound, code: "function_not_found", contains: []string{"notwasm"}},
			{name: "refused deploys are not listed", path: "/v1/functions", headers: key, status: http.StatusOK,
				absent: []string{"notwasm", "beta", "Bad_Name"}},
			{name: "memory out of range", method: "PUT", path: "/v1/functions/beta", headers: jsonKey,
				body: spec(`,"memory":5000`), status: http.StatusBadRequest, code: "bad_request", contains: []string{"memory", "4096"}},
			{name: "timeout not a duration", method: "PUT", path: "/v1/functions/beta", headers: jsonKey,
				body: spec(`,"timeout":"forever"`), status: http.StatusBadRequest, code: "bad_request", contains: []string{"forever"}},
			{name: "timeout out of range", method: "PUT", path: "/v1/functions/beta", headers: jsonKey,
				body: spec(`,"timeout":"1h"`), status: http.StatusBadRequest, code: "bad_request", contains: []string{"timeout"}},
			{name: "unknown contract", method: "PUT", path: "/v1/functions/beta", headers: jsonKey,
				body:   fmt.Appendf(nil, `{"runtime":"wasm","code":%q,"contract":"lambda"}`, sdkRef),
				status: http.StatusBadRequest, code: "bad_request", contains: []string{"contract", "lambda"}},
			{name: "bad env name", method: "PUT", path: "/v1/functions/beta", headers: jsonKey,
				body: spec(`,"env":{"1X":"y"}`), status: http.StatusBadRequest, code: "bad_request", contains: []string{"1X"}},
			{name: "unknown JSON field", method: "PUT", path: "/v1/functions/beta", headers: jsonKey,
				body: spec(`,"memroy":64`), status: http.StatusBadRequest, code: "bad_request", contains: []string{"unknown field", "memroy"}},
			{name: "two JSON values", method: "PUT", path: "/v1/functions/beta", headers: jsonKey,
				body: append(spec(""), spec("")...), status: http.StatusBadRequest, code: "bad_request"},
			{name: "empty body", method: "PUT", path: "/v1/functions/beta", headers: jsonKey,
				status: http.StatusBadRequest, code: "bad_request"},
			{name: "oversized JSON", method: "PUT", path: "/v1/functions/beta", headers: jsonKey,
				body:   spec(`,"env":{"BIG":"` + strings.Repeat("x", 2<<20) + `"}`),
				status: http.StatusBadRequest, code: "bad_request", absent: []string{strings.Repeat("x", 100)}},
			{name: "nothing of beta stored", path: "/v1/functions/beta", headers: key,
				status: http.StatusNotFound, code: "function_not_found"},
			{name: "upload with a digest mismatch", method: "PUT", path: "/v1/artifacts/" + missingRef, headers: key,
				body: []byte("other bytes"), status: http.StatusBadRequest, code: "bad_request", contains: []string{"does not match"}},
			{name: "mismatched upload not stored", method: "HEAD", path: "/v1/artifacts/" + missingRef, headers: key,
				status: http.StatusNotFound},
			{name: "bad artifact reference", method: "PUT", path: "/v1/artifacts/md5:abc", headers: key,
				body: []byte("x"), status: http.StatusBadRequest, code: "bad_request", contains: []string{"sha256"}},
			{name: "uppercase artifact reference", method: "HEAD", path: "/v1/artifacts/" + strings.ToUpper(sdkRef[:7]) + sdkRef[7:], headers: key,
				status: http.StatusBadRequest},
			{name: "upload of a known artifact", method: "PUT", path: "/v1/artifacts/" + textRef, headers: key,
				body: []byte("ignored: the server has it"), status: http.StatusOK, contains: []string{textRef}},
			{name: "delete", method: "DELETE", path: "/v1/functions/alpha", headers: key, status: http.StatusNoContent},
			{name: "deleted function is gone", path: "/v1/functions/alpha", headers: key,
				status: http.StatusNotFound, code: "function_not_found"},
			{name: "deleted function's versions are gone", path: "/v1/functions/alpha/versions", headers: key,
				status: http.StatusNotFound, code: "function_not_found"},
			{name: "deleted function does not serve", path: "/fn/alpha/echo",
				status: http.StatusNotFound, code: "function_not_found"},
			{name: "delete again", method: "DELETE", path: "/v1/functions/alpha", headers: key,
				status: http.StatusNotFound, code: "function_not_found"},
		}
		for _, s := range scenarios {
			t.Run(s.name, func(t *testing.T) { s.run(t, a) })
		}
	})

	t.Run("invoke", func(t *testing.T) {
		// status returns a check that the record of the call has a status.
		status := func(want string) func(*testing.T, *http.Response, []byte) {
			return func(t *testing.T, resp *http.Response, _ []byte) {
				id := resp.Header.Get("X-Hostless-Invocation-Id")
				if id == "" {
					t.Fatal("no X-Hostless-Invocation-Id")
				}
				if rec := a.record(id); rec.Status != want {
					t.Errorf("record status %q, want %q (error %q)", rec.Status, want, rec.Error)
				}
			}
		}
		fresh := map[string]string{"X-Calls": "1"} // a new instance served the call
		scenarios := []scenario{
			{name: "get with a query", path: "/fn/sdk/echo?q=1", headers: http.Header{"X-Test": {"seen"}},
				status: http.StatusCreated, contains: []string{"GET /echo?q=1 "},
				header: map[string]string{"X-Method": "GET", "X-Env": "hi", "X-Header": "seen"},
				check:  status(function.StatusOK)},
			{name: "post body", method: "POST", path: "/fn/sdk/echo", body: []byte("payload"),
				status: http.StatusCreated, contains: []string{"POST /echo? payload"}, header: map[string]string{"X-Method": "POST"}},
			{name: "warm instance", path: "/fn/sdk/echo", status: http.StatusCreated, header: map[string]string{"X-Calls": "3"}},
			{name: "root path", path: "/fn/sdk", status: http.StatusOK, contains: []string{"calls="}},
			{name: "sub path seen by the function", path: "/fn/cgi/sub/path?q=1",
				status: http.StatusOK, contains: []string{"GET", " /sub/path q=q=1 body="}},
			{name: "sub path with a post body", method: "POST", path: "/fn/cgi/sub/path?q=1", body: []byte("data"),
				status: http.StatusOK, contains: []string{"POST", "/sub/path q=q=1 body=data"}},
			{name: "api invoke", method: "POST", path: "/v1/functions/cgi/invoke", headers: key, body: []byte(`{"a":1}`),
				status: http.StatusOK, contains: []string{`POST`, `body={"a":1}`}, header: map[string]string{"X-Hostless-Status": "ok"}},
			{name: "unknown function", path: "/fn/nope", status: http.StatusNotFound, code: "function_not_found", contains: []string{"nope"}},
			{name: "unknown function sub path", method: "POST", path: "/fn/nope/a/b", body: []byte("x"),
				status: http.StatusNotFound, code: "function_not_found"},
			{name: "api invoke of an unknown function", method: "POST", path: "/v1/functions/nope/invoke", headers: key,
				status: http.StatusNotFound, code: "function_not_found"},
			{name: "body over the limit", method: "POST", path: "/fn/sdk/echo", body: make([]byte, scenarioMaxRequest+1),
				status: http.StatusRequestEntityTooLarge, code: "request_too_large"},
			{name: "body at the limit", method: "POST", path: "/fn/cgi/", body: []byte(strings.Repeat("y", scenarioMaxRequest)),
				status: http.StatusOK, contains: []string{"body=yyyy"}},
			{name: "api invoke body over the limit", method: "POST", path: "/v1/functions/sdk/invoke", headers: key,
				body: make([]byte, scenarioMaxRequest+1), status: http.StatusRequestEntityTooLarge, code: "request_too_large"},
			{name: "panic", path: "/fn/sdk/panic", status: http.StatusBadGateway, code: "function_error",
				contains: []string{`\"sdk\"`}, absent: []string{"wasm stack trace", "runtime.", "boom"},
				check: func(t *testing.T, resp *http.Response, body []byte) {
					// The caller sees a generic message; the record keeps the panic.
					status(function.StatusError)(t, resp, body)
					rec := a.record(resp.Header.Get("X-Hostless-Invocation-Id"))
					var logs strings.Builder
					for _, l := range rec.Logs {
						logs.WriteString(l.Line + "\n")
					}
					if !strings.Contains(logs.String(), "panic: boom") {
						t.Errorf("record logs lack the panic: %q", logs.String())
					}
				}},
			{name: "next call after a panic works", path: "/fn/sdk/echo", status: http.StatusCreated, header: fresh},
			{name: "exit", path: "/fn/sdk/exit", status: http.StatusBadGateway, code: "function_error"},
			{name: "next call after an exit works", path: "/fn/sdk/echo", status: http.StatusCreated, header: fresh},
			{name: "timeout", path: "/fn/slow/spin", status: http.StatusGatewayTimeout, code: "function_timeout",
				check: status(function.StatusTimeout)},
			{name: "next call after a timeout works", path: "/fn/slow/echo", status: http.StatusCreated, header: fresh},
			{name: "sleep past the timeout", path: "/fn/slow/sleep?d=5s", status: http.StatusGatewayTimeout, code: "function_timeout"},
			{name: "out of memory", path: "/fn/small/alloc?mb=64", status: http.StatusBadGateway, code: "function_out_of_memory",
				check: status(function.StatusOOM)},
			{name: "next call after out of memory works", path: "/fn/small/echo", status: http.StatusCreated, header: fresh},
			{name: "response too large", path: fmt.Sprintf("/fn/sdk/big?n=%d", scenarioMaxResponse+1),
				status: http.StatusBadGateway, code: "response_too_large", absent: []string{"xxxxxxxx"}},
			{name: "response under the limit", path: "/fn/sdk/big?n=1000", status: http.StatusOK,
				contains: []string{strings.Repeat("x", 1000)}},
			{name: "cgi response too large", path: fmt.Sprintf("/fn/cgi/big?%d", scenarioMaxResponse+1),
				status: http.StatusBadGateway, code: "response_too_large"},
			{name: "header injection refused", path: "/fn/sdk/badheader", status: http.StatusBadGateway, code: "function_error",
				check: func(t *testing.T, resp *http.Response, _ []byte) {
					if resp.Header.Get("Injected") != "" || resp.Header.Get("X-Bad") != "" {
						t.Errorf("function set headers %v", resp.Header)
					}
				}},
			{name: "cgi out of memory", path: "/fn/cgi/alloc", status: http.StatusBadGateway, code: "function_out_of_memory"},
			{name: "cgi not found status passes through", path: "/fn/cgi/notfound", status: http.StatusNotFound, contains: []string{"nope"}},
		}
		for _, s := range scenarios {
			t.Run(s.name, func(t *testing.T) { s.run(t, a) })
		}
	})

	t.Run("health", func(t *testing.T) {
		scenarios := []scenario{
			{name: "healthz", path: "/healthz", status: http.StatusOK, contains: []string{"ok"}},
			{name: "readyz", path: "/readyz", status: http.StatusOK, contains: []string{"ready"}},
			{name: "unknown path", path: "/nothing/here", status: http.StatusNotFound, code: "not_found"},
			{name: "unknown API path", path: "/v1/nothing", headers: key, status: http.StatusNotFound, code: "not_found"},
			{name: "wrong method", method: "PATCH", path: "/v1/functions/sdk", headers: key, status: http.StatusNotFound},
		}
		for _, s := range scenarios {
			t.Run(s.name, func(t *testing.T) { s.run(t, a) })
		}
	})
}
