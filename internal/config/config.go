// Package config holds the server's configuration: a plain struct whose
// zero values mean the defaults, filled from flags and HOSTLESS_*
// environment variables, and validated before anything starts.
package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hostless/hostless/internal/function"
)

// Config configures `hostless serve`.
type Config struct {
	// Addr is the HTTP listen address.
	Addr string `yaml:"addr" json:"addr"`
	// DataDir holds SQLite files, artifacts and the compilation cache.
	DataDir string `yaml:"data" json:"data"`
	// Postgres, when set, stores metadata and telemetry in PostgreSQL
	// instead of SQLite (postgres://...).
	Postgres string `yaml:"postgres" json:"postgres"`
	// TLSCert and TLSKey serve HTTPS when both are set.
	TLSCert string `yaml:"tls_cert" json:"tls_cert"`
	TLSKey  string `yaml:"tls_key" json:"tls_key"`
	// AdminKey, when set, is the control API's admin key; otherwise one is
	// generated at first start and only its hash is stored.
	AdminKey string `yaml:"-" json:"-"`
	// MasterKey encrypts the secrets the platform must recover (the AWS
	// access key's secret); when empty, <data>/master.key is used, made
	// with mode 0600 at first start.
	MasterKey string `yaml:"-" json:"-"`
	// MasterKeyPrevious lists, comma-separated, master keys a rotation
	// replaces: they still open what they sealed (docs/SECRETS.md).
	MasterKeyPrevious string `yaml:"-" json:"-"`
	// AWSAccessKeyID and AWSSecretAccessKey are the key pair the Lambda API
	// accepts (AWS SigV4). Given, they are stored encrypted under the master
	// key; not given, the stored pair is used.
	AWSAccessKeyID     string `yaml:"-" json:"-"`
	AWSSecretAccessKey string `yaml:"-" json:"-"`

	// MaxRequestBytes caps a function request's body (default 6 MiB).
	MaxRequestBytes int64 `yaml:"max_request_bytes" json:"max_request_bytes"`
	// MaxResponseBytes caps a function response's body (default 6 MiB).
	MaxResponseBytes int `yaml:"max_response_bytes" json:"max_response_bytes"`
	// MaxArtifactBytes caps an uploaded artifact (default 256 MiB).
	MaxArtifactBytes int64 `yaml:"max_artifact_bytes" json:"max_artifact_bytes"`
	// CodeCacheBytes is the memory budget of compiled code (default 512 MiB).
	CodeCacheBytes int64 `yaml:"code_cache_bytes" json:"code_cache_bytes"`
	// IdleTimeout stops idle instances (default 5m).
	IdleTimeout time.Duration `yaml:"idle_timeout" json:"idle_timeout"`
	// MaxConcurrency caps the concurrent invocations of one version of a
	// function (default 64); during a redeploy the old version's in-flight
	// calls finish beside the new one's.
	MaxConcurrency int `yaml:"max_concurrency" json:"max_concurrency"`
	// MaxTotalConcurrency caps the concurrent invocations of all functions
	// together (default 1000).
	MaxTotalConcurrency int `yaml:"max_total_concurrency" json:"max_total_concurrency"`
	// MaxMemoryMB caps the memory limits of all started instances together,
	// idle or busy (default 0: no cap). At the cap, a cold start stops the
	// least recently used idle instances, then is throttled.
	MaxMemoryMB int `yaml:"max_memory_mb" json:"max_memory_mb"`
	// QueueTimeout is how long a call waits at the limit before a 429 (default 10s).
	QueueTimeout time.Duration `yaml:"queue_timeout" json:"queue_timeout"`
	// ShutdownGrace is how long in-flight invocations may take to finish
	// after SIGTERM (default 30s).
	ShutdownGrace time.Duration `yaml:"shutdown_grace" json:"shutdown_grace"`
	// BudgetGBSecondsPerHour and BudgetGBSecondsPerDay cap the GB-seconds
	// of all functions together per clock hour and UTC day (0: none).
	BudgetGBSecondsPerHour float64 `yaml:"budget_gb_seconds_per_hour" json:"budget_gb_seconds_per_hour"`
	BudgetGBSecondsPerDay  float64 `yaml:"budget_gb_seconds_per_day" json:"budget_gb_seconds_per_day"`
	// Isolation is how process functions run: "sandbox" (the default:
	// namespaces, cgroups, an unprivileged uid; needs root on Linux) or
	// "none" (plain child processes, for hosts that can't sandbox and
	// trusted code only).
	Isolation string `yaml:"isolation" json:"isolation"`
	// NATS is the URL of an external NATS server with JetStream for the
	// bus (nats://host:4222); empty runs one embedded in the process, its
	// store under <data>/bus, listening on no port.
	NATS string `yaml:"nats" json:"nats"`
	// NATSPrefix prefixes the bus's streams and subjects, so several
	// platforms can share one NATS (default "hostless_").
	NATSPrefix string `yaml:"nats_prefix" json:"nats_prefix"`
	// BusSyncAlways makes the embedded bus fsync each accepted event before
	// acknowledging it, so it survives power loss, not only kill -9; it
	// costs most of the accept throughput (see the README's benchmarks).
	BusSyncAlways bool `yaml:"bus_sync_always" json:"bus_sync_always"`
	// DataSyncAlways fsyncs every commit of the backend's data (documents,
	// users, object metadata) on SQLite, so acknowledged writes survive
	// power loss and not only kill -9; it costs write throughput.
	DataSyncAlways bool `yaml:"data_sync_always" json:"data_sync_always"`
	// IdempotencyWindow is how long an async call's Idempotency-Key is
	// remembered (default 24h).
	IdempotencyWindow time.Duration `yaml:"idempotency_window" json:"idempotency_window"`
	// LogRetention is how long invocation records and log lines are kept
	// (default 168h, 7 days; at least 24h, since budgets count a day of
	// records; negative keeps them for ever). HOSTLESS_LOG_RETENTION.
	LogRetention time.Duration `yaml:"log_retention" json:"log_retention"`
	// LogMaxBytes caps the stored log lines (their text and per-line
	// metadata; the database holds indexes and records besides): past it,
	// the oldest lines go (default 1 GiB; at least 1 MiB; negative sets no
	// cap). Records go by age only. HOSTLESS_LOG_MAX_BYTES.
	LogMaxBytes int64 `yaml:"log_max_bytes" json:"log_max_bytes"`

	// SMTP sends the backend's mails (email verification, password reset):
	// smtp://user:password@host:port?from=address. Empty keeps them in a
	// dev outbox (`hostless auth outbox`).
	SMTP string `yaml:"-" json:"-"`
	// PublicURL is the address users reach the platform at, for links in
	// mails (https://app.example.com).
	PublicURL string `yaml:"public_url" json:"public_url"`
	// AuthProviders is a YAML (or JSON) file of OpenID Connect providers
	// users may sign in with: {providers: [{name, issuer, client_id,
	// client_secret, scopes}], allowed_redirects: [URL prefixes of the
	// apps the sign-in may return to]}. A provider's secret may come from
	// HOSTLESS_AUTH_PROVIDER_<NAME>_CLIENT_SECRET instead.
	AuthProviders string `yaml:"auth_providers" json:"auth_providers"`
	// AccessTokenTTL is how long a user's access token is valid (default
	// 15m; 1m to 24h).
	AccessTokenTTL time.Duration `yaml:"access_token_ttl" json:"access_token_ttl"`
	// RateLimitPerIP, RateLimitPerUser and RateLimitPerKey cap the
	// backend's requests per second per client IP (default 1000), per
	// signed-in user (default 200) and per API key (default 2000), each
	// with a burst of twice the rate; a negative value turns one off.
	RateLimitPerIP   float64 `yaml:"rate_limit_per_ip" json:"rate_limit_per_ip"`
	RateLimitPerUser float64 `yaml:"rate_limit_per_user" json:"rate_limit_per_user"`
	RateLimitPerKey  float64 `yaml:"rate_limit_per_key" json:"rate_limit_per_key"`
	// S3Addr, when set, serves the S3-compatible object storage API on its
	// own listener (HOST:PORT), with TLS when TLSCert is set; object bytes
	// live under <data>/objects.
	S3Addr string `yaml:"s3_addr" json:"s3_addr"`
	// MaxObjectBytes caps one S3 object (default 5 GiB).
	MaxObjectBytes int64 `yaml:"max_object_bytes" json:"max_object_bytes"`
	// S3Domain, when set, turns on virtual-hosted-style S3 requests:
	// BUCKET.S3Domain names the bucket (a wildcard DNS name pointing at
	// the S3 listener). Path-style requests work either way.
	S3Domain string `yaml:"s3_domain" json:"s3_domain"`
	// CORSOrigins are the origins (https://app.example.com, or "*") whose
	// pages may call the backend's APIs (auth, documents, storage, KMS)
	// from a browser; none by default (same origin only).
	CORSOrigins []string `yaml:"cors_origins" json:"cors_origins"`
	// OTLPEndpoint, when set, exports traces over OTLP/HTTP to this URL
	// (http://collector:4318); OTEL_EXPORTER_OTLP_ENDPOINT is read too.
	OTLPEndpoint string `yaml:"otlp_endpoint" json:"otlp_endpoint"`
	// OTLPHeaders are sent with every export ("k=v,k2=v2", a vendor's API
	// key): environment only (HOSTLESS_OTLP_HEADERS or
	// OTEL_EXPORTER_OTLP_HEADERS), never in a file or a flag.
	OTLPHeaders string `yaml:"-" json:"-"`
	// TraceSampleRatio is the share of new traces recorded, 0 to 1
	// (default 1); the sampled flag of a request's traceparent wins.
	TraceSampleRatio float64 `yaml:"trace_sample_ratio" json:"trace_sample_ratio"`
	// ObjectStore is where the bytes of S3 objects live: "disk" (the
	// default: files under <data>/objects) or "nats" (the object store
	// bucket <nats_prefix>objects in the bus's JetStream, the external
	// server's with NATS set, so every node of a cluster sees them, or else
	// the embedded one's). Function artifacts stay on disk either way.
	ObjectStore string `yaml:"object_store" json:"object_store"`

	// Prices are what usage reports (`hostless usage`, GET /v1/usage) cost
	// the platform's usage with.
	Prices Prices `yaml:"prices" json:"prices"`

	// envErr is what ApplyEnv could not read, for Validate to report.
	envErr error
}

