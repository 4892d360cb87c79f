package console_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/hostless/hostless/internal/console"
)

func serve(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	console.New(nil).Register(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "elsewhere", http.StatusTeapot) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, srv *httptest.Server, method, path string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestHandler(t *testing.T) {
	t.Parallel()
	srv := serve(t)
	index, err := os.ReadFile("assets/index.html")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		method   string
		path     string
		status   int
		ctype    string
		body     string // a fragment the body must hold
		location string
		cached   bool // served with an ETag and revalidated
	}{
		{name: "index", path: "/console/", status: 200, ctype: "text/html; charset=utf-8", body: "<title>Hostless console</title>", cached: true},
		{name: "index by name", path: "/console/index.html", status: 200, ctype: "text/html; charset=utf-8", body: string(index), cached: true},
		{name: "script", path: "/console/app.js", status: 200, ctype: "text/javascript; charset=utf-8", body: "function h(tag", cached: true},
		{name: "style sheet", path: "/console/style.css", status: 200, ctype: "text/css; charset=utf-8", body: "svg.chart", cached: true},
		{name: "icon", path: "/console/favicon.svg", status: 200, ctype: "image/svg+xml", body: "<svg", cached: true},
		{name: "a page of the console falls back to index", path: "/console/functions/hello", status: 200, ctype: "text/html; charset=utf-8", body: string(index), cached: true},
		{name: "a deep page", path: "/console/invocations", status: 200, ctype: "text/html; charset=utf-8", body: "<title>Hostless console</title>", cached: true},
		{name: "a missing asset is 404, not the page", path: "/console/nope.js", status: 404, ctype: "application/json", body: `"code":"not_found"`},
		{name: "a missing asset in a folder", path: "/console/img/logo.png", status: 404, ctype: "application/json"},
		{name: "the bare path redirects", path: "/console", status: 301, location: "/console/"},
		{name: "HEAD", method: "HEAD", path: "/console/app.js", status: 200, ctype: "text/javascript; charset=utf-8", cached: true},
		{name: "POST is refused", method: "POST", path: "/console/", status: 405, ctype: "application/json", body: "method_not_allowed"},
		{name: "outside the console", path: "/consoles", status: http.StatusTeapot},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			resp, body := do(t, srv, method, tt.path, nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("%s %s: %d, want %d: %s", method, tt.path, resp.StatusCode, tt.status, body)
			}
			if tt.status == http.StatusTeapot {
				return
			}
			if got := resp.Header.Get("Content-Type"); tt.ctype != "" && got != tt.ctype {
				t.Errorf("Content-Type %q, want %q", got, tt.ctype)
			}
			if !strings.Contains(body, tt.body) {
				t.Errorf("body lacks %q:\n%.300s", tt.body, body)
			}
			if method == http.MethodHead && body != "" {
				t.Errorf("HEAD has a body")
			}
			if got := resp.Header.Get("Location"); got != tt.location {
				t.Errorf("Location %q, want %q", got, tt.location)
			}
			// Every answer, errors included, carries the security headers.
			for k, want := range map[string]string{
				"Content-Security-Policy": console.CSP,
				"X-Frame-Options":         "DENY",
				"X-Content-Type-Options":  "nosniff",
				"Referrer-Policy":         "no-referrer",
			} {
				if got := resp.Header.Get(k); got != want {
					t.Errorf("%s %q, want %q", k, got, want)
				}
			}
			etag := resp.Header.Get("ETag")
			if tt.cached {
				if !regexp.MustCompile(`^"[0-9a-f]{24}"$`).MatchString(etag) {
					t.Errorf("ETag %q", etag)
				}
				if got := resp.Header.Get("Cache-Control"); got != "no-cache" {
					t.Errorf("Cache-Control %q, want no-cache (revalidate with the ETag)", got)
				}
			} else if etag != "" {
				t.Errorf("an error has an ETag %q", etag)
			}
		})
	}
	t.Run("405 says what is allowed", func(t *testing.T) {
		resp, _ := do(t, srv, "DELETE", "/console/app.js", nil)
		if got := resp.Header.Get("Allow"); got != "GET, HEAD" {
			t.Errorf("Allow %q", got)
		}
	})
}

// TestRevalidation: a browser that has an asset asks again with its ETag
// and gets a 304; a changed asset (another ETag) is sent whole.
func TestRevalidation(t *testing.T) {
	t.Parallel()
	srv := serve(t)
	for _, path := range []string{"/console/app.js", "/console/", "/console/functions/x"} {
		resp, body := do(t, srv, "GET", path, nil)
		etag := resp.Header.Get("ETag")
		resp, again := do(t, srv, "GET", path, http.Header{"If-None-Match": {etag}})
		if resp.StatusCode != http.StatusNotModified || again != "" {
			t.Errorf("%s with If-None-Match %s: %d, %d bytes; want 304 and no body", path, etag, resp.StatusCode, len(again))
		}
		if resp.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("%s: a 304 without the CSP", path)
		}
		resp, whole := do(t, srv, "GET", path, http.Header{"If-None-Match": {`"0123"`}})
		if resp.StatusCode != http.StatusOK || whole != body {
			t.Errorf("%s with a stale ETag: %d, want 200 and the asset", path, resp.StatusCode)
		}
	}
	a, _ := do(t, srv, "GET", "/console/app.js", nil)
	b, _ := do(t, srv, "GET", "/console/style.css", nil)
	if a.Header.Get("ETag") == b.Header.Get("ETag") {
		t.Errorf("two assets share the ETag %s", a.Header.Get("ETag"))
	}
}

// TestAssetsKeepToTheCSP checks the sources for what the policy would
// block or what would let data become markup: inline scripts, styles and
// handlers in the page, and innerHTML, eval or document.write in the script.
func TestAssetsKeepToTheCSP(t *testing.T) {
	t.Parallel()
	index, err := os.ReadFile("assets/index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`(?i)<script[^>]*>`).FindAllString(string(index), -1) {
		if !strings.Contains(m, `src="/console/`) {
			t.Errorf("index.html has an inline script: %s", m)
		}
	}
	for _, bad := range []string{"<style", " style=", " onclick=", " onload=", "javascript:", "http://", "https://"} {
		if strings.Contains(strings.ToLower(string(index)), bad) {
			t.Errorf("index.html has %q", bad)
		}
	}
	raw, err := os.ReadFile("assets/app.js")
	if err != nil {
		t.Fatal(err)
	}
	// The SVG namespace is a name, not a place the console reaches.
	js := strings.ReplaceAll(string(raw), `"http://www.w3.org/2000/svg"`, "")
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", ".style.", "setAttribute(\"style\"", "http://", "https://"} {
		if strings.Contains(js, bad) {
			t.Errorf("app.js uses %q", bad)
		}
	}
	css, err := os.ReadFile("assets/style.css")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"@import", "url(http", "url(https"} {
		if strings.Contains(string(css), bad) {
			t.Errorf("style.css has %q: the console loads nothing from elsewhere", bad)
		}
	}
}
