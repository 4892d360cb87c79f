// Package process runs process functions: any Linux executable that speaks
// the AWS Lambda Runtime API (2018-06-01), such as a Go program built on
// aws-lambda-go's lambda.Start or a custom runtime's bootstrap script, and
// Node.js and Python handlers in Lambda's own form through shims.
//
// Each instance is one process in its own sandbox (package sandbox) that
// reaches the platform only through the Runtime API on 127.0.0.1:9001
// inside its network namespace. An instance serves one invocation at a
// time and stays warm for the next, as on Lambda: globals survive between
// calls. Its stdout and stderr are its logs.
//
// Code arrives as a zip (a directory is zipped by the deploy), is unpacked
// once per version under the runtime's directory, and is shown read-only
// at /var/task. The program is /var/task/bootstrap when the code has one,
// else the file the handler names (as Lambda's go1.x runtime did). nodejs
// and python run the platform's shim from /var/runtime.
//
// A request from an HTTP route becomes an API Gateway HTTP API (payload
// 2.0) event, the way Lambda Function URLs make them; a raw event (the
// Invoke API) goes as it is.
package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hostless/hostless/internal/artifact"
	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/runtime/process/shims"
	"github.com/hostless/hostless/internal/sandbox"
)

// Defaults of Config.
const (
	// DefaultMaxResponseBytes is Lambda's synchronous payload limit.
	DefaultMaxResponseBytes = 6 << 20
	DefaultRegion           = "us-east-1"
	// DefaultMaxArtifactBytes bounds a zip as Lambda's direct upload does.
	DefaultMaxArtifactBytes = 50 << 20
	// DefaultInitTimeout bounds an instance's init, as on Lambda.
	DefaultInitTimeout = 10 * time.Second
	maxErrorBytes      = 256 << 10
)

// ArtifactFunc returns the bytes of the artifact a code reference names.
type ArtifactFunc func(ctx context.Context, code string) (io.ReadCloser, error)

// Shim says how to start a language runtime's shim: the interpreter's path
// and argv (as the sandbox sees them, the shim under /var/runtime), and the
// host directory to show at /var/runtime.
type Shim struct {
	Path    string
	Args    []string
	Dir     string
	ExecEnv string // AWS_EXECUTION_ENV, e.g. AWS_Lambda_nodejs20.x
}

// ShimFunc returns how to start the shim of a runtime (nodejs or python)
// for an instance with memoryMB of memory.
type ShimFunc func(runtime string, memoryMB int) (Shim, error)

// Shims writes the built-in Node.js and Python shims under dir and returns
// the ShimFunc that starts them on the host's interpreters (found once, on
// first use; see package shims).
func Shims(dir string) (ShimFunc, error) {
	if err := shims.WriteTo(dir); err != nil {
		return nil, fmt.Errorf("write the runtime shims: %w", err)
	}
	var mu sync.Mutex
	found := map[string]shims.Shim{}
	return func(runtime string, memoryMB int) (Shim, error) {
		mu.Lock()
		s, ok := found[runtime]
		mu.Unlock()
		if !ok {
			var err error
			if s, err = shims.Lookup(runtime); err != nil {
				return Shim{}, err
			}
			mu.Lock()
			found[runtime] = s
			mu.Unlock()
		}
		argv := s.Argv("/var/runtime", memoryMB)
		execEnv := "AWS_Lambda_nodejs20.x"
		if runtime == function.RuntimePython {
			execEnv = "AWS_Lambda_python3.11"
		}
		return Shim{Path: argv[0], Args: argv, Dir: dir, ExecEnv: execEnv}, nil
	}, nil
}

