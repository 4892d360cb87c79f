package invoker

import (
	"context"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
)

// Lookup returns the version a call would run (version 0 and alias "":
// the live alias), without running anything: the Lambda API's DryRun.
func (iv *Invoker) Lookup(ctx context.Context, project, name, alias string, version int) (*function.Version, error) {
	if function.ValidName(name) != nil || version < 0 {
		return nil, store.ErrNotFound
	}
	if alias == "" {
		alias = function.LiveAlias
	}
	return iv.version(ctx, project, name, alias, version)
}

// version resolves a call's target: version N when N > 0, else what the
// alias picks. The caller has checked the name.
func (iv *Invoker) version(ctx context.Context, project, name, alias string, version int) (*function.Version, error) {
	if version > 0 {
		return iv.resolvePinned(ctx, project, name, version)
	}
	return iv.ResolveAlias(ctx, project, name, alias)
}
