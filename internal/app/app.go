// Package app is the composition root's engine: it builds every part from
// a Config, starts them in order, serves HTTP, and stops them in reverse
// order. It holds wiring only; behaviour lives in the parts.
package app

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hostless/hostless/internal/api"
	"github.com/hostless/hostless/internal/apierror"
	"github.com/hostless/hostless/internal/async"
	"github.com/hostless/hostless/internal/baas/auth"
	"github.com/hostless/hostless/internal/baas/docdb"
	"github.com/hostless/hostless/internal/baas/secrets"
	"github.com/hostless/hostless/internal/baas/storage"
	"github.com/hostless/hostless/internal/blob"
	blobfs "github.com/hostless/hostless/internal/blob/fs"
	"github.com/hostless/hostless/internal/bus"
	"github.com/hostless/hostless/internal/config"
	"github.com/hostless/hostless/internal/console"
	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/gateway"
	"github.com/hostless/hostless/internal/invoker"
	"github.com/hostless/hostless/internal/masterkey"
	"github.com/hostless/hostless/internal/metering"
	"github.com/hostless/hostless/internal/requestid"
	"github.com/hostless/hostless/internal/route"
	"github.com/hostless/hostless/internal/runtime"
	"github.com/hostless/hostless/internal/runtime/process"
	"github.com/hostless/hostless/internal/runtime/wasm"
	"github.com/hostless/hostless/internal/sandbox"
	"github.com/hostless/hostless/internal/scheduler"
	"github.com/hostless/hostless/internal/sigv4"
	"github.com/hostless/hostless/internal/store"
	"github.com/hostless/hostless/internal/store/postgres"
	"github.com/hostless/hostless/internal/store/sqlite"
	"github.com/hostless/hostless/internal/telemetry"
	"github.com/hostless/hostless/internal/tracing"
)

// The parts fit the interfaces their consumers declare.
var (
	_ api.Invoker      = (*invoker.Invoker)(nil)
	_ api.Followers    = (*telemetry.Recorder)(nil)
	_ gateway.Invoker  = (*invoker.Invoker)(nil)
	_ invoker.Observer = (*telemetry.Metrics)(nil)
	_ async.Invoker    = (*invoker.Invoker)(nil)
	_ api.Async        = (*async.Engine)(nil)
	_ api.Routes       = (*route.Syncer)(nil)
)

// routesReload is how often a node reads the stored route table, so that
// a PUT /v1/routes on another node sharing the store reaches this one.
// A read compares the stored bytes with the served table's and compiles
// nothing when they are equal.
var routesReload = 5 * time.Second

// changes tells the invoker and the async engine of a function's change.
type changes struct {
	*invoker.Invoker
	async *async.Engine
}

func (c changes) Changed(project, name string) {
	c.Invoker.Changed(project, name)
	c.async.Changed(project, name)
}

// adminKeySetting is where the hash of a generated admin key is stored.
const adminKeySetting = "admin_key_sha256"

// App is a running platform.
type App struct {
	cfg config.Config
	log *slog.Logger
	// ExtraKeys are admin keys accepted for this process's life only
	// (`hostless up` deploys its example with one). Set before Start.
	ExtraKeys []string

	store store.Store
	blobs *blobfs.Store
	rt    *wasm.Runtime
	// tracing traces requests and invocations (exported with
	// --otlp-endpoint).
	tracing *tracing.Provider
	// masterKey seals the secrets the platform must recover.
	masterKey *masterkey.Ring
	sandbox   *sandbox.Manager
	runtimes  *runtime.Mux
	sched     *scheduler.Scheduler
	rec       *telemetry.Recorder
	sweeper   *telemetry.Sweeper // deletes old records and log lines
	inv       *invoker.Invoker
	bus       *bus.Bus
	async     *async.Engine
	auth      *auth.Service
	// platform serves the platform's APIs to process instances' local
	// endpoints; it is set once the server's mux is built.
	platform lateHandler
	docdb    *docdb.Service
	secrets  *secrets.Service // secrets.go
	srv      *http.Server
	ln       net.Listener
	s3       *s3Server        // the S3 API's listener (s3.go)
	objects  *storage.Handler // object storage: the S3 and browser APIs (storage.go)
	ready    atomic.Bool
	draining chan struct{}
	served   chan struct{} // closed when the HTTP server stops serving
	// stopRoutes ends the reload of the route table and waits for it.
	stopRoutes func()
	// stopSweep ends the start-time sweep of unpacked code and waits for it.
	stopSweep func()
	serveErr  error

	// GeneratedKey is the admin key generated at first start, if this
	// start generated one; it is shown once and only its hash is kept.
	GeneratedKey string
}

