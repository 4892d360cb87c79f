// Package wasm runs WebAssembly functions (WASI preview 1) in wazero.
//
// Code is compiled once per version, with wazero's on-disk compilation
// cache, and the compiled code is kept in memory in an LRU under a byte
// budget. A start is code-cold when the compiled code is not in memory, and
// instance-cold always (a new instance of loaded code).
//
// Two contracts, told apart by the module's exports (or said outright by the
// version's contract):
//   - sdk: a reactor exporting hostless_buffer and hostless_handle (see the
//     Go SDK's ABI); one instance serves request after request.
//   - cgi: a command module exporting _start, called in the CGI style; one
//     fresh instance per request.
//
// Either contract may import the host module "hostless" for outbound HTTP
// (http_send), bounded by the version's allowed_hosts; see outbound.go.
//
// The runtime enforces a version's memory limit (as wasm pages, one wazero
// Runtime per limit) and its timeout (the context's deadline closes the
// module). It knows nothing of HTTP servers, stores or the scheduler.
package wasm

import (
	"bytes"
	"container/list"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/hostless/hostless/internal/function"
)

// Defaults of Config.
const (
	DefaultCodeBudget       = 512 << 20
	DefaultMaxResponseBytes = 6 << 20
	DefaultMaxArtifactBytes = 256 << 20
	// DefaultRecycleFraction is the share of its memory limit past which an
	// instance is recycled: wasm linear memory never shrinks.
	DefaultRecycleFraction = 0.75
	// LoadTimeout bounds how long a start waits for code another start is
	// compiling, and the first start's read of the module (wazero can't
	// interrupt a compile itself). It is separate from the function's timeout, which bounds
	// the instance's start and the call: compiling a new version once is
	// the platform's work, as Lambda keeps init apart from the timeout.
	LoadTimeout = 2 * time.Minute
	// compiledSizeFactor estimates the memory of compiled code from the
	// module's size: wazero's machine code plus metadata measured about
	// 2x the .wasm for Go guests.
	compiledSizeFactor = 2
)

// ArtifactFunc returns the bytes of the artifact a code reference names.
type ArtifactFunc func(ctx context.Context, code string) (io.ReadCloser, error)

// Config configures the runtime. The zero value of each field means its default.
type Config struct {
	// CacheDir holds wazero's on-disk compilation cache; empty means none.
	CacheDir string
	// CodeBudget is the estimated bytes of compiled code kept in memory.
	CodeBudget int64
	// MaxResponseBytes caps a response's encoded size.
	MaxResponseBytes int
	// MaxArtifactBytes caps a module's size.
	MaxArtifactBytes int64
	// Artifacts reads a module's bytes.
	Artifacts ArtifactFunc
	// OutboundTimeout caps one outbound HTTP call of a function (within
	// its own timeout).
	OutboundTimeout time.Duration
	// MaxOutboundRequestBytes caps an outbound request's encoding;
	// MaxOutboundResponseBytes caps an outbound response's body.
	MaxOutboundRequestBytes  int
	MaxOutboundResponseBytes int
	// Platform, when set, serves the platform's APIs to functions at
	// http://hostless.internal (PlatformHost, HOSTLESS_API_URL inside).
	Platform http.Handler
	// Secrets, when set, resolves the secrets a version names when an
	// instance starts; they reach the guest's environment only.
	Secrets function.SecretEnv
	// Credentials, when set, issues the temporary S3 credentials of an
	// instance of a version that names buckets; they reach the guest's
	// environment with AWS_ENDPOINT_URL_S3 at http://hostless.internal/s3,
	// which Platform serves. Without it, such versions don't start.
	Credentials function.IssueCredentials
}

