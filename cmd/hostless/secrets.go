package main

import (
	"bytes"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// maxSecretInput is one byte over the server's limit on a value, so that
// the server, not a silent cut, refuses a value too big.
const maxSecretInput = 64<<10 + 1

func newSecrets(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "secrets", Short: "Set, list and remove the secrets functions get as environment variables"}
	var keepNewline bool
	set := &cobra.Command{
		Use:   "set NAME",
		Short: "Set a secret to the value read from standard input",
		Long: `Set a secret to the value read from standard input, never from a flag or an
argument (which shell history and process lists keep):

  hostless secrets set DB_PASSWORD < password.txt
  printf %s "$TOKEN" | hostless secrets set API_TOKEN

One trailing newline is dropped unless --keep-newline is given. Functions that
name the secret under secrets: in hostless.yaml get it as an environment
variable; their warm instances are recycled so the next call sees the new value.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			value, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), maxSecretInput))
			if err != nil {
				return fmt.Errorf("read the value from standard input: %w", err)
			}
			defer clear(value)
			if !keepNewline {
				value = bytes.TrimSuffix(value, []byte("\n"))
				value = bytes.TrimSuffix(value, []byte("\r"))
			}
			info, err := g.client().SetSecret(cmd.Context(), args[0], bytes.NewReader(value))
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "set %s (version %d)\n", info.Name, info.Version)
			return nil
		},
	}
	set.Flags().BoolVar(&keepNewline, "keep-newline", false, "keep a trailing newline of the input as part of the value")
	cmd.AddCommand(set, &cobra.Command{
		Use: "ls", Short: "List the secrets: names, versions and times (never values)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			list, err := g.client().ListSecrets(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tVERSION\tUPDATED\tCREATED")
			for _, s := range list {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", s.Name, s.Version, s.UpdatedAt.Local().Format(time.DateTime), s.CreatedAt.Local().Format(time.DateTime))
			}
			return tw.Flush()
		},
	}, &cobra.Command{
		Use: "rm NAME", Short: "Remove a secret (instances holding it are recycled)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.client().DeleteSecret(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", args[0])
			return nil
		},
	}, &cobra.Command{
		Use:   "rotate-master-key",
		Short: "Re-seal every data key under the server's current master key",
		Long: `Re-seal every secret's and KMS key's data key, and the platform's own sealed
keys (auth signing keys, the stored AWS key, the presigning key), under the
master key the server now uses (HOSTLESS_MASTER_KEY), opening them with the
previous one (HOSTLESS_MASTER_KEY_PREVIOUS). Values are not touched and
serving goes on.
Servers also do this once at start. See docs/SECRETS.md for the whole rotation.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := g.client().RotateMasterKey(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "re-sealed %d secrets, %d KMS key versions and %d platform keys under master key %s\n",
				r.Secrets, r.KMSKeys, r.PlatformKeys, r.MasterKeyID)
			return nil
		},
	})
	return cmd
}
