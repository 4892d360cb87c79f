package main

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/hostless/hostless/internal/config"
)

// TestLogRetentionSettings: --log-retention and --log-max-bytes override
// HOSTLESS_LOG_RETENTION and HOSTLESS_LOG_MAX_BYTES, which override the
// defaults; sizes read as 1GB or 500MB.
func TestLogRetentionSettings(t *testing.T) {
	t.Setenv("HOSTLESS_LOG_RETENTION", "720h")
	t.Setenv("HOSTLESS_LOG_MAX_BYTES", "2GB")
	for _, tc := range []struct {
		name      string
		args      []string
		retention time.Duration
		maxBytes  int64
	}{
		{"env", nil, 720 * time.Hour, 2 << 30},
		{"flags", []string{"--log-retention", "48h", "--log-max-bytes", "500MB"}, 48 * time.Hour, 500 << 20},
		{"no cap", []string{"--log-max-bytes=-1"}, 720 * time.Hour, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cfg config.Config
			var format string
			cmd := &cobra.Command{}
			serverFlags(cmd, &cfg, &format)
			if err := cmd.ParseFlags(tc.args); err != nil {
				t.Fatal(err)
			}
			if err := resolveConfig(cmd, &cfg); err != nil {
				t.Fatal(err)
			}
			if cfg.LogRetention != tc.retention || cfg.LogMaxBytes != tc.maxBytes {
				t.Fatalf("retention %v, max bytes %d; want %v, %d", cfg.LogRetention, cfg.LogMaxBytes, tc.retention, tc.maxBytes)
			}
		})
	}
}

// TestServeRefusesBadLogSettings: serve exits at once, naming the setting.
func TestServeRefusesBadLogSettings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		environ []string
		args    []string
		want    string
	}{
		{"retention too short", nil, []string{"--log-retention", "1h"}, "log-retention 1h0m0s: want 24h or more"},
		{"bad size", nil, []string{"--log-max-bytes", "lots"}, `invalid argument "lots" for "--log-max-bytes"`},
		{"size too small", nil, []string{"--log-max-bytes", "1KB"}, "log-max-bytes 1024: want 1MB or more"},
		{"bad variable", []string{"HOSTLESS_LOG_RETENTION=a week"}, nil, `HOSTLESS_LOG_RETENTION "a week"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data", t.TempDir()}, tc.args...)
			_, errOut, code := run(t, env(tc.environ...), args...)
			if code == 0 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("serve %v: exit %d, stderr %s; want %q", tc.args, code, errOut, tc.want)
			}
		})
	}
}
