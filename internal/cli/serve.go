package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"tlsgate/internal/config"
	"tlsgate/internal/logsink"
	"tlsgate/internal/server"
)

func serveCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Run the load balancer",
		Long: `Run the load balancer described by a YAML config (SPEC §3).

SIGHUP, or a change of the config or of any certificate, key or CRL file it
references, reloads: everything is built new and swapped in; if anything fails,
the running configuration keeps serving and the errors are logged.
SIGTERM or Ctrl-C drains: stop accepting, finish in-flight work (up to 30s), exit.
Logs are JSON lines on stdout.`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := requireFlag(c, "config"); err != nil {
				return err
			}
			path, _ := c.Flags().GetString("config")
			return serve(c.Context(), path, c)
		},
	}
	c.Flags().String("config", "", "config file (YAML)")
	return c
}

func serve(ctx context.Context, path string, c *cobra.Command) error {
	out := logsink.New(c.OutOrStdout())
	defer out.Close()
	log := slog.New(logsink.NewJSONHandler(out))
	srv := server.New(server.Options{ConfigPath: path, Log: log})
	if err := srv.Start(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, l := range srv.Listeners() {
		log.Info("listening", "listener", l.ID, "protocol", l.Protocol, "address", l.Addr)
	}
	if a := srv.AdminAddr(); a != nil {
		log.Info("listening", "listener", "admin", "protocol", "http", "address", a.String())
	}
	log.Info("serving", "config", path)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { srv.Watch(wctx); close(done) }()
	for {
		select {
		case <-hup:
			_ = srv.Reload()
		case <-ctx.Done():
			cancel()
			<-done
			log.Info("draining", "timeout", server.DrainTimeout.String())
			sctx, scancel := context.WithTimeout(context.Background(), server.DrainTimeout)
			defer scancel()
			return srv.Shutdown(sctx)
		}
	}
}

func checkCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "check --config FILE",
		Short: "Validate a config and every file it references; print every problem",
		Long: `Validate a config: the YAML schema (unknown fields are errors), references between
sections, and every certificate, key, CA bundle and CRL it names. Every problem is
printed as FILE:LINE: PATH: MESSAGE. Exit 0 when valid, 1 otherwise.`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := requireFlag(c, "config"); err != nil {
				return err
			}
			path, _ := c.Flags().GetString("config")
			warnings, err := server.Check(path)
			for _, w := range warnings {
				fmt.Fprintln(c.ErrOrStderr(), w.String())
			}
			if err != nil {
				if ps, ok := errors.AsType[config.Problems](err); ok {
					for _, p := range ps {
						fmt.Fprintln(c.ErrOrStderr(), p.String())
					}
					return errReported
				}
				return fmt.Errorf("%s: %w", path, err)
			}
			fmt.Fprintf(c.OutOrStdout(), "%s: ok\n", path)
			return nil
		},
	}
	c.Flags().String("config", "", "config file (YAML)")
	return c
}
