package app

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/wasmtest"
)

// collector is an OTLP/HTTP trace receiver: it keeps the spans exported
// to it.
type collector struct {
	*httptest.Server
	mu    sync.Mutex
	spans []*tracepb.Span
}

func newCollector(t *testing.T) *collector {
	c := &collector{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "want a protobuf POST to /v1/traces", http.StatusBadRequest)
			return
		}
		b, _ := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				c.spans = append(c.spans, ss.Spans...)
			}
		}
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		_, _ = w.Write(out)
	}))
	t.Cleanup(c.Close)
	return c
}

// trace returns the spans of a trace (hex id) by name, waiting for the
// exporter's batch.
func (c *collector) trace(t *testing.T, traceID string, want ...string) map[string]*tracepb.Span {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := map[string]*tracepb.Span{}
		c.mu.Lock()
		for _, s := range c.spans {
			if hexID(s.TraceId) == traceID {
				got[s.Name] = s
			}
		}
		c.mu.Unlock()
		all := true
		for _, name := range want {
			all = all && got[name] != nil
		}
		if all {
			return got
		}
		if time.Now().After(deadline) {
			names := make([]string, 0, len(got))
			for n := range got {
				names = append(names, n)
			}
			slices.Sort(names)
			t.Fatalf("trace %s has spans %v, want %v", traceID, names, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func hexID(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// TestTracing: with an OTLP endpoint, a call that brings a traceparent
// makes spans in that trace, exported over OTLP/HTTP: the server's, the
// invocation's with its cold start, and the function's run; the function
// gets a traceparent in the same trace, whose parent is its run's span.
// A call without one starts a trace of its own.
func TestTracing(t *testing.T) {
	t.Parallel()
	g := buildGuests(t)
	col := newCollector(t)
	cfg := newConfig(t)
	cfg.OTLPEndpoint = col.URL
	a := startApp(t, cfg)
	a.deploy("env", g.env, function.Spec{Contract: function.ContractCGI})

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	h := http.Header{"Traceparent": {"00-" + traceID + "-00f067aa0ba902b7-01"}}
	resp, body := a.do("GET", "/fn/env/x", nil, h)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	m := regexp.MustCompile(`HTTP_TRACEPARENT=00-([0-9a-f]{32})-([0-9a-f]{16})-01`).FindStringSubmatch(string(body))
	if m == nil || m[1] != traceID {
		t.Fatalf("the function's traceparent is not in the caller's trace:\n%s", body)
	}
	spans := col.trace(t, traceID, "HTTP GET", "invoke env", "cold start", "function env")
	server, inv, cold, run := spans["HTTP GET"], spans["invoke env"], spans["cold start"], spans["function env"]
	if hexID(server.ParentSpanId) != "00f067aa0ba902b7" || server.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("the server span's parent is %x (kind %v), want the caller's span", server.ParentSpanId, server.Kind)
	}
	if hexID(inv.ParentSpanId) != hexID(server.SpanId) || hexID(cold.ParentSpanId) != hexID(inv.SpanId) || hexID(run.ParentSpanId) != hexID(inv.SpanId) {
		t.Errorf("spans are not nested server > invoke > (cold start, function)")
	}
	if hexID(run.SpanId) != m[2] {
		t.Errorf("the function's traceparent names span %s, want its run's %s", m[2], hexID(run.SpanId))
	}
	attrs := map[string]string{}
	for _, kv := range inv.Attributes {
		attrs[kv.Key] = kv.Value.String()
	}
	if !strings.Contains(attrs["faas.coldstart"], "true") || !strings.Contains(attrs["hostless.status"], "ok") {
		t.Errorf("invocation span attributes %v", attrs)
	}

	// Without a traceparent: a trace of its own, still handed to the function.
	resp, body = a.do("GET", "/fn/env/y", nil, nil)
	m = regexp.MustCompile(`HTTP_TRACEPARENT=00-([0-9a-f]{32})-[0-9a-f]{16}-01`).FindStringSubmatch(string(body))
	if resp.StatusCode != 200 || m == nil || m[1] == traceID {
		t.Fatalf("a call without a traceparent: %d\n%s", resp.StatusCode, body)
	}
	col.trace(t, m[1], "HTTP GET", "invoke env", "function env")
}

// TestTracingToLambda: a Lambda function gets the trace of its call in
// X-Ray's form (_X_AMZN_TRACE_ID), without an exporter too.
func TestTracingToLambda(t *testing.T) {
	needSandbox(t)
	a := startApp(t, newConfig(t))
	a.deploy("lfn", zipCode(t, wasmtest.LambdaFn(t)), function.Spec{Runtime: function.RuntimeProcess,
		Timeout: function.Duration(5 * time.Second), MemoryMB: 64, Network: function.NetworkNone})
	h := http.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
	resp, body := a.do("GET", "/fn/lfn/trace", nil, h)
	if resp.StatusCode != 200 || !regexp.MustCompile(`^"Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=[0-9a-f]{16};Sampled=1"$`).Match(body) {
		t.Fatalf("_X_AMZN_TRACE_ID: %d %s", resp.StatusCode, body)
	}
}