// Config configures the runtime.
type Config struct {
	// Dir holds unpacked code (Dir/code/<hash>).
	Dir string
	// Sandbox makes the instances' sandboxes.
	Sandbox *sandbox.Manager
	// Artifacts reads a version's zip.
	Artifacts ArtifactFunc
	// Shims starts nodejs and python functions; nil refuses them.
	Shims ShimFunc
	// Region is AWS_REGION inside functions.
	Region string
	// MaxResponseBytes caps a function's result.
	MaxResponseBytes int
	// MaxArtifactBytes caps a zip's size.
	MaxArtifactBytes int64
	// InitTimeout bounds the start of an instance up to its first request
	// for work; 0 means DefaultInitTimeout.
	InitTimeout time.Duration
	// Secrets, when set, resolves the secrets a version names when an
	// instance starts; they reach the process's environment only.
	Secrets function.SecretEnv
	// Platform, when set, serves the platform's APIs (/v1/...) on every
	// instance's local endpoint, at HOSTLESS_API_URL inside the function:
	// a sandboxed process can't reach the host's addresses. Requests
	// authenticate as any other (the X-Hostless-Token a call brings).
	Platform http.Handler
	// Credentials, when set, issues the temporary S3 credentials of an
	// instance of a version that names buckets; they reach the process's
	// environment with AWS_ENDPOINT_URL_S3 at the instance's local
	// endpoint (Platform serves function.S3Path). Without it, such
	// versions don't start.
	Credentials function.IssueCredentials
}

// Runtime runs process functions. It implements function.Runtime.
type Runtime struct {
	cfg Config

	mu    sync.Mutex
	codes map[string]*code // by code reference
}

var _ function.Runtime = (*Runtime)(nil)

// code is one version's unpacked code.
type code struct {
	ready chan struct{}
	err   error
	dir   string
	load  time.Duration
}

