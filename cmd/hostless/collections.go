package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newCollections(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "collections",
		Short: "List, show and delete the document database's collections (deploy a manifest with collections: to define them)",
	}
	var yes bool
	rm := &cobra.Command{
		Use:   "rm NAME",
		Short: "Delete a collection and every document in it",
		Long: `Delete a collection and every document in it. A collection that has documents
is deleted only with --yes. (A deploy never deletes a collection: one that the
manifest no longer names stays, with its documents, until rm.)`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := g.client()
			if !yes {
				col, err := c.GetCollection(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if col.Documents > 0 {
					return fmt.Errorf("collection %s has %d documents: rm deletes them all; run again with --yes", col.Name, col.Documents)
				}
			}
			if err := c.DeleteCollection(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %s\n", args[0])
			return nil
		},
	}
	rm.Flags().BoolVarP(&yes, "yes", "y", false, "delete the collection even if it has documents")
	cmd.AddCommand(&cobra.Command{
		Use: "ls", Short: "List the collections", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cs, err := g.client().ListCollections(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tDOCUMENTS\tINDEXES\tRULES\tUPDATED")
			for _, c := range cs {
				ops := slices.Sorted(maps.Keys(c.Spec.Rules))
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", c.Name, c.Documents, orDash(strings.Join(c.Spec.Indexes, ",")),
					orDash(strings.Join(ops, ",")), c.UpdatedAt.Local().Format(time.DateTime))
			}
			return tw.Flush()
		},
	}, &cobra.Command{
		Use: "get NAME", Short: "Show a collection's spec: schema, indexes, rules and bounds (JSON)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client().GetCollection(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			enc.SetEscapeHTML(false)
			return enc.Encode(c)
		},
	}, rm)
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
