package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newVersions(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "versions NAME",
		Short: "List a function's versions, newest first; * marks the one serving",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := g.client()
			fn, err := c.GetFunction(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			vs, err := c.ListVersions(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tCREATED\tCODE\tCONTRACT\tMEMORY\tTIMEOUT")
			for _, v := range vs {
				mark := " "
				if v.Number == fn.Version {
					mark = "*"
				}
				contract := v.Spec.Contract
				if contract == "" {
					contract = "auto"
				}
				fmt.Fprintf(tw, "%s%d\t%s\t%.19s\t%s\t%dMB\t%s\n", mark, v.Number, v.CreatedAt.Local().Format(time.DateTime),
					v.Spec.Code, contract, v.Spec.MemoryMB, time.Duration(v.Spec.Timeout))
			}
			return tw.Flush()
		},
	}
}

func newRollback(g *globals) *cobra.Command {
	var to int
	cmd := &cobra.Command{
		Use:   "rollback NAME",
		Short: "Make the previous version (or --to N) serve the function",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to < 0 {
				return fmt.Errorf("--to %d: versions are numbered from 1", to)
			}
			fn, err := g.client().Rollback(cmd.Context(), args[0], to)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s now serves version %d\n", fn.Name, fn.Version)
			return nil
		},
	}
	cmd.Flags().IntVar(&to, "to", 0, "the version to serve (default: the one before the serving version)")
	return cmd
}
