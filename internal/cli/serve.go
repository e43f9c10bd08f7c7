package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/spf13/cobra"

	"tlsgate/internal/config"
	"tlsgate/internal/fleet"
	"tlsgate/internal/gctune"
	"tlsgate/internal/metrics"
	"tlsgate/internal/sdnotify"
	"tlsgate/internal/server"
	"tlsgate/internal/upgrade"
)

func serveCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Run the load balancer",
		Long: `Run the load balancer described by a YAML config (README.md, "Configuration
walkthrough"; tlsgate check validates one).

SIGHUP, or a change of the config or of any certificate, key or CRL file it
references, reloads: everything is built new and swapped in; if anything fails,
the running configuration keeps serving and the errors are logged.
SIGTERM or Ctrl-C drains: stop accepting, finish in-flight work (up to
drain_timeout, default 30s), exit.
SIGUSR1 reopens the log file (for logrotate). SIGUSR2 upgrades the binary: the
binary on disk starts with the listening sockets inherited; once it serves, this
process stops accepting and drains; if it fails to start, this one keeps serving.
Under systemd (Type=notify) it reports READY, RELOADING, STOPPING, the new MAINPID
after an upgrade, and watchdog pings.
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
	// A floor under the collector's heap goal while the live heap is small (gctune).
	defer gctune.Start(gctune.MinGoal).Stop()
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
	socks, err := upgrade.Inherit()
	if err != nil {
		return err
	}
	defer socks.CloseUnused()
	notify := sdnotify.FromEnv()
	m := metrics.New()
	b := BuildInfo()
	m.SetBuild(b.Version, b.Commit) // the version stamped at link time, as `tlsgate version` says
	opts := server.Options{ConfigPath: path, Log: log, Access: access, Metrics: m, Listen: socks.Listen}
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
	socks.CloseUnused()
	for _, l := range srv.Listeners() {
		log.Info("listening", "listener", l.ID, "protocol", l.Protocol, "address", l.Addr)
	}
	if a := srv.AdminAddr(); a != nil {
		log.Info("listening", "listener", "admin", "protocol", "http", "address", a.String())
	}
	if socks.Upgrading() {
		// The old process tells systemd (MAINPID=) once it has our word.
		if err := socks.Ready(); err != nil {
			log.Error("upgrade: the old process did not hear that this one is ready", "error", err.Error())
		}
	} else {
		_ = notify.Ready(fmt.Sprintf("serving %d listeners", len(srv.Listeners())))
	}
	log.Info("serving", "config", path, "pid", os.Getpid(), "version", BuildInfo().Version)
	return runServer(ctx, srv, node, socks, notify, out, log)
}

// upgraded is the outcome of a binary upgrade started by SIGUSR2.
type upgraded struct {
	child *upgrade.Child
	err   error
}

// runServer serves until a signal ends it: SIGTERM/SIGINT (ctx) drains, a successful upgrade
// (SIGUSR2) hands over and drains; SIGHUP reloads (not in fleet mode) and SIGUSR1
// reopens the log file.
func runServer(ctx context.Context, srv *server.Server, node *fleet.Node, socks *upgrade.Sockets, notify *sdnotify.Notifier, out *logOutput, log *slog.Logger) error {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sigs)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		if node != nil {
			node.Run(wctx, srv) // the fleet's etcd decides the config; SIGHUP does not reload
		} else {
			srv.Watch(wctx)
		}
	})
	wg.Go(func() { notify.Watchdog(wctx, sdnotify.WatchdogInterval(), srv.Health) })
	var upgrading chan upgraded // non-nil while a new process starts
	for {
		select {
		case sig := <-sigs:
			switch sig {
			case syscall.SIGHUP:
				if node != nil {
					continue
				}
				_ = notify.Reloading()
				status := "serving; reloaded"
				if err := srv.Reload(); err != nil {
					status = "serving; the last reload failed: " + err.Error()
				}
				_ = notify.Ready(status)
			case syscall.SIGUSR1:
				if err := out.Reopen(); err != nil {
					log.Error("reopening the log file failed; logging on to the old one", "error", err.Error())
				} else {
					log.Info("log file reopened")
				}
			case syscall.SIGUSR2:
				if upgrading != nil {
					log.Warn("upgrade already under way; SIGUSR2 ignored")
					continue
				}
				upgrading = make(chan upgraded, 1)
				log.Info("upgrade: starting the binary on disk with the listening sockets")
				wg.Go(func() { upgrading <- startUpgrade(wctx, socks) })
			}
		case u := <-upgrading:
			upgrading = nil
			if u.err != nil {
				log.Error("upgrade failed; this process keeps serving", "error", u.err.Error())
				continue
			}
			_ = notify.MainPID(u.child.PID, fmt.Sprintf("serving (upgraded from pid %d)", os.Getpid()))
			log.Info("upgrade: the new process serves; draining this one", "new_pid", u.child.PID, "pid", os.Getpid())
			cancel()
			wg.Wait() // no reload while draining
			return drain(srv, log)
		case <-ctx.Done():
			_ = notify.Stopping()
			cancel()
			wg.Wait()
			return drain(srv, log)
		}
	}
}

// startUpgrade starts the binary on disk, with this process's arguments and sockets.
func startUpgrade(ctx context.Context, socks *upgrade.Sockets) upgraded {
	exe, err := os.Executable() // the path, even after the file was replaced
	if err != nil {
		return upgraded{err: fmt.Errorf("finding the binary: %w", err)}
	}
	child, err := socks.Start(ctx, exe, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	return upgraded{child: child, err: err}
}

// drain stops accepting and finishes in-flight work, up to the config's drain_timeout.
func drain(srv *server.Server, log *slog.Logger) error {
	timeout := srv.DrainTimeout()
	log.Info("draining", "timeout", timeout.String(), "pid", os.Getpid())
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	log.Info("exiting", "pid", os.Getpid())
	return err
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
