// Package store defines the persistence interfaces of the platform, one per
// domain. Implementations live in subpackages named after what they depend
// on (store/sqlite, store/postgres) and pass the one conformance suite in
// store/storetest. No SQL exists outside these packages.
//
// Package store must never import HTTP, runtimes or the scheduler.
package store

import (
	"context"

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

// PutResult says what PutFunction did.
type PutResult struct {
	Function function.Function
	Version  function.Version
	// Action is "created" (a new function), "updated" (a new version) or
	// "unchanged" (the spec equals the serving version's; nothing written).
	Action string
}

// Functions stores functions and their immutable versions.
type Functions interface {
	// PutFunction makes spec the serving version of the named function:
	// it creates the function (version 1), adds a version when spec differs
	// from the serving version's spec, or changes nothing. Atomic.
	PutFunction(ctx context.Context, project, name string, spec function.Spec) (PutResult, error)
	// GetFunction returns a function, or ErrNotFound.
	GetFunction(ctx context.Context, project, name string) (function.Function, error)
	// ListFunctions returns a project's functions ordered by name.
	ListFunctions(ctx context.Context, project string) ([]function.Function, error)
	// SetServing makes an existing version the one that serves the function
	// (a rollback); ErrNotFound if the function or the version doesn't exist.
	SetServing(ctx context.Context, project, name string, version int) (function.Function, error)
	// DeleteFunction deletes a function and its versions, or returns ErrNotFound.
	DeleteFunction(ctx context.Context, project, name string) error
	// GetVersion returns one version, or ErrNotFound.
	GetVersion(ctx context.Context, project, name string, version int) (function.Version, error)
	// ListVersions returns a function's versions, newest first.
	ListVersions(ctx context.Context, project, name string) ([]function.Version, error)
}

// InvocationFilter selects invocation records.
type InvocationFilter struct {
	Project  string
	Function string // empty: all functions
	Before   string // an invocation ID: only records older than it (paging)
	Limit    int    // at most this many; implementations cap it at 1000
}

// LogFilter selects log lines across invocations.
type LogFilter struct {
	Project  string
	Function string // empty: all functions
	AfterSeq int64  // only lines with a larger Seq (following)
	Limit    int    // at most this many, oldest first; capped at 1000
}

// Invocations stores invocation records and their log lines.
type Invocations interface {
	// InsertInvocations writes records and their Logs in one transaction.
	InsertInvocations(ctx context.Context, recs []function.Invocation) error
	// ListInvocations returns records newest first, without logs.
	ListInvocations(ctx context.Context, f InvocationFilter) ([]function.Invocation, error)
	// GetInvocation returns one record with its log lines in order, or ErrNotFound.
	GetInvocation(ctx context.Context, project, id string) (function.Invocation, error)
	// ListLogs returns log lines oldest first, each with its invocation ID,
	// function and version set. With AfterSeq = 0 and a Limit, it returns
	// the newest Limit lines (still oldest first).
	ListLogs(ctx context.Context, f LogFilter) ([]function.LogLine, error)
}

// Settings stores small platform values, such as the admin key's hash.
type Settings interface {
	// GetSetting returns a value, or ErrNotFound.
	GetSetting(ctx context.Context, key string) (string, error)
	// PutSettingIfAbsent stores value under key unless key exists; it
	// reports whether it stored it.
	PutSettingIfAbsent(ctx context.Context, key, value string) (bool, error)
}

// Store is everything one backend provides.
type Store interface {
	Functions
	Invocations
	Settings
	// Ping checks that the backend answers (for /readyz).
	Ping(ctx context.Context) error
	Close() error
}
