package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/hostless/hostless/internal/client"
)

// globals are the flags every client command shares.
type globals struct {
	url string
	key string
}

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "hostless",
		Short:         "Hostless: functions and a backend on your own servers",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	defURL := os.Getenv("HOSTLESS_URL")
	if defURL == "" {
		defURL = "http://127.0.0.1:8080"
	}
	root.PersistentFlags().StringVar(&g.url, "url", defURL, "server URL (env HOSTLESS_URL)")
	root.PersistentFlags().StringVar(&g.key, "key", "", "admin key (default: env HOSTLESS_ADMIN_KEY)")
	root.AddCommand(newServe(), newUp(), newDeploy(g), newRoutes(g), newFunctions(g), newInvoke(g), newLogs(g), newInvocations(g), newVersions(g), newRollback(g),
		newAliases(g), newAlias(g), newPromote(g), newDLQ(g), newUsers(g), newAuth(g), newKeys(g), newCollections(g), newSecrets(g),
		newUsage(g))
	return root
}

func (g *globals) client() *client.Client {
	key := g.key
	if key == "" {
		key = os.Getenv("HOSTLESS_ADMIN_KEY")
	}
	return client.New(g.url, key)
}
