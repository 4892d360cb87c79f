// Command load is the closed-loop load generator of the Hostless benchmarks.
// It runs each -url target in turn, in one process, with the same clients and
// settings, and prints throughput and latency percentiles for each, then each
// target's throughput as a ratio of the first target's. Put the baseline
// (bench/bare) first.
//
// It sends traffic to loopback addresses only, and every run is bounded: in
// time (-max-run, -timeout per request) and in memory (a fixed-size latency
// histogram). It imports nothing outside the standard library.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// maxClients bounds -c.
const maxClients = 4096

// urlList is a repeatable flag whose values may also be comma separated.
type urlList []string

func (l *urlList) String() string { return strings.Join(*l, ",") }

func (l *urlList) Set(v string) error {
	for _, u := range strings.Split(v, ",") {
		if u = strings.TrimSpace(u); u != "" {
			*l = append(*l, u)
		}
	}
	return nil
}

// config is the parsed command line.
type config struct {
	urls   []string
	opts   options
	maxRun time.Duration
	json   bool
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var urls urlList
	fs.Var(&urls, "url", "target URL, loopback only (repeatable, or comma separated); the first is the baseline")
	clients := fs.Int("c", 16, "concurrent closed-loop clients, one keep-alive connection each")
	duration := fs.Duration("d", 10*time.Second, "measured duration per target")
	warmup := fs.Duration("warmup", 2*time.Second, "warm-up per target, not measured")
	timeout := fs.Duration("timeout", 5*time.Second, "timeout of one request")
	expect := fs.String("expect", "Hello, Ada!\n", `body every response must equal; Go escapes such as \n are interpreted; "" checks nothing`)
	maxRun := fs.Duration("max-run", 10*time.Minute, "refuse a run whose warm-ups and durations add up to more than this")
	jsonOut := fs.Bool("json", false, "print the results as JSON")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q (targets go in -url)", fs.Args())
	}
	cfg := &config{
		urls:   urls,
		maxRun: *maxRun,
		json:   *jsonOut,
		opts:   options{clients: *clients, warmup: *warmup, duration: *duration, timeout: *timeout},
	}
	if len(cfg.urls) == 0 {
		return nil, errors.New("no target: give at least one -url")
	}
	for _, u := range cfg.urls {
		if _, err := checkTarget(u); err != nil {
			return nil, err
		}
	}
	switch {
	case *clients < 1 || *clients > maxClients:
		return nil, fmt.Errorf("-c %d: want 1 to %d", *clients, maxClients)
	case *duration <= 0:
		return nil, fmt.Errorf("-d %s: want a positive duration", *duration)
	case *warmup < 0:
		return nil, fmt.Errorf("-warmup %s: want zero or a positive duration", *warmup)
	case *timeout <= 0:
		return nil, fmt.Errorf("-timeout %s: want a positive duration", *timeout)
	case *maxRun <= 0:
		return nil, fmt.Errorf("-max-run %s: want a positive duration", *maxRun)
	}
	if planned := cfg.planned(); planned > cfg.maxRun {
		return nil, fmt.Errorf("%d targets x (%s warm-up + %s) = %s, more than -max-run %s",
			len(cfg.urls), *warmup, *duration, planned, cfg.maxRun)
	}
	if *expect != "" {
		body, err := unescape(*expect)
		if err != nil {
			return nil, fmt.Errorf("-expect %q: %w", *expect, err)
		}
		cfg.opts.expect = []byte(body)
	}
	return cfg, nil
}

// planned is how long the targets take, warm-ups included.
func (c *config) planned() time.Duration {
	return time.Duration(len(c.urls)) * (c.opts.warmup + c.opts.duration)
}

// unescape interprets Go escapes (\n, \t, \x41, ...) in s, so that
// -expect 'Hello, Ada!\n' means the body with a newline.
func unescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	return strconv.Unquote(`"` + strings.ReplaceAll(s, `"`, `\"`) + `"`)
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run returns the exit code: 0 when every request of every target succeeded,
// 1 when some failed (the figures are then suspect), 2 on a usage error.
func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "load:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The whole run is bounded, whatever happens inside a target.
	ctx, cancel := context.WithTimeout(ctx, cfg.planned()+cfg.opts.timeout+10*time.Second)
	defer cancel()

	var results []*result
	for i, u := range cfg.urls {
		fmt.Fprintf(stderr, "load: target %d/%d %s: %d clients, %s warm-up + %s\n",
			i+1, len(cfg.urls), u, cfg.opts.clients, cfg.opts.warmup, cfg.opts.duration)
		r, err := runTarget(ctx, u, cfg.opts)
		if err != nil {
			fmt.Fprintln(stderr, "load:", err)
			return 1
		}
		results = append(results, r)
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "load: stopped:", context.Cause(ctx))
			break
		}
	}
	rep := newReport(cfg, results)
	if cfg.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintln(stderr, "load:", err)
			return 1
		}
	} else {
		printText(stdout, rep)
	}
	for _, r := range results {
		if r.failed() > 0 || r.OK == 0 {
			fmt.Fprintf(stderr, "load: %s: %d of %d requests failed\n", r.URL, r.failed(), r.Requests)
			return 1
		}
	}
	if ctx.Err() != nil {
		return 1
	}
	return 0
}

