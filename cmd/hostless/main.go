// Command hostless is the Hostless platform and its CLI: `hostless serve`
// runs the platform, the other commands talk to one.
package main

import (
	"os"

	"github.com/hostless/hostless/internal/sandbox"
)

func main() {
	// The sandboxes' init is this binary re-executed; it never returns.
	sandbox.MaybeInit()
	if err := newRoot().Execute(); err != nil {
		os.Exit(1)
	}
}
