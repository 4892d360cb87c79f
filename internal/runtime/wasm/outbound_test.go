package wasm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/wasmtest"
)

func TestOutboundAllows(t *testing.T) {
	t.Parallel()
	o := &outbound{allowed: parseAllowedHosts([]string{"api.example.com", "*.Example.org", "127.0.0.1:8080", "[::1]:9000", "tls.example:443"})}
	tests := []struct {
		url  string
		want bool
	}{
		{"https://api.example.com/x", true},
		{"http://api.example.com/x", true},
		{"https://API.Example.COM./x", true},
		{"https://api.example.com:443/x", true}, // the default port, written
		{"http://api.example.com:80/x", true},
		{"https://api.example.com:8443/x", false},
		{"https://example.com/", false},
		{"https://xapi.example.com/", false},
		{"https://a.example.org/", true},
		{"https://a.b.example.org/", true},
		{"https://example.org/", false}, // the wildcard is for subdomains
		{"https://aexample.org/", false},
		{"http://127.0.0.1:8080/", true},
		{"http://127.0.0.1/", false},
		{"http://127.0.0.1:8081/", false},
		{"http://[::1]:9000/", true},
		{"http://[::1]/", false},
		{"https://tls.example/", true},
		{"http://tls.example/", false}, // port 80, the entry says 443
	}
	for _, tc := range tests {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := o.allows(u); got != tc.want {
			t.Errorf("allows(%s) = %v, want %v", tc.url, got, tc.want)
		}
	}
}

// upstream is the local server the test guest calls.
func upstream(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Upstream", "here")
		w.WriteHeader(203)
		fmt.Fprint(w, "hello from upstream")
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Upstream", r.Header.Get("X-Guest"))
		fmt.Fprintf(w, "%s %s", r.Method, b)
	})
	mux.HandleFunc("/size", func(w http.ResponseWriter, r *http.Request) {
		var n int
		fmt.Sscan(r.URL.Query().Get("n"), &n)
		if r.URL.Query().Get("chunked") != "" {
			w.(http.Flusher).Flush() // no Content-Length: the cap applies while reading
		} else {
			w.Header().Set("Content-Length", fmt.Sprint(n))
		}
		w.Write([]byte(strings.Repeat("y", n)))
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, strings.TrimPrefix(srv.URL, "http://")
}

// outboundRuntime starts the SDK test guest with allowed hosts, on a
// runtime with cfg's outbound limits.
func outboundRuntime(t *testing.T, cfg Config, timeout time.Duration, allowed ...string) function.Instance {
	t.Helper()
	mods := &wasmtest.Modules{}
	ref := mods.Add(wasmtest.ReadFile(t, wasmtest.Build(t, "internal/runtime/wasm/testdata/guests", "./sdk", true)))
	cfg.CacheDir, cfg.Artifacts = wasmtest.CompilationCacheDir(t), mods.Get
	rt := New(cfg)
	if err := rt.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close(context.Background()) })
	v := version("fetch", ref, 64, nil)
	v.Spec.AllowedHosts = allowed
	v.Spec.Timeout = function.Duration(timeout)
	if err := v.Spec.Validate(); err != nil {
		t.Fatal(err)
	}
	inst, _, err := rt.Start(context.Background(), v)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = inst.Close(context.Background()) })
	return inst
}

func fetch(target string, extra ...string) *function.Request {
	q := url.Values{"url": {target}}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	return req("GET", "/fetch", q.Encode(), "")
}

