// Package store defines the persistence interfaces of the platform, one per
// domain. Implementations live in subpackages named after what they depend
// on (store/sqlite, store/postgres) and pass the one conformance suite in
// store/storetest. No SQL exists outside these packages.
//
// Package store must never import HTTP, runtimes or the scheduler.
package store

import (
	"context"
	"fmt"
	"time"

	"github.com/hostless/hostless/internal/function"
)

// ErrNotFound is returned by every implementation, matched with errors.Is.
var ErrNotFound = function.ErrNotFound

// Limits on listed rows.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Limit applies DefaultLimit (for n <= 0) and MaxLimit to a requested
// number of rows; every implementation lists with it.
func Limit(n int) int {
	switch {
	case n <= 0:
		return DefaultLimit
	case n > MaxLimit:
		return MaxLimit
	}
	return n
}

// PutResult says what PutFunction or PutCanary did.
type PutResult struct {
	// Function is the function after the deploy, with its live alias.
	Function function.Function
	// Version is the version that has the deployed spec: a new one, or one
	// the live alias already served.
	Version function.Version
	// Action is "created" (a new function), "updated" (the live alias
	// changed: a new version, or, for a plain deploy of the spec of a
	// version live already splits its calls with, that version alone) or
	// "unchanged" (nothing written).
	Action string
}

// Deploy decides, for every implementation alike, what a deploy of spec
// does to a function's live alias. stable is the spec of live's version,
// canary that of its canary (nil without one). weight 0 is a plain deploy:
// live serves spec alone. weight 1-99 is a canary deploy: spec becomes
// live's canary at that weight, and live's version stays. next is the
// number a new version would get. Deploy returns live after the deploy,
// the action, and the version with spec: next when a new version must be
// made.
//
// A deploy compares spec with the newest version live serves (its canary,
// if it has one): equal, nothing changes. A plain deploy of the spec of
// either version live splits between makes that version serve alone,
// without a new version, as Lambda publishes no version for code it has.
func Deploy(live function.Alias, stable, canary, spec *function.Spec, weight, next int) (after function.Alias, action string, version int) {
	after = live
	head, headVersion := stable, live.Version
	if canary != nil {
		head, headVersion = canary, live.CanaryVersion
	}
	if spec.Equal(head) {
		if weight > 0 || canary == nil {
			return live, "unchanged", headVersion
		}
		after.Version, after.CanaryVersion, after.CanaryWeight = headVersion, 0, 0
		return after, "updated", headVersion
	}
	if weight > 0 {
		after.CanaryVersion, after.CanaryWeight = next, weight
		return after, "updated", next
	}
	after.CanaryVersion, after.CanaryWeight = 0, 0
	if canary != nil && spec.Equal(stable) {
		return after, "updated", live.Version
	}
	after.Version = next
	return after, "updated", next
}

// ErrDeleteLive is DeleteAlias's answer for the live alias; it matches
// function.ErrInvalid.
var ErrDeleteLive = fmt.Errorf("%w: the live alias serves /fn/{name} and can't be deleted; point it at another version, or delete the function", function.ErrInvalid)

// ChangeAlias applies an UpdateAlias change to a copy of cur, for every
// implementation alike: change may set the versions and the weight, never
// the alias's identity or times; the result must pass Validate.
func ChangeAlias(cur function.Alias, change func(*function.Alias) error) (function.Alias, error) {
	a := cur
	if err := change(&a); err != nil {
		return function.Alias{}, err
	}
	a.Project, a.Function, a.Name, a.CreatedAt, a.UpdatedAt = cur.Project, cur.Function, cur.Name, cur.CreatedAt, cur.UpdatedAt
	if err := a.Validate(); err != nil {
		return function.Alias{}, err
	}
	return a, nil
}

