package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func newAuth(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "auth", Short: "The backend's authentication: the dev outbox"}
	cmd.AddCommand(&cobra.Command{
		Use:   "outbox",
		Short: "Show the mails the server kept for lack of SMTP (verification, password reset), newest first",
		Long: `Show the mails the server kept for lack of SMTP, newest first: the tokens of email
verifications and password resets, for development. A server with --smtp sends
them instead and keeps none.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ms, err := g.client().Outbox(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(ms) == 0 {
				fmt.Fprintln(out, "the outbox is empty")
				return nil
			}
			for i, m := range ms {
				if i > 0 {
					fmt.Fprintln(out, "\n---")
				}
				fmt.Fprintf(out, "To:      %s\nSubject: %s\nDate:    %s\n\n%s\n", m.To, m.Subject, m.CreatedAt.Local().Format(time.DateTime), m.Body)
			}
			return nil
		},
	})
	return cmd
}
