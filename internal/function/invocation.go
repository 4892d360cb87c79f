package function

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"net/http"
	"time"
)

// Statuses of an invocation.
const (
	StatusOK        = "ok"
	StatusError     = "error"
	StatusTimeout   = "timeout"
	StatusOOM       = "oom"
	StatusThrottled = "throttled"
)

// Request is one invocation's input, already bounded in size by the caller.
type Request struct {
	// ID is the invocation's ID (the invoker sets it): the awsRequestId of
	// Lambda functions.
	ID         string
	Method     string
	Path       string // the function's own path: "/" plus whatever followed /fn/{name}, or a route's whole request path
	RawQuery   string
	Host       string
	RemoteAddr string
	Header     http.Header
	Body       []byte
	// RouteKey is the route that matched, "METHOD /path" as written in the
	// route table ("ANY /path" for a route of any method), or "" for a
	// function URL.
	RouteKey string
	// PathParams are the values of the matched route's {name} and
	// {rest...} parameters; nil without a route.
	PathParams map[string]string
	// Identity is the verified caller (nil: anonymous, or not an HTTP
	// call); the gateway also sets it in Header (SetIdentity).
	Identity *Identity
	// Event marks a raw event (the Lambda Invoke API, triggers): Body is the
	// payload given to the function as it is, and the response's body is
	// the function's result as it is. Otherwise a runtime that speaks in
	// events makes one of the HTTP request (API Gateway payload 2.0).
	Event bool
}

// Response is what a function answered.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Logs collects the log lines of one invocation. Implementations bound what
// they keep; Write never fails.
type Logs interface {
	// Line records one line (without its newline) from stream "stdout" or "stderr".
	Line(stream string, line []byte)
}

// Instance is one running copy of a version's code.
type Instance interface {
	// Invoke runs one request. The context's deadline is the function's
	// timeout; the runtime enforces it and the memory limit.
	Invoke(ctx context.Context, req *Request, logs Logs) (*Response, error)
	// Reusable reports whether the instance may serve another request.
	Reusable() bool
	// Close releases the instance.
	Close(ctx context.Context) error
}

// StreamWriter receives a response as a function streams it (the
// gateway's HTTP response). WriteHeader comes once, before any Write;
// Flush sends what was written to the client at once. An error means the
// client is gone: the invocation should stop.
type StreamWriter interface {
	WriteHeader(status int, header http.Header) error
	Write(p []byte) (int, error)
	Flush() error
}

// StreamInstance is an Instance that can stream a response (a function
// whose InvokeMode is stream). An instance that isn't one answers such a
// call buffered.
type StreamInstance interface {
	Instance
	// InvokeStream runs one request as Invoke does, writing the response
	// to w as the function produces it. When it returns an error and w has
	// had no WriteHeader, nothing reached the client, and the caller may
	// render the error; after WriteHeader the response is cut short.
	InvokeStream(ctx context.Context, req *Request, logs Logs, w StreamWriter) error
}

// StartInfo says what a cold start cost.
type StartInfo struct {
	CodeCold bool          // compiled code had to be loaded (or compiled)
	Load     time.Duration // time spent loading code
	Init     time.Duration // time spent instantiating
}

// Runtime runs the code of versions.
type Runtime interface {
	// Prepare readies v's code (compile, cache) ahead of the first call.
	// It is idempotent and safe to call in the background.
	Prepare(ctx context.Context, v *Version) error
	// Start starts a new instance of v. Loading v's code is bounded by the
	// runtime; starting the instance by v's timeout, as Lambda keeps init
	// apart from the invocation's own timeout.
	Start(ctx context.Context, v *Version) (Instance, StartInfo, error)
}

// Errors a runtime returns from Invoke, matched with errors.Is; the record's
// status follows from them.
var (
	ErrTimeout          = errors.New("function timed out")
	ErrOutOfMemory      = errors.New("function ran out of memory")
	ErrFunction         = errors.New("function failed")
	ErrResponseTooLarge = errors.New("function response too large")
	// ErrRequestTooLarge: a synchronous call's body is over the function's
	// limits.request.
	ErrRequestTooLarge = errors.New("request too large")
	ErrThrottled       = errors.New("too many concurrent invocations")
	ErrUnavailable     = errors.New("platform unavailable")
	// ErrVersionNotFound: the function exists, the version asked for doesn't.
	ErrVersionNotFound = errors.New("no such version")
)

