// Package cli is the cobra command tree of tlsgate. It parses flags, calls the packages
// below, renders text, and maps errors to exit codes (0 ok, 1 failure found, 2 usage). It
// holds no business logic, and nothing imports it but main.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// usageError marks errors that are the caller's fault (exit 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// failure marks an error already reported in full (exit 1, nothing more printed).
var errReported = errors.New("reported")

// Execute runs the command line args and returns the exit code.
func Execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := &cobra.Command{
		Use:   "tlsgate",
		Short: "TLS-terminating load balancer with one-way and mutual authentication",
		Long: `tlsgate terminates TLS for HTTPS and TCP SSL listeners, with one-way or mutual
(client certificate) authentication, CRL revocation, and the verified identity
forwarded to backends. Start with: tlsgate demo`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Version:       BuildInfo().String(),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%s: %w (see %s --help)", c.CommandPath(), err, c.CommandPath())}
	})
	root.AddCommand(serveCmd(), checkCmd(), demoCmd(), probeCmd(), pkiCmd(), certCmd(), versionCmd(), manCmd(), fleetCmd())
	err := root.ExecuteContext(ctx)
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, errReported):
		return ExitFailure
	}
	fmt.Fprintln(stderr, "tlsgate:", err)
	if _, ok := errors.AsType[usageError](err); ok || isCobraUsage(err) {
		return ExitUsage
	}
	return ExitFailure
}

// isCobraUsage recognises cobra's own errors for an unknown command.
func isCobraUsage(err error) bool {
	return strings.HasPrefix(err.Error(), "unknown command")
}

// noArgs rejects positional arguments as a usage error.
func noArgs(c *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("%s: unexpected argument %q", c.CommandPath(), args[0])}
	}
	return nil
}

func requireFlag(c *cobra.Command, name string) error {
	if v, _ := c.Flags().GetString(name); v == "" {
		return usageError{fmt.Errorf("%s: flag --%s is required", c.CommandPath(), name)}
	}
	return nil
}