// New allocates an app; Start acquires resources.
func New(cfg config.Config, log *slog.Logger) *App {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	// Lines logged with a request's context carry its request_id.
	log = slog.New(requestid.NewHandler(log.Handler()))
	return &App{cfg: cfg, log: log, draining: make(chan struct{}), served: make(chan struct{})}
}

// Start opens the stores, starts the workers and listens. On error, Close
// releases what was started.
func (a *App) Start(ctx context.Context) error {
	if err := a.cfg.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(a.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	var err error
	a.tracing, err = tracing.New(tracing.Config{Endpoint: a.cfg.OTLPEndpoint, Headers: a.cfg.OTLPHeaders, SampleRatio: a.cfg.TraceSampleRatio})
	if err != nil {
		return err
	}
	if a.cfg.Postgres != "" {
		a.store, err = postgres.Open(ctx, a.cfg.Postgres)
	} else {
		a.store, err = sqlite.OpenWith(ctx, a.cfg.DataDir, sqlite.Options{DataSyncFull: a.cfg.DataSyncAlways})
	}
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	a.blobs = blobfs.New(filepath.Join(a.cfg.DataDir, "blobs"))
	if err := a.blobs.Open(); err != nil {
		return fmt.Errorf("open blobs: %w", err)
	}
	a.rt = wasm.New(wasm.Config{
		CacheDir:         filepath.Join(a.cfg.DataDir, "cache", "wazero"),
		CodeBudget:       a.cfg.CodeCacheBytes,
		MaxResponseBytes: a.cfg.MaxResponseBytes,
		MaxArtifactBytes: a.cfg.MaxArtifactBytes,
		Artifacts:        a.artifact,
		Platform:         &a.platform,
		Secrets:          a.secretEnv,
		Credentials:      a.issueCredentials,
	})
	if err := a.rt.Open(); err != nil {
		return err
	}
	a.runtimes = &runtime.Mux{Wasm: a.rt}
	a.sandbox, err = sandbox.New(sandbox.Config{Dir: filepath.Join(a.cfg.DataDir, "sandbox"), Isolation: a.cfg.Isolation})
	if err != nil {
		// wasm functions still run; deploys of process functions are refused with the reason.
		a.runtimes.ProcessErr = err
		a.log.Warn("process functions are disabled", "reason", err)
	} else {
		if a.sandbox.Isolation() == sandbox.IsolationNone {
			a.log.Warn("process functions run WITHOUT isolation (isolation: none): run trusted code only")
		}
		shimFunc, err := process.Shims(filepath.Join(a.cfg.DataDir, "process", "runtime"))
		if err != nil {
			return err
		}
		a.runtimes.Process = process.New(process.Config{
			Dir: filepath.Join(a.cfg.DataDir, "process"), Sandbox: a.sandbox, Artifacts: a.artifact,
			Shims: shimFunc, MaxResponseBytes: a.cfg.MaxResponseBytes, Platform: &a.platform, Secrets: a.secretEnv,
			Credentials: a.issueCredentials,
		})
	}
	a.sched = scheduler.New(a.runtimes, scheduler.Config{
		IdleTimeout: a.cfg.IdleTimeout, MaxConcurrency: a.cfg.MaxConcurrency, QueueTimeout: a.cfg.QueueTimeout,
		MaxTotalConcurrency: a.cfg.MaxTotalConcurrency, MaxMemoryMB: a.cfg.MaxMemoryMB,
	})
	a.sched.Start()
	a.rec = telemetry.New(a.store, a.log, telemetry.Config{})
	a.rec.Start()
	// (Validate filled the defaults in.)
	a.sweeper = telemetry.NewSweeper(a.store, a.log, telemetry.SweepConfig{MaxAge: a.cfg.LogRetention, MaxLogBytes: a.cfg.LogMaxBytes})
	a.sweeper.Start()
	metrics := telemetry.NewMetrics()
	budgets := metering.New(metering.Limits{PerHour: a.cfg.BudgetGBSecondsPerHour, PerDay: a.cfg.BudgetGBSecondsPerDay}, nil)
	if err := seedBudgets(ctx, a.store, budgets); err != nil {
		return err
	}
	a.inv = invoker.New(a.store, a.runtimes, a.sched, a.rec, a.log).WithObserver(metrics).WithBudgets(budgets).
		WithTracer(a.tracing.Tracer())
	sched, rec := a.sched, a.rec
	metrics.Gauge("hostless_instances", "Instances running, by state.", map[string]string{"state": "idle"},
		func() float64 { return float64(sched.Stats().Idle) })
	metrics.Gauge("hostless_instances", "Instances running, by state.", map[string]string{"state": "busy"},
		func() float64 { return float64(sched.Stats().Busy) })
	metrics.Gauge("hostless_instances_memory_bytes", "Memory limits of all started instances together.", nil,
		func() float64 { return float64(sched.MemoryMB()) * (1 << 20) })
	metrics.Counter("hostless_records_dropped_total", "Invocation records dropped because the store fell behind.",
		func() float64 { return float64(rec.Dropped()) })
	sweeper := a.sweeper
	metrics.Gauge("hostless_log_bytes", "Bytes of stored log lines (text and per-line metadata), as of the last retention sweep.", nil,
		func() float64 { return float64(sweeper.LogBytes()) })
	metrics.Counter("hostless_records_trimmed_total", "Invocation records deleted for their age.",
		func() float64 { n, _ := sweeper.Trimmed(); return float64(n) })
	metrics.Counter("hostless_log_lines_trimmed_total", "Log lines deleted for their age or past the size cap.",
		func() float64 { _, n := sweeper.Trimmed(); return float64(n) })
	if err := a.startAsync(ctx, metrics); err != nil {
		return err
	}

	hashes, err := a.adminKeys(ctx)
	if err != nil {
		return err
	}
	a.masterKey, err = masterkey.LoadRing(a.cfg.MasterKey, a.cfg.MasterKeyPrevious, a.cfg.DataDir)
	if err != nil {
		return err
	}
	lambdaAuth, err := a.lambdaAuth(ctx)
	if err != nil {
		return err
	}
	if err := a.startAuth(ctx, hashes); err != nil {
		return err
	}
	if err := a.startStorage(ctx); err != nil {
		return err
	}
	if err := a.startS3(ctx); err != nil {
		return err
	}
	if err := a.startSecrets(ctx); err != nil {
		return err
	}
	mux := http.NewServeMux()
	a.auth.Register(mux, a.log)
	a.docdb.Register(mux, a.auth, a.log)
	a.objects.Register(mux, a.auth, a.log)
	a.secrets.Register(mux, a.auth, a.log)
	gw := gateway.New(a.inv, a.log, a.cfg.MaxRequestBytes).WithAsync(a.async).WithAuth(a.auth)
	gw.Register(mux)
	gw.Lambda(lambdaAuth).Register(mux)
	st := a.store // not the field: Close clears it
	routes := &route.Syncer{
		Load: func(ctx context.Context) (string, error) {
			data, err := st.GetSetting(ctx, api.RoutesSetting)
			if errors.Is(err, store.ErrNotFound) {
				return "", nil
			}
			return data, err
		},
		Save: func(ctx context.Context, data string) error { return st.PutSetting(ctx, api.RoutesSetting, data) },
		Set:  gw.SetRoutes,
		Log:  a.log,
	}
	if err := routes.Sync(ctx); err != nil {
		// The node serves without routes rather than not at all.
		a.log.Error("load routes", "err", err)
	}
	routesCtx, stopRoutes := context.WithCancel(context.Background())
	routesDone := make(chan struct{})
	a.stopRoutes = func() { stopRoutes(); <-routesDone } // Close waits for the reloader
	go func() {
		defer close(routesDone)
		routes.Run(routesCtx, routesReload)
	}()
	api.New(api.Config{
		Routes: routes,
		Store:  a.store, Blobs: a.blobs, Invoker: changes{a.inv, a.async}, Followers: a.rec, Log: a.log,
		Async: a.async, Emit: a.emit,
		MaxArtifactBytes: a.cfg.MaxArtifactBytes, MaxRequestBytes: a.cfg.MaxRequestBytes, MaxResponseBytes: int64(a.cfg.MaxResponseBytes),
		KeyHashes: hashes, Principals: a.auth, Draining: a.draining, Metrics: metrics.Handler(), CanRun: a.canRun,
		Prices: prices(a.cfg.Prices),
	}).Register(mux)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.Handle("GET /readyz", apierror.Wrap(a.log, a.readyz))
	console.New(a.log).Register(mux) // the web console at /console/
	// What no platform path takes goes to the route table, then to a 404.
	mux.Handle("/", gw.Routed(apierror.Wrap(a.log, func(w http.ResponseWriter, r *http.Request) error {
		return apierror.NotFound("not_found", "nothing at %s; functions are at /fn/{name}, the API at /v1", r.URL.Path)
	})))
	// Functions reach the platform's APIs, and the S3 API under /s3 (the
	// AWS_ENDPOINT_URL_S3 of those that name buckets), through their
	// instances' endpoints; the S3 API is not on the main listener.
	platform := http.NewServeMux()
	s3 := a.objects.Prefixed(function.S3Path)
	platform.Handle(function.S3Path, s3) // ListBuckets: the endpoint itself, which the mux would redirect
	platform.Handle(function.S3Path+"/", s3)
	platform.Handle("/", mux)
	a.platform.set(a.tracing.Middleware(platform))
	var handler http.Handler = mux
	if cors := a.cfg.BackendCORS(); cors != nil {
		handler = backendCORS(cors, mux, a.log)
	}
	srv := &http.Server{
		Handler:           a.tracing.Middleware(requestid.Middleware(handler)),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	var tlsCfg *tls.Config
	if a.cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(a.cfg.TLSCert, a.cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	}
	ln, err := net.Listen("tcp", a.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", a.cfg.Addr, err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	a.ln = ln
	a.srv = srv
	go func() {
		a.serveErr = srv.Serve(ln)
		close(a.served)
	}()
	if pr, ok := a.runtimes.Process.(*process.Runtime); ok {
		sctx, scancel := context.WithTimeout(context.Background(), time.Minute)
		done := make(chan struct{})
		go func() {
			defer close(done)
			sweepCode(sctx, a.store, pr, a.log)
		}()
		a.stopSweep = func() { scancel(); <-done }
	}
	if err := a.inv.WarmAll(ctx, function.DefaultProject); err != nil {
		a.log.Warn("start min instances", "err", err)
	}
	a.ready.Store(true)
	return nil
}

func (a *App) artifact(ctx context.Context, code string) (io.ReadCloser, error) {
	rc, _, err := a.blobs.Get(ctx, function.ArtifactKey(code))
	if errors.Is(err, blob.ErrNotFound) {
		// Not function.ErrNotFound: the function exists, its code is lost,
		// and that is the server's fault, not the caller's.
		return nil, fmt.Errorf("artifact %s is missing from the blob store", code)
	}
	return rc, err
}

// adminKeys returns the hashes of the accepted admin keys, generating and
// storing the hash of a new key at first start when none is configured.
func (a *App) adminKeys(ctx context.Context) ([][32]byte, error) {
	var hashes [][32]byte
	for _, k := range a.ExtraKeys {
		hashes = append(hashes, api.HashKey(k))
	}
	if a.cfg.AdminKey != "" {
		return append(hashes, api.HashKey(a.cfg.AdminKey)), nil
	}
	stored, err := a.store.GetSetting(ctx, adminKeySetting)
	if errors.Is(err, store.ErrNotFound) {
		key := NewKey()
		sum := api.HashKey(key)
		ok, perr := a.store.PutSettingIfAbsent(ctx, adminKeySetting, hex.EncodeToString(sum[:]))
		if perr != nil {
			return nil, fmt.Errorf("store admin key: %w", perr)
		}
		if ok {
			a.GeneratedKey = key
			return append(hashes, sum), nil
		}
		// Another node stored one first: use its.
		stored, err = a.store.GetSetting(ctx, adminKeySetting)
	}
	if err != nil {
		return nil, fmt.Errorf("read admin key: %w", err)
	}
	b, err := hex.DecodeString(stored)
	if err != nil || len(b) != 32 {
		return nil, errors.New("stored admin key hash is corrupt")
	}
	return append(hashes, [32]byte(b)), nil
}

// NewKey returns a random admin key.
func NewKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return "hl_" + base64.RawURLEncoding.EncodeToString(b)
}

func (a *App) readyz(w http.ResponseWriter, r *http.Request) error {
	if !a.ready.Load() {
		return apierror.New(http.StatusServiceUnavailable, "not_ready", "shutting down")
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := a.store.Ping(ctx); err != nil {
		return apierror.New(http.StatusServiceUnavailable, "not_ready", "store does not answer")
	}
	if !a.bus.Connected() {
		return apierror.New(http.StatusServiceUnavailable, "not_ready", "the event bus (NATS) is not connected")
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ready\n")
	// Broker triggers are counted, and don't make the node unready: a
	// broker that is down must not take the node's HTTP traffic away. Which
	// ones, and why, is for admin-key holders (/metrics).
	up, down := 0, 0
	for _, ts := range a.async.TriggerStatuses() {
		if ts.Connected {
			up++
		} else {
			down++
		}
	}
	if up+down > 0 {
		fmt.Fprintf(w, "triggers: %d connected, %d disconnected\n", up, down)
	}
	return nil
}

// backendPaths are the APIs a page calls from a browser, which
// --cors-origins opens to other origins.
var backendPaths = []string{"/v1/auth/", "/v1/db/", "/v1/storage/", "/v1/kms/", "/.well-known/"}

// backendCORS applies the backend's cross-origin policy to its APIs;
// other paths (the control API, functions, which have their own cors:)
// are served as they are.
func backendCORS(c *function.CORS, next http.Handler, log *slog.Logger) http.Handler {
	cors := gateway.CORSHandler(c, next, log)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, p := range backendPaths {
			if strings.HasPrefix(r.URL.Path, p) {
				cors.ServeHTTP(w, r)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// canRun says why a spec can't run here: a runtime this host lacks, or a
// trigger its broker's settings refuse.
func (a *App) canRun(s *function.Spec) error {
	if err := a.runtimes.CanRun(s); err != nil {
		return err
	}
	if err := a.checkSecrets(s); err != nil {
		return err
	}
	if err := a.checkBuckets(s); err != nil {
		return err
	}
	return a.async.CheckTriggers(s)
}

// URL is the base URL the app serves.
func (a *App) URL() string {
	scheme := "http"
	if a.cfg.TLSCert != "" {
		scheme = "https"
	}
	return scheme + "://" + a.ln.Addr().String()
}

// Served is closed when the HTTP server stops; ServeErr then says why.
func (a *App) Served() <-chan struct{} { return a.served }

// ServeErr is the HTTP server's error once Served is closed: nil or
// http.ErrServerClosed after Shutdown.
func (a *App) ServeErr() error {
	<-a.served
	if errors.Is(a.serveErr, http.ErrServerClosed) {
		return nil
	}
	return a.serveErr
}

// flushTimeout bounds the last flush of records at shutdown, whatever is
// left of the grace period.
const flushTimeout = 10 * time.Second

// Shutdown drains: the app stops accepting requests and in-flight
// invocations finish, until ctx ends; then connections close (cancelling
// what still runs), records are flushed and everything closes.
func (a *App) Shutdown(ctx context.Context) error {
	a.ready.Store(false)
	select {
	case <-a.draining:
	default:
		close(a.draining)
	}
	var errs []error
	if a.srv != nil {
		if err := a.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("drain: %w", err))
		}
	}
	return errors.Join(append(errs, a.Close(context.Background()))...)
}

// Close releases every part; it works after a partial Start. In-flight
// requests are cancelled, then awaited for up to flushTimeout, and the
// records they left are written.
func (a *App) Close(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, flushTimeout)
	defer cancel()
	var errs []error
	if a.stopRoutes != nil {
		a.stopRoutes()
		a.stopRoutes = nil
	}
	if a.docdb != nil {
		a.docdb.Close() // ends realtime streams
	}
	if a.auth != nil {
		a.auth.Close()
	}
	if a.stopSweep != nil {
		a.stopSweep() // before the store closes under it
		a.stopSweep = nil
	}
	if a.sweeper != nil {
		errs = append(errs, a.sweeper.Close(ctx)) // before the store closes under it
		a.sweeper = nil
	}
	a.closeS3()
	if a.srv != nil {
		_ = a.srv.Close() // cancels the contexts of requests still running
		if err := a.ServeErr(); err != nil {
			errs = append(errs, err)
		}
		a.srv = nil
	} else if a.ln != nil {
		errs = append(errs, a.ln.Close())
	}
	a.ln = nil
	if a.async != nil {
		// Running events finish (their outcomes stored) before the invoker
		// stops taking calls.
		if err := a.async.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop async invocations: %w", err))
		} // kept: late readiness checks see it closed
	}
	if a.inv != nil {
		if err := a.inv.Wait(ctx); err != nil {
			errs = append(errs, fmt.Errorf("wait for invocations: %w", err))
		}
	}
	if a.sched != nil {
		a.sched.Close()
	}
	if a.bus != nil {
		a.bus.Close() // kept: late readiness checks and events see it closed
	}
	if a.rec != nil {
		// Its own time: waiting for invocations may have used all of ctx.
		fctx, fcancel := context.WithTimeout(context.Background(), flushTimeout)
		errs = append(errs, a.rec.Close(fctx))
		fcancel()
		a.rec = nil
	}
	if a.rt != nil {
		errs = append(errs, a.rt.Close(ctx))
		a.rt = nil
	}
	if a.sandbox != nil {
		a.sandbox.Close() // after the scheduler closed every instance
		a.sandbox = nil
	}
	if a.store != nil {
		errs = append(errs, a.store.Close())
		a.store = nil
	}
	if a.tracing != nil {
		// Its own time: the spans of the last invocations go out.
		tctx, tcancel := context.WithTimeout(context.Background(), flushTimeout)
		if err := a.tracing.Shutdown(tctx); err != nil {
			a.log.Warn("export the last traces", "err", err)
		}
		tcancel()
		a.tracing = nil
	}
	return errors.Join(errs...)
}

// Settings that hold the Lambda API's access key.
const (
	awsKeyIDSetting     = "aws_access_key_id"
	awsKeySecretSetting = "aws_secret_access_key/" // + key id: the sealed secret, base64
)

// lambdaAuth returns the Lambda API's SigV4 check against the configured
// access key pair (stored sealed under the master key), or the stored one;
// nil when there is none.
func (a *App) lambdaAuth(ctx context.Context) (gateway.LambdaAuth, error) {
	id, secret := a.cfg.AWSAccessKeyID, a.cfg.AWSSecretAccessKey
	if id != "" {
		sealed, err := a.masterKey.Seal([]byte(secret), []byte(awsKeySecretSetting+id))
		if err != nil {
			return nil, err
		}
		if err := a.store.PutSetting(ctx, awsKeySecretSetting+id, base64.StdEncoding.EncodeToString(sealed)); err != nil {
			return nil, err
		}
		if err := a.store.PutSetting(ctx, awsKeyIDSetting, id); err != nil {
			return nil, err
		}
	} else {
		var err error
		id, err = a.store.GetSetting(ctx, awsKeyIDSetting)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		b64, err := a.store.GetSetting(ctx, awsKeySecretSetting+id)
		if err != nil {
			return nil, fmt.Errorf("the stored AWS access key %s: %w", id, err)
		}
		sealed, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return nil, fmt.Errorf("the stored AWS access key %s is corrupt", id)
		}
		plain, err := a.masterKey.Open(sealed, []byte(awsKeySecretSetting+id))
		if err != nil {
			return nil, fmt.Errorf("the stored AWS access key %s can't be read with this master key (%s): %w", id, a.masterKey.ID(), err)
		}
		secret = string(plain)
	}
	v := &sigv4.Verifier{
		Service:      "lambda",
		MaxBodyBytes: a.cfg.MaxRequestBytes,
		Lookup: func(key string) (string, bool) {
			return secret, key == id
		},
	}
	return func(r *http.Request) error {
		_, err := v.Verify(r, time.Now())
		if e, ok := errors.AsType[*sigv4.Error](err); ok {
			return &gateway.AuthError{Code: e.Code, Status: e.Status, Message: e.Message}
		}
		return err
	}, nil
}

// prices is the price table of usage reports: the configured one, with
// negative prices free.
func prices(p config.Prices) metering.Prices {
	return metering.Prices{
		GBSecond: max(0, p.GBSecond), MillionRequests: max(0, p.MillionRequests), GBOut: max(0, p.GBOut),
		ServerHour: max(0, p.ServerHour), ServerMemoryMB: p.ServerMemoryMB,
	}
}

// seedBudgets counts the usage the store holds for the current hour and
// day, so that a restart doesn't reset a budget.
func seedBudgets(ctx context.Context, st store.Store, b *metering.Budgets) error {
	hour, day := b.Windows()
	hu, err := st.UsageSince(ctx, function.DefaultProject, hour)
	if err != nil {
		return err
	}
	du, err := st.UsageSince(ctx, function.DefaultProject, day)
	if err != nil {
		return err
	}
	b.Seed(hour, hu, day, du)
	return nil
}

// lateHandler is a handler set after it is handed out; until then it
// answers 503.
type lateHandler struct{ h atomic.Pointer[http.Handler] }

func (l *lateHandler) set(h http.Handler) { l.h.Store(&h) }

func (l *lateHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := l.h.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	http.Error(w, "the platform is starting", http.StatusServiceUnavailable)
}

// sweepCode removes the unpacked code of process functions that no stored
// version uses any more (deleted functions), once, at start.
// It runs beside serving; Close cancels it and waits.
func sweepCode(ctx context.Context, st store.Store, pr *process.Runtime, log *slog.Logger) {
	fns, err := st.ListFunctions(ctx, function.DefaultProject)
	if err != nil {
		log.Warn("sweep unpacked code", "err", err)
		return
	}
	keep := map[string]bool{}
	for _, f := range fns {
		vs, err := st.ListVersions(ctx, function.DefaultProject, f.Name)
		if err != nil {
			log.Warn("sweep unpacked code", "err", err)
			return // keep everything rather than guess
		}
		for _, v := range vs {
			keep[v.Spec.Code] = true
		}
	}
	if ctx.Err() != nil {
		return // closing: don't sweep with a partial list
	}
	if n, err := pr.Sweep(keep); err != nil {
		log.Warn("sweep unpacked code", "err", err)
	} else if n > 0 {
		log.Info("removed the unpacked code of deleted functions", "dirs", n)
	}
}

// startAsync opens the bus and starts the async engine.
func (a *App) startAsync(ctx context.Context, metrics *telemetry.Metrics) error {
	var err error
	a.bus, err = bus.Open(ctx, bus.Config{URL: a.cfg.NATS, Dir: filepath.Join(a.cfg.DataDir, "bus"),
		Prefix: a.cfg.NATSPrefix, SyncAlways: a.cfg.BusSyncAlways})
	if err != nil {
		return err
	}
	a.async, err = async.New(async.Config{Bus: a.bus, Invoker: a.inv, States: a.store, Log: a.log,
		Concurrency: a.sched.DefaultConcurrency(), IdempotencyWindow: a.cfg.IdempotencyWindow, Emit: a.emit})
	if err != nil {
		return err
	}
	if err := a.async.Start(ctx); err != nil {
		return err
	}
	fns, err := a.store.ListFunctions(ctx, function.DefaultProject)
	if err != nil {
		return err
	}
	for _, fn := range fns {
		a.async.Changed(function.DefaultProject, fn.Name) // starts schedules
	}
	eng := a.async
	for _, c := range []struct {
		name, help string
		value      func(async.Stats) int64
	}{
		{"hostless_async_accepted_total", "Async invocations accepted (stored on the bus).", func(s async.Stats) int64 { return s.Accepted }},
		{"hostless_async_succeeded_total", "Async invocations that succeeded.", func(s async.Stats) int64 { return s.Succeeded }},
		{"hostless_async_failed_attempts_total", "Failed attempts of async invocations.", func(s async.Stats) int64 { return s.Failed }},
		{"hostless_async_dead_lettered_total", "Async invocations moved to a dead-letter queue.", func(s async.Stats) int64 { return s.DeadLettered }},
		{"hostless_async_states_dropped_total", "Queued or running states not stored because the store fell behind.", func(s async.Stats) int64 { return s.StatesDropped }},
	} {
		value := c.value
		metrics.Counter(c.name, c.help, func() float64 { return float64(value(eng.Stats())) })
	}
	metrics.Register(triggerCollector{eng})
	b := a.bus
	metrics.Gauge("hostless_bus_connected", "1 while the event bus (NATS) is connected.", nil, func() float64 {
		if b.Connected() {
			return 1
		}
		return 0
	})
	return nil
}

// emit publishes a platform event on the bus; events are at most once and
// nothing waits for them.
func (a *App) emit(name string, data []byte) {
	if err := a.bus.Emit(name, data); err != nil {
		a.log.Warn("publish a platform event", "event", name, "err", err)
	}
}

// triggerCollector exports the state of every running trigger.
type triggerCollector struct{ eng *async.Engine }

var (
	triggerConnected = prometheus.NewDesc("hostless_trigger_connected", "1 while a trigger is connected to its broker.",
		[]string{"function", "trigger", "type"}, nil)
	triggerReconnects = prometheus.NewDesc("hostless_trigger_reconnects_total", "Connections a trigger made after a failure.",
		[]string{"function", "trigger", "type"}, nil)
	triggerMessages = prometheus.NewDesc("hostless_trigger_messages_total", "Messages of a trigger by outcome: received, succeeded, failed (attempts), dead_lettered.",
		[]string{"function", "trigger", "type", "outcome"}, nil)
)

func (c triggerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- triggerConnected
	ch <- triggerReconnects
	ch <- triggerMessages
}

func (c triggerCollector) Collect(ch chan<- prometheus.Metric) {
	for _, ts := range c.eng.TriggerStatuses() {
		l := []string{ts.Function, strconv.Itoa(ts.Index), ts.Type}
		connected := 0.0
		if ts.Connected {
			connected = 1
		}
		ch <- prometheus.MustNewConstMetric(triggerConnected, prometheus.GaugeValue, connected, l...)
		ch <- prometheus.MustNewConstMetric(triggerReconnects, prometheus.CounterValue, float64(ts.Reconnects), l...)
		for outcome, n := range map[string]uint64{"received": ts.Received, "succeeded": ts.Succeeded, "failed": ts.Failed, "dead_lettered": ts.DeadLettered} {
			ch <- prometheus.MustNewConstMetric(triggerMessages, prometheus.CounterValue, float64(n), append(l, outcome)...)
		}
	}
}
