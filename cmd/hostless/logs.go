package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/hostless/hostless/internal/function"
)

func newLogs(g *globals) *cobra.Command {
	var (
		follow bool
		lines  int
	)
	cmd := &cobra.Command{
		Use:   "logs [NAME]",
		Short: "Print recent invocations' log lines; -f follows live",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			out := cmd.OutOrStdout()
			c := g.client()
			if follow {
				return c.FollowLogs(cmd.Context(), name, lines, func(l function.LogLine) { printLine(out, l) })
			}
			ls, _, err := c.Logs(cmd.Context(), name, 0, lines)
			if err != nil {
				return err
			}
			for _, l := range ls {
				printLine(out, l)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "follow new lines as they come")
	cmd.Flags().IntVarP(&lines, "lines", "n", 100, "how many recent lines to show first")
	return cmd
}

func printLine(w io.Writer, l function.LogLine) {
	fmt.Fprintf(w, "%s %s@%d %s %s: %s\n", l.Time.Local().Format(time.StampMilli), l.Function, l.Version, l.InvocationID, l.Stream, l.Line)
}
