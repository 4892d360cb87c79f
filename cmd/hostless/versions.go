package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newVersions(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "versions NAME",
		Short: "List a function's versions, newest first; * marks those live serves, ALIASES the aliases serving each",
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
			as, err := c.ListAliases(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tCREATED\tCODE\tCONTRACT\tMEMORY\tTIMEOUT\tALIASES")
			for _, v := range vs {
				mark := " "
				if v.Number == fn.Version || v.Number == fn.CanaryVersion {
					mark = "*"
				}
				var serving []string
				for _, a := range as {
					switch {
					case !a.HasCanary() && a.Version == v.Number:
						serving = append(serving, a.Name)
					case a.Version == v.Number:
						serving = append(serving, fmt.Sprintf("%s (%d%%)", a.Name, 100-a.CanaryWeight))
					case a.CanaryVersion == v.Number:
						serving = append(serving, fmt.Sprintf("%s (canary, %d%%)", a.Name, a.CanaryWeight))
					}
				}
				contract := v.Spec.Contract
				if contract == "" {
					contract = "auto"
				}
				fmt.Fprintf(tw, "%s%d\t%s\t%.19s\t%s\t%dMB\t%s\t%s\n", mark, v.Number, v.CreatedAt.Local().Format(time.DateTime),
					v.Spec.Code, contract, v.Spec.MemoryMB, time.Duration(v.Spec.Timeout), strings.Join(serving, ", "))
			}
			return tw.Flush()
		},
	}
}

func newRollback(g *globals) *cobra.Command {
	var to int
	cmd := &cobra.Command{
		Use:   "rollback NAME",
		Short: "Move the live alias back: drop its canary, else serve the version before (or --to N)",
		Long: `rollback moves the live alias (what /fn/NAME calls) back and clears any canary:
with a canary, live's version serves every call again (the canary's version
stays, reachable as NAME@N); without one, the version before live's serves;
with --to N, version N serves alone.`,
		Args: cobra.ExactArgs(1),
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
