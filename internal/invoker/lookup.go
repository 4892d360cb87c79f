package invoker

import (
	"context"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
)

// Lookup returns the version a call would run (version 0: the serving
// one), without running anything: the Lambda API's DryRun.
func (iv *Invoker) Lookup(ctx context.Context, project, name string, version int) (*function.Version, error) {
	if function.ValidName(name) != nil || version < 0 {
		return nil, store.ErrNotFound
	}
	if version == 0 {
		return iv.Resolve(ctx, project, name)
	}
	return iv.resolvePinned(ctx, project, name, version)
}
