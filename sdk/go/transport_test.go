package hostless

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestEncodeOutbound(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", "https://api.example.com/v1?x=1", strings.NewReader("payload"))
	req.Header.Set("X-A", "1")
	b, err := encodeOutbound(req)
	if err != nil {
		t.Fatal(err)
	}
	d := decoder{b: b}
	if m, u := d.str(), d.str(); m != "POST" || u != "https://api.example.com/v1?x=1" {
		t.Errorf("method, URL = %q %q", m, u)
	}
	if n := d.u32(); n != 1 {
		t.Fatalf("headers = %d", n)
	}
	if k, v := d.str(), d.str(); k != "X-A" || v != "1" {
		t.Errorf("header %q: %q", k, v)
	}
	if body := d.str(); body != "payload" {
		t.Errorf("body = %q", body)
	}
	if ms := d.u32(); ms < 1000 || ms > 2001 {
		t.Errorf("timeout = %d ms, want about 2000", ms)
	}
	if d.err != nil || len(d.b) != 0 {
		t.Errorf("err %v, %d bytes left", d.err, len(d.b))
	}
}

func TestDecodeOutbound(t *testing.T) {
	req, _ := http.NewRequest("GET", "http://a.example/", nil)
	ok := appendU32(nil, 203)
	ok = appendU32(ok, 2)
	ok = appendStr(appendStr(ok, "X-B"), "1")
	ok = appendStr(appendStr(ok, "X-B"), "2")
	ok = appendStr(ok, "hello")
	resp, err := decodeOutbound(ok, req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 203 || resp.Status != "203 Non-Authoritative Information" || string(body) != "hello" ||
		strings.Join(resp.Header["X-B"], ",") != "1,2" || resp.Request != req {
		t.Errorf("got %d %q %q %v", resp.StatusCode, resp.Status, body, resp.Header)
	}
	refused := appendStr(appendU32(appendU32(nil, 0), 0), "outbound HTTP to x refused")
	if _, err := decodeOutbound(refused, req); err == nil || err.Error() != "outbound HTTP to x refused" {
		t.Errorf("refused: err = %v", err)
	}
	if _, err := decodeOutbound(ok[:len(ok)-2], req); err == nil {
		t.Error("truncated response decoded")
	}
}

func TestTransportOutsideWasm(t *testing.T) {
	_, err := (&Transport{}).RoundTrip(httpGet(t))
	if err == nil || !strings.Contains(err.Error(), "only inside a wasm function") {
		t.Errorf("err = %v", err)
	}
}

func httpGet(t *testing.T) *http.Request {
	t.Helper()
	req, err := http.NewRequest("GET", "http://a.example/", nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
