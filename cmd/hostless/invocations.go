package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newInvocations(g *globals) *cobra.Command {
	var limit int
	cmd := &cobra.Command{Use: "invocations", Short: "List invocation records, or show one with its logs"}
	ls := &cobra.Command{
		Use: "ls [FUNCTION]", Short: "List recent invocations, newest first", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fn := ""
			if len(args) == 1 {
				fn = args[0]
			}
			recs, _, err := g.client().ListInvocations(cmd.Context(), fn, limit, "")
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tFUNCTION\tVERSION\tSTART\tDURATION\tBILLED\tCOLD\tSTATUS")
			for _, r := range recs {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%dms\t%v\t%s\n", r.ID, r.Function, r.Version,
					r.Start.Local().Format(time.StampMilli), r.Duration.Round(time.Microsecond), r.BilledMS, r.Cold, r.Status)
			}
			return tw.Flush()
		},
	}
	ls.Flags().IntVarP(&limit, "limit", "n", 20, "how many")
	cmd.AddCommand(ls, &cobra.Command{
		Use: "get ID", Short: "Show one invocation with its log lines, or an async one's state (JSON)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := g.client().GetInvocationJSON(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			var out bytes.Buffer
			if err := json.Indent(&out, raw, "", "  "); err != nil {
				return err
			}
			out.WriteByte('\n')
			_, err = out.WriteTo(cmd.OutOrStdout())
			return err
		},
	})
	return cmd
}
