package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/apierror"
	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/gateway"
	"github.com/hostless/hostless/internal/invoker"
	"github.com/hostless/hostless/internal/runtime/wasm"
	"github.com/hostless/hostless/internal/runtime/wasm/runtimetest"
	"github.com/hostless/hostless/internal/scheduler"
	"github.com/hostless/hostless/internal/store"
	"github.com/hostless/hostless/internal/store/sqlite"
	"github.com/hostless/hostless/internal/telemetry"
	"github.com/hostless/hostless/internal/wasmtest"
)

const memoryMB = runtimetest.MemoryMB

// hopOutput is what the "hop" function prints: a CGI response that tries
// to set headers that are not a function's to set.
const hopOutput = "Content-Type: text/plain\n" +
	"Content-Length: 999\n" +
	"Connection: x-secret\n" +
	"Keep-Alive: timeout=999\n" +
	"Transfer-Encoding: chunked\n" +
	"Upgrade: h2c\n" +
	"Proxy-Connection: keep-alive\n" +
	"Trailer: X-Late\n" +
	"X-Kept: yes\n" +
	"\n" +
	"tiny\n"

type sharedRuntime struct {
	rt                     *wasm.Runtime
	sdkRef, cgiRef, hopRef string
}

func TestMain(m *testing.M) {
	code := m.Run()
	runtimetest.Close()
	os.Exit(code)
}

func runtime(t *testing.T) sharedRuntime {
	t.Helper()
	s := runtimetest.Get(t)
	return sharedRuntime{rt: s.RT, sdkRef: s.SDK, cgiRef: s.CGI, hopRef: s.Mods.Add(wasmtest.Tiny(hopOutput))}
}

// server is a gateway over a real invoker, store and runtime, on a random port.
type server struct {
	*httptest.Server
	db    *sqlite.DB
	sr    sharedRuntime
	sched *scheduler.Scheduler
}

func newServer(t *testing.T, sched scheduler.Config, maxRequestBytes int64) *server {
	t.Helper()
	sr := runtime(t)
	db, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	s := scheduler.New(sr.rt, sched)
	rec := telemetry.New(db, log, telemetry.Config{})
	rec.Start()
	mux := http.NewServeMux()
	gateway.New(invoker.New(db, sr.rt, s, rec, log), log, maxRequestBytes).Register(mux)
	srv := &server{Server: httptest.NewServer(mux), db: db, sr: sr, sched: s}
	t.Cleanup(func() {
		srv.Close()
		s.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = rec.Close(ctx)
		_ = db.Close()
	})
	return srv
}

func (s *server) deploy(t *testing.T, name, ref string, timeout time.Duration) {
	t.Helper()
	spec := function.Spec{Runtime: function.RuntimeWasm, Code: ref, MemoryMB: memoryMB, Timeout: function.Duration(timeout)}
	spec.Normalize()
	if _, err := s.db.PutFunction(context.Background(), function.DefaultProject, name, spec); err != nil {
		t.Fatal(err)
	}
}

// errorBody is the one error shape of the platform.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// checkErrorShape checks that body is exactly {"error": {"code", "message"}}
// and returns it.
func checkErrorShape(t *testing.T, h http.Header, body []byte) errorBody {
	t.Helper()
	if ct := h.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type = %q, want application/json", ct)
	}
	var raw map[string]map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("error body %q is not the JSON error shape: %v", body, err)
	}
	if len(raw) != 1 || len(raw["error"]) != 2 {
		t.Errorf("error body %s: want exactly {\"error\": {\"code\", \"message\"}}", body)
	}
	var e errorBody
	_ = json.Unmarshal(body, &e)
	if e.Error.Code == "" || e.Error.Message == "" {
		t.Errorf("error body %s lacks a code or a message", body)
	}
	return e
}

// chunked hides a body's length, so the client sends it chunked.
type chunked struct{ r io.Reader }

func (c chunked) Read(p []byte) (int, error) { return c.r.Read(p) }

