package wasm

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/hostless/hostless/internal/function"
)

// encodeResponse is the guest side of the ABI, for tests.
func encodeResponse(status uint32, h [][2]string, body string) []byte {
	b := appendU32(nil, status)
	b = appendU32(b, uint32(len(h)))
	for _, kv := range h {
		b = appendStr(appendStr(b, kv[0]), kv[1])
	}
	return appendStr(b, body)
}

func TestDecodeResponse(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		status  int
		header  http.Header
		body    string
		wantErr string
	}{
		{"ok", encodeResponse(200, [][2]string{{"content-type", "text/plain"}, {"X-A", "1"}, {"x-a", "2"}}, "hi"),
			200, http.Header{"Content-Type": {"text/plain"}, "X-A": {"1", "2"}}, "hi", ""},
		{"empty body", encodeResponse(204, nil, ""), 204, http.Header{}, "", ""},
		{"status too small", encodeResponse(99, nil, ""), 0, nil, "", "status 99"},
		{"status too large", encodeResponse(1000, nil, ""), 0, nil, "", "status 1000"},
		{"truncated", encodeResponse(200, nil, "hello")[:10], 0, nil, "", "truncated"},
		{"header count lies", append(appendU32(appendU32(nil, 200), 1<<30), 0, 0, 0, 0), 0, nil, "", "truncated"},
		{"CRLF in value", encodeResponse(200, [][2]string{{"X", "a\r\nInjected: 1"}}, ""), 0, nil, "", "invalid header"},
		{"space in name", encodeResponse(200, [][2]string{{"X Y", "a"}}, ""), 0, nil, "", "invalid header"},
		{"empty name", encodeResponse(200, [][2]string{{"", "a"}}, ""), 0, nil, "", "invalid header"},
		{"nothing", nil, 0, nil, "", "truncated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := decodeResponse(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != tc.status || string(resp.Body) != tc.body {
				t.Errorf("got %d %q", resp.Status, resp.Body)
			}
			for k, v := range tc.header {
				if strings.Join(resp.Header[k], ",") != strings.Join(v, ",") {
					t.Errorf("header %s = %q, want %q", k, resp.Header[k], v)
				}
			}
		})
	}
}

func TestDecodeResponseCopies(t *testing.T) {
	in := encodeResponse(200, nil, "body")
	resp, err := decodeResponse(in)
	if err != nil {
		t.Fatal(err)
	}
	copy(in[len(in)-4:], "XXXX") // the guest reuses its memory
	if string(resp.Body) != "body" {
		t.Errorf("body aliases guest memory: %q", resp.Body)
	}
}

func TestEncodeRequest(t *testing.T) {
	r := &function.Request{Method: "PUT", Path: "/p", RawQuery: "a=1", Host: "h", RemoteAddr: "r",
		Header: http.Header{"X": {"1", "2"}}, Body: []byte("b")}
	got := encodeRequest(nil, r)
	want := appendStr(appendStr(appendStr(appendStr(appendStr(nil, "PUT"), "/p"), "a=1"), "h"), "r")
	want = appendU32(want, 2)
	want = appendStr(appendStr(want, "X"), "1")
	want = appendStr(appendStr(want, "X"), "2")
	want = appendStr(want, "b")
	if !bytes.Equal(got, want) {
		t.Errorf("encodeRequest = %x, want %x", got, want)
	}

	// Path parameters follow the body, so a guest built before them, which
	// reads up to the body and no further, sees the same request.
	r.PathParams = map[string]string{"id": "42"}
	got = encodeRequest(nil, r)
	want = appendStr(appendStr(appendU32(want, 1), "id"), "42")
	if !bytes.Equal(got, want) {
		t.Errorf("encodeRequest with params = %x, want %x", got, want)
	}
}

// FuzzDecodeResponse feeds arbitrary guest output to the decoder: it must
// never panic, and what it accepts must be a valid response.
func FuzzDecodeResponse(f *testing.F) {
	f.Add(encodeResponse(200, [][2]string{{"Content-Type", "text/plain"}}, "hello"))
	f.Add(encodeResponse(404, nil, ""))
	f.Add(encodeResponse(200, [][2]string{{"X", "a\nb"}}, ""))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		resp, err := decodeResponse(b)
		if err != nil {
			return
		}
		if resp.Status < 100 || resp.Status > 999 {
			t.Fatalf("accepted status %d", resp.Status)
		}
		for k, vs := range resp.Header {
			for _, v := range vs {
				if !validHeader([]byte(k), []byte(v)) {
					t.Fatalf("accepted header %q: %q", k, v)
				}
			}
		}
		if len(resp.Body) > len(b) {
			t.Fatal("body longer than input")
		}
	})
}
