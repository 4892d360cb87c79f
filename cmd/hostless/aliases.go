package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hostless/hostless/internal/deploy"
	"github.com/hostless/hostless/internal/function"
)

// newAliases lists a function's aliases.
func newAliases(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "aliases NAME",
		Short: "List a function's aliases: what each serves, with its canary",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			as, err := g.client().ListAliases(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ALIAS\tVERSION\tCANARY\tUPDATED")
			for _, a := range as {
				canary := "-"
				if a.HasCanary() {
					canary = fmt.Sprintf("%d (%d%%)", a.CanaryVersion, a.CanaryWeight)
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", a.Name, a.Version, canary, a.UpdatedAt.Local().Format(time.DateTime))
			}
			return tw.Flush()
		},
	}
}

// newAlias sets and removes aliases.
func newAlias(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "alias",
		Short: "Point an alias of a function at a version, with an optional canary, or remove it",
		Long: `An alias names a version of a function: /fn/NAME@ALIAS calls it, and the alias
live is what /fn/NAME calls. An alias may split its calls with a canary version
that takes --weight percent of them. Alias names are DNS labels that are not
all digits (NAME@3 is always version 3).`,
	}
	var version, canary, weight int
	set := &cobra.Command{
		Use:   "set NAME ALIAS --version N [--canary V --weight W]",
		Short: "Create or move an alias",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			if f.Changed("canary") != f.Changed("weight") {
				return fmt.Errorf("--canary and --weight go together: the canary version and the percent of calls it takes (%d-%d)",
					function.MinCanaryWeight, function.MaxCanaryWeight)
			}
			switch {
			case version < 1:
				return fmt.Errorf("--version %d: the version the alias serves, numbered from 1", version)
			case f.Changed("canary") && canary < 1:
				return fmt.Errorf("--canary %d: versions are numbered from 1", canary)
			case f.Changed("canary") && canary == version:
				return fmt.Errorf("--canary %d is the alias's --version: a canary is another version", canary)
			case f.Changed("weight") && (weight < function.MinCanaryWeight || weight > function.MaxCanaryWeight):
				return fmt.Errorf("--weight %d: the canary takes %d to %d percent of the calls (to send it every call, promote it)",
					weight, function.MinCanaryWeight, function.MaxCanaryWeight)
			}
			a := function.Alias{Name: args[1], Version: version, CanaryVersion: canary, CanaryWeight: weight}
			got, err := g.client().PutAlias(cmd.Context(), args[0], a)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s@%s serves %s\n", args[0], got.Name, deploy.Serving(got.Version, got.CanaryVersion, got.CanaryWeight))
			return nil
		},
	}
	set.Flags().IntVar(&version, "version", 0, "the version the alias serves (required)")
	set.Flags().IntVar(&canary, "canary", 0, "a canary version that takes --weight percent of the calls")
	set.Flags().IntVar(&weight, "weight", 0, fmt.Sprintf("the canary's percent of the calls (%d-%d)", function.MinCanaryWeight, function.MaxCanaryWeight))
	_ = set.MarkFlagRequired("version")
	rm := &cobra.Command{
		Use:   "rm NAME ALIAS",
		Short: "Delete an alias (live can't be: it serves /fn/NAME)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.client().DeleteAlias(cmd.Context(), args[0], args[1]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted alias %s of %s\n", args[1], args[0])
			return nil
		},
	}
	cmd.AddCommand(set, rm)
	return cmd
}
