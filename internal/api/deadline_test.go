package api

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestBodyDeadlineIsLiftedAfterTheBody: the deadline bounds sending the
// body, not what the handler does after it (an invocation, a log stream).
func TestBodyDeadlineIsLiftedAfterTheBody(t *testing.T) {
	old := jsonReadTimeout
	jsonReadTimeout = 100 * time.Millisecond
	defer func() { jsonReadTimeout = old }()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		boundBody(w, r)
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		select {
		case <-time.After(4 * jsonReadTimeout):
			io.WriteString(w, "alive")
		case <-r.Context().Done():
			io.WriteString(w, "cancelled")
		}
	}))
	defer srv.Close()
	for _, tc := range []struct{ name, method, body string }{
		{"with a body", "POST", "payload"},
		{"without a body", "GET", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL, strings.NewReader(tc.body))
			if tc.body == "" {
				req.Body = http.NoBody
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != "alive" {
				t.Errorf("handler saw %q after the body was read, want alive", b)
			}
		})
	}
}
