package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newFunctions(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "functions", Aliases: []string{"fn"}, Short: "List, show and delete functions"}
	cmd.AddCommand(&cobra.Command{
		Use: "ls", Short: "List functions", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fns, err := g.client().ListFunctions(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tVERSION\tCANARY\tUPDATED")
			for _, f := range fns {
				canary := "-"
				if f.CanaryVersion != 0 {
					canary = fmt.Sprintf("%d (%d%%)", f.CanaryVersion, f.CanaryWeight)
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", f.Name, f.Version, canary, f.UpdatedAt.Local().Format(time.DateTime))
			}
			return tw.Flush()
		},
	}, &cobra.Command{
		Use: "get NAME", Short: "Show a function, what its live alias serves and their configuration (JSON)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := g.client().GetFunction(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(f)
		},
	}, &cobra.Command{
		Use: "rm NAME", Short: "Delete a function, its versions and its aliases", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.client().DeleteFunction(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %s\n", args[0])
			return nil
		},
	})
	return cmd
}
