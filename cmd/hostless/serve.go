package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/hostless/hostless/internal/app"
	"github.com/hostless/hostless/internal/config"
)

// serverFlags binds the flags `serve` and `up` share.
func serverFlags(cmd *cobra.Command, cfg *config.Config, logFormat *string) {
	f := cmd.Flags()
	f.StringVar(&cfg.Addr, "addr", config.DefaultAddr, "HTTP listen address HOST:PORT (env HOSTLESS_ADDR)")
	f.StringVar(&cfg.DataDir, "data", config.DefaultDataDir, "data directory (env HOSTLESS_DATA)")
	f.StringVar(&cfg.Postgres, "postgres", "", "store metadata and telemetry in PostgreSQL at this URL (env HOSTLESS_POSTGRES)")
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "TLS certificate file (PEM), to serve HTTPS")
	f.StringVar(&cfg.TLSKey, "tls-key", "", "TLS private key file (PEM)")
	f.DurationVar(&cfg.IdleTimeout, "idle-timeout", 0, "stop instances idle this long (default 5m)")
	f.IntVar(&cfg.MaxConcurrency, "max-concurrency", 0, "concurrent invocations per function version (default 64)")
	f.IntVar(&cfg.MaxTotalConcurrency, "max-total-concurrency", 0, "concurrent invocations of all functions together (default 1000)")
	f.IntVar(&cfg.MaxMemoryMB, "max-memory", 0, "MB of memory limits of all started instances together; 0 sets no cap")
	f.DurationVar(&cfg.ShutdownGrace, "shutdown-grace", config.DefaultShutdownGrace, "how long in-flight invocations may finish after SIGTERM")
	f.Float64Var(&cfg.BudgetGBSecondsPerHour, "budget-gbs-hour", 0, "GB-seconds all functions together may use per clock hour; past it calls get 429 (0: no budget)")
	f.Float64Var(&cfg.BudgetGBSecondsPerDay, "budget-gbs-day", 0, "GB-seconds all functions together may use per UTC day (0: no budget)")
	f.StringVar(&cfg.Isolation, "isolation", "", "how process functions run: sandbox (default; needs root) or none (no isolation: trusted code only) (env HOSTLESS_ISOLATION)")
	f.StringVar(&cfg.NATS, "nats", "", "URL of an external NATS server with JetStream for the event bus (default: one embedded, listening on no port) (env HOSTLESS_NATS)")
	f.StringVar(&cfg.NATSPrefix, "nats-prefix", "", "prefix of the bus's streams and subjects, for several platforms on one NATS (default hostless_)")
	f.BoolVar(&cfg.BusSyncAlways, "bus-sync-always", false, "fsync each accepted async event before answering 202 (survives power loss; slower)")
	f.BoolVar(&cfg.DataSyncAlways, "data-sync-always", false, "fsync every commit of the backend's data on SQLite (survives power loss; slower); by default a commit survives kill -9")
	f.DurationVar(&cfg.IdempotencyWindow, "idempotency-window", 0, "how long an async call's Idempotency-Key is remembered (default 24h)")
	f.StringVar(&cfg.PublicURL, "public-url", "", "the address users reach the platform at, for links in mails (env HOSTLESS_PUBLIC_URL)")
	f.StringVar(&cfg.SMTP, "smtp", "", "send verification and reset mails through smtp://user:password@host:port?from=address (env HOSTLESS_SMTP_URL; default: keep them in the dev outbox)")
	f.StringVar(&cfg.AuthProviders, "auth-providers", "", "YAML file of OpenID Connect providers users may sign in with, and the app URLs sign-in may return to (env HOSTLESS_AUTH_PROVIDERS)")
	f.DurationVar(&cfg.AccessTokenTTL, "access-token-ttl", 0, "how long users' access tokens are valid (default 15m)")
	f.Float64Var(&cfg.RateLimitPerIP, "rate-limit-ip", 0, "backend requests per second per client IP (default 1000; negative: off)")
	f.Float64Var(&cfg.RateLimitPerUser, "rate-limit-user", 0, "backend requests per second per signed-in user (default 200; negative: off)")
	f.Float64Var(&cfg.RateLimitPerKey, "rate-limit-key", 0, "backend requests per second per API key (default 2000; negative: off)")
	f.StringVar(&cfg.S3Addr, "s3-addr", "", "serve the S3-compatible object storage API on this HOST:PORT (env HOSTLESS_S3_ADDR)")
	f.Int64Var(&cfg.MaxObjectBytes, "max-object-bytes", 0, "largest S3 object in bytes (default 5 GiB)")
	f.StringSliceVar(&cfg.CORSOrigins, "cors-origins", nil, "origins whose pages may call the backend's APIs (auth, documents, storage, KMS) from a browser, comma-separated, or * (env HOSTLESS_CORS_ORIGINS)")
	f.StringVar(&cfg.OTLPEndpoint, "otlp-endpoint", "", "export traces over OTLP/HTTP to this URL, such as http://collector:4318 (env HOSTLESS_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT; headers: env HOSTLESS_OTLP_HEADERS)")
	f.Float64Var(&cfg.TraceSampleRatio, "trace-sample-ratio", 0, "share of new traces recorded when exporting, 0 to 1 (default 1; a request's traceparent decides for its own)")
	f.StringVar(&cfg.S3Domain, "s3-domain", "", "serve virtual-hosted-style S3 requests to BUCKET.DOMAIN too (a wildcard DNS name for the S3 listener) (env HOSTLESS_S3_DOMAIN)")
	f.StringVar(&cfg.ObjectStore, "object-store", "", "where S3 object bytes live: disk (default: under <data>/objects) or nats (a JetStream object store bucket on the bus's NATS, for clusters) (env HOSTLESS_OBJECT_STORE)")
	f.Float64Var(&cfg.Prices.GBSecond, "price-gb-second", 0, "usage reports: price of a GB-second (default 0.0000166667, AWS Lambda's x86 list price) (env HOSTLESS_PRICE_GB_SECOND)")
	f.Float64Var(&cfg.Prices.MillionRequests, "price-million-requests", 0, "usage reports: price of a million invocations (default 0.20, Lambda's) (env HOSTLESS_PRICE_MILLION_REQUESTS)")
	f.Float64Var(&cfg.Prices.GBOut, "price-gb-out", 0, "usage reports: price of a GB of data out (default 0.09, AWS's; negative: free) (env HOSTLESS_PRICE_GB_OUT)")
	f.Float64Var(&cfg.Prices.ServerHour, "price-server-hour", 0, "usage reports: price of an hour of the always-on server compared with (default 0.0208, an EC2 t3.small) (env HOSTLESS_PRICE_SERVER_HOUR)")
	f.IntVar(&cfg.Prices.ServerMemoryMB, "price-server-memory", 0, "usage reports: the always-on server's memory in MB (default 2048) (env HOSTLESS_PRICE_SERVER_MEMORY_MB)")
	f.DurationVar(&cfg.LogRetention, "log-retention", 0, "keep invocation records and log lines this long, at least 24h (default 168h; negative: for ever) (env HOSTLESS_LOG_RETENTION)")
	f.Var((*bytesFlag)(&cfg.LogMaxBytes), "log-max-bytes", "keep at most this much of log lines, such as 1GB or 500MB, at least 1MB; the oldest go first (default 1GB; negative: no cap) (env HOSTLESS_LOG_MAX_BYTES)")
	f.StringVar(logFormat, "log-format", "text", "platform log format: text or json")
}