func TestOutboundHTTP(t *testing.T) {
	srv, host := upstream(t)
	inst := outboundRuntime(t, Config{MaxOutboundResponseBytes: 256 << 10}, 10*time.Second, "api.example.com", host)
	other := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) // the same server, by a name not allowed

	tests := []struct {
		name       string
		req        *function.Request
		status     int
		header     map[string]string
		body       string // a fragment of the guest's answer
		wantLog    string // a fragment of a log line
		notInLines string
	}{
		{name: "GET", req: fetch(srv.URL + "/hello?secret=s3cr3t"), status: 200,
			header: map[string]string{"X-Upstream": "here", "X-Upstream-Status": "203"}, body: "hello from upstream",
			wantLog: "[hostless] outbound GET " + srv.URL + "/hello -> 203", notInLines: "s3cr3t"},
		{name: "POST with a body and a header", req: fetch(srv.URL+"/echo", "method", "POST", "body", "payload"), status: 200,
			header: map[string]string{"X-Upstream": "yes"}, body: "POST payload"},
		{name: "response bigger than the guest's first buffer", req: fetch(srv.URL + "/size?n=200000"), status: 200,
			header: map[string]string{"X-Upstream-Length": "200000"}},
		{name: "redirect to an allowed host", req: fetch(srv.URL + "/redirect?to=/hello"), status: 200, body: "hello from upstream"},
		{name: "host not allowed", req: fetch(other + "/hello"), status: 502,
			body: "outbound HTTP to " + strings.TrimPrefix(other, "http://") + " refused: the host is not in the function's allowed_hosts"},
		{name: "port not allowed", req: fetch("http://127.0.0.1:1/hello"), status: 502, body: "not in the function's allowed_hosts"},
		{name: "scheme refused", req: fetch("ftp://" + host + "/x"), status: 502, body: `outbound HTTP: scheme "ftp" refused (accepted: http, https)`},
		{name: "redirect to a host not allowed", req: fetch(srv.URL + "/redirect?to=" + url.QueryEscape(other+"/hello")), status: 502,
			body: "redirect: outbound HTTP to " + strings.TrimPrefix(other, "http://") + " refused"},
		{name: "response over the cap", req: fetch(srv.URL + "/size?n=300000"), status: 502,
			body: "response body of 300000 bytes is over the limit of 262144"},
		{name: "response over the cap without a length", req: fetch(srv.URL + "/size?n=300000&chunked=1"), status: 502,
			body: "response body is over the limit of 262144 bytes"},
		{name: "guest's client timeout", req: fetch(srv.URL+"/slow", "timeout", "200ms"), status: 502, body: "(the request's own deadline)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, l, err := invoke(t, inst, tc.req, 10*time.Second)
			if err != nil {
				t.Fatal(err, l.lines)
			}
			if resp.Status != tc.status || !strings.Contains(string(resp.Body), tc.body) {
				t.Errorf("got %d %q, want %d and %q", resp.Status, resp.Body, tc.status, tc.body)
			}
			for k, want := range tc.header {
				if got := resp.Header.Get(k); got != want {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
			lines := strings.Join(l.lines, "\n")
			if tc.wantLog != "" && !strings.Contains(lines, tc.wantLog) {
				t.Errorf("logs %q lack %q", lines, tc.wantLog)
			}
			if tc.notInLines != "" && strings.Contains(lines, tc.notInLines) {
				t.Errorf("logs %q show %q", lines, tc.notInLines)
			}
			if !inst.Reusable() {
				t.Fatal("instance not reusable after an outbound call")
			}
		})
	}
}

func TestOutboundRefusedByDefault(t *testing.T) {
	srv, _ := upstream(t)
	inst := outboundRuntime(t, Config{}, 10*time.Second)
	resp, _, err := invoke(t, inst, fetch(srv.URL+"/hello"), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if want := "the function's allowed_hosts is empty, so every outbound call is refused"; resp.Status != 502 || !strings.Contains(string(resp.Body), want) {
		t.Errorf("got %d %q, want 502 and %q", resp.Status, resp.Body, want)
	}
}

func TestOutboundTimeouts(t *testing.T) {
	srv, host := upstream(t)
	t.Run("per-call cap", func(t *testing.T) {
		inst := outboundRuntime(t, Config{OutboundTimeout: 300 * time.Millisecond}, 10*time.Second, host)
		start := time.Now()
		resp, _, err := invoke(t, inst, fetch(srv.URL+"/slow"), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if want := "no response within 300ms (the limit of one call)"; resp.Status != 502 || !strings.Contains(string(resp.Body), want) {
			t.Errorf("got %d %q, want 502 and %q", resp.Status, resp.Body, want)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("took %s", d)
		}
	})
	t.Run("function timeout", func(t *testing.T) {
		inst := outboundRuntime(t, Config{}, time.Second, host)
		start := time.Now()
		_, _, err := invoke(t, inst, fetch(srv.URL+"/slow"), 500*time.Millisecond)
		if !errors.Is(err, function.ErrTimeout) {
			t.Errorf("err = %v, want ErrTimeout", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("took %s", d)
		}
	})
}

func TestOutboundRequestCap(t *testing.T) {
	srv, host := upstream(t)
	inst := outboundRuntime(t, Config{MaxOutboundRequestBytes: 1024}, 10*time.Second, host)
	for _, tc := range []struct {
		size   int
		status int
		body   string
	}{
		{900, 200, "POST " + strings.Repeat("b", 900)},
		{2000, 502, "bytes is over the limit of 1024"},
	} {
		resp, _, err := invoke(t, inst, fetch(srv.URL+"/echo", "method", "POST", "body", strings.Repeat("b", tc.size)), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != tc.status || !strings.Contains(string(resp.Body), tc.body) {
			t.Errorf("body of %d: got %d %.80q, want %d and %q", tc.size, resp.Status, resp.Body, tc.status, tc.body)
		}
	}
}

func FuzzDecodeOutbound(f *testing.F) {
	enc := func(method, u string, h [][2]string, body string, ms uint32) []byte {
		b := appendStr(appendStr(nil, method), u)
		b = appendU32(b, uint32(len(h)))
		for _, kv := range h {
			b = appendStr(appendStr(b, kv[0]), kv[1])
		}
		return appendU32(appendStr(b, body), ms)
	}
	f.Add(enc("GET", "http://a.example/x?y=1", [][2]string{{"Accept", "*/*"}}, "", 0))
	f.Add(enc("POST", "https://[::1]:8080/", nil, "body", 1500))
	f.Add(enc("G ET", "::", [][2]string{{"X\r\n", "v"}}, "", 1))
	f.Add([]byte{1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		req, _, err := decodeOutbound(context.Background(), b)
		if err == nil && req.URL == nil {
			t.Fatal("request without a URL")
		}
		o := &outbound{allowed: parseAllowedHosts([]string{"a.example", "*.b.example:8080"})}
		if err == nil {
			_ = o.check(req.URL)
		}
	})
}
