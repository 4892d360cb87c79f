package main

import (
	"github.com/spf13/cobra"

	"github.com/hostless/hostless/internal/deploy"
	"github.com/hostless/hostless/internal/manifest"
)

func newDeploy(g *globals) *cobra.Command {
	var (
		file           string
		build, noBuild bool
		dryRun, prune  bool
	)
	cmd := &cobra.Command{
		Use:   "deploy",
		Short: "Deploy the functions of a manifest; only what changed gets a new version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := manifest.Load(file)
			if err != nil {
				return err
			}
			if dryRun {
				// A plan stores, uploads and builds nothing: it compares the
				// code as it is on disk now.
				_, err := deploy.Plan(cmd.Context(), g.client(), m, prune, cmd.OutOrStdout())
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
			if _, err := deploy.Apply(cmd.Context(), g.client(), m, cmd.OutOrStdout()); err != nil {
				return err
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
	cmd.MarkFlagsMutuallyExclusive("build", "no-build")
	return cmd
}
