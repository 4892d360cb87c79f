package tracing

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

func TestXRay(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ traceparent, want string }{
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1"},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=0"},
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", ""}, // an all-zero trace id is invalid
		{"garbage", ""},
		{"", ""},
	} {
		h := http.Header{}
		if tt.traceparent != "" {
			h.Set("Traceparent", tt.traceparent)
		}
		if got := XRay(h); got != tt.want {
			t.Errorf("XRay(%q) = %q, want %q", tt.traceparent, got, tt.want)
		}
	}
}

// TestContextFlowsWithoutExport: with no endpoint nothing is exported,
// yet a request's trace reaches what it calls, keeping its sampled flag,
// and a request without one gets a fresh trace id.
func TestContextFlowsWithoutExport(t *testing.T) {
	t.Parallel()
	p, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(context.Background())
	var seen []string
	h := p.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, span := p.Tracer().Start(r.Context(), "child")
		defer span.End()
		if r.Header.Get("Traceparent") == "" && span.IsRecording() {
			t.Error("a new trace is recorded with no exporter")
		}
		out := http.Header{}
		Inject(ctx, out)
		seen = append(seen, out.Get("Traceparent"))
	}))
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	h.ServeHTTP(httptest.NewRecorder(), req)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if len(seen) != 2 || !strings.HasPrefix(seen[0], "00-4bf92f3577b34da6a3ce929d0e0e4736-") || !strings.HasSuffix(seen[0], "-01") {
		t.Fatalf("the caller's trace did not flow: %q", seen)
	}
	if !strings.HasPrefix(seen[1], "00-") || strings.Contains(seen[1], "4bf92f35") || !strings.HasSuffix(seen[1], "-00") {
		t.Errorf("a request without a trace: %q, want a new unsampled trace", seen[1])
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []Config{{Endpoint: "collector:4318"}, {Endpoint: "ftp://x"}, {SampleRatio: 2}, {Endpoint: "http://x", Headers: "novalue"}} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted it", c)
		} else if c.Headers != "" && strings.Contains(err.Error(), c.Headers) {
			t.Errorf("the error shows the headers, which may be secret: %v", err)
		}
	}
	if got := endpointURL(mustURL("http://c:4318")); got != "http://c:4318/v1/traces" {
		t.Errorf("endpoint = %s", got)
	}
	if got := endpointURL(mustURL("https://vendor.example/api/traces")); got != "https://vendor.example/api/traces" {
		t.Errorf("endpoint with a path = %s", got)
	}
}

// BenchmarkInvocationSpans is what tracing adds to each invocation when
// nothing is exported (the default): an invocation span and the
// function's span started and ended, and the traceparent written for the
// function.
func BenchmarkInvocationSpans(b *testing.B) {
	p, _ := New(Config{})
	tr := p.Tracer()
	h := http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		ctx, span := tr.Start(context.Background(), "invoke f", trace.WithSpanKind(trace.SpanKindInternal))
		ctx, fspan := tr.Start(ctx, "function f")
		Inject(ctx, h)
		fspan.End()
		span.End()
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