func TestGatewayScenarios(t *testing.T) {
	t.Parallel()
	const limit = 64
	srv := newServer(t, scheduler.Config{}, limit)
	srv.deploy(t, "echo", srv.sr.sdkRef, 5*time.Second)
	srv.deploy(t, "cgi", srv.sr.cgiRef, 5*time.Second)
	srv.deploy(t, "hop", srv.sr.hopRef, 5*time.Second)
	srv.deploy(t, "spin", srv.sr.sdkRef, 200*time.Millisecond)
	srv.deploy(t, "panicky", srv.sr.sdkRef, 5*time.Second)

	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		chunked    bool
		wantStatus int
		wantBody   []string          // fragments the body must contain
		notBody    []string          // fragments the body must not contain
		wantHeader map[string]string // exact values
		notHeader  []string          // headers that must be absent
		wantCode   string            // the JSON error code, for errors
		wantID     bool              // X-Hostless-Invocation-Id is set
	}{
		{
			name: "sdk function sees its own path and query", method: "GET", path: "/fn/echo/echo?q=1",
			wantStatus: 201, wantBody: []string{"GET /echo?q=1 "},
			wantHeader: map[string]string{"X-Method": "GET"}, wantID: true,
		},
		{
			name: "sdk function gets the body", method: "POST", path: "/fn/echo/echo", body: "payload",
			wantStatus: 201, wantBody: []string{"POST /echo? payload"}, wantID: true,
		},
		{
			name: "multi-valued response header", method: "GET", path: "/fn/echo/echo",
			wantStatus: 201, wantHeader: map[string]string{"X-Multi": "a, b"}, wantID: true,
		},
		{
			name: "subpath routing", method: "GET", path: "/fn/cgi/a/b?q=1",
			wantStatus: 200, wantBody: []string{"GET /fn/cgi /a/b q=q=1 body="}, wantID: true,
		},
		{
			name: "bare function URL is path /", method: "GET", path: "/fn/cgi",
			wantStatus: 200, wantBody: []string{"GET /fn/cgi / q= body="}, wantID: true,
		},
		{
			name: "trailing slash is path /", method: "PUT", path: "/fn/cgi/", body: "x",
			wantStatus: 200, wantBody: []string{"PUT /fn/cgi / q= body=x"}, wantID: true,
		},
		{
			name: "hop-by-hop and length headers are not the function's", method: "GET", path: "/fn/hop",
			wantStatus: 200, wantBody: []string{"tiny\n"},
			wantHeader: map[string]string{"X-Kept": "yes", "Content-Length": "5", "Content-Type": "text/plain"},
			notHeader:  []string{"Keep-Alive", "Upgrade", "Proxy-Connection", "Trailer", "Transfer-Encoding"},
			wantID:     true,
		},
		{
			name: "body at the limit", method: "POST", path: "/fn/echo/echo", body: strings.Repeat("b", limit),
			wantStatus: 201, wantBody: []string{strings.Repeat("b", limit)}, wantID: true,
		},
		{
			name: "body over the limit", method: "POST", path: "/fn/echo/echo", body: strings.Repeat("b", limit+1),
			wantStatus: 413, wantCode: "request_too_large", wantBody: []string{fmt.Sprint(limit)},
		},
		{
			name: "chunked body over the limit", method: "POST", path: "/fn/echo/echo", body: strings.Repeat("b", 10*limit), chunked: true,
			wantStatus: 413, wantCode: "request_too_large",
		},
		{
			name: "chunked body within the limit", method: "POST", path: "/fn/echo/echo", body: "small", chunked: true,
			wantStatus: 201, wantBody: []string{"POST /echo? small"}, wantID: true,
		},
		{
			name: "unknown function", method: "GET", path: "/fn/missing/x",
			wantStatus: 404, wantCode: "function_not_found", wantBody: []string{`no function named \"missing\"`},
		},
		{
			name: "function timeout", method: "GET", path: "/fn/spin/spin",
			wantStatus: 504, wantCode: "function_timeout", wantID: true,
		},
		{
			name: "function trap", method: "GET", path: "/fn/panicky/panic",
			wantStatus: 502, wantCode: "function_error", wantID: true,
			notBody: []string{"boom", "wasm", "goroutine"}, // the guest's internals stay in the record
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
				if tt.chunked {
					body = chunked{body}
				}
			}
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, body)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %q", resp.StatusCode, tt.wantStatus, got)
			}
			for _, frag := range tt.wantBody {
				if !strings.Contains(string(got), frag) {
					t.Errorf("body %q lacks %q", got, frag)
				}
			}
			for _, frag := range tt.notBody {
				if strings.Contains(string(got), frag) {
					t.Errorf("body %q shows %q", got, frag)
				}
			}
			for k, want := range tt.wantHeader {
				if v := strings.Join(resp.Header.Values(k), ", "); v != want {
					t.Errorf("header %s = %q, want %q", k, v, want)
				}
			}
			for _, k := range tt.notHeader {
				if v, ok := resp.Header[k]; ok {
					t.Errorf("header %s = %q passed through, want it dropped", k, v)
				}
			}
			if resp.ContentLength >= 0 && resp.ContentLength != int64(len(got)) {
				t.Errorf("Content-Length %d for a body of %d bytes", resp.ContentLength, len(got))
			}
			if c := resp.Header.Get("Connection"); strings.Contains(c, "x-secret") {
				t.Errorf("function's Connection header passed through: %q", c)
			}
			id := resp.Header.Get("X-Hostless-Invocation-Id")
			if tt.wantID && len(id) != 26 {
				t.Errorf("X-Hostless-Invocation-Id = %q, want a 26-character ID", id)
			}
			if !tt.wantID && id != "" {
				t.Errorf("X-Hostless-Invocation-Id = %q for a request that invoked nothing", id)
			}
			if tt.wantCode != "" {
				if e := checkErrorShape(t, resp.Header, got); e.Error.Code != tt.wantCode {
					t.Errorf("error code = %q, want %q", e.Error.Code, tt.wantCode)
				}
			}
		})
	}
}

