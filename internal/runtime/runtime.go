// Package runtime routes each version to the runtime that runs it: wasm
// modules to wazero, process functions (process, nodejs, python) to the
// sandboxed process runtime.
package runtime

import (
	"context"
	"fmt"

	"github.com/hostless/hostless/internal/function"
)

// Mux is a function.Runtime over the runtimes, by Spec.Runtime.
type Mux struct {
	Wasm    function.Runtime
	Process function.Runtime
	// ProcessErr, when set, is why process functions can't run here.
	ProcessErr error
}

var _ function.Runtime = (*Mux)(nil)

func (m *Mux) pick(v *function.Version) (function.Runtime, error) {
	if function.IsProcess(v.Spec.Runtime) {
		if m.Process == nil {
			return nil, fmt.Errorf("%w: process functions can't run on this server: %v", function.ErrUnavailable, m.ProcessErr)
		}
		return m.Process, nil
	}
	return m.Wasm, nil
}

// Prepare readies v's code in its runtime.
func (m *Mux) Prepare(ctx context.Context, v *function.Version) error {
	rt, err := m.pick(v)
	if err != nil {
		return err
	}
	return rt.Prepare(ctx, v)
}

// Start starts an instance of v in its runtime.
func (m *Mux) Start(ctx context.Context, v *function.Version) (function.Instance, function.StartInfo, error) {
	rt, err := m.pick(v)
	if err != nil {
		return nil, function.StartInfo{}, err
	}
	return rt.Start(ctx, v)
}

// CanRun says why a spec can't run here, or nil.
func (m *Mux) CanRun(s *function.Spec) error {
	if function.IsProcess(s.Runtime) && m.Process == nil {
		return fmt.Errorf("process functions can't run on this server: %v", m.ProcessErr)
	}
	return nil
}
