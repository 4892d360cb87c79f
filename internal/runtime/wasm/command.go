package wasm

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/hostless/hostless/internal/function"
)

// cgiInstance runs a command module in the CGI style: each Invoke is a new
// instance that reads the request and exits, so it is never reused.
type cgiInstance struct {
	rt      wazero.Runtime
	code    *code
	version *function.Version
	base    wazero.ModuleConfig
	maxOut  int
	used    bool
	release func() // drops the instance's reference to its code
	allowed []allowedHost
}

// cappedBuffer fails writes past its limit, so a guest can't make the
// platform buffer an unbounded response.
type cappedBuffer struct {
	b        []byte
	limit    int
	overflow bool
}

func (w *cappedBuffer) Write(p []byte) (int, error) {
	if len(w.b)+len(p) > w.limit {
		w.overflow = true
		return 0, errors.New("response too large")
	}
	w.b = append(w.b, p...)
	return len(p), nil
}

// cgiHeaderAllowance is room for CGI headers on top of the body limit.
const cgiHeaderAllowance = 64 << 10

func (i *cgiInstance) Invoke(ctx context.Context, req *function.Request, logs function.Logs) (*function.Response, error) {
	if i.used {
		return nil, errors.New("instance is not reusable")
	}
	i.used = true
	stdout := &cappedBuffer{limit: i.maxOut + cgiHeaderAllowance}
	stderr := &lineWriter{stream: "stderr", logs: logs}
	sl := &sleeper{done: ctx.Done()}
	cfg := i.base.WithNanosleep(sl.sleep).WithStdin(strings.NewReader(string(req.Body))).WithStdout(stdout).WithStderr(stderr)
	for _, kv := range cgiEnviron(i.version.Function, req, i.version.Spec.Env) {
		k, v, _ := strings.Cut(kv, "=")
		cfg = cfg.WithEnv(k, v)
	}
	ctx = withOutbound(ctx, &outbound{allowed: i.allowed, logs: logs, depth: function.CallDepth(req.Header)})
	mod, err := i.rt.InstantiateModule(ctx, i.code.compiled, cfg)
	stderr.flush()
	if mod != nil {
		defer mod.Close(context.WithoutCancel(ctx))
	}
	if err != nil {
		var exit *sys.ExitError
		if errors.As(err, &exit) && ctx.Err() == nil && !stderr.sawOOM {
			return nil, fmt.Errorf("%w: exit status %d", function.ErrFunction, exit.ExitCode())
		}
		var mem api.Memory
		if mod != nil {
			mem = mod.Memory()
		}
		return nil, classify(ctx, err, mem, i.code.key.pages, stderr.sawOOM)
	}
	if stdout.overflow {
		return nil, fmt.Errorf("%w: more than %d bytes", function.ErrResponseTooLarge, i.maxOut)
	}
	resp, err := parseCGIResponse(stdout.b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", function.ErrFunction, err)
	}
	if err := finalStatus(resp); err != nil {
		return nil, err
	}
	if len(resp.Body) > i.maxOut {
		return nil, fmt.Errorf("%w: %d bytes (limit %d)", function.ErrResponseTooLarge, len(resp.Body), i.maxOut)
	}
	return resp, nil
}

func (i *cgiInstance) Reusable() bool              { return false }
func (i *cgiInstance) Close(context.Context) error { i.release(); return nil }