// Runtime runs wasm versions. It implements function.Runtime.
type Runtime struct {
	cfg      Config
	cache    wazero.CompilationCache
	outbound *outboundClient

	mu       sync.Mutex
	runtimes map[uint32]wazero.Runtime // by memory limit in pages
	codes    map[codeKey]*code
	lru      *list.List // of *code, most recently used first
	used     int64      // estimated bytes of loaded code
	closed   bool
	// compiling is held to read by each compile, to write by Close.
	compiling sync.RWMutex
}

var _ function.Runtime = (*Runtime)(nil)

type codeKey struct {
	ref   string
	pages uint32
}

// code is one module compiled for one memory limit.
type code struct {
	key      codeKey
	ready    chan struct{} // closed when loading is done
	err      error
	compiled wazero.CompiledModule
	contract string
	size     int64
	elem     *list.Element
	loadTime time.Duration
	refs     int  // starts and instances using compiled; guarded by Runtime.mu
	evicted  bool // out of the LRU: close compiled when refs reaches 0
}

// New allocates a runtime; Open acquires its resources.
func New(cfg Config) *Runtime {
	if cfg.CodeBudget == 0 {
		cfg.CodeBudget = DefaultCodeBudget
	}
	if cfg.MaxResponseBytes == 0 {
		cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if cfg.MaxArtifactBytes == 0 {
		cfg.MaxArtifactBytes = DefaultMaxArtifactBytes
	}
	if cfg.OutboundTimeout == 0 {
		cfg.OutboundTimeout = DefaultOutboundTimeout
	}
	if cfg.MaxOutboundRequestBytes == 0 {
		cfg.MaxOutboundRequestBytes = DefaultMaxOutboundRequestBytes
	}
	if cfg.MaxOutboundResponseBytes == 0 {
		cfg.MaxOutboundResponseBytes = DefaultMaxOutboundResponseBytes
	}
	return &Runtime{cfg: cfg, outbound: newOutboundClient(cfg), runtimes: map[uint32]wazero.Runtime{}, codes: map[codeKey]*code{}, lru: list.New()}
}

// Open creates the compilation cache.
func (r *Runtime) Open() error {
	if r.cfg.CacheDir == "" {
		r.cache = wazero.NewCompilationCache()
		return nil
	}
	c, err := wazero.NewCompilationCacheWithDir(r.cfg.CacheDir)
	if err != nil {
		return fmt.Errorf("wasm compilation cache %s: %w", r.cfg.CacheDir, err)
	}
	r.cache = c
	return nil
}

// Close closes every instance and compiled module, and the idle
// connections of outbound HTTP.
func (r *Runtime) Close(ctx context.Context) error {
	r.compiling.Lock() // no compile runs from here on
	defer r.compiling.Unlock()
	r.mu.Lock()
	rts := r.runtimes
	r.runtimes = map[uint32]wazero.Runtime{}
	r.codes = map[codeKey]*code{}
	r.lru.Init()
	r.closed = true
	r.mu.Unlock()
	r.outbound.client.CloseIdleConnections()
	var errs []error
	for _, rt := range rts {
		errs = append(errs, rt.Close(ctx))
	}
	if r.cache != nil {
		errs = append(errs, r.cache.Close(ctx))
	}
	return errors.Join(errs...)
}

func pagesFor(memoryMB int) uint32 { return uint32(memoryMB) * 16 } // 64 KiB pages

// runtimeFor returns the wazero runtime for a memory limit. r.mu is held.
func (r *Runtime) runtimeFor(ctx context.Context, pages uint32) (wazero.Runtime, error) {
	if rt, ok := r.runtimes[pages]; ok {
		return rt, nil
	}
	cfg := wazero.NewRuntimeConfig().
		WithCloseOnContextDone(true).
		WithMemoryLimitPages(pages).
		WithCompilationCache(r.cache)
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("wasi: %w", err)
	}
	if err := r.outbound.instantiateHostModule(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("host module %s: %w", hostModule, err)
	}
	r.runtimes[pages] = rt
	return rt, nil
}