// Functions stores functions, their immutable versions and their aliases.
// Every function has the alias function.LiveAlias from its creation on.
type Functions interface {
	// PutFunction deploys spec so that the live alias serves it alone
	// (see Deploy): it creates the function (version 1), adds a version
	// when spec differs from what live serves, or changes nothing. Atomic.
	PutFunction(ctx context.Context, project, name string, spec function.Spec) (PutResult, error)
	// PutCanary deploys spec as the live alias's canary at weight percent
	// of its calls (1-99; see Deploy). A function that doesn't exist yet is
	// created with spec as version 1, serving alone: there is nothing to
	// split with. Atomic.
	PutCanary(ctx context.Context, project, name string, spec function.Spec, weight int) (PutResult, error)
	// GetFunction returns a function, or ErrNotFound.
	GetFunction(ctx context.Context, project, name string) (function.Function, error)
	// ListFunctions returns a project's functions ordered by name.
	ListFunctions(ctx context.Context, project string) ([]function.Function, error)
	// SetServing makes an existing version the one the live alias serves
	// alone, clearing any canary (a rollback); ErrNotFound if the function
	// or the version doesn't exist.
	SetServing(ctx context.Context, project, name string, version int) (function.Function, error)
	// DeleteFunction deletes a function, its versions and its aliases, or
	// returns ErrNotFound.
	DeleteFunction(ctx context.Context, project, name string) error
	// GetVersion returns one version, or ErrNotFound.
	GetVersion(ctx context.Context, project, name string, version int) (function.Version, error)
	// ListVersions returns a function's versions, newest first.
	ListVersions(ctx context.Context, project, name string) ([]function.Version, error)

	// GetAlias returns one alias of a function: ErrNotFound if the function
	// doesn't exist, function.ErrAliasNotFound if it has no such alias.
	GetAlias(ctx context.Context, project, name, alias string) (function.Alias, error)
	// ListAliases returns a function's aliases ordered by name, the live
	// alias among them, or ErrNotFound.
	ListAliases(ctx context.Context, project, name string) ([]function.Alias, error)
	// PutAlias creates or replaces an alias and reports whether it created
	// it. It fails with function.ErrInvalid if a fails Validate,
	// ErrNotFound if the function doesn't exist, function.ErrVersionNotFound
	// if a version a names doesn't. Only a's name, versions and weight are
	// read.
	PutAlias(ctx context.Context, project, name string, a function.Alias) (function.Alias, bool, error)
	// UpdateAlias reads an alias, lets change modify its versions and
	// weight, validates the result and writes it, in one transaction, so
	// that a read-modify-write (a promote, a rollback) loses no concurrent
	// change. An error of change is returned, wrapped, and nothing is
	// written. Errors as GetAlias and PutAlias.
	UpdateAlias(ctx context.Context, project, name, alias string, change func(*function.Alias) error) (function.Alias, error)
	// DeleteAlias deletes an alias. The live alias can't be deleted
	// (function.ErrInvalid): it is what serves /fn/{name}. Errors as GetAlias.
	DeleteAlias(ctx context.Context, project, name, alias string) error
}

// InvocationFilter selects invocation records.
type InvocationFilter struct {
	Project  string
	Function string // empty: all functions
	Before   string // an invocation ID: only records older than it (paging)
	Limit    int    // at most this many; implementations cap it at 1000
}

// LogFilter selects log lines across invocations: those that pass every
// filter that is set, a page of them.
type LogFilter struct {
	Project  string
	Function string // empty: all functions
	// Statuses keeps the lines of invocations that ended with one of these
	// statuses (function.StatusOK, ...); empty keeps all.
	Statuses []string
	// Since keeps the lines logged at or after it; zero keeps all.
	Since time.Time
	// Grep keeps the lines that contain it, as bytes (case-sensitive);
	// empty keeps all.
	Grep string
	// AfterSeq, when above 0, pages forward: the oldest matching lines
	// with a larger Seq (following). Otherwise the page is the newest
	// matching lines with a Seq below BeforeSeq, or of all when BeforeSeq
	// is 0 (the tail, then older pages). Lines are oldest first either way.
	AfterSeq  int64
	BeforeSeq int64
	Limit     int // lines per page; capped at 1000
}

// MaxLogScan bounds the work of one ListLogs call: it reads the lines of at
// most this many invocations, matching or not, so that a filter that
// matches little answers in bounded time, with a short page (even an empty
// one) and cursors that go on from where it stopped.
const MaxLogScan = 10000

