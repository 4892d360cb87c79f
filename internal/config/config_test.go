package config_test

import (
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/config"
)

func TestDefault(t *testing.T) {
	t.Parallel()
	c := config.Default()
	want := config.Config{
		Addr:             "127.0.0.1:8080",
		DataDir:          ".hostless",
		MaxRequestBytes:  6 << 20,
		MaxResponseBytes: 6 << 20,
		MaxArtifactBytes: 256 << 20,
		CodeCacheBytes:   512 << 20,
		ShutdownGrace:    30 * time.Second,
		Prices:           config.Prices{GBSecond: 0.0000166667, MillionRequests: 0.20, GBOut: 0.09, ServerHour: 0.0208, ServerMemoryMB: 2048},
		LogRetention:     7 * 24 * time.Hour,
		LogMaxBytes:      1 << 30,
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Default() = %+v, want %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Default().Validate() = %v", err)
	}
}

func TestValidateFillsDefaultsKeepsValues(t *testing.T) {
	t.Parallel()
	c := config.Config{Addr: ":9000", MaxRequestBytes: 1024}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":9000" || c.MaxRequestBytes != 1024 {
		t.Errorf("Validate changed set values: %+v", c)
	}
	if c.DataDir != config.DefaultDataDir || c.MaxResponseBytes != config.DefaultMaxResponseBytes || c.ShutdownGrace != config.DefaultShutdownGrace {
		t.Errorf("Validate did not fill the defaults: %+v", c)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  config.Config
		want []string // fragments the error must contain; none means valid
	}{
		{name: "zero value", cfg: config.Config{}},
		{name: "port only", cfg: config.Config{Addr: ":8080"}},
		{name: "ipv6", cfg: config.Config{Addr: "[::1]:8080"}},
		{name: "random port", cfg: config.Config{Addr: "127.0.0.1:0"}},
		{name: "no port", cfg: config.Config{Addr: "localhost"}, want: []string{`addr "localhost"`, "HOST:PORT"}},
		{name: "url for addr", cfg: config.Config{Addr: "http://x:1/"}, want: []string{"addr", "HOST:PORT"}},
		{name: "tls both", cfg: config.Config{TLSCert: "c.pem", TLSKey: "k.pem"}},
		{name: "tls cert only", cfg: config.Config{TLSCert: "c.pem"}, want: []string{"tls-cert", "tls-key"}},
		{name: "tls key only", cfg: config.Config{TLSKey: "k.pem"}, want: []string{"tls-cert", "tls-key"}},
		{name: "postgres url", cfg: config.Config{Postgres: "postgres://u@h/db"}},
		{name: "postgresql url", cfg: config.Config{Postgres: "postgresql://u@h/db"}},
		{name: "mysql url", cfg: config.Config{Postgres: "mysql://u@h/db"}, want: []string{"postgres", "postgres://"}},
		{name: "bare dsn", cfg: config.Config{Postgres: "host=h dbname=d"}, want: []string{"postgres"}},
		{name: "admin key of 16", cfg: config.Config{AdminKey: strings.Repeat("k", 16)}},
		{name: "admin key of 15", cfg: config.Config{AdminKey: strings.Repeat("k", 15)}, want: []string{"HOSTLESS_ADMIN_KEY", "16"}},
		{name: "negative size", cfg: config.Config{MaxArtifactBytes: -1}, want: []string{"size limits"}},
		{name: "negative duration", cfg: config.Config{QueueTimeout: -time.Second}, want: []string{"durations"}},
		{name: "cors origins", cfg: config.Config{CORSOrigins: []string{"https://app.example.com", "http://localhost:5173"}}},
		{name: "cors any origin", cfg: config.Config{CORSOrigins: []string{"*"}}},
		{name: "cors origin with a path", cfg: config.Config{CORSOrigins: []string{"https://app.example.com/x"}}, want: []string{"cors-origins"}},
		{name: "otlp endpoint", cfg: config.Config{OTLPEndpoint: "http://collector:4318"}},
		{name: "otlp endpoint without scheme", cfg: config.Config{OTLPEndpoint: "collector:4318"}, want: []string{"otlp-endpoint", "http://"}},
		{name: "sample ratio over 1", cfg: config.Config{TraceSampleRatio: 1.5}, want: []string{"trace-sample-ratio"}},
		{name: "objects on disk", cfg: config.Config{ObjectStore: "disk"}},
		{name: "objects in nats", cfg: config.Config{ObjectStore: "nats"}},
		{name: "objects in nats of an external server", cfg: config.Config{ObjectStore: "nats", NATS: "nats://127.0.0.1:4222"}},
		{name: "objects elsewhere", cfg: config.Config{ObjectStore: "s3"}, want: []string{`object-store "s3"`, "disk or nats"}},
		{name: "own prices", cfg: config.Config{Prices: config.Prices{GBSecond: 0.00001, GBOut: -1, ServerHour: 0.5, ServerMemoryMB: 65536}}},
		{name: "price not a number", cfg: config.Config{Prices: config.Prices{GBOut: math.NaN()}},
			want: []string{"prices.gb_out", "--price-gb-out", "HOSTLESS_PRICE_GB_OUT", "want a number"}},
		{name: "infinite price", cfg: config.Config{Prices: config.Prices{ServerHour: math.Inf(1)}}, want: []string{"prices.server_hour"}},
		{name: "negative server memory", cfg: config.Config{Prices: config.Prices{ServerMemoryMB: -1}},
			want: []string{"prices.server_memory_mb", "HOSTLESS_PRICE_SERVER_MEMORY_MB", "MB"}},
		{name: "log retention of a day", cfg: config.Config{LogRetention: 24 * time.Hour}},
		{name: "log retention for ever", cfg: config.Config{LogRetention: -1}},
		{name: "log retention too short", cfg: config.Config{LogRetention: time.Hour}, want: []string{"log-retention 1h0m0s", "24h or more"}},
		{name: "log bytes uncapped", cfg: config.Config{LogMaxBytes: -1}},
		{name: "log bytes too few", cfg: config.Config{LogMaxBytes: 1000}, want: []string{"log-max-bytes 1000", "1MB or more"}},
		{
			name: "every problem at once",
			cfg:  config.Config{Addr: "nope", TLSCert: "c", Postgres: "sqlite://x", AdminKey: "short", CodeCacheBytes: -1, IdleTimeout: -1},
			want: []string{"addr", "tls-cert", "postgres", "HOSTLESS_ADMIN_KEY", "size limits", "durations"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := tt.cfg
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error naming %q", tt.want)
			}
			for _, frag := range tt.want {
				if !strings.Contains(err.Error(), frag) {
					t.Errorf("error %q does not name %q", err, frag)
				}
			}
			if strings.Contains(err.Error(), tt.cfg.AdminKey) && tt.cfg.AdminKey != "" {
				t.Errorf("error %q shows the admin key", err)
			}
		})
	}
}

