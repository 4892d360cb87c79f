package process

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hostless/hostless/internal/function"
)

func TestHTTPEvent(t *testing.T) {
	req := &function.Request{
		ID: "id-1", Method: "POST", Path: "/a/b", RawQuery: "x=1&x=2&y=%20z", Host: "api.example.test:8080",
		RemoteAddr: "203.0.113.9:5555",
		Header: http.Header{"Content-Type": {"image/png"}, "Cookie": {"a=1; b=2", "c=3"}, "X-Multi": {"p", "q"},
			"User-Agent": {"ua"}},
		Body: []byte{0x89, 'P', 'N', 'G', 0},
	}
	b, err := httpEvent(req, time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Version != "2.0" || ev.RawPath != "/a/b" || ev.RawQueryString != "x=1&x=2&y=%20z" ||
		ev.QueryStringParameters["x"] != "1,2" || ev.QueryStringParameters["y"] != " z" {
		t.Fatalf("path and query: %+v", ev)
	}
	if ev.Headers["x-multi"] != "p,q" || ev.Headers["host"] != "api.example.test:8080" || ev.Headers["cookie"] != "" {
		t.Fatalf("headers: %v", ev.Headers)
	}
	if len(ev.Cookies) != 3 || ev.Cookies[0] != "a=1" || ev.Cookies[2] != "c=3" {
		t.Fatalf("cookies: %v", ev.Cookies)
	}
	if !ev.IsBase64Encoded || ev.Body != base64.StdEncoding.EncodeToString(req.Body) {
		t.Fatalf("a binary body must be base64: %q %v", ev.Body, ev.IsBase64Encoded)
	}
	h := ev.RequestContext.HTTP
	if h.Method != "POST" || h.SourceIP != "203.0.113.9" || h.UserAgent != "ua" || ev.RequestContext.RequestID != "id-1" ||
		ev.RequestContext.DomainPrefix != "api" || ev.RequestContext.TimeEpoch != 1700000000000 {
		t.Fatalf("context: %+v", ev.RequestContext)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Body = []byte(`{"a":1}`)
	b, _ = httpEvent(req, time.Now())
	json.Unmarshal(b, &ev)
	if ev.IsBase64Encoded || ev.Body != `{"a":1}` {
		t.Fatalf("a JSON body goes as text: %q %v", ev.Body, ev.IsBase64Encoded)
	}
	if ev.RouteKey != "$default" || ev.RequestContext.RouteKey != "$default" || ev.PathParameters != nil {
		t.Fatalf("a function URL's route: %q %q %v", ev.RouteKey, ev.RequestContext.RouteKey, ev.PathParameters)
	}
}

func TestHTTPEventRoute(t *testing.T) {
	req := &function.Request{Method: "GET", Path: "/api/users/42", RouteKey: "GET /api/users/{id}",
		PathParams: map[string]string{"id": "42"}}
	b, err := httpEvent(req, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.RouteKey != "GET /api/users/{id}" || ev.RequestContext.RouteKey != "GET /api/users/{id}" ||
		ev.RawPath != "/api/users/42" || len(ev.PathParameters) != 1 || ev.PathParameters["id"] != "42" {
		t.Fatalf("route: key %q %q, path %q, params %v", ev.RouteKey, ev.RequestContext.RouteKey, ev.RawPath, ev.PathParameters)
	}
}

func TestHTTPResponse(t *testing.T) {
	cases := []struct {
		name, result string
		status       int
		body, ctype  string
		err          error
	}{
		{"shaped", `{"statusCode":404,"headers":{"content-type":"text/plain","x-a":"1"},"body":"nope"}`, 404, "nope", "text/plain", nil},
		{"base64", `{"statusCode":200,"body":"aGk=","isBase64Encoded":true}`, 200, "hi", "application/json", nil},
		{"plain object", `{"message":"hi"}`, 200, `{"message":"hi"}`, "application/json", nil},
		{"string", `"hello"`, 200, `"hello"`, "application/json", nil},
		{"statusCode not a number", `{"statusCode":"200"}`, 200, `{"statusCode":"200"}`, "application/json", nil},
		{"status out of range", `{"statusCode":99}`, 0, "", "", function.ErrFunction},
		{"bad base64", `{"statusCode":200,"body":"!!","isBase64Encoded":true}`, 0, "", "", function.ErrFunction},
		{"header injection", `{"statusCode":200,"headers":{"x-a":"1\r\nSet-Cookie: evil=1"}}`, 0, "", "", function.ErrFunction},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, err := httpResponse([]byte(c.result))
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("want %v, got %v", c.err, err)
				}
				return
			}
			if err != nil || resp.Status != c.status || string(resp.Body) != c.body || resp.Header.Get("Content-Type") != c.ctype {
				t.Fatalf("%v %+v", err, resp)
			}
		})
	}
	resp, _ := httpResponse([]byte(`{"statusCode":200,"cookies":["a=1","b=2"],"multiValueHeaders":{"x-m":["1","2"]}}`))
	if len(resp.Header.Values("Set-Cookie")) != 2 || len(resp.Header.Values("X-M")) != 2 {
		t.Fatalf("cookies and multi-value headers: %v", resp.Header)
	}
}

func FuzzHTTPResponse(f *testing.F) {
	for _, s := range []string{`{"statusCode":200,"headers":{"a":"b"},"body":"x"}`, `"x"`, `{"statusCode":700}`,
		`{"statusCode":200,"isBase64Encoded":true,"body":"aGk="}`, `{"statusCode":200,"cookies":["a=1"]}`, `not json`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		resp, err := httpResponse(b)
		if err != nil {
			if !errors.Is(err, function.ErrFunction) {
				t.Fatalf("an error that is not the function's: %v", err)
			}
			return
		}
		if resp.Status < 100 || resp.Status > 599 {
			t.Fatalf("status %d", resp.Status)
		}
		for k, vs := range resp.Header {
			for _, v := range vs {
				for i := 0; i < len(v); i++ {
					if v[i] == '\r' || v[i] == '\n' || v[i] == 0 {
						t.Fatalf("header %s carries a control character", k)
					}
				}
			}
		}
	})
}
