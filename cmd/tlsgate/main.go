// Command tlsgate is a TLS-terminating load balancer with one-way and mutual
// authentication. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"tlsgate/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