// TestApplyEnvBadPrices: a price variable that is not a number fails
// Validate, naming the variable, rather than silently taking a default.
func TestApplyEnvBadPrices(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, value, want string }{
		{"HOSTLESS_PRICE_GB_SECOND", "$0.00001", "HOSTLESS_PRICE_GB_SECOND"},
		{"HOSTLESS_PRICE_SERVER_HOUR", "Inf", "HOSTLESS_PRICE_SERVER_HOUR"},
		{"HOSTLESS_PRICE_SERVER_MEMORY_MB", "2GB", "HOSTLESS_PRICE_SERVER_MEMORY_MB"},
		{"HOSTLESS_PRICE_SERVER_MEMORY_MB", "0", "HOSTLESS_PRICE_SERVER_MEMORY_MB"},
	} {
		var c config.Config
		c.ApplyEnv(func(k string) string {
			if k == tc.name {
				return tc.value
			}
			return ""
		})
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s=%s: Validate() = %v, want an error naming %s", tc.name, tc.value, err, tc.want)
		}
	}
}

func TestApplyEnv(t *testing.T) {
	t.Parallel()
	base := config.Config{Addr: "file:1", DataDir: "/file/data", Postgres: "postgres://file", TLSCert: "file.crt", TLSKey: "file.key", AdminKey: "file-admin-key-0123"}
	tests := []struct {
		name string
		env  map[string]string
		want config.Config
	}{
		{name: "nothing set", env: nil, want: base},
		{
			name: "every variable",
			env: map[string]string{
				"HOSTLESS_ADDR": "0.0.0.0:80", "HOSTLESS_DATA": "/var/lib/hostless", "HOSTLESS_POSTGRES": "postgres://env",
				"HOSTLESS_TLS_CERT": "env.crt", "HOSTLESS_TLS_KEY": "env.key", "HOSTLESS_ADMIN_KEY": "env-admin-key-0123456",
				"HOSTLESS_OBJECT_STORE": "nats",
			},
			want: config.Config{Addr: "0.0.0.0:80", DataDir: "/var/lib/hostless", Postgres: "postgres://env", TLSCert: "env.crt", TLSKey: "env.key", AdminKey: "env-admin-key-0123456",
				ObjectStore: "nats"},
		},
		{
			name: "empty values don't override",
			env:  map[string]string{"HOSTLESS_ADDR": "", "HOSTLESS_DATA": "/env"},
			want: func() config.Config { c := base; c.DataDir = "/env"; return c }(),
		},
		{
			name: "lists and OpenTelemetry's own variables",
			env: map[string]string{"HOSTLESS_CORS_ORIGINS": " https://a.example , http://localhost:5173,", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318",
				"OTEL_EXPORTER_OTLP_HEADERS": "x-key=s"},
			want: func() config.Config {
				c := base
				c.CORSOrigins = []string{"https://a.example", "http://localhost:5173"}
				c.OTLPEndpoint, c.OTLPHeaders = "http://otel:4318", "x-key=s"
				return c
			}(),
		},
		{
			name: "prices",
			env: map[string]string{"HOSTLESS_PRICE_GB_SECOND": "0.00002", "HOSTLESS_PRICE_MILLION_REQUESTS": " 0.1 ",
				"HOSTLESS_PRICE_GB_OUT": "-1", "HOSTLESS_PRICE_SERVER_HOUR": "1.5", "HOSTLESS_PRICE_SERVER_MEMORY_MB": "8192"},
			want: func() config.Config {
				c := base
				c.Prices = config.Prices{GBSecond: 0.00002, MillionRequests: 0.1, GBOut: -1, ServerHour: 1.5, ServerMemoryMB: 8192}
				return c
			}(),
		},
		{
			name: "ours over OpenTelemetry's",
			env:  map[string]string{"HOSTLESS_OTLP_ENDPOINT": "http://ours:4318", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318"},
			want: func() config.Config { c := base; c.OTLPEndpoint = "http://ours:4318"; return c }(),
		},
		{
			name: "log retention and size",
			env:  map[string]string{"HOSTLESS_LOG_RETENTION": "720h", "HOSTLESS_LOG_MAX_BYTES": "10GB"},
			want: func() config.Config { c := base; c.LogRetention, c.LogMaxBytes = 720*time.Hour, 10<<30; return c }(),
		},
		{
			name: "other variables are ignored",
			env:  map[string]string{"ADDR": "x:1", "HOSTLESS_addr": "y:2", "HOSTLESS_MAX_CONCURRENCY": "3"},
			want: base,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := base
			c.ApplyEnv(func(k string) string { return tt.env[k] })
			if !reflect.DeepEqual(c, tt.want) {
				t.Errorf("after ApplyEnv: %+v, want %+v", c, tt.want)
			}
		})
	}
}

