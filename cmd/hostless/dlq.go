package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newDLQ(g *globals) *cobra.Command {
	var limit int
	cmd := &cobra.Command{Use: "dlq", Short: "A function's dead-letter queue: async events that failed every attempt"}
	ls := &cobra.Command{
		Use: "ls NAME", Short: "List a function's dead letters, oldest first", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ds, err := g.client().DeadLetters(cmd.Context(), args[0], limit)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTRIGGER\tACCEPTED\tFAILED\tATTEMPTS\tBYTES\tREASON")
			for _, d := range ds {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", d.ID, d.Trigger, d.AcceptedAt.Local().Format(time.StampMilli),
					d.FailedAt.Local().Format(time.StampMilli), d.Attempts, d.Bytes, d.Reason)
			}
			return tw.Flush()
		},
	}
	ls.Flags().IntVarP(&limit, "limit", "n", 100, "how many (at most 1000)")
	cmd.AddCommand(ls, &cobra.Command{
		Use: "redrive NAME", Short: "Queue a function's dead letters again (each keeps its ID)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := g.client().Redrive(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "redrove %d event(s) of %s\n", n, args[0])
			return nil
		},
	})
	return cmd
}
