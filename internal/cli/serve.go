package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"tlsgate/internal/config"
	"tlsgate/internal/fleet"
	"tlsgate/internal/metrics"
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
SIGUSR1 reopens the log file (for logrotate).
Logs are JSON lines on standard error unless the config's log section or the
--log-* flags say otherwise; those flags override the config's log settings.`,
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
	addLogFlags(c, true)
	return c
}

func serve(ctx context.Context, path string, c *cobra.Command) error {
	// The log section is read before the server loads the config; a config that does
	// not load leaves the defaults, and Start reports its problems.
	var lc config.Log
	if cfg, err := config.Load(path); err == nil {
		lc = cfg.Log
		if lc.File != "" {
			lc.File = cfg.Resolve(lc.File)
		}
	}
	lc, err := logFlags(c, lc)
	if err != nil {
		return err
	}
	log, out, err := openLog(lc, c.ErrOrStderr())
	if err != nil {
		return err
	}
	defer out.Close()
	// Only the flag overrides log.access for good: the config's value follows reloads.
	access, _ := c.Flags().GetString("log-access")
	m := metrics.New()
	b := BuildInfo()
	m.SetBuild(b.Version, b.Commit) // the version stamped at link time, as `tlsgate version` says
	opts := server.Options{ConfigPath: path, Log: log, Access: access, Metrics: m}
	node, err := fleetNode(ctx, path, &opts)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if node != nil {
		defer node.Close()
	}
	srv, err := start(opts, node)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, l := range srv.Listeners() {
		log.Info("listening", "listener", l.ID, "protocol", l.Protocol, "address", l.Addr)
	}
	if a := srv.AdminAddr(); a != nil {
		log.Info("listening", "listener", "admin", "protocol", "http", "address", a.String())
	}
	log.Info("serving", "config", path)
	hup, usr1 := make(chan os.Signal, 1), make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(hup)
	defer signal.Stop(usr1)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		if node != nil {
			node.Run(wctx, srv)
		} else {
			srv.Watch(wctx)
		}
		close(done)
	}()
	for {
		select {
		case <-hup:
			if node == nil {
				_ = srv.Reload()
			}
		case <-usr1:
			if err := out.Reopen(); err != nil {
				log.Error("reopening the log file failed; logging on to the old one", "error", err.Error())
			} else {
				log.Info("log file reopened")
			}
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

// fleetNode prepares fleet mode when the config at path is a node config (fleet:): the
// configuration to start with comes from etcd, or the node's cache when etcd is down.
func fleetNode(ctx context.Context, path string, opts *server.Options) (*fleet.Node, error) {
	nc, err := config.Load(path)
	if err != nil || nc.Fleet == nil {
		return nil, nil // not a node config; Start reports what is wrong with it
	}
	node, err := fleet.NewNode(nc, fleet.NodeOptions{Log: opts.Log, Metrics: opts.Metrics, Version: BuildInfo().Version})
	if err != nil {
		return nil, err
	}
	cfg, err := node.Initial(ctx)
	if err != nil {
		node.Close()
		return nil, err
	}
	opts.Config, opts.Fleet = cfg, node
	return node, nil
}

// start starts the server; in fleet mode a revision from etcd that does not start (a
// socket it cannot open) falls back to the cached revision.
func start(opts server.Options, node *fleet.Node) (*server.Server, error) {
	srv := server.New(opts)
	err := srv.Start()
	if err == nil || node == nil {
		return srv, err
	}
	cfg, cerr := node.Fallback()
	if cerr != nil {
		return nil, err
	}
	opts.Log.Error("fleet: the current revision does not start here; serving the cached one", "error", err.Error())
	opts.Config = cfg
	srv = server.New(opts)
	return srv, srv.Start()
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
