package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/hostless/hostless/internal/client"
)

// maxPasswordBytes bounds the line users create reads from stdin.
const maxPasswordBytes = 4 << 10

func newUsers(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "users",
		Short: "List, create, disable and enable the backend's user accounts, and set their roles",
	}
	cmd.AddCommand(&cobra.Command{
		Use: "ls", Short: "List every account by email", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			us, err := g.client().AllUsers(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tEMAIL\tVERIFIED\tROLES\tDISABLED")
			for _, u := range us {
				roles := strings.Join(u.Roles, ",")
				if roles == "" {
					roles = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%v\n", u.ID, u.Email, u.EmailVerified, roles, u.Disabled)
			}
			return tw.Flush()
		},
	})

	var roles []string
	var passwordStdin bool
	create := &cobra.Command{
		Use:   "create EMAIL",
		Short: "Create a verified account, with roles and a password read from stdin",
		Long: `Create a verified account. With --password-stdin the password is the first line of
stdin (so that it stays out of the shell's history and the process list):

  printf '%s\n' "$PASSWORD" | hostless users create ada@example.com --password-stdin --role admin

Without it the account has no password: its user signs in after a password
reset (POST /v1/auth/reset/request).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			password := ""
			if passwordStdin {
				var err error
				if password, err = readPassword(cmd.InOrStdin()); err != nil {
					return err
				}
			}
			u, err := g.client().CreateUser(cmd.Context(), args[0], password, roles)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created %s %s\n", u.ID, u.Email)
			return nil
		},
	}
	create.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of stdin")
	create.Flags().StringArrayVar(&roles, "role", nil, "give the account a role (repeat for several)")
	cmd.AddCommand(create)

	setDisabled := func(use, short string, disabled bool) *cobra.Command {
		return &cobra.Command{
			Use: use + " ID|EMAIL", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c := g.client()
				id, err := userID(cmd.Context(), c, args[0])
				if err != nil {
					return err
				}
				u, err := c.UpdateUser(cmd.Context(), id, client.UserChange{Disabled: &disabled})
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%sd %s %s\n", use, u.ID, u.Email)
				return nil
			},
		}
	}
	cmd.AddCommand(
		setDisabled("disable", "Disable an account: it can't sign in, and its tokens stop working at once", true),
		setDisabled("enable", "Enable a disabled account", false),
		&cobra.Command{
			Use:   "roles ID|EMAIL [ROLE]...",
			Short: "Replace an account's roles (none given: remove them all)",
			Long: `Replace an account's roles with the ones given; without any, remove them all.
Tokens issued before the change stop working: the user refreshes or signs in again.`,
			Args: cobra.MinimumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c := g.client()
				id, err := userID(cmd.Context(), c, args[0])
				if err != nil {
					return err
				}
				roles := append([]string{}, args[1:]...)
				u, err := c.UpdateUser(cmd.Context(), id, client.UserChange{Roles: &roles})
				if err != nil {
					return err
				}
				shown := strings.Join(u.Roles, ",")
				if shown == "" {
					shown = "none"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s roles: %s\n", u.ID, u.Email, shown)
				return nil
			},
		})
	return cmd
}

// userID returns the ID of the account arg names: an ID as it is, or an
// email (it has an @), looked up.
func userID(ctx context.Context, c *client.Client, arg string) (string, error) {
	if !strings.Contains(arg, "@") {
		return arg, nil
	}
	us, err := c.AllUsers(ctx)
	if err != nil {
		return "", err
	}
	for _, u := range us {
		if strings.EqualFold(u.Email, strings.TrimSpace(arg)) {
			return u.ID, nil
		}
	}
	return "", fmt.Errorf("no user with email %q", arg)
}

// readPassword reads the first line of r, without its line ending.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, maxPasswordBytes+2)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password from stdin: %w", err)
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if len(line) > maxPasswordBytes {
		return "", fmt.Errorf("the password on stdin is longer than %d bytes", maxPasswordBytes)
	}
	if line == "" {
		return "", errors.New("--password-stdin: stdin has no password (pipe one in: printf '%s\\n' \"$PASSWORD\" | hostless users create ...)")
	}
	return line, nil
}
