package function

import (
	"fmt"
	"net/http"
	"time"
)

// Statuses of an async invocation besides the final ones of a run
// (StatusOK is its success).
const (
	// StatusQueued: accepted and stored on the bus, not yet started.
	StatusQueued = "queued"
	// StatusRunning: an attempt is running.
	StatusRunning = "running"
	// StatusRetrying: an attempt failed; another is due after a backoff.
	StatusRetrying = "retrying"
	// StatusDeadLettered: every attempt failed (or the event grew older
	// than retry.max_age); the event is in the function's dead-letter
	// queue until it is redriven.
	StatusDeadLettered = "dead_lettered"
)

// Trigger kinds of async invocations.
const (
	TriggerAsync  = "async"  // POST /fn/{name} with X-Hostless-Invocation-Type: Event
	TriggerLambda = "lambda" // the Lambda Invoke API with X-Amz-Invocation-Type: Event
	TriggerCron   = "cron"   // the function's schedule
)

// AsyncInvocation is the state of one async invocation, from acceptance to
// its outcome, under the ID the caller was given.
type AsyncInvocation struct {
	ID       string `json:"id"`
	Project  string `json:"project"`
	Function string `json:"function"`
	// Qualifier is the version or alias the caller named ("" for live).
	Qualifier string `json:"qualifier,omitempty"`
	Trigger   string `json:"trigger"`
	Status    string `json:"status"`
	// Attempts counts the attempts started, across redrives.
	Attempts   int       `json:"attempts"`
	AcceptedAt time.Time `json:"accepted_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	// LastAttempt is the invocation record of the latest attempt.
	LastAttempt string `json:"last_attempt,omitempty"`
	// Result is what the function answered, once it succeeded or failed
	// with an answer.
	Result *AsyncResult `json:"result,omitempty"`
	Error  string       `json:"error,omitempty"`
	// Seq is the bus message the state belongs to (a redrive makes a new
	// one): a redelivery of a message whose outcome is stored is not run
	// again.
	Seq uint64 `json:"-"`
}

// AsyncResult is a function's answer to an async invocation.
type AsyncResult struct {
	Status int         `json:"status"`
	Header http.Header `json:"header,omitempty"`
	Body   []byte      `json:"body,omitempty"`
}

// Final reports whether s is an outcome: no attempt follows without a
// redrive.
func Final(s string) bool {
	switch s {
	case StatusQueued, StatusRunning, StatusRetrying:
		return false
	}
	return true
}

// Rank orders the states of one async invocation: a state stored out of
// order (a late "queued" after "running") never replaces a later one.
func (a *AsyncInvocation) Rank() int64 {
	phase := int64(0)
	switch a.Status {
	case StatusQueued:
		phase = 0
	case StatusRunning:
		phase = 1
	case StatusRetrying:
		phase = 2
	default:
		phase = 3
	}
	return int64(a.Attempts)*4 + phase
}

// Retry is what happens after a failed async invocation (or trigger
// message): MaxAttempts retries after the first attempt, each after an
// exponential backoff with jitter, while the event is younger than MaxAge;
// then it is dead-lettered.
type Retry struct {
	// MaxAttempts counts retries after the first attempt; nil means
	// DefaultRetries (three attempts in all, as Lambda).
	MaxAttempts *int `json:"max_attempts,omitempty"`
	// MaxAge bounds how long an event is retried from its acceptance;
	// zero means DefaultMaxAge.
	MaxAge Duration `json:"max_age,omitzero"`
	// Backoff is the first retry's delay, doubled for each next one (with
	// jitter) up to MaxBackoff; zero means DefaultBackoff.
	Backoff Duration `json:"backoff,omitzero"`
}

// Defaults and bounds of Retry.
const (
	DefaultRetries = 2
	MaxRetries     = 100
	DefaultMaxAge  = 6 * time.Hour
	MaxMaxAge      = 7 * 24 * time.Hour
	DefaultBackoff = time.Second
	MaxBackoff     = 5 * time.Minute
)

// Retries returns the retries after the first attempt.
func (r Retry) Retries() int {
	if r.MaxAttempts == nil {
		return DefaultRetries
	}
	return *r.MaxAttempts
}

// Age returns MaxAge or its default.
func (r Retry) Age() time.Duration {
	if r.MaxAge == 0 {
		return DefaultMaxAge
	}
	return time.Duration(r.MaxAge)
}

// Delay returns the backoff before retry n (1 for the first), without
// jitter.
func (r Retry) Delay(n int) time.Duration {
	d := time.Duration(r.Backoff)
	if d == 0 {
		d = DefaultBackoff
	}
	for i := 1; i < n && d < MaxBackoff; i++ {
		d *= 2
	}
	return min(d, MaxBackoff)
}

// Validate checks the bounds of r.
func (r Retry) Validate() error {
	if r.MaxAttempts != nil && (*r.MaxAttempts < 0 || *r.MaxAttempts > MaxRetries) {
		return fmt.Errorf("%w: retry.max_attempts: %d is out of range 0-%d", ErrInvalid, *r.MaxAttempts, MaxRetries)
	}
	if r.MaxAge < 0 || time.Duration(r.MaxAge) > MaxMaxAge {
		return fmt.Errorf("%w: retry.max_age: must be between 1s and %s", ErrInvalid, MaxMaxAge)
	}
	if r.MaxAge != 0 && time.Duration(r.MaxAge) < time.Second {
		return fmt.Errorf("%w: retry.max_age: must be between 1s and %s", ErrInvalid, MaxMaxAge)
	}
	if r.Backoff < 0 || time.Duration(r.Backoff) > MaxBackoff {
		return fmt.Errorf("%w: retry.backoff: must be between 0 and %s", ErrInvalid, MaxBackoff)
	}
	return nil
}