// LogPage is a page of log lines and where the pages next to it start.
type LogPage struct {
	Lines []function.LogLine // oldest first
	// Next is the AfterSeq of the lines after this page: every line up to
	// it was examined. A tail's Next is where following starts; a forward
	// page that matched nothing still moves it on.
	Next int64
	// Prev, on a backward page (the tail and older), is the BeforeSeq of
	// the older lines that may match; 0 when none can (the scan reached
	// the oldest line, or the oldest that Since lets through).
	Prev int64
	// More, on a forward page, says that it stopped before the newest line
	// (it is full, or it read as much as one call may): there may be more
	// from Next on now.
	More bool
}

// Retention says what TrimTelemetry deletes.
type Retention struct {
	// Before deletes the records of invocations that started before it and
	// the log lines logged before it; zero deletes none by age. An
	// invocation's lines go together, once its latest is older.
	Before time.Time
	// MaxLogBytes keeps the newest log lines that fit in this many bytes
	// (their text and per-line metadata), deleting older ones; 0 or less
	// keeps all.
	MaxLogBytes int64
}

// Trimmed counts what TrimTelemetry deleted.
type Trimmed struct {
	Records  int64 // invocation records
	LogLines int64 // lines
	LogBytes int64 // the lines' bytes, as MaxLogBytes counts them
}

// Invocations stores invocation records and their log lines.
type Invocations interface {
	// InsertInvocations writes records and their Logs in one transaction,
	// and adds the records it inserts to the hourly usage (see Usage). A
	// record already stored is skipped, its logs and usage too.
	InsertInvocations(ctx context.Context, recs []function.Invocation) error
	// ListInvocations returns records newest first, without logs.
	ListInvocations(ctx context.Context, f InvocationFilter) ([]function.Invocation, error)
	// GetInvocation returns one record with its log lines in order, or ErrNotFound.
	GetInvocation(ctx context.Context, project, id string) (function.Invocation, error)
	// UsageSince sums, per function, billed milliseconds times memory (MB)
	// over the invocations that started at since or later: what budgets
	// count (divide by 1000 * 1024 for GB-seconds).
	UsageSince(ctx context.Context, project string, since time.Time) (map[string]int64, error)
	// ListLogs returns a page of log lines, oldest first, each with its
	// invocation ID, function and version set; see LogFilter and LogPage.
	ListLogs(ctx context.Context, f LogFilter) (LogPage, error)
	// LogBytes is the size of the stored log lines, as Retention's
	// MaxLogBytes counts it.
	LogBytes(ctx context.Context) (int64, error)
	// TrimTelemetry deletes the records and log lines that r says to, in
	// transactions short enough not to hold up new records for long.
	TrimTelemetry(ctx context.Context, r Retention) (Trimmed, error)
}

// Settings stores small platform values, such as the admin key's hash.
type Settings interface {
	// GetSetting returns a value, or ErrNotFound.
	GetSetting(ctx context.Context, key string) (string, error)
	// PutSettingIfAbsent stores value under key unless key exists; it
	// reports whether it stored it.
	PutSettingIfAbsent(ctx context.Context, key, value string) (bool, error)
	// PutSetting stores value under key, replacing what was there.
	PutSetting(ctx context.Context, key, value string) error
}

// Async stores the state of async invocations.
type Async interface {
	// PutAsync writes states in one transaction. A state replaces the
	// stored one of its (project, ID) only if its Rank is at least the
	// stored one's, so states written late or twice never move an
	// invocation back.
	PutAsync(ctx context.Context, states []function.AsyncInvocation) error
	// GetAsync returns one async invocation's state, or ErrNotFound.
	GetAsync(ctx context.Context, project, id string) (function.AsyncInvocation, error)
}

// Store is everything one backend provides.
type Store interface {
	Functions
	Invocations
	Usage
	Async
	Settings
	Auth
	Identities
	DocDB
	Objects
	Secrets
	// Ping checks that the backend answers (for /readyz).
	Ping(ctx context.Context) error
	Close() error
}
