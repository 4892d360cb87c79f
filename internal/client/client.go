// Package client is the Go client of the control API. The CLI and the tests
// use it; it speaks only HTTP and JSON.
package client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hostless/hostless/internal/function"
)

// Client calls one Hostless server.
type Client struct {
	base string
	key  string
	hc   *http.Client
}

// New returns a client for the server at baseURL, authenticating with an
// admin key. Connecting and the server's first answer are bounded, so a
// command never hangs on a stuck server; bodies are not (logs -f streams).
func New(baseURL, key string) *Client {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: responseHeaderTimeout,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), key: key, hc: &http.Client{Transport: tr}}
}

// responseHeaderTimeout outlasts the slowest legitimate invoke: a queue
// wait (10 s), loading code (2 min), starting an instance and running the
// call (up to a 15 min timeout each).
const responseHeaderTimeout = 35 * time.Minute

// WithHTTPClient replaces the HTTP client (for TLS settings, timeouts).
func (c *Client) WithHTTPClient(hc *http.Client) *Client { c.hc = hc; return c }

// Error is an error the server answered.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return fmt.Sprintf("%s (HTTP %d: %s)", e.Message, e.Status, e.Code) }

// IsNotFound reports whether err is a 404 from the server.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

func (c *Client) do(ctx context.Context, method, path string, body io.Reader, header http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	return resp, nil
}

