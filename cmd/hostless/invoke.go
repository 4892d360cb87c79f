package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hostless/hostless/internal/client"
)

// maxInvokeData bounds what --data may read from a file or stdin.
const maxInvokeData = 6 << 20

func newInvoke(g *globals) *cobra.Command {
	var (
		data    string
		verbose bool
		async   bool
		idemKey string
	)
	cmd := &cobra.Command{
		Use:   "invoke NAME[@VERSION|@ALIAS]",
		Short: "Call a function with a body and print its response",
		Long:  "invoke POSTs --data (a JSON text, @FILE, or @- for stdin) to the function and prints its response body. NAME alone calls the live alias (and its canary, by weight); NAME@3 calls version 3, NAME@beta the alias beta.",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, err := readData(data)
			if err != nil {
				return err
			}
			if async {
				id, err := g.client().InvokeAsync(cmd.Context(), args[0], body, idemKey)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), id)
				return nil
			}
			if idemKey != "" {
				return fmt.Errorf("--idempotency-key goes with --async")
			}
			res, err := g.client().Invoke(cmd.Context(), args[0], body)
			if res != nil && (verbose || err != nil) && res.ID != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "invocation %s: %s (HTTP %d)\n", res.ID, res.Status, res.HTTP)
			}
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(res.Body)
			return err
		},
	}
	cmd.Flags().StringVarP(&data, "data", "d", "", "request body: text, @FILE or @- (stdin)")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "print the invocation ID and status to stderr")
	cmd.Flags().BoolVar(&async, "async", false, "queue the call and print its invocation ID (hostless invocations get ID shows its state)")
	cmd.Flags().StringVar(&idemKey, "idempotency-key", "", "with --async: calls with the same key within the window queue one event")
	return cmd
}

func readData(data string) ([]byte, error) {
	name, ok := strings.CutPrefix(data, "@")
	if !ok {
		return []byte(data), nil
	}
	var r io.Reader = os.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxInvokeData+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxInvokeData {
		return nil, fmt.Errorf("--data %s is larger than %d bytes", data, maxInvokeData)
	}
	return b, nil
}

func newClient(url, key string) *client.Client { return client.New(url, key) }