// bytesFlag is a size flag: 1GB, 500MB, or a number of bytes.
type bytesFlag int64

func (b *bytesFlag) String() string {
	if *b == 0 {
		return ""
	}
	return strconv.FormatInt(int64(*b), 10)
}

func (b *bytesFlag) Set(s string) error {
	n, err := config.ParseBytes(s)
	*b = bytesFlag(n)
	return err
}

func (b *bytesFlag) Type() string { return "size" }

// resolveConfig applies HOSTLESS_* variables where no flag was given:
// flags override the environment, which overrides the defaults. It fails
// on a variable it can't read.
func resolveConfig(cmd *cobra.Command, cfg *config.Config) error {
	var env config.Config
	env.ApplyEnv(os.Getenv)
	if err := env.EnvErr(); err != nil {
		return err
	}
	if !cmd.Flags().Changed("log-retention") && env.LogRetention != 0 {
		cfg.LogRetention = env.LogRetention
	}
	if !cmd.Flags().Changed("log-max-bytes") && env.LogMaxBytes != 0 {
		cfg.LogMaxBytes = env.LogMaxBytes
	}
	for flag, v := range map[string]struct{ dst, env *string }{
		"addr": {&cfg.Addr, &env.Addr}, "data": {&cfg.DataDir, &env.DataDir}, "postgres": {&cfg.Postgres, &env.Postgres},
		"tls-cert": {&cfg.TLSCert, &env.TLSCert}, "tls-key": {&cfg.TLSKey, &env.TLSKey},
		"isolation": {&cfg.Isolation, &env.Isolation}, "nats": {&cfg.NATS, &env.NATS},
		"smtp": {&cfg.SMTP, &env.SMTP}, "public-url": {&cfg.PublicURL, &env.PublicURL},
		"auth-providers": {&cfg.AuthProviders, &env.AuthProviders},
		"s3-addr":        {&cfg.S3Addr, &env.S3Addr},
		"s3-domain":      {&cfg.S3Domain, &env.S3Domain},
		"otlp-endpoint":  {&cfg.OTLPEndpoint, &env.OTLPEndpoint},
		"object-store":   {&cfg.ObjectStore, &env.ObjectStore},
	} {
		if !cmd.Flags().Changed(flag) && *v.env != "" {
			*v.dst = *v.env
		}
	}
	for flag, v := range map[string]struct{ dst, env *float64 }{
		"price-gb-second": {&cfg.Prices.GBSecond, &env.Prices.GBSecond}, "price-million-requests": {&cfg.Prices.MillionRequests, &env.Prices.MillionRequests},
		"price-gb-out": {&cfg.Prices.GBOut, &env.Prices.GBOut}, "price-server-hour": {&cfg.Prices.ServerHour, &env.Prices.ServerHour},
	} {
		if !cmd.Flags().Changed(flag) && *v.env != 0 { // NaN (not a number) too: Validate names it
			*v.dst = *v.env
		}
	}
	if !cmd.Flags().Changed("price-server-memory") && env.Prices.ServerMemoryMB != 0 {
		cfg.Prices.ServerMemoryMB = env.Prices.ServerMemoryMB
	}
	cfg.AdminKey = env.AdminKey
	cfg.MasterKey, cfg.MasterKeyPrevious = env.MasterKey, env.MasterKeyPrevious
	cfg.AWSAccessKeyID, cfg.AWSSecretAccessKey = env.AWSAccessKeyID, env.AWSSecretAccessKey
	cfg.OTLPHeaders = env.OTLPHeaders
	if !cmd.Flags().Changed("cors-origins") && len(env.CORSOrigins) > 0 {
		cfg.CORSOrigins = env.CORSOrigins
	}
	return nil
}

