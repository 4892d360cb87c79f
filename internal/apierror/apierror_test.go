package apierror_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hostless/hostless/internal/apierror"
)

func TestWrite(t *testing.T) {
	t.Parallel()
	cause := errors.New("dial tcp 10.0.0.5:5432: password authentication failed for user admin")
	throttled := apierror.New(http.StatusTooManyRequests, "throttled", "function %q is busy", "resize")
	throttled.Header = http.Header{"Retry-After": {"1"}}
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantCode   string
		wantMsg    string
		wantHeader map[string]string
		wantLogged bool
	}{
		{
			name: "not found", err: apierror.NotFound("function_not_found", "no function named %q", "resize"),
			wantStatus: 404, wantCode: "function_not_found", wantMsg: `no function named "resize"`,
		},
		{
			name: "bad request", err: apierror.BadRequest("field %s is required", "name"),
			wantStatus: 400, wantCode: "bad_request", wantMsg: "field name is required",
		},
		{
			name: "wrapped api error", err: fmt.Errorf("handler: %w", apierror.New(409, "conflict", "exists")),
			wantStatus: 409, wantCode: "conflict", wantMsg: "exists",
		},
		{
			name: "extra headers", err: throttled,
			wantStatus: 429, wantCode: "throttled", wantMsg: `function "resize" is busy`,
			wantHeader: map[string]string{"Retry-After": "1"},
		},
		{
			name: "api error with a cause shows only its message", err: &apierror.Error{Status: 502, Code: "upstream", Message: "upstream failed", Err: cause},
			wantStatus: 502, wantCode: "upstream", wantMsg: "upstream failed",
		},
		{
			name: "any other error is internal", err: cause,
			wantStatus: 500, wantCode: "internal_error", wantMsg: "internal error; the server log has the details", wantLogged: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var logged bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logged, nil))
			w := httptest.NewRecorder()
			apierror.Write(w, httptest.NewRequest("POST", "/v1/things", nil), log, tt.err)
			if w.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d", w.Code, tt.wantStatus)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if v := w.Header().Get("X-Content-Type-Options"); v != "nosniff" {
				t.Errorf("X-Content-Type-Options = %q", v)
			}
			for k, v := range tt.wantHeader {
				if got := w.Header().Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			var body map[string]map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", w.Body.String(), err)
			}
			want := map[string]map[string]string{"error": {"code": tt.wantCode, "message": tt.wantMsg}}
			if fmt.Sprint(body) != fmt.Sprint(want) {
				t.Errorf("body = %v, want %v", body, want)
			}
			if strings.Contains(w.Body.String(), "password") {
				t.Errorf("body %q leaks the cause", w.Body.String())
			}
			if got := strings.Count(logged.String(), "request failed"); got != map[bool]int{true: 1}[tt.wantLogged] {
				t.Errorf("logged %q; want it logged once only for internal errors", logged.String())
			}
			if tt.wantLogged && (!strings.Contains(logged.String(), "password authentication failed") || !strings.Contains(logged.String(), "/v1/things")) {
				t.Errorf("log %q lacks the cause or the path", logged.String())
			}
		})
	}
}

func TestWriteNil(t *testing.T) {
	t.Parallel()
	w := httptest.NewRecorder()
	apierror.Write(w, httptest.NewRequest("GET", "/", nil), nil, nil)
	if w.Body.Len() != 0 || len(w.Header()) != 0 {
		t.Errorf("Write(nil) wrote %d %q", w.Code, w.Body.String())
	}
}

func TestWriteWithoutLogger(t *testing.T) {
	t.Parallel()
	w := httptest.NewRecorder()
	apierror.Write(w, httptest.NewRequest("GET", "/", nil), nil, errors.New("boom"))
	if w.Code != 500 {
		t.Errorf("status = %d, want 500", w.Code)
	}
}

func TestWrap(t *testing.T) {
	t.Parallel()
	h := apierror.Wrap(nil, func(w http.ResponseWriter, r *http.Request) error {
		if r.URL.Query().Get("fail") != "" {
			return apierror.NotFound("thing_not_found", "no thing")
		}
		_, err := w.Write([]byte("ok"))
		return err
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close) // the subtests are parallel: they run after this function returns
	tests := []struct {
		name   string
		query  string
		status int
		body   string
	}{
		{name: "success", query: "", status: 200, body: "ok"},
		{name: "error", query: "?fail=1", status: 404, body: `{"error":{"code":"thing_not_found","message":"no thing"}}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, err := srv.Client().Get(srv.URL + tt.query)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			if resp.StatusCode != tt.status || b.String() != tt.body {
				t.Errorf("response = %d %q, want %d %q", resp.StatusCode, b.String(), tt.status, tt.body)
			}
		})
	}
}

func TestErrorUnwrap(t *testing.T) {
	t.Parallel()
	cause := errors.New("cause")
	e := &apierror.Error{Status: 500, Code: "x", Message: "y", Err: cause}
	if !errors.Is(e, cause) {
		t.Error("errors.Is does not reach the cause")
	}
	if got := e.Error(); got != "x: y" {
		t.Errorf("Error() = %q, want %q", got, "x: y")
	}
}
