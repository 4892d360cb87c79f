package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/hostless/hostless/internal/client"
	"github.com/hostless/hostless/internal/function"

	"github.com/hostless/hostless/internal/deploy"
	"github.com/hostless/hostless/internal/manifest"
	"github.com/hostless/hostless/internal/route"
)

func newDeploy(g *globals) *cobra.Command {
	var (
		file           string
		build, noBuild bool
		dryRun, prune  bool
		canary         int
	)
	cmd := &cobra.Command{
		Use:   "deploy",
		Short: "Deploy the functions, collections and buckets of a manifest; only what changed gets a new version",
		Long: `Deploy the functions of a manifest; only what changed gets a new version.

The live alias (what /fn/NAME calls) serves each new version alone. With
--canary W, a function whose code or configuration changed gets its new
version as live's canary instead: it takes W percent of the calls and live's
version keeps the rest, until "hostless promote NAME" makes it serve alone
or "hostless rollback NAME" drops it.

When the manifest has a routes: key, its routes replace the server's whole
route table once the functions are deployed ("routes: []" removes them all);
without the key the table is left as it is.

The collections: of the manifest are put before the functions, each only if
its spec differs from the server's (documents stay when a spec changes).
Collections the manifest doesn't name are left alone, with their documents:
"hostless collections rm NAME" deletes one.

The buckets: of the manifest, and the buckets its functions name, are
created when the server lacks them, and get the rules the manifest gives
them; a deploy never deletes a bucket.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("canary") && (canary < function.MinCanaryWeight || canary > function.MaxCanaryWeight) {
				return fmt.Errorf("--canary %d: the canary's weight is a whole percent of live's calls, %d to %d",
					canary, function.MinCanaryWeight, function.MaxCanaryWeight)
			}
			m, err := manifest.Load(file)
			if err != nil {
				return err
			}
			if m.HasRoutes {
				// Conflicts are found before anything is deployed.
				if _, err := route.Compile(m.Routes); err != nil {
					return fmt.Errorf("%s: %w", m.Path, err)
				}
			}
			if dryRun {
				if m.HasRoutes {
					fmt.Fprintf(cmd.OutOrStdout(), "routes: %d (replace the server's table)\n", len(m.Routes))
				}
				// A plan stores, uploads and builds nothing: it compares the
				// code as it is on disk now.
				if _, err := deploy.PlanCollections(cmd.Context(), g.client(), m, cmd.OutOrStdout()); err != nil {
					return err
				}
				if _, err := deploy.PlanBuckets(cmd.Context(), g.client(), m, cmd.OutOrStdout()); err != nil {
					return err
				}
				_, err := deploy.Plan(cmd.Context(), g.client(), m, prune, canary, cmd.OutOrStdout())
				return err
			}
			mode := deploy.BuildIfStale
			switch {
			case build:
				mode = deploy.BuildAlways
			case noBuild:
				mode = deploy.BuildNever
			}
			if err := deploy.Build(cmd.Context(), m, mode, cmd.ErrOrStderr()); err != nil {
				return err
			}
			apply := deploy.Apply
			if canary > 0 {
				apply = func(ctx context.Context, c *client.Client, m *manifest.Manifest, out io.Writer) ([]deploy.Result, error) {
					return deploy.ApplyCanary(ctx, c, m, canary, out)
				}
			}
			if _, err := apply(cmd.Context(), g.client(), m, cmd.OutOrStdout()); err != nil {
				return err
			}
			if m.HasRoutes {
				routes, err := g.client().PutRoutes(cmd.Context(), m.Routes)
				if err != nil {
					return fmt.Errorf("routes: %w", err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "routes: %d\n", len(routes))
			}
			if prune {
				_, err = deploy.Prune(cmd.Context(), g.client(), m, cmd.OutOrStdout())
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "hostless.yaml", "manifest to deploy")
	cmd.Flags().BoolVar(&build, "build", false, "run every build command, even for code that is up to date")
	cmd.Flags().BoolVar(&noBuild, "no-build", false, "run no build command")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan (create, update, unchanged, and delete with --prune) and change nothing")
	cmd.Flags().BoolVar(&prune, "prune", false, "delete deployed functions that the manifest no longer has")
	cmd.Flags().IntVar(&canary, "canary", 0, "give changed functions their new version as live's canary, taking this percent (1-99) of the calls")
	cmd.MarkFlagsMutuallyExclusive("build", "no-build")
	return cmd
}