// Prepare compiles v's module ahead of its first call.
func (r *Runtime) Prepare(ctx context.Context, v *function.Version) error {
	c, _, err := r.load(ctx, v)
	if err == nil {
		r.release(c)
	}
	return err
}

// release drops a reference load took; evicted code closes with its last.
// (Only loaded code is ever evicted, so compiled is set when evicted is.)
func (r *Runtime) release(c *code) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c.refs--
	if c.refs == 0 && c.evicted {
		_ = c.compiled.Close(context.Background())
	}
}

// load returns v's compiled code, compiling it (code-cold) if it is not in
// memory, with a reference the caller must release. Concurrent loads of one
// code wait for one compilation, for at most LoadTimeout.
func (r *Runtime) load(ctx context.Context, v *function.Version) (*code, bool, error) {
	key := codeKey{ref: v.Spec.Code, pages: pagesFor(v.Spec.MemoryMB)}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, false, errors.New("wasm runtime closed")
	}
	if c, ok := r.codes[key]; ok {
		if c.elem != nil {
			r.lru.MoveToFront(c.elem)
		}
		c.refs++
		r.mu.Unlock()
		t := time.NewTimer(LoadTimeout)
		defer t.Stop()
		select {
		case <-c.ready:
		case <-ctx.Done():
			r.release(c)
			return nil, false, ctx.Err()
		case <-t.C:
			r.release(c)
			return nil, false, fmt.Errorf("%w: loading code %s took longer than %s", function.ErrTimeout, v.Spec.Code, LoadTimeout)
		}
		if c.err != nil {
			return nil, false, c.err // failed code was never compiled: nothing to release
		}
		return c, false, nil
	}
	c := &code{key: key, ready: make(chan struct{}), refs: 1}
	r.codes[key] = c
	rt, err := r.runtimeFor(ctx, key.pages)
	r.mu.Unlock()

	if err == nil {
		// Compile under a context of its own: one caller giving up must
		// not fail the others waiting for this code. Close waits for
		// compiles (wazero panics on a runtime closed mid-compile).
		r.compiling.RLock()
		r.mu.Lock()
		closed := r.closed
		r.mu.Unlock()
		if closed {
			err = errors.New("wasm runtime closed")
		} else {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), LoadTimeout)
			err = r.compile(cctx, rt, c, v)
			cancel()
		}
		r.compiling.RUnlock()
	}
	r.mu.Lock()
	c.err = err
	if err != nil {
		delete(r.codes, key) // the next call tries again
	} else if !r.closed {
		c.elem = r.lru.PushFront(c)
		r.used += c.size
		r.evictLocked(ctx)
	}
	r.mu.Unlock()
	close(c.ready)
	if err != nil {
		return nil, false, err
	}
	return c, true, nil
}

func (r *Runtime) compile(ctx context.Context, rt wazero.Runtime, c *code, v *function.Version) error {
	start := time.Now()
	rc, err := r.cfg.Artifacts(ctx, v.Spec.Code)
	if err != nil {
		return fmt.Errorf("read module %s: %w", v.Spec.Code, err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(rc, r.cfg.MaxArtifactBytes+1))
	if err != nil {
		return fmt.Errorf("read module %s: %w", v.Spec.Code, err)
	}
	if n > r.cfg.MaxArtifactBytes {
		return fmt.Errorf("%w: module is larger than %d bytes", function.ErrInvalid, r.cfg.MaxArtifactBytes)
	}
	cm, err := rt.CompileModule(ctx, buf.Bytes())
	if err != nil {
		return fmt.Errorf("%w: compile module: %v", function.ErrInvalid, err)
	}
	contract, err := detectContract(cm, v.Spec.Contract)
	if err != nil {
		_ = cm.Close(ctx)
		return err
	}
	c.compiled = cm
	c.contract = contract
	c.size = n * compiledSizeFactor
	c.loadTime = time.Since(start)
	return nil
}

// evictLocked drops least recently used code past the budget, keeping at
// least the newest.
func (r *Runtime) evictLocked(ctx context.Context) {
	for r.used > r.cfg.CodeBudget && r.lru.Len() > 1 {
		r.evictOneLocked(ctx, r.lru.Back())
	}
}

// evictOneLocked takes code out of memory's accounting; the compiled module
// closes now if nothing uses it, or when its last start or instance ends.
func (r *Runtime) evictOneLocked(ctx context.Context, e *list.Element) {
	c := r.lru.Remove(e).(*code)
	c.elem = nil
	c.evicted = true
	delete(r.codes, c.key)
	r.used -= c.size
	if c.refs == 0 {
		_ = c.compiled.Close(ctx)
	}
}

// LoadedBytes reports the estimated memory of compiled code held.
func (r *Runtime) LoadedBytes() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.used
}

