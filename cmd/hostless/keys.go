package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newKeys(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Create, list and revoke API keys: the credentials of services"}
	var scopes []string
	var quiet bool
	create := &cobra.Command{
		Use:   "create NAME --scope SCOPE...",
		Short: "Create an API key with scopes and print it (the only time it is shown)",
		Long: `Create an API key with scopes and print it. The server keeps only its hash: this is
the only time the key is shown. Scopes: "db:read", "db:write", "db:*",
"db:COLLECTION:read" (documents, without rules), "admin" (everything).

A service sends it as "Authorization: Bearer KEY".`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := g.client().CreateAPIKey(cmd.Context(), args[0], scopes)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if quiet {
				fmt.Fprintln(out, k.Key)
				return nil
			}
			fmt.Fprintf(out, "created API key %s (%s), scopes %s\n\n  %s\n\n", k.ID, k.Name, strings.Join(k.Scopes, ","), k.Key)
			fmt.Fprintf(cmd.ErrOrStderr(), "This key is shown once: the server keeps only its hash. Store it now; "+
				"\"hostless keys rm %s\" revokes it.\n", k.ID)
			return nil
		},
	}
	create.Flags().StringArrayVar(&scopes, "scope", nil, "a scope of the key (repeat for several), e.g. db:read")
	create.Flags().BoolVarP(&quiet, "quiet", "q", false, "print the key alone (for scripts)")
	_ = create.MarkFlagRequired("scope")

	cmd.AddCommand(create, &cobra.Command{
		Use: "ls", Short: "List the API keys (never their secrets)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ks, err := g.client().ListAPIKeys(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tCREATED")
			for _, k := range ks {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.ID, k.Name, strings.Join(k.Scopes, ","), k.CreatedAt.Local().Format(time.DateTime))
			}
			return tw.Flush()
		},
	}, &cobra.Command{
		Use: "rm ID", Short: "Revoke an API key", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.client().DeleteAPIKey(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked %s\n", args[0])
			return nil
		},
	})
	return cmd
}