// Prices is the price table of usage reports, in one currency. The
// defaults are AWS Lambda's public list prices (x86, us-east-1) and an
// on-demand EC2 t3.small for the always-on server, so a report says what
// the same workload would cost there; an operator replaces them with
// their own costs. A zero field takes its default; a negative price
// counts as free.
type Prices struct {
	// GBSecond is the price of a GB-second: a second of billed duration
	// at 1024 MB (default 0.0000166667).
	GBSecond float64 `yaml:"gb_second" json:"gb_second"`
	// MillionRequests is the price of a million invocations (default 0.20).
	MillionRequests float64 `yaml:"million_requests" json:"million_requests"`
	// GBOut is the price of a GB of data out: response bodies (default 0.09).
	GBOut float64 `yaml:"gb_out" json:"gb_out"`
	// ServerHour is the price of an hour of the always-on server the
	// report compares with (default 0.0208, a t3.small), and
	// ServerMemoryMB its memory (default 2048).
	ServerHour     float64 `yaml:"server_hour" json:"server_hour"`
	ServerMemoryMB int     `yaml:"server_memory_mb" json:"server_memory_mb"`
}

// Values of ObjectStore.
const (
	ObjectStoreDisk = "disk"
	ObjectStoreNATS = "nats"
)

// Defaults.
const (
	DefaultAddr             = "127.0.0.1:8080"
	DefaultDataDir          = ".hostless"
	DefaultMaxRequestBytes  = 6 << 20
	DefaultMaxResponseBytes = 6 << 20
	DefaultMaxArtifactBytes = 256 << 20
	DefaultCodeCacheBytes   = 512 << 20
	DefaultShutdownGrace    = 30 * time.Second
	DefaultLogRetention     = 7 * 24 * time.Hour
	DefaultLogMaxBytes      = 1 << 30
	MinLogRetention         = 24 * time.Hour
	MinLogMaxBytes          = 1 << 20
)