// Evict drops all compiled code from memory (not from the disk cache), so
// the next start of any version is code-cold. Benchmarks use it.
func (r *Runtime) Evict(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.lru.Len() > 0 {
		r.evictOneLocked(ctx, r.lru.Back())
	}
}

func detectContract(cm wazero.CompiledModule, want string) (string, error) {
	exports := cm.ExportedFunctions()
	_, hasHandle := exports["hostless_handle"]
	_, hasBuffer := exports["hostless_buffer"]
	_, hasStart := exports["_start"]
	sdk := hasHandle && hasBuffer
	switch want {
	case function.ContractSDK:
		if !sdk {
			return "", fmt.Errorf("%w: contract sdk needs a reactor exporting hostless_buffer and hostless_handle (build with the Go SDK and -buildmode=c-shared)", function.ErrInvalid)
		}
		return want, nil
	case function.ContractCGI:
		if !hasStart {
			return "", fmt.Errorf("%w: contract cgi needs a command module exporting _start", function.ErrInvalid)
		}
		return want, nil
	}
	switch {
	case sdk:
		return function.ContractSDK, nil
	case hasStart:
		return function.ContractCGI, nil
	}
	return "", fmt.Errorf("%w: module exports neither hostless_handle (sdk) nor _start (cgi)", function.ErrInvalid)
}

// Start starts an instance of v: it loads v's code (bounded by
// LoadTimeout), then starts the instance within v's timeout.
func (r *Runtime) Start(ctx context.Context, v *function.Version) (function.Instance, function.StartInfo, error) {
	var info function.StartInfo
	t0 := time.Now()
	c, cold, err := r.load(ctx, v)
	if err != nil {
		return nil, info, err
	}
	release := sync.OnceFunc(func() { r.release(c) }) // by the instance's Close
	ctx, cancel := context.WithTimeout(ctx, time.Duration(v.Spec.Timeout))
	defer cancel()
	info.CodeCold = cold
	info.Load = time.Since(t0)
	r.mu.Lock()
	rt, err := r.runtimeFor(ctx, c.key.pages)
	r.mu.Unlock()
	if err != nil {
		release()
		return nil, info, err
	}
	base := wazero.NewModuleConfig().
		WithName("").
		WithArgs(v.Function).
		WithSysWalltime().
		WithSysNanotime().
		WithRandSource(rand.Reader)
	for k, val := range v.Spec.Env {
		base = base.WithEnv(k, val)
	}
	if base, err = withSecrets(ctx, r.cfg.Secrets, v, base); err != nil {
		release()
		return nil, info, err
	}
	if r.cfg.Platform != nil {
		base = base.WithEnv("HOSTLESS_API_URL", "http://"+PlatformHost)
	}
	if len(v.Spec.Buckets) > 0 {
		if r.cfg.Credentials == nil || r.cfg.Platform == nil {
			release()
			return nil, info, fmt.Errorf("%w: the function names buckets, and this server has no object storage for functions", function.ErrUnavailable)
		}
		creds, revoke, err := r.cfg.Credentials(v)
		if err != nil {
			release()
			return nil, info, fmt.Errorf("%w: issue the function's S3 credentials: %v", function.ErrUnavailable, err)
		}
		for k, val := range function.S3Env(creds, "http://"+PlatformHost) {
			base = base.WithEnv(k, val)
		}
		releaseCode := release
		release = sync.OnceFunc(func() { revoke(); releaseCode() })
	}
	t1 := time.Now()
	var inst function.Instance
	switch c.contract {
	case function.ContractSDK:
		var si *sdkInstance
		if si, err = r.startSDK(ctx, rt, c, v, base); err == nil {
			si.release = release
			inst = si
		}
	default:
		inst = &cgiInstance{rt: rt, code: c, version: v, base: base, maxOut: r.cfg.MaxResponseBytes, release: release,
			allowed: parseAllowedHosts(v.Spec.AllowedHosts)}
	}
	info.Init = time.Since(t1)
	if err != nil {
		release()
		return nil, info, err
	}
	return inst, info, nil
}

