package requestid_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hostless/hostless/internal/requestid"
)

func TestMiddleware(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		sent []string // X-Request-Id values the client sends
		keep bool     // the server answers with the client's
	}{
		{name: "none"},
		{name: "a UUID", sent: []string{"0f8fad5b-d9cb-469f-a165-70867728950e"}, keep: true},
		{name: "a proxy's", sent: []string{"edge-1/Abc+9=="}, keep: true},
		{name: "empty", sent: []string{""}},
		{name: "too long", sent: []string{strings.Repeat("a", 129)}},
		{name: "a space", sent: []string{"a b"}},
		{name: "a forged log line", sent: []string{"x\" level=ERROR msg=\"forged"}},
		{name: "two of them", sent: []string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var seen, header string
			h := requestid.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seen, header = requestid.From(r.Context()), r.Header.Get(requestid.Header)
			}))
			req := httptest.NewRequest("GET", "/", nil)
			for _, v := range tt.sent {
				req.Header.Add(requestid.Header, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			got := rec.Header().Get(requestid.Header)
			if !requestid.Valid(got) || seen != got || header != got {
				t.Fatalf("response %q, context %q, request header %q: want one valid ID", got, seen, header)
			}
			if keep := len(tt.sent) == 1 && got == tt.sent[0]; keep != tt.keep {
				t.Fatalf("answered %q to %q", got, tt.sent)
			}
		})
	}
	if a, b := requestid.New(), requestid.New(); a == b || len(a) != 32 {
		t.Fatalf("New() = %q, %q", a, b)
	}
}

func TestHandler(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(requestid.NewHandler(slog.NewJSONHandler(&buf, nil))).With("component", "test")
	ctx := requestid.With(context.Background(), "r-1")
	log.WarnContext(ctx, "about a request", "n", 1)
	log.Info("about nothing")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines: %s", len(lines), buf.String())
	}
	for i, want := range []string{"r-1", ""} {
		var m map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &m); err != nil {
			t.Fatal(err)
		}
		got, _ := m["request_id"].(string)
		if got != want || m["component"] != "test" {
			t.Errorf("line %d: request_id %q, want %q: %s", i, got, want, lines[i])
		}
	}
}
