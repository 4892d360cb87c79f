package gateway

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/hostless/hostless/internal/apierror"
	"github.com/hostless/hostless/internal/function"
)

// LambdaAuth authenticates a Lambda API request (AWS SigV4). It may read
// r.Body and must leave in its place the body the signature covers. Its
// error's message is shown to the caller, so it must say what is wrong
// without revealing a secret; an *AuthError names the AWS error code.
type LambdaAuth func(r *http.Request) error

// AuthError is a refused signature: an AWS error code, its HTTP status
// (403 or 400) and a message for the caller.
type AuthError struct {
	Code    string
	Status  int
	Message string
}

func (e *AuthError) Error() string { return e.Code + ": " + e.Message }

// looker finds the version a call would run without running it.
type looker interface {
	Lookup(ctx context.Context, project, name, alias string, version int) (*function.Version, error)
}

// maxTail is how much of an invocation's logs X-Amz-Log-Type: Tail returns.
const maxTail = 4 << 10

// LambdaAPI serves the AWS Lambda Invoke API, so aws-sdk clients call
// functions as they call Lambda:
// POST /2015-03-31/functions/{name}/invocations.
type LambdaAPI struct {
	g    *Gateway
	auth LambdaAuth
}

// Lambda returns the Lambda API of g; auth nil refuses every call (no
// access key is configured).
func (g *Gateway) Lambda(auth LambdaAuth) *LambdaAPI { return &LambdaAPI{g: g, auth: auth} }

// Register adds the Lambda API's routes to mux.
func (l *LambdaAPI) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /2015-03-31/functions/{name}/invocations", l.invoke)
}

// lambdaError writes an error as the Lambda API does: the type in
// X-Amzn-ErrorType and the body, which aws-sdk clients read.
func lambdaError(w http.ResponseWriter, status int, typ, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", typ)
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]string{"Type": "User", "message": msg, "__type": typ})
	_, _ = w.Write(b)
}