// New returns a runtime.
func New(cfg Config) *Runtime {
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	if cfg.MaxResponseBytes == 0 {
		cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if cfg.MaxArtifactBytes == 0 {
		cfg.MaxArtifactBytes = DefaultMaxArtifactBytes
	}
	if cfg.InitTimeout == 0 {
		cfg.InitTimeout = DefaultInitTimeout
	}
	return &Runtime{cfg: cfg, codes: map[string]*code{}}
}

// Prepare unpacks v's code once; it is idempotent and concurrent callers
// share one unpacking.
func (r *Runtime) Prepare(ctx context.Context, v *function.Version) error {
	r.cfg.Sandbox.Prewarm(v.Spec.Network) // a process function is here: have slots ready
	_, err := r.code(ctx, v.Spec.Code)
	return err
}

func (r *Runtime) code(ctx context.Context, ref string) (*code, error) {
	r.mu.Lock()
	c, ok := r.codes[ref]
	if ok {
		r.mu.Unlock()
		select {
		case <-c.ready:
			return c, c.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c = &code{ready: make(chan struct{})}
	r.codes[ref] = c
	r.mu.Unlock()
	start := time.Now()
	c.dir, c.err = r.unpack(ctx, ref)
	c.load = time.Since(start)
	if c.err != nil {
		r.mu.Lock()
		delete(r.codes, ref) // a later call tries again
		r.mu.Unlock()
	}
	close(c.ready)
	return c, c.err
}

// unpack extracts the zip named ref into Dir/code/<hex>, unless a previous
// run of the server already did.
func (r *Runtime) unpack(ctx context.Context, ref string) (string, error) {
	hex, ok := strings.CutPrefix(ref, "sha256:")
	if !ok || len(hex) != 64 {
		return "", fmt.Errorf("%w: bad code reference %q", function.ErrInvalid, ref)
	}
	dir := filepath.Join(r.cfg.Dir, "code", hex)
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	rc, err := r.cfg.Artifacts(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("read code %s: %w", ref, err)
	}
	defer rc.Close()
	// A zip is read from its end: spool it to a file, bounded.
	tmp, err := os.CreateTemp(filepath.Dir(dir), "zip-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	n, err := io.Copy(tmp, io.LimitReader(rc, r.cfg.MaxArtifactBytes+1))
	if err != nil {
		return "", fmt.Errorf("read code %s: %w", ref, err)
	}
	if n > r.cfg.MaxArtifactBytes {
		return "", fmt.Errorf("%w: the code zip is larger than %d MB", function.ErrInvalid, r.cfg.MaxArtifactBytes>>20)
	}
	if err := artifact.Extract(tmp, n, dir); err != nil {
		if errors.Is(err, artifact.ErrInvalid) {
			return "", fmt.Errorf("%w: %v", function.ErrInvalid, err)
		}
		return "", err
	}
	return dir, nil
}

// command returns what to run for v and the host directory of its shim.
func (r *Runtime) command(v *function.Version, codeDir string) (Shim, error) {
	switch v.Spec.Runtime {
	case function.RuntimeProcess:
		for _, name := range []string{"bootstrap", v.Spec.Handler} {
			if name == "" {
				continue
			}
			st, err := os.Stat(filepath.Join(codeDir, filepath.FromSlash(name)))
			if err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
				p := "/var/task/" + name
				return Shim{Path: p, Args: []string{p}, ExecEnv: "AWS_Lambda_provided.al2023"}, nil
			}
		}
		return Shim{}, fmt.Errorf("%w: the code has no executable bootstrap file (and the handler %q names no executable file in it)", function.ErrFunction, v.Spec.Handler)
	case function.RuntimeNodeJS, function.RuntimePython:
		if r.cfg.Shims == nil {
			return Shim{}, fmt.Errorf("%w: runtime %s is not available on this server", function.ErrUnavailable, v.Spec.Runtime)
		}
		s, err := r.cfg.Shims(v.Spec.Runtime, v.Spec.MemoryMB)
		if err != nil {
			return Shim{}, fmt.Errorf("%w: runtime %s: %v", function.ErrUnavailable, v.Spec.Runtime, err)
		}
		return s, nil
	}
	return Shim{}, fmt.Errorf("%w: runtime %q is not a process runtime", function.ErrInvalid, v.Spec.Runtime)
}

// environ is the function's environment: its own variables, then the ones
// Lambda reserves (which the function can't override).
func (r *Runtime) environ(v *function.Version, slot *sandbox.Slot, execEnv string, secrets map[string]string) []string {
	env := make([]string, 0, len(v.Spec.Env)+len(secrets)+20)
	for k, val := range v.Spec.Env {
		if !reservedEnv[k] {
			env = append(env, k+"="+val)
		}
	}
	for k, val := range secrets {
		if !reservedEnv[k] {
			env = append(env, k+"="+val)
		}
	}
	ver := strconv.Itoa(v.Number)
	task := slot.TaskRoot()
	env = append(env,
		"AWS_LAMBDA_RUNTIME_API="+slot.APIAddr(),
		"HOSTLESS_API_URL=http://"+slot.APIAddr(),
		"AWS_LAMBDA_FUNCTION_NAME="+v.Function,
		"AWS_LAMBDA_FUNCTION_VERSION="+ver,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE="+strconv.Itoa(v.Spec.MemoryMB),
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/"+v.Function,
		"AWS_LAMBDA_LOG_STREAM_NAME="+time.Now().UTC().Format("2006/01/02")+"/["+ver+"]"+function.NewID(time.Now()),
		"AWS_LAMBDA_INITIALIZATION_TYPE=on-demand",
		"AWS_EXECUTION_ENV="+execEnv,
		"AWS_REGION="+r.cfg.Region,
		"AWS_DEFAULT_REGION="+r.cfg.Region,
		"_HANDLER="+v.Spec.Handler,
		"LAMBDA_TASK_ROOT="+task,
		"LAMBDA_RUNTIME_DIR=/var/runtime",
		"TZ=:UTC",
		"LANG=en_US.UTF-8",
		"PATH=/usr/local/bin:/usr/bin:/bin:/opt/bin",
		"LD_LIBRARY_PATH=/var/runtime/lib:"+task+":"+task+"/lib:/opt/lib",
		"HOME=/tmp",
	)
	// Lambda gives a function one vCPU per 1,769 MB of memory; a Go
	// function's scheduler is told as much, unless the function says
	// otherwise (an idle Go runtime with more Ps than its share spins on
	// every wake-up, and a warm instance wakes up for every call).
	if _, ok := v.Spec.Env["GOMAXPROCS"]; !ok {
		env = append(env, "GOMAXPROCS="+strconv.Itoa(max(1, (v.Spec.MemoryMB+1768)/1769)))
	}
	return env
}

// reservedEnv are the variables the platform sets.
var reservedEnv = map[string]bool{
	"AWS_LAMBDA_RUNTIME_API": true, "AWS_LAMBDA_FUNCTION_NAME": true, "AWS_LAMBDA_FUNCTION_VERSION": true,
	"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": true, "AWS_LAMBDA_LOG_GROUP_NAME": true, "AWS_LAMBDA_LOG_STREAM_NAME": true,
	"AWS_LAMBDA_INITIALIZATION_TYPE": true, "AWS_EXECUTION_ENV": true, "AWS_REGION": true, "AWS_DEFAULT_REGION": true,
	"_HANDLER": true, "LAMBDA_TASK_ROOT": true, "LAMBDA_RUNTIME_DIR": true, "HOSTLESS_API_URL": true,
}

// Start starts an instance of v: a sandbox with v's code, its program
// started, up to its first request for work.
func (r *Runtime) Start(ctx context.Context, v *function.Version) (function.Instance, function.StartInfo, error) {
	var info function.StartInfo
	c, err := r.code(ctx, v.Spec.Code)
	if err != nil {
		return nil, info, err
	}
	info.Load = c.load
	start := time.Now()
	cmd, err := r.command(v, c.dir)
	if err != nil {
		return nil, info, err
	}
	var secrets map[string]string
	if r.cfg.Secrets != nil && len(v.Spec.Secrets) > 0 {
		if secrets, err = r.cfg.Secrets(ctx, v); err != nil {
			return nil, info, err
		}
	}
	var creds *function.Credentials
	var release func()
	if len(v.Spec.Buckets) > 0 {
		if r.cfg.Credentials == nil || r.cfg.Platform == nil {
			return nil, info, fmt.Errorf("%w: the function names buckets, and this server has no object storage for functions", function.ErrUnavailable)
		}
		c, rel, err := r.cfg.Credentials(v)
		if err != nil {
			return nil, info, fmt.Errorf("%w: issue the function's S3 credentials: %v", function.ErrUnavailable, err)
		}
		creds, release = &c, rel
	}
	slot, err := r.cfg.Sandbox.Take(ctx, v.Spec.Network)
	if err != nil {
		if release != nil {
			release()
		}
		return nil, info, fmt.Errorf("%w: %v", function.ErrUnavailable, err)
	}
	inst := newInstance(r, v, slot)
	inst.release = release
	if creds != nil {
		if secrets == nil {
			secrets = map[string]string{}
		}
		maps.Copy(secrets, function.S3Env(*creds, "http://"+slot.APIAddr()))
	}
	ictx, cancel := context.WithTimeout(ctx, r.cfg.InitTimeout)
	defer cancel()
	spec := sandbox.Spec{Code: c.dir, Runtime: cmd.Dir, Path: cmd.Path, Args: cmd.Args,
		Env: r.environ(v, slot, cmd.ExecEnv, secrets), MemoryMB: v.Spec.MemoryMB, Allow: v.Spec.NetworkAllow}
	if err := slot.Start(ictx, spec); err != nil {
		inst.Close(ctx)
		return nil, info, fmt.Errorf("%w: %v", function.ErrFunction, err)
	}
	inst.readLogs()
	if err := inst.waitReady(ictx); err != nil {
		inst.Close(ctx)
		return nil, info, err
	}
	info.Init = time.Since(start)
	return inst, info, nil
}

// errorPayload is the body of a Runtime API error report.
type errorPayload struct {
	ErrorMessage string   `json:"errorMessage"`
	ErrorType    string   `json:"errorType"`
	StackTrace   []string `json:"stackTrace,omitempty"`
}

// trimmed returns b's first line, bounded, for error messages.
func trimmed(b []byte) string {
	b = bytes.TrimSpace(b)
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	if len(b) > 512 {
		b = b[:512]
	}
	return string(b)
}

// Sweep removes unpacked code that no version in keep (code references)
// uses and no instance of this server has loaded: what deleted functions
// left on disk. It returns how many directories it removed.
func (r *Runtime) Sweep(keep map[string]bool) (int, error) {
	dir := filepath.Join(r.cfg.Dir, "code")
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, e := range ents {
		ref := "sha256:" + e.Name()
		r.mu.Lock()
		_, loaded := r.codes[ref]
		r.mu.Unlock()
		if !e.IsDir() || keep[ref] || loaded || len(e.Name()) != 64 {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return removed, err
		}
		removed++
	}
	return removed, nil
}
