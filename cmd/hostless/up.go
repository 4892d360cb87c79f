package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/hostless/hostless/internal/app"
	"github.com/hostless/hostless/internal/config"
	"github.com/hostless/hostless/internal/deploy"
	"github.com/hostless/hostless/internal/manifest"
)

func newUp() *cobra.Command {
	cfg := config.Config{}
	var logFormat string
	cmd := &cobra.Command{
		Use:   "up [DIR]",
		Short: "Run the platform with the app in DIR deployed (builds its code if needed)",
		Long: "up builds the functions of DIR/hostless.yaml when their code is missing or older than\n" +
			"their sources, starts the platform, deploys the app and prints its URLs.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signalContext(cmd)
			defer stop()
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			path := dir
			if st, err := os.Stat(dir); err == nil && st.IsDir() {
				path = filepath.Join(dir, "hostless.yaml")
			}
			m, err := manifest.Load(path)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if err := deploy.Build(ctx, m, deploy.BuildIfStale, out); err != nil {
				return err
			}
			if err := resolveConfig(cmd, &cfg); err != nil {
				return err
			}
			a := app.New(cfg, newLogger(logFormat, os.Stderr))
			// up deploys with a key that lives as long as this process.
			key := app.NewKey()
			a.ExtraKeys = []string{key}
			if err := start(ctx, a); err != nil {
				return err
			}
			if _, err := deploy.Apply(ctx, newClient(a.URL(), key), m, out); err != nil {
				_ = a.Close(context.Background())
				return err
			}
			fmt.Fprintf(out, "\nhostless is up on %s\n", a.URL())
			for _, name := range m.Order {
				fmt.Fprintf(out, "  %s/fn/%s\n", a.URL(), name)
			}
			for _, name := range m.CollectionOrder {
				fmt.Fprintf(out, "  %s/v1/db/%s\n", a.URL(), name)
			}
			fmt.Fprintf(out, "  %s/console/ (the web console: sign in with the admin key or as an admin user)\n", a.URL())
			switch {
			case len(m.Order) > 0:
				try := m.Order[0]
				if _, ok := m.Functions["hello"]; ok {
					try = "hello?name=Ada"
				}
				fmt.Fprintf(out, "\nTry: curl '%s/fn/%s'\n", a.URL(), try)
			default:
				fmt.Fprintf(out, "\nTry: curl -H \"Authorization: Bearer $TOKEN\" '%s/v1/db/%s'\n", a.URL(), m.CollectionOrder[0])
			}
			fmt.Fprintln(out, "Press Ctrl-C to stop.")
			return wait(ctx, stop, a, cfg.ShutdownGrace, cmd.ErrOrStderr())
		},
	}
	serverFlags(cmd, &cfg, &logFormat)
	return cmd
}