// Default prices (see Prices).
const (
	DefaultPriceGBSecond        = 0.0000166667
	DefaultPriceMillionRequests = 0.20
	DefaultPriceGBOut           = 0.09
	DefaultPriceServerHour      = 0.0208
	DefaultServerMemoryMB       = 2048
)

// Default returns the configuration with every default filled in.
func Default() Config {
	var c Config
	c.fill()
	return c
}

func (c *Config) fill() {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.MaxResponseBytes == 0 {
		c.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if c.MaxArtifactBytes == 0 {
		c.MaxArtifactBytes = DefaultMaxArtifactBytes
	}
	if c.CodeCacheBytes == 0 {
		c.CodeCacheBytes = DefaultCodeCacheBytes
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = DefaultShutdownGrace
	}
	for _, p := range []struct {
		v   *float64
		def float64
	}{
		{&c.Prices.GBSecond, DefaultPriceGBSecond}, {&c.Prices.MillionRequests, DefaultPriceMillionRequests},
		{&c.Prices.GBOut, DefaultPriceGBOut}, {&c.Prices.ServerHour, DefaultPriceServerHour},
	} {
		if *p.v == 0 {
			*p.v = p.def
		}
	}
	if c.Prices.ServerMemoryMB == 0 {
		c.Prices.ServerMemoryMB = DefaultServerMemoryMB
	}
	if c.LogRetention == 0 {
		c.LogRetention = DefaultLogRetention
	}
	if c.LogMaxBytes == 0 {
		c.LogMaxBytes = DefaultLogMaxBytes
	}
}

// ApplyEnv reads HOSTLESS_* variables that are set over c: HOSTLESS_ADDR,
// HOSTLESS_DATA, HOSTLESS_POSTGRES, HOSTLESS_TLS_CERT, HOSTLESS_TLS_KEY,
// HOSTLESS_ADMIN_KEY, HOSTLESS_ISOLATION, HOSTLESS_MASTER_KEY(_PREVIOUS),
// HOSTLESS_AWS_ACCESS_KEY_ID, HOSTLESS_AWS_SECRET_ACCESS_KEY, HOSTLESS_NATS,
// HOSTLESS_SMTP_URL, HOSTLESS_PUBLIC_URL, HOSTLESS_S3_ADDR, HOSTLESS_S3_DOMAIN,
// HOSTLESS_AUTH_PROVIDERS, HOSTLESS_CORS_ORIGINS (comma-separated),
// HOSTLESS_OTLP_ENDPOINT and HOSTLESS_OTLP_HEADERS (or OpenTelemetry's
// OTEL_EXPORTER_OTLP_ENDPOINT and _HEADERS), HOSTLESS_OBJECT_STORE,
// HOSTLESS_LOG_RETENTION (a duration), HOSTLESS_LOG_MAX_BYTES (a size: 1GB,
// 512MB), and the prices: HOSTLESS_PRICE_GB_SECOND,
// HOSTLESS_PRICE_MILLION_REQUESTS, HOSTLESS_PRICE_GB_OUT,
// HOSTLESS_PRICE_SERVER_HOUR, HOSTLESS_PRICE_SERVER_MEMORY_MB. A value it
// can't read is an error of Validate (and EnvErr; a price that is not a
// number, of Validate).
func (c *Config) ApplyEnv(getenv func(string) string) {
	if getenv == nil {
		getenv = os.Getenv
	}
	for name, dst := range map[string]*string{
		"HOSTLESS_ADDR": &c.Addr, "HOSTLESS_DATA": &c.DataDir, "HOSTLESS_POSTGRES": &c.Postgres,
		"HOSTLESS_TLS_CERT": &c.TLSCert, "HOSTLESS_TLS_KEY": &c.TLSKey, "HOSTLESS_ADMIN_KEY": &c.AdminKey,
		"HOSTLESS_ISOLATION": &c.Isolation, "HOSTLESS_MASTER_KEY": &c.MasterKey, "HOSTLESS_MASTER_KEY_PREVIOUS": &c.MasterKeyPrevious,
		"HOSTLESS_AWS_ACCESS_KEY_ID": &c.AWSAccessKeyID, "HOSTLESS_AWS_SECRET_ACCESS_KEY": &c.AWSSecretAccessKey,
		"HOSTLESS_NATS": &c.NATS, "HOSTLESS_SMTP_URL": &c.SMTP, "HOSTLESS_PUBLIC_URL": &c.PublicURL,
		"HOSTLESS_S3_ADDR": &c.S3Addr, "HOSTLESS_S3_DOMAIN": &c.S3Domain, "HOSTLESS_AUTH_PROVIDERS": &c.AuthProviders,
		"HOSTLESS_OTLP_ENDPOINT": &c.OTLPEndpoint, "HOSTLESS_OTLP_HEADERS": &c.OTLPHeaders,
		"HOSTLESS_OBJECT_STORE": &c.ObjectStore,
	} {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	if v := getenv("HOSTLESS_CORS_ORIGINS"); v != "" {
		c.CORSOrigins = splitList(v)
	}
	// OpenTelemetry's own variables, when ours are not set.
	if c.OTLPEndpoint == "" {
		c.OTLPEndpoint = getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	}
	if c.OTLPHeaders == "" {
		c.OTLPHeaders = getenv("OTEL_EXPORTER_OTLP_HEADERS")
	}
	for name, dst := range priceEnv(&c.Prices) {
		if v := getenv(name); v != "" {
			*dst = parsePrice(v)
		}
	}
	if v := getenv("HOSTLESS_PRICE_SERVER_MEMORY_MB"); v != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n <= 0 {
			n = -1 // Validate names it
		}
		c.Prices.ServerMemoryMB = n
	}
	if v := getenv("HOSTLESS_LOG_RETENTION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			c.envErr = errors.Join(c.envErr, fmt.Errorf("HOSTLESS_LOG_RETENTION %q: want a duration such as 168h", v))
		}
		c.LogRetention = d
	}
	if v := getenv("HOSTLESS_LOG_MAX_BYTES"); v != "" {
		n, err := ParseBytes(v)
		if err != nil {
			c.envErr = errors.Join(c.envErr, fmt.Errorf("HOSTLESS_LOG_MAX_BYTES: %w", err))
		}
		c.LogMaxBytes = n
	}
}