func TestApplyEnvErrors(t *testing.T) {
	t.Parallel()
	var c config.Config
	c.ApplyEnv(func(k string) string {
		return map[string]string{"HOSTLESS_LOG_RETENTION": "a week", "HOSTLESS_LOG_MAX_BYTES": "lots"}[k]
	})
	for _, err := range []error{c.EnvErr(), c.Validate()} {
		if err == nil || !strings.Contains(err.Error(), `HOSTLESS_LOG_RETENTION "a week"`) || !strings.Contains(err.Error(), `HOSTLESS_LOG_MAX_BYTES: size "lots"`) {
			t.Errorf("err = %v, want both variables named", err)
		}
	}
}

func TestParseBytes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{in: "1048576", want: 1 << 20},
		{in: "1GB", want: 1 << 30},
		{in: "512MB", want: 512 << 20},
		{in: "2 GiB", want: 2 << 30},
		{in: "64k", want: 64 << 10},
		{in: "1TB", want: 1 << 40},
		{in: "-1", want: -1},
		{in: "0", want: 0},
		{in: "1.5GB", bad: true},
		{in: "GB", bad: true},
		{in: "10PB", bad: true},
		{in: "", bad: true},
		{in: "9999999999TB", bad: true},
	} {
		got, err := config.ParseBytes(tc.in)
		if tc.bad != (err != nil) || !tc.bad && got != tc.want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d (bad: %v)", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

// FuzzParseBytes: no input crashes ParseBytes, and what it accepts as a
// plain number is that number.
func FuzzParseBytes(f *testing.F) {
	for _, s := range []string{"1GB", "-1", "512 MiB", "9223372036854775807", "8EB", "1.5G", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := config.ParseBytes(s)
		if err != nil {
			return
		}
		if want, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil && n != want {
			t.Fatalf("ParseBytes(%q) = %d, want %d", s, n, want)
		}
	})
}
