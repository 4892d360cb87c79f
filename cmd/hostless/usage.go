package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hostless/hostless/internal/client"
	"github.com/hostless/hostless/internal/metering"
)

const usageLong = `Show what functions used, per period and per function, and what it costs.

Usage counts, per clock hour (spans up to 2 days) or UTC day: invocations
(calls that ran; throttled calls are counted apart), errors (error, timeout,
oom), cold starts, GB-seconds (memory in GB x billed seconds, each call
rounded up to the millisecond), data out (response bodies), duration
percentiles (from histograms, within 9%), and the peak: the busiest second's
memory in use and calls running.

Cost at the server's price table:
  cost      = GB-seconds x price per GB-second
            + invocations / 1,000,000 x price per million requests
            + GB out x price per GB out
  always-on = servers x hours of the span x price per server hour + the same data out
  servers   = max(1, ceil(peak memory in use / server memory))
The price table is set on the server (serve --price-gb-second,
--price-million-requests, --price-gb-out, --price-server-hour,
--price-server-memory); its defaults are AWS Lambda's list prices (x86,
us-east-1: 0.0000166667 per GB-second, 0.20 per million requests, 0.09 per
GB out) and an on-demand EC2 t3.small (2048 MB, 0.0208 an hour). A GB is
1024 MB of memory, 2^30 bytes of data.`

func newUsage(g *globals) *cobra.Command {
	var q client.UsageQuery
	var asJSON bool
	cmd := &cobra.Command{
		Use: "usage", Short: "Show usage per period and per function, and its cost against an always-on server",
		Long: usageLong, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.client().Usage(cmd.Context(), q)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(r)
			}
			return writeUsage(cmd.OutOrStdout(), r)
		},
	}
	f := cmd.Flags()
	f.StringVar(&q.Since, "since", "30d", "how far back: days (30d) or a duration (12h, 90m), from 1h to 366d")
	f.StringVar(&q.Function, "function", "", "one function only (default: all, with a line per function)")
	f.StringVar(&q.Period, "period", "", "hour or day (default: hours up to 2 days, else days)")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

// writeUsage renders a report as tables and the cost comparison.
func writeUsage(w io.Writer, r metering.Report) error {
	who := "all functions"
	if r.Function != "" {
		who = "function " + r.Function
	}
	layout := "2006-01-02 15:04"
	fmt.Fprintf(w, "Usage of %s from %s to %s UTC, by %s\n\n", who, r.From.Format(layout), r.To.Format(layout), r.Period)

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "PERIOD\tINVOCATIONS\tERRORS\tTHROTTLED\tCOLD\tGB-S\tDATA OUT\tP50\tP95\tP99\tPEAK GB\t")
	periodLayout := "2006-01-02"
	if r.Period == metering.PeriodHour {
		periodLayout = "2006-01-02 15:00"
	}
	for _, p := range r.Periods {
		usageRow(tw, p.Start.Format(periodLayout), p.Usage)
	}
	usageRow(tw, "total", r.Total)
	if err := tw.Flush(); err != nil {
		return err
	}

	if len(r.Functions) > 0 && r.Function == "" {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "FUNCTION\tINVOCATIONS\tERRORS\tTHROTTLED\tCOLD\tGB-S\tDATA OUT\tP50\tP95\tP99\tPEAK GB\tCOST\t")
		for _, f := range r.Functions {
			usageCells(tw, f.Function, f.Usage)
			fmt.Fprintf(tw, "%s\t\n", money(f.Cost))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	c, a := r.Cost, r.Cost.AlwaysOn
	p := c.Prices
	fmt.Fprintf(w, "\nCost at the price table (%s per GB-second, %s per million requests, %s per GB out):\n",
		price(p.GBSecond), price(p.MillionRequests), price(p.GBOut))
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  compute\t%s GB-s\t%s\n", gbs(r.Total.GBSeconds), money(c.Compute))
	fmt.Fprintf(tw, "  requests\t%d\t%s\n", r.Total.Invocations, money(c.Requests))
	fmt.Fprintf(tw, "  data out\t%s\t%s\n", bytesIEC(r.Total.DataOutBytes), money(c.DataOut))
	fmt.Fprintf(tw, "  total\t\t%s\n", money(c.Total))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nAn always-on server sized for the peak (%.3g GB in use, %.3g calls at once, in the busiest second):\n",
		r.Total.PeakMemoryGB, r.Total.PeakConcurrency)
	fmt.Fprintf(w, "  %d x %d MB server x %.1f h x %s = %s, + the same data out %s = %s\n",
		a.Servers, p.ServerMemoryMB, a.Hours, price(p.ServerHour), money(a.Compute), money(a.DataOut), money(a.Total))
	switch {
	case a.Total == 0:
	case c.Total == 0:
		fmt.Fprintln(w, "Nothing was billed here; the always-on server would have run all the same.")
	case c.Total < a.Total:
		fmt.Fprintf(w, "Serverless costs %s of the always-on server's cost here.\n", share(c.Total, a.Total))
	default:
		fmt.Fprintf(w, "The always-on server costs %s of the serverless cost here: at this load, a server is cheaper.\n", share(a.Total, c.Total))
	}
	return nil
}

func usageRow(tw io.Writer, label string, u metering.Usage) {
	usageCells(tw, label, u)
	fmt.Fprintln(tw)
}

func usageCells(tw io.Writer, label string, u metering.Usage) {
	fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%.3g\t", label, u.Invocations, u.Errors, u.Throttles, u.ColdStarts,
		gbs(u.GBSeconds), bytesIEC(u.DataOutBytes), millis(u.Duration.P50), millis(u.Duration.P95), millis(u.Duration.P99), u.PeakMemoryGB)
}

// gbs formats GB-seconds with three decimals, or none when large.
func gbs(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.3f", v)
}

// millis formats a duration in milliseconds to three significant digits.
func millis(ms float64) string {
	if ms == 0 {
		return "-"
	}
	d := time.Duration(ms * float64(time.Millisecond))
	unit := time.Duration(1)
	for d/unit >= 1000 {
		unit *= 10
	}
	return d.Round(unit).String()
}

// bytesIEC formats bytes in KiB, MiB, GiB.
func bytesIEC(n int64) string {
	const k = 1024
	if n < k {
		return fmt.Sprintf("%d B", n)
	}
	v, units := float64(n)/k, []string{"KiB", "MiB", "GiB", "TiB"}
	i := 0
	for v >= k && i < len(units)-1 {
		v /= k
		i++
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}

// money formats an amount in the price table's currency: cents from 1 up,
// four significant digits below (never in e-notation).
func money(v float64) string {
	switch {
	case v <= 0:
		return "0"
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.*f", 3-int(math.Floor(math.Log10(v))), v)
	}
}

// price formats a price as given.
func price(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// share says what part a is of b: a percentage, or a fraction like 1/300.
func share(a, b float64) string {
	if pct := a / b * 100; pct >= 1 {
		return fmt.Sprintf("%.0f%%", pct)
	}
	return fmt.Sprintf("1/%.0f", math.Round(b/a))
}