// Reasons a call is throttled, as metrics label them.
const (
	ThrottleBudget              = "budget"               // the function's budget: GB-seconds per hour or day
	ThrottlePlatformBudget      = "platform_budget"      // serve --budget-gbs-hour / --budget-gbs-day
	ThrottleConcurrency         = "concurrency"          // the version's concurrency.max
	ThrottlePlatformConcurrency = "platform_concurrency" // serve --max-total-concurrency
	ThrottlePlatformMemory      = "platform_memory"      // serve --max-memory
	ThrottleRate                = "rate"                 // rate_limit.rps
	ThrottleRateIP              = "rate_ip"              // rate_limit.per_ip_rps
	ThrottleQueueFull           = "queue_full"           // the function's async queue is at its bound
)

// ThrottleError is a refused call and why; it matches ErrThrottled.
type ThrottleError struct {
	Reason string // one of the Throttle* constants
	Msg    string
	// RetryAfter is when a retry may succeed, where the limit knows it
	// (a rate limit's next token); 0 when it doesn't.
	RetryAfter time.Duration
}

func (e *ThrottleError) Error() string        { return "throttled (" + e.Reason + "): " + e.Msg }
func (e *ThrottleError) Is(target error) bool { return target == ErrThrottled }

// ThrottleReason returns why err throttled a call (ThrottleConcurrency for
// a plain ErrThrottled), or "" if it is not a throttle.
func ThrottleReason(err error) string {
	if te, ok := errors.AsType[*ThrottleError](err); ok {
		return te.Reason
	}
	if errors.Is(err, ErrThrottled) {
		return ThrottleConcurrency
	}
	return ""
}

// StatusOf maps an invocation error to a record status.
func StatusOf(err error) string {
	switch {
	case err == nil:
		return StatusOK
	case errors.Is(err, ErrTimeout):
		return StatusTimeout
	case errors.Is(err, ErrOutOfMemory):
		return StatusOOM
	case errors.Is(err, ErrThrottled):
		return StatusThrottled
	default:
		return StatusError
	}
}

// LogLine is one line a function wrote.
type LogLine struct {
	Seq    int64     `json:"seq"` // store-assigned, increasing; a cursor for following
	Time   time.Time `json:"time"`
	Stream string    `json:"stream"`
	Line   string    `json:"line"`
	// Set when lines are listed outside their invocation.
	InvocationID string `json:"invocation_id,omitempty"`
	Function     string `json:"function,omitempty"`
	Version      int    `json:"version,omitempty"`
}

// Invocation is the record every invocation leaves.
type Invocation struct {
	ID         string        `json:"id"`
	Project    string        `json:"project"`
	Function   string        `json:"function"`
	Version    int           `json:"version"`
	Trigger    string        `json:"trigger"` // "http", "api"
	Start      time.Time     `json:"start"`
	Duration   time.Duration `json:"duration_ns"`
	BilledMS   int64         `json:"billed_ms"`
	MemoryMB   int           `json:"memory_mb"`
	Cold       bool          `json:"cold"`
	Status     string        `json:"status"`
	Error      string        `json:"error,omitempty"`
	HTTPStatus int           `json:"http_status,omitempty"`
	// ResponseBytes is the size of the response body the function
	// answered, streamed or whole (headers not counted): its data out.
	ResponseBytes int64 `json:"response_bytes"`
	// RequestID is the X-Request-Id of the HTTP request that made a
	// synchronous call; empty for the others.
	RequestID string    `json:"request_id,omitempty"`
	Logs      []LogLine `json:"logs,omitempty"`
}

// BilledMillis rounds d up to the next millisecond, as metering does.
func BilledMillis(d time.Duration) int64 {
	ms := int64(d / time.Millisecond)
	if d%time.Millisecond != 0 || ms == 0 {
		ms++
	}
	return ms
}

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// IDFloor is the least ID of an invocation started at t or later: IDs
// compare as their start times do, so a range of IDs is a range of time.
func IDFloor(t time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t.UnixNano()))
	return idEncoding.EncodeToString(b[:])
}

// NewID returns a 26-character invocation ID for an invocation started at
// t: 64 bits of Unix nanoseconds then 64 random bits, in Crockford's
// base32. IDs sort by start time, to the nanosecond.
func NewID(t time.Time) string {
	ns := t.UnixNano()
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(ns))
	_, _ = rand.Read(b[8:])
	return idEncoding.EncodeToString(b[:])
}

// IDAt returns the invocation ID of an event at t named by seed: the same
// for the same t and seed on every node (a cron tick), sorting by t as
// NewID's do.
func IDAt(t time.Time, seed string) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t.UnixNano()))
	sum := sha256.Sum256([]byte(seed))
	copy(b[8:], sum[:8])
	return idEncoding.EncodeToString(b[:])
}
