package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/hostless/hostless/internal/function"
)

func newPromote(g *globals) *cobra.Command {
	var alias string
	cmd := &cobra.Command{
		Use:   "promote NAME",
		Short: "Make the canary of the live alias (or --alias) serve every call",
		Long: `promote ends a canary: the alias's canary version becomes its version and
serves every call; the version it replaces no longer serves through the alias
(its instances drain). It fails, changing nothing, when the alias has no canary.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := g.client().Promote(cmd.Context(), args[0], alias)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s@%s now serves version %d\n", args[0], a.Name, a.Version)
			return nil
		},
	}
	cmd.Flags().StringVar(&alias, "alias", function.LiveAlias, "the alias whose canary to promote")
	return cmd
}