func TestInvocationIDNamesTheRecord(t *testing.T) {
	t.Parallel()
	srv := newServer(t, scheduler.Config{}, 0)
	srv.deploy(t, "echo", srv.sr.sdkRef, 5*time.Second)
	resp, err := srv.Client().Get(srv.URL + "/fn/echo/echo")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	id := resp.Header.Get("X-Hostless-Invocation-Id")
	deadline := time.Now().Add(5 * time.Second)
	for {
		rec, err := srv.db.GetInvocation(context.Background(), function.DefaultProject, id)
		if err == nil {
			if rec.Function != "echo" || rec.Trigger != "http" || rec.HTTPStatus != 201 {
				t.Errorf("record %s = %+v, want an http invocation of echo that answered 201", id, rec)
			}
			return
		}
		if !errors.Is(err, store.ErrNotFound) || time.Now().After(deadline) {
			t.Fatalf("record %q: %v", id, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestThrottledCarriesRetryAfter(t *testing.T) {
	t.Parallel()
	srv := newServer(t, scheduler.Config{MaxConcurrency: 1, QueueTimeout: 100 * time.Millisecond}, 0)
	srv.deploy(t, "busy", srv.sr.sdkRef, 10*time.Second)

	slow := make(chan error, 1)
	go func() {
		resp, err := srv.Client().Get(srv.URL + "/fn/busy/sleep?d=2s")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("slow call: status %d", resp.StatusCode)
			}
		}
		slow <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for srv.sched.Stats().Busy == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the slow call never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	resp, err := srv.Client().Get(srv.URL + "/fn/busy/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("status = %d %q while another call holds the only slot, want 429", resp.StatusCode, body)
	}
	if e := checkErrorShape(t, resp.Header, body); e.Error.Code != "throttled" {
		t.Errorf("code = %q, want throttled", e.Error.Code)
	}
	if ra := resp.Header.Get("Retry-After"); ra != "1" {
		t.Errorf("Retry-After = %q, want 1", ra)
	}
	if resp.Header.Get("X-Hostless-Invocation-Id") == "" {
		t.Error("a throttled call leaves a record, but its ID was not sent")
	}
	if err := <-slow; err != nil {
		t.Error(err)
	}
}

func TestInvokeError(t *testing.T) {
	t.Parallel()
	other := errors.New("database exploded: password=hunter2")
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantCode   string
		retryAfter string
	}{
		{name: "not found", err: fmt.Errorf("resolve: %w", store.ErrNotFound), wantStatus: 404, wantCode: "function_not_found"},
		{name: "throttled", err: fmt.Errorf("%w: at its limit", function.ErrThrottled), wantStatus: 429, wantCode: "throttled", retryAfter: "1"},
		{name: "timeout", err: function.ErrTimeout, wantStatus: 504, wantCode: "function_timeout"},
		{name: "out of memory", err: fmt.Errorf("%w (limit 64 MB)", function.ErrOutOfMemory), wantStatus: 502, wantCode: "function_out_of_memory"},
		{name: "response too large", err: fmt.Errorf("%w: 9 bytes", function.ErrResponseTooLarge), wantStatus: 502, wantCode: "response_too_large"},
		{name: "invalid module", err: fmt.Errorf("%w: compile module", function.ErrInvalid), wantStatus: 502, wantCode: "function_invalid"},
		{name: "function error", err: fmt.Errorf("%w: trap", function.ErrFunction), wantStatus: 502, wantCode: "function_error"},
		{name: "client went away", err: fmt.Errorf("acquire: %w", context.Canceled), wantStatus: 499, wantCode: "client_closed_request"},
		{name: "anything else is internal", err: other, wantStatus: 500, wantCode: "internal_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			mapped := gateway.InvokeError("resize", tt.err)
			var ae *apierror.Error
			if errors.As(mapped, &ae) != (tt.wantCode != "internal_error") {
				t.Fatalf("InvokeError(%v) = %#v", tt.err, mapped)
			}
			w := httptest.NewRecorder()
			apierror.Write(w, httptest.NewRequest("GET", "/fn/resize", nil), nil, mapped)
			if w.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d", w.Code, tt.wantStatus)
			}
			e := checkErrorShape(t, w.Header(), w.Body.Bytes())
			if e.Error.Code != tt.wantCode {
				t.Errorf("code = %q, want %q", e.Error.Code, tt.wantCode)
			}
			if got := w.Header().Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tt.retryAfter)
			}
			if strings.Contains(w.Body.String(), "hunter2") {
				t.Errorf("body %q leaks an internal error", w.Body.String())
			}
		})
	}
}

