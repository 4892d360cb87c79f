package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newRoutes(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "routes",
		Short: "List the route table (deploy a manifest with a routes: key to change it)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			routes, err := g.client().GetRoutes(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"routes": routes})
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ROUTE\tHOST\tFUNCTION\tCORS")
			for _, r := range routes {
				host, cors := r.Host, "-"
				if host == "" {
					host = "*"
				}
				if r.CORS != nil {
					cors = fmt.Sprint(r.CORS.Origins)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Key(), host, r.Function, cors)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the table as JSON, as GET /v1/routes returns it")
	return cmd
}
