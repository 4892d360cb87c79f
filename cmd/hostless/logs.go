package main

import (
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/hostless/hostless/internal/client"
	"github.com/hostless/hostless/internal/function"
)

func newLogs(g *globals) *cobra.Command {
	var (
		follow bool
		lines  int
		q      client.LogQuery
	)
	cmd := &cobra.Command{
		Use:   "logs [NAME]",
		Short: "Print recent invocations' log lines; -f follows live",
		Long: "logs prints the newest log lines of a function (or of all functions), oldest first, each\n" +
			"with its time, function@version, invocation ID and stream. The filters apply to what\n" +
			"-f follows too.",
		Example: "  hostless logs api -f\n" +
			"  hostless logs api --since 1h --status error\n" +
			"  hostless logs --grep 'connection refused' -n 20",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				q.Function = args[0]
			}
			if lines < 1 || lines > 100000 {
				return fmt.Errorf("--lines %d: want 1 to 100000", lines)
			}
			out := cmd.OutOrStdout()
			c := g.client()
			if follow {
				q.Limit = min(lines, 1000)
				return c.FollowLogs(cmd.Context(), q, func(l function.LogLine) { printLine(out, l) })
			}
			// The newest lines first, then older pages until there are
			// enough or no older line can match.
			var got []function.LogLine
			for len(got) < lines {
				q.Limit = min(lines-len(got), 1000)
				p, err := c.Logs(cmd.Context(), q)
				if err != nil {
					return err
				}
				got = append(slices.Clone(p.Lines), got...)
				if p.Prev == 0 {
					break
				}
				q.Before = p.Prev
			}
			for _, l := range got {
				printLine(out, l)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&follow, "follow", "f", false, "follow new lines as they come")
	f.IntVarP(&lines, "lines", "n", 100, "how many of the newest lines to show (first, with -f; at most 1000 then)")
	f.StringVar(&q.Since, "since", "", "only lines logged since a time: a duration back from now (30m, 24h, 7d) or an RFC 3339 time")
	f.StringVar(&q.Status, "status", "", "only lines of invocations that ended so: ok, error (any failure: error, timeout, oom, throttled), timeout, oom, throttled; comma-separated")
	f.StringVar(&q.Grep, "grep", "", "only lines that contain this text (case-sensitive; at most 256 bytes)")
	return cmd
}

func printLine(w io.Writer, l function.LogLine) {
	fmt.Fprintf(w, "%s %s@%d %s %s: %s\n", l.Time.Local().Format(time.StampMilli), l.Function, l.Version, l.InvocationID, l.Stream, l.Line)
}