func (l *LambdaAPI) invoke(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	qualifier := r.URL.Query().Get("Qualifier")
	// A function may be named by its ARN, with a qualifier at its end, as
	// the SDKs allow. (The request itself stays as it was signed.)
	if i := strings.LastIndex(name, ":function:"); i >= 0 {
		name = name[i+len(":function:"):]
		if n, q, ok := strings.Cut(name, ":"); ok {
			name = n
			if qualifier == "" {
				qualifier = q
			}
		}
	}
	if r.ContentLength > l.g.maxRequestBytes {
		lambdaError(w, http.StatusRequestEntityTooLarge, "RequestTooLargeException", "request payload is larger than %d bytes", l.g.maxRequestBytes)
		return
	}
	if l.auth == nil {
		lambdaError(w, http.StatusForbidden, "UnrecognizedClientException",
			"the Lambda API is off: the server has no access key (set HOSTLESS_AWS_ACCESS_KEY_ID and HOSTLESS_AWS_SECRET_ACCESS_KEY)")
		return
	}
	if err := l.auth(r); err != nil {
		status, typ, msg := http.StatusForbidden, "InvalidSignatureException", "the request's signature is not valid"
		if ae, ok := errors.AsType[*AuthError](err); ok {
			status, msg = ae.Status, ae.Message
			switch ae.Code {
			case "InvalidAccessKeyId":
				typ = "UnrecognizedClientException"
			case "EntityTooLarge":
				typ = "RequestTooLargeException"
			case "SignatureDoesNotMatch", "XAmzContentSHA256Mismatch":
			default:
				typ = ae.Code
			}
		}
		lambdaError(w, status, typ, "%s", msg)
		return
	}
	buf, err := l.g.readBody(w, r, l.g.maxRequestBytes)
	var body []byte
	if buf != nil {
		defer l.g.bufs.Put(buf)
		body = buf.Bytes()
	}
	if err != nil {
		if ae, ok := errors.AsType[*apierror.Error](err); ok && ae.Status == http.StatusRequestEntityTooLarge {
			lambdaError(w, http.StatusRequestEntityTooLarge, "RequestTooLargeException", "request payload is larger than %d bytes", l.g.maxRequestBytes)
		} else {
			lambdaError(w, http.StatusBadRequest, "InvalidRequestContentException", "the request body could not be read, or does not match its signature")
		}
		return
	}
	// Qualifier: a version number, an alias, or $LATEST (live here: the
	// newest version a deploy made serves through live).
	version, alias := 0, ""
	switch q := qualifier; {
	case q == "" || q == "$LATEST" || q == "live":
	case q[0] >= '0' && q[0] <= '9':
		n, err := strconv.Atoi(q)
		if err != nil || n < 1 {
			lambdaError(w, http.StatusNotFound, "ResourceNotFoundException", "function %s has no version %q", name, q)
			return
		}
		version = n
	default:
		alias = q
	}
	if len(body) > 0 && !json.Valid(body) {
		lambdaError(w, http.StatusBadRequest, "InvalidRequestContentException", "could not parse request body into json")
		return
	}
	async := false
	switch typ := r.Header.Get("X-Amz-Invocation-Type"); typ {
	case "", "RequestResponse":
	case "DryRun":
		// Checks the caller and the function, runs nothing.
		lk, ok := l.g.inv.(looker)
		if !ok {
			lambdaError(w, http.StatusBadRequest, "InvalidParameterValueException", "DryRun is not available")
			return
		}
		if _, err := lk.Lookup(r.Context(), function.DefaultProject, name, alias, version); err != nil {
			if notFound(err) {
				lambdaError(w, http.StatusNotFound, "ResourceNotFoundException", "function not found: %s", name)
			} else {
				lambdaError(w, http.StatusServiceUnavailable, "ServiceException", "looking the function up failed")
			}
			return
		}
		w.WriteHeader(http.StatusNoContent)
		return
	case "Event":
		async = true
	default:
		lambdaError(w, http.StatusBadRequest, "InvalidParameterValueException",
			"X-Amz-Invocation-Type %q is not one of RequestResponse, Event, DryRun", typ)
		return
	}
	if body == nil {
		body = []byte("{}")
	}
	// The function gets the caller's headers without the signature, which
	// could be replayed within the clock skew AWS allows.
	h := r.Header.Clone()
	for _, k := range []string{"Authorization", "X-Amz-Date", "X-Amz-Content-Sha256", "X-Amz-Security-Token"} {
		h.Del(k)
	}
	req := &function.Request{Method: http.MethodPost, Path: "/", Host: r.Host, RemoteAddr: r.RemoteAddr,
		Header: h, Body: body, Event: true}
	if async {
		l.enqueue(w, r, name, alias, version, req)
		return
	}
	var resp *function.Response
	var rec *function.Invocation
	if alias != "" {
		resp, rec, err = l.g.inv.InvokeAlias(r.Context(), function.DefaultProject, name, alias, "lambda-api", req)
	} else {
		resp, rec, err = l.g.inv.InvokeVersion(r.Context(), function.DefaultProject, name, version, "lambda-api", req)
	}
	if rec != nil {
		w.Header().Set("X-Hostless-Invocation-Id", rec.ID)
		w.Header().Set("X-Amz-Executed-Version", strconv.Itoa(rec.Version))
		w.Header().Set("X-Amzn-Requestid", rec.ID)
		if r.Header.Get("X-Amz-Log-Type") == "Tail" {
			w.Header().Set("X-Amz-Log-Result", logTail(rec))
		}
	}
	switch {
	case notFound(err):
		lambdaError(w, http.StatusNotFound, "ResourceNotFoundException", "function not found: %s", name)
		return
	case errors.Is(err, function.ErrThrottled):
		// The same Retry-After and message as a function URL's 429.
		if ae, ok := errors.AsType[*apierror.Error](InvokeError(name, err)); ok {
			for k, vs := range ae.Header {
				w.Header()[k] = vs
			}
			lambdaError(w, http.StatusTooManyRequests, "TooManyRequestsException", "%s", ae.Message)
			return
		}
		lambdaError(w, http.StatusTooManyRequests, "TooManyRequestsException", "rate exceeded")
		return
	case errors.Is(err, function.ErrUnavailable):
		lambdaError(w, http.StatusServiceUnavailable, "ServiceException", "the function can't run now; the invocation record has the details")
		return
	case errors.Is(err, function.ErrRequestTooLarge):
		lambdaError(w, http.StatusRequestEntityTooLarge, "RequestTooLargeException", "Request must be smaller than the function's limits.request: %s",
			function.Short(strings.TrimPrefix(strings.TrimPrefix(err.Error(), function.ErrRequestTooLarge.Error()), ": ")))
		return
	case err != nil && resp == nil:
		// The function failed without a payload of its own (timeout, out
		// of memory, crash): Lambda answers 200 with an error payload.
		typ := "Runtime.ExitError"
		switch {
		case errors.Is(err, function.ErrTimeout):
			typ = "Sandbox.Timedout"
		case errors.Is(err, function.ErrOutOfMemory):
			typ = "Runtime.OutOfMemory"
		case errors.Is(err, function.ErrResponseTooLarge):
			typ = "Function.ResponseSizeTooLarge"
		}
		b, _ := json.Marshal(map[string]string{"errorType": typ, "errorMessage": errMessage(rec, err)})
		resp = &function.Response{Status: http.StatusOK, Header: http.Header{"X-Amz-Function-Error": {"Unhandled"}}, Body: b}
	}
	out := w.Header()
	out.Set("Content-Type", "application/json")
	if fe := resp.Header.Get("X-Amz-Function-Error"); fe != "" {
		out.Set("X-Amz-Function-Error", fe)
	}
	out.Set("Content-Length", strconv.Itoa(len(resp.Body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(resp.Body)
}

// errMessage is the caller's view of a failure: its kind, not internals.
func errMessage(rec *function.Invocation, err error) string {
	switch function.StatusOf(err) {
	case function.StatusTimeout:
		return "Task timed out"
	case function.StatusOOM:
		if rec != nil {
			return fmt.Sprintf("Runtime exited: the function ran out of memory (limit %d MB)", rec.MemoryMB)
		}
		return "Runtime exited: the function ran out of memory"
	}
	if errors.Is(err, function.ErrResponseTooLarge) {
		return "Response payload size exceeded maximum allowed payload size"
	}
	return "Runtime exited with an error; the invocation record has the details"
}

// logTail is the last 4 KB of an invocation's logs and its REPORT line,
// base64-encoded, as X-Amz-Log-Result carries them.
func logTail(rec *function.Invocation) string {
	var b strings.Builder
	for _, l := range rec.Logs {
		b.WriteString(l.Line)
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "REPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: %d ms\tMemory Size: %d MB\t\n",
		rec.ID, float64(rec.Duration.Microseconds())/1000, rec.BilledMS, rec.MemoryMB)
	s := b.String()
	if len(s) > maxTail {
		s = s[len(s)-maxTail:]
	}
	return base64.StdEncoding.EncodeToString([]byte(s))
}

// notFound: no such function, version or alias.
func notFound(err error) bool {
	return errors.Is(err, function.ErrNotFound) || errors.Is(err, function.ErrVersionNotFound) || errors.Is(err, function.ErrAliasNotFound)
}

// enqueue accepts an Event invocation: 202 with an empty body once the
// event is stored, as Lambda answers.
func (l *LambdaAPI) enqueue(w http.ResponseWriter, r *http.Request, name, alias string, version int, req *function.Request) {
	if l.g.async == nil {
		lambdaError(w, http.StatusBadRequest, "InvalidParameterValueException", "X-Amz-Invocation-Type Event is not available on this server")
		return
	}
	ref := name
	switch {
	case alias != "":
		ref += "@" + alias
	case version > 0:
		ref += "@" + strconv.Itoa(version)
	}
	id, err := l.g.async.EnqueueRef(r.Context(), function.DefaultProject, ref, function.TriggerLambda, req, "")
	switch {
	case notFound(err):
		lambdaError(w, http.StatusNotFound, "ResourceNotFoundException", "function not found: %s", name)
		return
	case tooLargeEvent(err):
		lambdaError(w, http.StatusRequestEntityTooLarge, "RequestTooLargeException", "%v", err)
		return
	case errors.Is(err, function.ErrThrottled):
		w.Header().Set("Retry-After", "5")
		lambdaError(w, http.StatusTooManyRequests, "TooManyRequestsException", "%v", err)
		return
	case err != nil:
		w.Header().Set("Retry-After", "1")
		lambdaError(w, http.StatusServiceUnavailable, "ServiceException", "the event could not be stored; nothing was queued: retry shortly")
		return
	}
	w.Header().Set("X-Amzn-Requestid", id)
	w.Header().Set("X-Hostless-Invocation-Id", id)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
}