// decodeError reads an error body.
func decodeError(resp *http.Response) error {
	defer resp.Body.Close()
	var body struct {
		Error *Error `json:"error"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err := json.Unmarshal(b, &body); err != nil || body.Error == nil {
		return &Error{Status: resp.StatusCode, Code: "http_error", Message: strings.TrimSpace(string(b))}
	}
	body.Error.Status = resp.StatusCode
	return body.Error
}

// call sends JSON (when in is not nil) and decodes JSON into out.
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	h := http.Header{}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
		h.Set("Content-Type", "application/json")
	}
	resp, err := c.do(ctx, method, path, body, h)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return decodeError(resp)
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// FunctionView is a function with the specs of what its live alias
// serves: its version's, and its canary's if it has one.
type FunctionView struct {
	function.Function
	Spec       *function.Spec `json:"spec,omitempty"`
	CanarySpec *function.Spec `json:"canary_spec,omitempty"`
}

// PutResult is what a deploy of one function did.
type PutResult struct {
	Action   string            `json:"action"`
	Function function.Function `json:"function"`
	Version  function.Version  `json:"version"`
}

// FileRef returns the code reference (sha256) of a file.
func FileRef(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// UploadArtifact uploads a file unless the server has it already, and
// returns its code reference.
func (c *Client) UploadArtifact(ctx context.Context, path string) (string, error) {
	ref, err := FileRef(path)
	if err != nil {
		return "", err
	}
	resp, err := c.do(ctx, http.MethodHead, "/v1/artifacts/"+ref, nil, nil)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return ref, nil
	}
	switch resp.StatusCode {
	case http.StatusNotFound:
	case http.StatusUnauthorized:
		return "", &Error{Status: resp.StatusCode, Code: "unauthorized", Message: "no admin key: set HOSTLESS_ADMIN_KEY or --key"}
	case http.StatusForbidden:
		return "", &Error{Status: resp.StatusCode, Code: "forbidden", Message: "the admin key is not valid for this server"}
	default:
		return "", &Error{Status: resp.StatusCode, Code: "http_error", Message: "checking artifact " + ref}
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.base+"/v1/artifacts/"+ref, f)
	if err != nil {
		return "", err
	}
	req.ContentLength = st.Size()
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Authorization", "Bearer "+c.key)
	resp, err = c.hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("upload %s: %w", path, err)
	}
	if resp.StatusCode >= 300 {
		return "", decodeError(resp)
	}
	resp.Body.Close()
	return ref, nil
}

// PutFunction deploys a spec under a name.
func (c *Client) PutFunction(ctx context.Context, name string, spec function.Spec) (PutResult, error) {
	var r PutResult
	err := c.call(ctx, http.MethodPut, "/v1/functions/"+url.PathEscape(name), spec, &r)
	return r, err
}

// PutCanary deploys a spec as the live alias's canary, taking weight
// percent (1-99) of its calls; the live alias's version keeps the rest.
func (c *Client) PutCanary(ctx context.Context, name string, spec function.Spec, weight int) (PutResult, error) {
	var r PutResult
	q := url.Values{"canary": {strconv.Itoa(weight)}}
	err := c.call(ctx, http.MethodPut, "/v1/functions/"+url.PathEscape(name)+"?"+q.Encode(), spec, &r)
	return r, err
}

// GetFunction returns a function and its serving spec.
func (c *Client) GetFunction(ctx context.Context, name string) (FunctionView, error) {
	var f FunctionView
	err := c.call(ctx, http.MethodGet, "/v1/functions/"+url.PathEscape(name), nil, &f)
	return f, err
}

// ListFunctions lists functions.
func (c *Client) ListFunctions(ctx context.Context) ([]function.Function, error) {
	var r struct {
		Functions []function.Function `json:"functions"`
	}
	err := c.call(ctx, http.MethodGet, "/v1/functions", nil, &r)
	return r.Functions, err
}

// DeleteFunction deletes a function.
func (c *Client) DeleteFunction(ctx context.Context, name string) error {
	return c.call(ctx, http.MethodDelete, "/v1/functions/"+url.PathEscape(name), nil, nil)
}

// ListVersions lists a function's versions, newest first.
func (c *Client) ListVersions(ctx context.Context, name string) ([]function.Version, error) {
	var r struct {
		Versions []function.Version `json:"versions"`
	}
	err := c.call(ctx, http.MethodGet, "/v1/functions/"+url.PathEscape(name)+"/versions", nil, &r)
	return r.Versions, err
}

// Rollback moves the live alias back: to version to alone, or, when to is
// 0, to its version alone if it has a canary, else to the version before.
func (c *Client) Rollback(ctx context.Context, name string, to int) (function.Function, error) {
	var fn function.Function
	var in any
	if to > 0 {
		in = map[string]int{"version": to}
	}
	err := c.call(ctx, http.MethodPost, "/v1/functions/"+url.PathEscape(name)+"/rollback", in, &fn)
	return fn, err
}

func aliasPath(name, alias string) string {
	return "/v1/functions/" + url.PathEscape(name) + "/aliases/" + url.PathEscape(alias)
}

// ListAliases lists a function's aliases by name, live among them.
func (c *Client) ListAliases(ctx context.Context, name string) ([]function.Alias, error) {
	var r struct {
		Aliases []function.Alias `json:"aliases"`
	}
	err := c.call(ctx, http.MethodGet, "/v1/functions/"+url.PathEscape(name)+"/aliases", nil, &r)
	return r.Aliases, err
}

// GetAlias returns one alias of a function.
func (c *Client) GetAlias(ctx context.Context, name, alias string) (function.Alias, error) {
	var a function.Alias
	err := c.call(ctx, http.MethodGet, aliasPath(name, alias), nil, &a)
	return a, err
}

// PutAlias creates or replaces a function's alias a.Name: its version, and
// optionally a canary version with its weight.
func (c *Client) PutAlias(ctx context.Context, name string, a function.Alias) (function.Alias, error) {
	in := map[string]int{"version": a.Version}
	if a.CanaryVersion != 0 || a.CanaryWeight != 0 {
		in["canary_version"], in["canary_weight"] = a.CanaryVersion, a.CanaryWeight
	}
	var out function.Alias
	err := c.call(ctx, http.MethodPut, aliasPath(name, a.Name), in, &out)
	return out, err
}

// DeleteAlias deletes an alias (not live).
func (c *Client) DeleteAlias(ctx context.Context, name, alias string) error {
	return c.call(ctx, http.MethodDelete, aliasPath(name, alias), nil, nil)
}

// Promote makes an alias's canary its version, serving every call.
func (c *Client) Promote(ctx context.Context, name, alias string) (function.Alias, error) {
	var a function.Alias
	err := c.call(ctx, http.MethodPost, aliasPath(name, alias)+"/promote", nil, &a)
	return a, err
}

// InvokeResult is a function's answer to an API invocation.
type InvokeResult struct {
	ID     string
	Status string // the record's status
	HTTP   int
	Header http.Header
	Body   []byte
}

// Invoke calls a function with body (POST /) and returns its response. A
// function failure is returned as an *Error with the invocation's ID in
// the result.
func (c *Client) Invoke(ctx context.Context, name string, body []byte) (*InvokeResult, error) {
	h := http.Header{}
	if json.Valid(body) && len(body) > 0 {
		h.Set("Content-Type", "application/json")
	}
	resp, err := c.do(ctx, http.MethodPost, "/v1/functions/"+url.PathEscape(name)+"/invoke", bytes.NewReader(body), h)
	if err != nil {
		return nil, err
	}
	res := &InvokeResult{ID: resp.Header.Get("X-Hostless-Invocation-Id"), Status: resp.Header.Get("X-Hostless-Status"), HTTP: resp.StatusCode, Header: resp.Header}
	if resp.StatusCode >= 400 && resp.Header.Get("X-Hostless-Status") != function.StatusOK {
		return res, decodeError(resp)
	}
	defer resp.Body.Close()
	res.Body, err = io.ReadAll(resp.Body)
	return res, err
}

// ListInvocations lists records newest first; before pages.
func (c *Client) ListInvocations(ctx context.Context, fn string, limit int, before string) ([]function.Invocation, string, error) {
	q := url.Values{}
	if fn != "" {
		q.Set("function", fn)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if before != "" {
		q.Set("before", before)
	}
	var r struct {
		Invocations []function.Invocation `json:"invocations"`
		Next        string                `json:"next"`
	}
	err := c.call(ctx, http.MethodGet, "/v1/invocations?"+q.Encode(), nil, &r)
	return r.Invocations, r.Next, err
}

// GetInvocation returns one record with its logs.
func (c *Client) GetInvocation(ctx context.Context, id string) (function.Invocation, error) {
	var r function.Invocation
	err := c.call(ctx, http.MethodGet, "/v1/invocations/"+url.PathEscape(id), nil, &r)
	return r, err
}

// LogQuery selects log lines (GET /v1/logs); every field is optional.
type LogQuery struct {
	Function string
	// Since is a duration back from now (30m, 24h, 7d) or an RFC 3339 time.
	Since string
	// Status is ok, error (any failure), timeout, oom or throttled, or
	// several comma-separated.
	Status string
	// Grep keeps the lines that contain it (case-sensitive).
	Grep string
	// After pages forward from a cursor; Before pages back from one;
	// neither asks for the newest lines.
	After, Before int64
	Limit         int
}

func (q LogQuery) values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"function": q.Function, "since": q.Since, "status": q.Status, "grep": q.Grep} {
		if s != "" {
			v.Set(k, s)
		}
	}
	for k, n := range map[string]int64{"after": q.After, "before": q.Before, "limit": int64(q.Limit)} {
		if n > 0 {
			v.Set(k, strconv.FormatInt(n, 10))
		}
	}
	return v
}

// LogPage is a page of log lines, oldest first, and its cursors: Next
// pages forward (and follows) from its end; Prev, when not 0, pages back
// to older lines that may match.
type LogPage struct {
	Lines []function.LogLine `json:"lines"`
	Next  int64              `json:"next"`
	Prev  int64              `json:"prev"`
}

// Logs returns a page of log lines.
func (c *Client) Logs(ctx context.Context, q LogQuery) (LogPage, error) {
	var p LogPage
	err := c.call(ctx, http.MethodGet, "/v1/logs?"+q.values().Encode(), nil, &p)
	return p, err
}

// FollowLogs streams the log lines q selects as they are stored, starting
// with the newest q.Limit (or those after q.After), until ctx ends or the
// server closes the stream.
func (c *Client) FollowLogs(ctx context.Context, q LogQuery, each func(function.LogLine)) error {
	v := q.values()
	v.Set("follow", "true")
	resp, err := c.do(ctx, http.MethodGet, "/v1/logs?"+v.Encode(), nil, http.Header{"Accept": {"text/event-stream"}})
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return decodeError(resp)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var l function.LogLine
		if err := json.Unmarshal([]byte(data), &l); err == nil {
			each(l)
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return sc.Err()
}