func TestWriteResponse(t *testing.T) {
	t.Parallel()
	w := httptest.NewRecorder()
	gateway.WriteResponse(w, &function.Response{Status: 418, Header: http.Header{
		"Content-Length": {"1"}, "Connection": {"close"}, "Te": {"trailers"}, "X-A": {"1", "2"},
	}, Body: []byte("teapot")})
	if w.Code != 418 || w.Body.String() != "teapot" {
		t.Errorf("response = %d %q", w.Code, w.Body.String())
	}
	if got := w.Header().Get("Content-Length"); got != "6" {
		t.Errorf("Content-Length = %q, want 6 (the body's length)", got)
	}
	for _, k := range []string{"Connection", "Te"} {
		if _, ok := w.Header()[k]; ok {
			t.Errorf("hop-by-hop header %s passed through", k)
		}
	}
	if got := w.Header().Values("X-A"); len(got) != 2 {
		t.Errorf("X-A = %q, want both values", got)
	}
}

func TestBody(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		limit   int64
		wantErr bool
	}{
		{name: "empty", in: "", limit: 4},
		{name: "under", in: "abc", limit: 4},
		{name: "at the limit", in: "abcd", limit: 4},
		{name: "over", in: "abcde", limit: 4, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := gateway.Body(strings.NewReader(tt.in), tt.limit)
			if tt.wantErr {
				var ae *apierror.Error
				if !errors.As(err, &ae) || ae.Status != http.StatusRequestEntityTooLarge {
					t.Errorf("err = %v, want a 413", err)
				}
				return
			}
			if err != nil || string(b) != tt.in {
				t.Errorf("Body = %q, %v; want %q", b, err, tt.in)
			}
		})
	}
}

func TestFunctionCannotSetPlatformHeaders(t *testing.T) {
	rec := httptest.NewRecorder()
	rec.Header().Set("X-Hostless-Invocation-Id", "real")
	rec.Header().Set("X-Request-Id", "the-request")
	gateway.WriteResponse(rec, &function.Response{Status: 200, Header: http.Header{
		"X-Hostless-Invocation-Id": {"spoofed"}, "x-hostless-status": {"ok"}, "X-Other": {"kept"}, "x-request-id": {"spoofed"},
	}, Body: []byte("hi")})
	if got := rec.Header().Get("X-Hostless-Invocation-Id"); got != "real" {
		t.Errorf("X-Hostless-Invocation-Id = %q, want the platform's", got)
	}
	if got := rec.Header().Values("X-Request-Id"); len(got) != 1 || got[0] != "the-request" {
		t.Errorf("X-Request-Id = %q, want the platform's", got)
	}
	if got := rec.Header().Values("X-Hostless-Status"); len(got) != 0 {
		t.Errorf("function set X-Hostless-Status: %q", got)
	}
	if rec.Header().Get("X-Other") != "kept" || rec.Body.String() != "hi" {
		t.Errorf("response mangled: %v %q", rec.Header(), rec.Body.String())
	}
}