// sleeper is an instance's nanosleep: a guest blocked in a sleep wakes
// when its invocation's context ends, so the deadline can stop it (wazero
// only interrupts running guest code).
type sleeper struct {
	mu   sync.Mutex
	done <-chan struct{}
}

func (s *sleeper) set(done <-chan struct{}) {
	s.mu.Lock()
	s.done = done
	s.mu.Unlock()
}

func (s *sleeper) sleep(ns int64) {
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	t := time.NewTimer(time.Duration(ns))
	defer t.Stop()
	select {
	case <-t.C:
	case <-done:
	}
}

// lineWriter splits what a guest writes to a stream into log lines.
type lineWriter struct {
	stream  string
	logs    function.Logs
	partial []byte
	sawOOM  bool // a line said "out of memory" (Go's runtime does, before it exits)
}

const maxLogLine = 16 << 10

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.partial = append(w.partial, p...)
			if len(w.partial) >= maxLogLine {
				w.flush()
			}
			break
		}
		line := p[:i]
		if len(w.partial) > 0 {
			w.partial = append(w.partial, line...)
			line = w.partial
		}
		if bytes.Contains(line, []byte("out of memory")) {
			w.sawOOM = true
		}
		if w.logs != nil {
			w.logs.Line(w.stream, bytes.TrimSuffix(line, []byte{'\r'}))
		}
		w.partial = w.partial[:0]
		p = p[i+1:]
	}
	return n, nil
}

// flush emits a trailing partial line.
func (w *lineWriter) flush() {
	if len(w.partial) > 0 && w.logs != nil {
		w.logs.Line(w.stream, w.partial)
	}
	w.partial = w.partial[:0]
}

// finalStatus checks that a function answered a final HTTP status: a 1xx
// (101 Switching Protocols above all) would hijack the client's connection.
func finalStatus(resp *function.Response) error {
	if resp.Status < 200 || resp.Status > 599 {
		return fmt.Errorf("%w: status %d is not a final HTTP status (200-599)", function.ErrFunction, resp.Status)
	}
	return nil
}

// classify turns a failed call into the domain's errors.
func classify(ctx context.Context, err error, mem api.Memory, limitPages uint32, sawOOM bool) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			return function.ErrTimeout
		}
		return fmt.Errorf("invocation cancelled by its caller: %w", ctxErr)
	}
	oom := sawOOM
	if mem != nil && limitPages > 0 {
		// Allocators grow memory in chunks, so a failure close to the limit
		// is an out-of-memory failure.
		if size := mem.Size(); uint64(size) >= uint64(limitPages)*65536*9/10 {
			oom = true
		}
	}
	if oom {
		return fmt.Errorf("%w (limit %d MB)", function.ErrOutOfMemory, limitPages/16)
	}
	return fmt.Errorf("%w: %v", function.ErrFunction, err)
}