func newLogger(format string, w io.Writer) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

func newServe() *cobra.Command {
	cfg := config.Config{}
	var logFormat string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the platform",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signalContext(cmd)
			defer stop()
			if err := resolveConfig(cmd, &cfg); err != nil {
				return err
			}
			a := app.New(cfg, newLogger(logFormat, os.Stderr))
			if err := start(ctx, a); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "hostless serving on %s\n", a.URL())
			return wait(ctx, stop, a, cfg.ShutdownGrace, cmd.ErrOrStderr())
		},
	}
	serverFlags(cmd, &cfg, &logFormat)
	return cmd
}

// signalContext is cancelled by the first SIGINT or SIGTERM, from the
// command's start: a signal during a build or start aborts it cleanly.
// After stop, a second signal ends the process at once.
func signalContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	return signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
}

// start starts the app and shows a generated admin key once.
func start(ctx context.Context, a *app.App) error {
	if err := a.Start(ctx); err != nil {
		_ = a.Close(context.Background())
		return err
	}
	if a.GeneratedKey != "" {
		fmt.Fprintf(os.Stderr, "\nGenerated an admin key. It is shown only this once; only its hash is stored:\n\n    export HOSTLESS_ADMIN_KEY=%s\n\n", a.GeneratedKey)
	}
	return nil
}

// wait serves until ctx ends (SIGINT or SIGTERM), then drains for up to
// grace; a second signal during the drain ends the process at once.
func wait(ctx context.Context, stop context.CancelFunc, a *app.App, grace time.Duration, out io.Writer) error {
	select {
	case <-ctx.Done():
		stop() // the next signal takes its default action
		fmt.Fprintf(out, "signal: draining in-flight invocations (up to %.0fs; signal again to stop now)\n", grace.Seconds())
	case <-a.Served():
		_ = a.Close(context.Background())
		return a.ServeErr()
	}
	dctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	return a.Shutdown(dctx)
}
