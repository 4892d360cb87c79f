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
			_, err = deploy.Apply(cmd.Context(), g.client(), m, cmd.OutOrStdout())
			return err
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "hostless.yaml", "manifest to deploy")
	cmd.Flags().BoolVar(&build, "build", false, "run every build command, even for code that is up to date")
	cmd.Flags().BoolVar(&noBuild, "no-build", false, "run no build command")
	cmd.MarkFlagsMutuallyExclusive("build", "no-build")
	return cmd
}
