// Command hostless is the Hostless platform and its CLI: `hostless serve`
// runs the platform, the other commands talk to one.
package main

import "os"

func main() {
	if err := newRoot().Execute(); err != nil {
		os.Exit(1)
	}
}
