package cli

import (
	"context"
	"github.com/spf13/cobra"

	"tlsgate/internal/config"
	"tlsgate/internal/demo"
)

func demoCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "demo [--dir DIR]",
		Short: "Zero-setup demo: PKI, echo backend, one-way and mutual listeners, and what to try",
		Long: `Make a throwaway PKI (CA, server certificate, a good, a revoked and a foreign client
certificate, a CRL), start echo backends and tlsgate with a one-way HTTPS, a mutual
HTTPS (and one with refusal: http, which answers a refused client with a 403 page)
and a mutual TCP SSL listener on free loopback ports, and print the curl and
openssl commands that succeed and fail. Logs (JSON, one line per handshake failure,
connection or request) go to stderr. Runs until Ctrl-C.`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			dir, _ := c.Flags().GetString("dir")
			lc, err := logFlags(c, config.Log{})
			if err != nil {
				return err
			}
			log, out, err := openLog(lc, c.ErrOrStderr())
			if err != nil {
				return err
			}
			defer out.Close()
			d, err := demo.Start(dir, log)
			if err != nil {
				return err
			}
			d.Print(c.OutOrStdout())
			<-c.Context().Done()
			return d.Close(context.Background())
		},
	}
	c.Flags().String("dir", "", "directory for the demo PKI and config (default: a new temporary directory)")
	addLogFlags(c, false)
	return c
}