// priceEnv maps the price variables to the fields of p they set.
func priceEnv(p *Prices) map[string]*float64 {
	return map[string]*float64{
		"HOSTLESS_PRICE_GB_SECOND": &p.GBSecond, "HOSTLESS_PRICE_MILLION_REQUESTS": &p.MillionRequests,
		"HOSTLESS_PRICE_GB_OUT": &p.GBOut, "HOSTLESS_PRICE_SERVER_HOUR": &p.ServerHour,
	}
}

// parsePrice reads a price; what is not a finite number is NaN, which
// Validate refuses.
func parsePrice(s string) float64 {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsInf(f, 0) {
		return math.NaN()
	}
	return f
}

// EnvErr is what ApplyEnv could not read, or nil.
func (c *Config) EnvErr() error { return c.envErr }

// ParseBytes reads a size: a whole number of bytes or of KB, MB, GB or TB
// (binary multiples; KiB, MiB... and K, M... too), such as 1GB or 512MB;
// a negative one (-1) stands for "no cap" where a field says so.
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	num := strings.TrimRight(t, "BbIiKkMmGgTt ")
	unit := strings.ToUpper(strings.TrimSpace(t[len(num):]))
	shift := 0
	switch unit {
	case "", "B":
	case "K", "KB", "KIB":
		shift = 10
	case "M", "MB", "MIB":
		shift = 20
	case "G", "GB", "GIB":
		shift = 30
	case "T", "TB", "TIB":
		shift = 40
	default:
		return 0, fmt.Errorf("size %q: want a number of bytes, KB, MB, GB or TB, such as 1GB", s)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n > math.MaxInt64>>shift || n < math.MinInt64>>shift {
		return 0, fmt.Errorf("size %q: want a number of bytes, KB, MB, GB or TB, such as 1GB", s)
	}
	return n << shift, nil
}

