package process

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hostless/hostless/internal/function"
)

// httpEvent makes the API Gateway HTTP API (payload 2.0) event that a
// Lambda Function URL makes of a request, so events.APIGatewayV2HTTPRequest
// handlers work unchanged. The path is the function's own (what followed
// /fn/{name}), or the whole path of a request that matched a route, whose
// key and path parameters fill routeKey and pathParameters as API Gateway
// fills them; text bodies go as they are, others base64-encoded.
func httpEvent(req *function.Request, now time.Time) ([]byte, error) {
	routeKey := "$default" // a function URL's, as Lambda's
	if req.RouteKey != "" {
		routeKey = req.RouteKey
	}
	ev := events.APIGatewayV2HTTPRequest{
		Version:        "2.0",
		RouteKey:       routeKey,
		PathParameters: req.PathParams,
		RawPath:        req.Path,
		RawQueryString: req.RawQuery,
		Headers:        make(map[string]string, len(req.Header)+1),
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:     routeKey,
			AccountID:    "anonymous",
			Stage:        "$default",
			RequestID:    req.ID,
			APIID:        "hostless",
			DomainName:   req.Host,
			DomainPrefix: domainPrefix(req.Host),
			Time:         now.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:    now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method:    req.Method,
				Path:      req.Path,
				Protocol:  "HTTP/1.1",
				SourceIP:  sourceIP(req.RemoteAddr),
				UserAgent: req.Header.Get("User-Agent"),
			},
		},
	}
	if id := req.Identity; id != nil {
		// As API Gateway's JWT authorizer passes a verified token's claims.
		claims := map[string]string{"sub": id.ID, "hostless:kind": id.Kind}
		if id.Email != "" {
			claims["email"] = id.Email
		}
		if len(id.Roles) > 0 {
			claims["roles"] = strings.Join(id.Roles, ",")
		}
		ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
			JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: claims, Scopes: id.Scopes},
		}
	}
	for k, vs := range req.Header {
		lk := strings.ToLower(k)
		if lk == "cookie" {
			for _, v := range vs {
				for c := range strings.SplitSeq(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						ev.Cookies = append(ev.Cookies, c)
					}
				}
			}
			continue
		}
		ev.Headers[lk] = strings.Join(vs, ",")
	}
	if req.Host != "" {
		ev.Headers["host"] = req.Host
	}
	if req.RawQuery != "" {
		if q, err := url.ParseQuery(req.RawQuery); err == nil && len(q) > 0 {
			ev.QueryStringParameters = make(map[string]string, len(q))
			for k, vs := range q {
				ev.QueryStringParameters[k] = strings.Join(vs, ",")
			}
		}
	}
	if len(req.Body) > 0 {
		if isText(req.Header.Get("Content-Type")) {
			ev.Body = string(req.Body)
		} else {
			ev.Body = base64.StdEncoding.EncodeToString(req.Body)
			ev.IsBase64Encoded = true
		}
	}
	return json.Marshal(&ev)
}

func domainPrefix(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	p, _, _ := strings.Cut(host, ".")
	return p
}

func sourceIP(remote string) string {
	if h, _, err := net.SplitHostPort(remote); err == nil {
		return h
	}
	return remote
}

// isText reports whether a body of this content type goes into the event
// as text, as Function URLs decide it.
func isText(ct string) bool {
	if ct == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	if strings.HasPrefix(mt, "text/") {
		return true
	}
	switch mt {
	case "application/json", "application/javascript", "application/xml", "application/x-www-form-urlencoded", "application/yaml":
		return true
	}
	return strings.HasSuffix(mt, "+json") || strings.HasSuffix(mt, "+xml")
}

// httpResult is the shape a function returns for an HTTP response.
type httpResult struct {
	StatusCode        *int                `json:"statusCode"`
	Headers           map[string]string   `json:"headers"`
	MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
	Body              *string             `json:"body"`
	IsBase64Encoded   bool                `json:"isBase64Encoded"`
	Cookies           []string            `json:"cookies"`
}

// httpResponse turns a function's result into the HTTP response, as Lambda
// Function URLs do: an object with a statusCode is {statusCode, headers,
// cookies, body, isBase64Encoded}; any other result is the body, as JSON
// with status 200. A result that claims the shape but breaks it is an error.
func httpResponse(result []byte) (*function.Response, error) {
	trimmed := bytes.TrimSpace(result)
	if len(trimmed) > 0 && trimmed[0] == '{' && bytes.Contains(trimmed, []byte(`"statusCode"`)) {
		var r httpResult
		if err := json.Unmarshal(trimmed, &r); err == nil && r.StatusCode != nil {
			return shapedResponse(&r)
		}
	}
	h := http.Header{"Content-Type": {"application/json"}}
	return &function.Response{Status: http.StatusOK, Header: h, Body: result}, nil
}

func shapedResponse(r *httpResult) (*function.Response, error) {
	if *r.StatusCode < 100 || *r.StatusCode > 599 {
		return nil, fmt.Errorf("%w: the function returned statusCode %d (want 100 to 599)", function.ErrFunction, *r.StatusCode)
	}
	resp := &function.Response{Status: *r.StatusCode, Header: http.Header{}}
	keys := make([]string, 0, len(r.Headers))
	for k := range r.Headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := addHeader(resp.Header, k, r.Headers[k]); err != nil {
			return nil, err
		}
	}
	for k, vs := range r.MultiValueHeaders {
		for _, v := range vs {
			if err := addHeader(resp.Header, k, v); err != nil {
				return nil, err
			}
		}
	}
	for _, c := range r.Cookies {
		if err := addHeader(resp.Header, "Set-Cookie", c); err != nil {
			return nil, err
		}
	}
	if r.Body != nil {
		if r.IsBase64Encoded {
			b, err := base64.StdEncoding.DecodeString(*r.Body)
			if err != nil {
				return nil, fmt.Errorf("%w: the function's body is marked isBase64Encoded but is not base64: %v", function.ErrFunction, err)
			}
			resp.Body = b
		} else {
			resp.Body = []byte(*r.Body)
		}
	}
	if resp.Header.Get("Content-Type") == "" && len(resp.Body) > 0 {
		resp.Header.Set("Content-Type", "application/json")
	}
	return resp, nil
}

func addHeader(h http.Header, k, v string) error {
	if !validHeaderName(k) || strings.ContainsAny(v, "\r\n\x00") {
		return fmt.Errorf("%w: the function returned an invalid header %s", function.ErrFunction, strconv.Quote(k))
	}
	switch http.CanonicalHeaderKey(k) {
	case "Content-Length", "Transfer-Encoding", "Connection":
		return nil // the server sets these
	}
	h.Add(k, v)
	return nil
}

func validHeaderName(k string) bool {
	if k == "" || len(k) > 256 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}
