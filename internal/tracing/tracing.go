// Package tracing is the platform's OpenTelemetry tracing: a tracer
// provider that exports spans over OTLP/HTTP when an endpoint is
// configured, W3C trace context (traceparent, tracestate) read from
// requests and passed on to functions, and Lambda's X-Ray form of the same
// trace for Lambda functions (_X_AMZN_TRACE_ID).
//
// Without an endpoint nothing is exported, but trace context still flows:
// a request's traceparent (its sampled flag kept) reaches the function it
// calls, and a request without one gets a new trace id (not sampled), so a
// function's own outbound calls and its logs can still be correlated.
//
// It must not import HTTP servers, runtimes or the store.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
)

// Tracer names the platform's instrumentation.
const Tracer = "github.com/hostless/hostless"

// Config configures tracing.
type Config struct {
	// Endpoint is the OTLP/HTTP endpoint spans go to
	// (http://collector:4318, or a URL with the path /v1/traces); empty
	// records nothing.
	Endpoint string
	// Headers are sent with every export (an API key of a vendor), as
	// "k=v,k2=v2"; they are secrets and never logged.
	Headers string
	// SampleRatio is the share of new traces recorded, 0 to 1 (default
	// 1); a request's sampled flag is honoured either way.
	SampleRatio float64
	// ServiceName is the resource's service.name (default "hostless").
	ServiceName string
	// Version is service.version.
	Version string
}

// Provider is the platform's tracer provider.
type Provider struct {
	tp       *sdktrace.TracerProvider
	tracer   trace.Tracer
	exported bool
}

// New returns a provider: exporting to cfg.Endpoint when set, else
// recording nothing. Shutdown flushes and stops it.
func New(cfg Config) (*Provider, error) {
	if cfg.ServiceName == "" {
		cfg.ServiceName = "hostless"
	}
	if cfg.SampleRatio < 0 || cfg.SampleRatio > 1 {
		return nil, fmt.Errorf("trace sample ratio %v: want 0 to 1", cfg.SampleRatio)
	}
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(cfg.ServiceName), semconv.ServiceVersion(cfg.Version))),
	}
	exported := cfg.Endpoint != ""
	if exported {
		exp, err := exporter(cfg)
		if err != nil {
			return nil, err
		}
		ratio := cfg.SampleRatio
		if ratio == 0 {
			ratio = 1
		}
		opts = append(opts, sdktrace.WithBatcher(exp), sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))))
	} else {
		// Spans get ids (context flows), and keep the caller's sampled
		// flag for what comes after; nothing is exported.
		opts = append(opts, sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	return &Provider{tp: tp, tracer: tp.Tracer(Tracer), exported: exported}, nil
}

func exporter(cfg Config) (sdktrace.SpanExporter, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("OTLP endpoint %q: want an http:// or https:// URL, such as http://collector:4318", cfg.Endpoint)
	}
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(endpointURL(u)), otlptracehttp.WithTimeout(10 * time.Second)}
	if cfg.Headers != "" {
		h, err := parseHeaders(cfg.Headers)
		if err != nil {
			return nil, err
		}
		opts = append(opts, otlptracehttp.WithHeaders(h))
	}
	// New only configures the client: nothing is sent until spans are.
	return otlptracehttp.New(context.Background(), opts...)
}

// endpointURL is u with the traces path when it has none, as the
// collector's base URL is what operators know.
func endpointURL(u *url.URL) string {
	if u.Path == "" || u.Path == "/" {
		c := *u
		c.Path = "/v1/traces"
		return c.String()
	}
	return u.String()
}

// parseHeaders reads "k=v,k2=v2" (OTEL_EXPORTER_OTLP_HEADERS' form).
func parseHeaders(s string) (map[string]string, error) {
	h := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || k == "" {
			// Not the value: it may be a secret.
			return nil, errors.New("OTLP headers: want k=v pairs separated by commas")
		}
		if dk, err := url.QueryUnescape(k); err == nil {
			k = dk
		}
		if dv, err := url.QueryUnescape(v); err == nil {
			v = dv
		}
		h[k] = v
	}
	return h, nil
}

// Exported reports whether spans go anywhere.
func (p *Provider) Exported() bool { return p != nil && p.exported }

// Tracer returns the platform's tracer; a nil provider's records nothing.
func (p *Provider) Tracer() trace.Tracer {
	if p == nil {
		return noTracer
	}
	return p.tracer
}

var noTracer = sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample())).Tracer(Tracer)

// Shutdown exports what is buffered and stops the provider.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p == nil {
		return nil
	}
	return p.tp.Shutdown(ctx)
}

// propagator reads and writes W3C trace context.
var propagator = propagation.TraceContext{}

// Extract returns ctx with the trace context h carries (traceparent,
// tracestate), if any and valid.
func Extract(ctx context.Context, h http.Header) context.Context {
	if h.Get("Traceparent") == "" {
		return ctx
	}
	return propagator.Extract(ctx, propagation.HeaderCarrier(h))
}

// Inject sets h's traceparent (and tracestate) to ctx's span, replacing
// what was there.
func Inject(ctx context.Context, h http.Header) {
	h.Del("Traceparent")
	h.Del("Tracestate")
	propagator.Inject(ctx, propagation.HeaderCarrier(h))
}

// XRay returns Lambda's X-Ray trace header for the W3C traceparent in h
// (Root=1-{8 hex}-{24 hex};Parent={16 hex};Sampled={0|1}), or "" when h
// has none valid.
func XRay(h http.Header) string {
	sc := trace.SpanContextFromContext(Extract(context.Background(), h))
	if !sc.IsValid() {
		return ""
	}
	tid, sid := sc.TraceID().String(), sc.SpanID().String()
	sampled := "0"
	if sc.IsSampled() {
		sampled = "1"
	}
	return "Root=1-" + tid[:8] + "-" + tid[8:] + ";Parent=" + sid + ";Sampled=" + sampled
}

// Middleware traces the requests of a server: a server span per request,
// child of the traceparent the request carries, named by method (the
// handler may rename it: trace.SpanFromContext(r.Context()).SetName).
func (p *Provider) Middleware(next http.Handler) http.Handler {
	tracer := p.Tracer()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := Extract(r.Context(), r.Header)
		ctx, span := tracer.Start(ctx, "HTTP "+r.Method, trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		if span.IsRecording() {
			span.SetAttributes(semconv.HTTPRequestMethodKey.String(r.Method), semconv.URLPath(r.URL.Path))
			rw := &statusRecorder{ResponseWriter: w}
			next.ServeHTTP(rw, r.WithContext(ctx))
			span.SetAttributes(semconv.HTTPResponseStatusCode(rw.status()))
			return
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// statusRecorder remembers the status a handler answered.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Flush keeps the writer a Flusher for handlers that assert one (event
// streams).
func (s *statusRecorder) Flush() {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	_ = http.NewResponseController(s.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the writer's Flush and
// deadlines (streamed responses).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) status() int {
	if s.code == 0 {
		return http.StatusOK
	}
	return s.code
}

// Phase records a finished phase of an invocation (queue wait, cold
// start) as a child span of ctx's span, from start to end.
func Phase(ctx context.Context, name string, start, end time.Time, attrs ...attribute.KeyValue) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() || !end.After(start) {
		return
	}
	_, child := span.TracerProvider().Tracer(Tracer).Start(ctx, name, trace.WithTimestamp(start), trace.WithAttributes(attrs...))
	child.End(trace.WithTimestamp(end))
}