// Validate fills defaults and checks c; errors name the field.
func (c *Config) Validate() error {
	c.fill()
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("addr %q: want HOST:PORT", c.Addr))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("tls-cert and tls-key: give both or neither"))
	}
	if c.Postgres != "" && !strings.HasPrefix(c.Postgres, "postgres://") && !strings.HasPrefix(c.Postgres, "postgresql://") {
		errs = append(errs, errors.New("postgres: want a postgres:// URL"))
	}
	if c.AdminKey != "" && len(c.AdminKey) < 16 {
		errs = append(errs, errors.New("HOSTLESS_ADMIN_KEY: use at least 16 characters"))
	}
	if c.MaxRequestBytes < 0 || c.MaxResponseBytes < 0 || c.MaxArtifactBytes < 0 || c.CodeCacheBytes < 0 {
		errs = append(errs, errors.New("size limits must not be negative"))
	}
	if c.MaxConcurrency < 0 || c.MaxTotalConcurrency < 0 || c.MaxMemoryMB < 0 {
		errs = append(errs, errors.New("concurrency and memory limits must not be negative"))
	}
	if (c.AWSAccessKeyID == "") != (c.AWSSecretAccessKey == "") {
		errs = append(errs, errors.New("HOSTLESS_AWS_ACCESS_KEY_ID and HOSTLESS_AWS_SECRET_ACCESS_KEY: give both or neither"))
	}
	if id := c.AWSAccessKeyID; id != "" && !validKeyID(id) {
		errs = append(errs, errors.New("HOSTLESS_AWS_ACCESS_KEY_ID: use 16 to 128 letters and digits"))
	}
	if c.AWSSecretAccessKey != "" && len(c.AWSSecretAccessKey) < 16 {
		errs = append(errs, errors.New("HOSTLESS_AWS_SECRET_ACCESS_KEY: use at least 16 characters"))
	}
	if !(c.BudgetGBSecondsPerHour >= 0 && c.BudgetGBSecondsPerDay >= 0) {
		errs = append(errs, errors.New("budgets must not be negative"))
	}
	if c.Isolation != "" && c.Isolation != "sandbox" && c.Isolation != "none" {
		errs = append(errs, fmt.Errorf("isolation %q: want sandbox or none", c.Isolation))
	}
	if c.NATS != "" && !strings.HasPrefix(c.NATS, "nats://") && !strings.HasPrefix(c.NATS, "tls://") {
		errs = append(errs, errors.New("nats: want a nats:// or tls:// URL"))
	}
	if c.IdempotencyWindow != 0 && (c.IdempotencyWindow < time.Second || c.IdempotencyWindow > 30*24*time.Hour) {
		errs = append(errs, errors.New("idempotency-window: want 1s to 720h"))
	}
	if c.SMTP != "" && !strings.HasPrefix(c.SMTP, "smtp://") {
		errs = append(errs, errors.New("HOSTLESS_SMTP_URL: want smtp://[user:password@]host:port?from=address"))
	}
	if c.PublicURL != "" && !strings.HasPrefix(c.PublicURL, "http://") && !strings.HasPrefix(c.PublicURL, "https://") {
		errs = append(errs, errors.New("public-url: want an http:// or https:// URL"))
	}
	if c.AccessTokenTTL != 0 && (c.AccessTokenTTL < time.Minute || c.AccessTokenTTL > 24*time.Hour) {
		errs = append(errs, errors.New("access-token-ttl: want 1m to 24h"))
	}
	if _, _, err := net.SplitHostPort(c.S3Addr); c.S3Addr != "" && err != nil {
		errs = append(errs, fmt.Errorf("s3-addr %q: want HOST:PORT", c.S3Addr))
	}
	if len(c.CORSOrigins) > 0 {
		if err := c.BackendCORS().Validate(); err != nil {
			errs = append(errs, fmt.Errorf("cors-origins: %s", strings.TrimPrefix(err.Error(), function.ErrInvalid.Error()+": ")))
		}
	}
	if e := c.OTLPEndpoint; e != "" && !strings.HasPrefix(e, "http://") && !strings.HasPrefix(e, "https://") {
		errs = append(errs, errors.New("otlp-endpoint: want an http:// or https:// URL, such as http://collector:4318"))
	}
	if !(c.TraceSampleRatio >= 0 && c.TraceSampleRatio <= 1) {
		errs = append(errs, errors.New("trace-sample-ratio: want 0 to 1"))
	}
	if c.MaxObjectBytes < 0 {
		errs = append(errs, errors.New("max-object-bytes must not be negative"))
	}
	if c.ObjectStore != "" && c.ObjectStore != ObjectStoreDisk && c.ObjectStore != ObjectStoreNATS {
		errs = append(errs, fmt.Errorf("object-store %q: want disk or nats", c.ObjectStore))
	}
	if c.IdleTimeout < 0 || c.QueueTimeout < 0 || c.ShutdownGrace < 0 {
		errs = append(errs, errors.New("durations must not be negative"))
	}
	for _, p := range []struct {
		v         float64
		key, flag string
	}{
		{c.Prices.GBSecond, "gb_second", "price-gb-second"}, {c.Prices.MillionRequests, "million_requests", "price-million-requests"},
		{c.Prices.GBOut, "gb_out", "price-gb-out"}, {c.Prices.ServerHour, "server_hour", "price-server-hour"},
	} {
		if math.IsNaN(p.v) || math.IsInf(p.v, 0) {
			errs = append(errs, fmt.Errorf("prices.%s (--%s, HOSTLESS_PRICE_%s): want a number (negative: free)", p.key, p.flag, strings.ToUpper(p.key)))
		}
	}
	if c.Prices.ServerMemoryMB < 0 {
		errs = append(errs, errors.New("prices.server_memory_mb (--price-server-memory, HOSTLESS_PRICE_SERVER_MEMORY_MB): want the server's memory in MB, more than 0"))
	}
	if c.LogRetention > 0 && c.LogRetention < MinLogRetention {
		errs = append(errs, fmt.Errorf("log-retention %s: want 24h or more (budgets count a day of records), or a negative duration to keep everything", c.LogRetention))
	}
	if c.LogMaxBytes > 0 && c.LogMaxBytes < MinLogMaxBytes {
		errs = append(errs, fmt.Errorf("log-max-bytes %d: want 1MB or more, or a negative size for no cap", c.LogMaxBytes))
	}
	if c.envErr != nil {
		errs = append(errs, c.envErr)
	}
	return errors.Join(errs...)
}

// BackendCORS is the cross-origin policy of the backend's APIs: the
// configured origins, the methods and headers those APIs use, bearer
// tokens (no cookies); nil without origins.
func (c *Config) BackendCORS() *function.CORS {
	if len(c.CORSOrigins) == 0 {
		return nil
	}
	return &function.CORS{
		Origins:       c.CORSOrigins,
		Methods:       []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"},
		Headers:       []string{"Authorization", "Content-Type", "If-Match", "If-None-Match", "Last-Event-ID"},
		ExposeHeaders: []string{"ETag", "Location", "Retry-After", "X-Request-Id"},
		MaxAge:        function.Duration(10 * time.Minute),
	}
}

// splitList splits a comma-separated list, dropping empty entries.
func splitList(s string) []string {
	var out []string
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func validKeyID(id string) bool {
	if len(id) < 16 || len(id) > 128 {
		return false
	}
	for _, c := range id {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