// report is the output, the same for text and JSON. Latencies are in
// microseconds.
type report struct {
	Clients    int             `json:"clients"`
	WarmupS    float64         `json:"warmup_s"`
	DurationS  float64         `json:"duration_s"`
	GOMAXPROCS int             `json:"gomaxprocs"`
	NumCPU     int             `json:"num_cpu"`
	Targets    []targetReport  `json:"targets"`
	Relative   []relativeEntry `json:"relative,omitempty"`
}

type targetReport struct {
	URL        string   `json:"url"`
	Requests   uint64   `json:"requests"`
	OK         uint64   `json:"ok"`
	Errors     uint64   `json:"errors"`
	Status     uint64   `json:"bad_status"`
	Mismatch   uint64   `json:"body_mismatch"`
	Conns      int64    `json:"connections"`
	WindowS    float64  `json:"window_s"`
	Throughput float64  `json:"throughput_rps"`
	MeanUS     float64  `json:"mean_us"`
	P50US      float64  `json:"p50_us"`
	P90US      float64  `json:"p90_us"`
	P99US      float64  `json:"p99_us"`
	MaxUS      float64  `json:"max_us"`
	FirstErrs  []string `json:"first_errors,omitempty"`
}

// relativeEntry compares a target with the first one.
type relativeEntry struct {
	URL             string  `json:"url"`
	ThroughputRatio float64 `json:"throughput_ratio"`
	P50DiffUS       float64 `json:"p50_diff_us"`
	P99DiffUS       float64 `json:"p99_diff_us"`
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func newReport(cfg *config, results []*result) *report {
	rep := &report{
		Clients:    cfg.opts.clients,
		WarmupS:    cfg.opts.warmup.Seconds(),
		DurationS:  cfg.opts.duration.Seconds(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		NumCPU:     runtime.NumCPU(),
	}
	for _, r := range results {
		rep.Targets = append(rep.Targets, targetReport{
			URL:        r.URL,
			Requests:   r.Requests,
			OK:         r.OK,
			Errors:     r.Errors,
			Status:     r.Status,
			Mismatch:   r.Mismatch,
			Conns:      r.Conns,
			WindowS:    r.Window.Seconds(),
			Throughput: r.throughput(),
			MeanUS:     us(r.Hist.mean()),
			P50US:      us(r.Hist.percentile(0.50)),
			P90US:      us(r.Hist.percentile(0.90)),
			P99US:      us(r.Hist.percentile(0.99)),
			MaxUS:      us(r.Hist.max),
			FirstErrs:  r.FirstErrors,
		})
	}
	if len(rep.Targets) >= 2 {
		base := rep.Targets[0]
		for _, t := range rep.Targets {
			e := relativeEntry{URL: t.URL, P50DiffUS: t.P50US - base.P50US, P99DiffUS: t.P99US - base.P99US}
			if base.Throughput > 0 {
				e.ThroughputRatio = t.Throughput / base.Throughput
			}
			rep.Relative = append(rep.Relative, e)
		}
	}
	return rep
}

// fmtUS formats microseconds: whole microseconds below 10 ms, else
// milliseconds.
func fmtUS(v float64) string {
	if v < 10000 {
		return fmt.Sprintf("%.0fµs", v)
	}
	return fmt.Sprintf("%.2fms", v/1000)
}

func printText(w io.Writer, rep *report) {
	fmt.Fprintf(w, "load: %d clients, %gs warm-up + %gs per target, GOMAXPROCS %d, %d CPUs\n",
		rep.Clients, rep.WarmupS, rep.DurationS, rep.GOMAXPROCS, rep.NumCPU)
	for i, t := range rep.Targets {
		fmt.Fprintf(w, "\ntarget %d: %s\n", i+1, t.URL)
		fmt.Fprintf(w, "  requests   %d in %.2fs (ok %d, errors %d, bad status %d, body mismatch %d), %d connections\n",
			t.Requests, t.WindowS, t.OK, t.Errors, t.Status, t.Mismatch, t.Conns)
		fmt.Fprintf(w, "  throughput %.0f req/s\n", t.Throughput)
		fmt.Fprintf(w, "  latency    p50 %s  p90 %s  p99 %s  max %s  (mean %s)\n",
			fmtUS(t.P50US), fmtUS(t.P90US), fmtUS(t.P99US), fmtUS(t.MaxUS), fmtUS(t.MeanUS))
		for _, e := range t.FirstErrs {
			fmt.Fprintf(w, "  first      %s\n", e)
		}
	}
	if len(rep.Relative) == 0 {
		return
	}
	fmt.Fprintf(w, "\nrelative to target 1 (%s):\n", rep.Targets[0].URL)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\treq/s\tthroughput\tp50\tp50 diff\tp99\tp99 diff\t")
	for i, e := range rep.Relative {
		t := rep.Targets[i]
		fmt.Fprintf(tw, "%d\t%.0f\t%.3fx\t%s\t%+.0fµs\t%s\t%+.0fµs\t\n",
			i+1, t.Throughput, e.ThroughputRatio, fmtUS(t.P50US), e.P50DiffUS, fmtUS(t.P99US), e.P99DiffUS)
	}
	tw.Flush()
}
