package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"tlsgate/internal/config"
	"tlsgate/internal/fleet"
	"tlsgate/internal/server"
)

func fleetCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "fleet",
		Short: "Store, read and watch the config of a fleet of instances in etcd",
		Long: `A fleet is many tlsgate instances serving one config stored in etcd under a prefix.
Each node runs 'tlsgate serve --config node.yaml' with a fleet: section; these commands
push a config to the fleet, pull it back, and list the live instances.`,
	}
	for _, sub := range []*cobra.Command{fleetPushCmd(), fleetPullCmd(), fleetStatusCmd()} {
		sub.RunE = namingEtcd(sub.RunE)
		c.AddCommand(sub)
	}
	return c
}

// namingEtcd makes an etcd that did not answer a one-line error naming the --etcd
// endpoints, not a bare "context deadline exceeded".
func namingEtcd(run func(*cobra.Command, []string) error) func(*cobra.Command, []string) error {
	return func(c *cobra.Command, args []string) error {
		err := run(c, args)
		if errors.Is(err, context.DeadlineExceeded) {
			eps, _ := c.Flags().GetStringSlice("etcd")
			return fmt.Errorf("etcd %s (--etcd) did not answer within %s: %w", strings.Join(eps, ","), commandTimeout, err)
		}
		return err
	}
}

// etcdFlags are the flags every fleet command takes.
func etcdFlags(c *cobra.Command, key bool) {
	c.Flags().StringSlice("etcd", nil, "etcd endpoints host:port (comma-separated or repeated)")
	c.Flags().String("prefix", "", "the fleet's etcd key prefix, e.g. /tlsgate/edge")
	c.Flags().String("etcd-ca", "", "CA bundle (PEM) to verify etcd's TLS certificate")
	c.Flags().String("etcd-cert", "", "client certificate (PEM) for etcd")
	c.Flags().String("etcd-key", "", "client key (PEM) for etcd")
	c.Flags().String("etcd-user", "", "etcd user name")
	c.Flags().String("etcd-password-file", "", "file holding the etcd user's password")
	if key {
		c.Flags().String("key-file", "", "the fleet key (32 random bytes, as on the nodes)")
	}
}

// openStore connects to the fleet the flags name.
func openStore(c *cobra.Command, key bool) (*fleet.Store, error) {
	need := []string{"prefix"}
	if key {
		need = append(need, "key-file")
	}
	for _, f := range need {
		if err := requireFlag(c, f); err != nil {
			return nil, err
		}
	}
	eps, _ := c.Flags().GetStringSlice("etcd")
	if len(eps) == 0 {
		return nil, usageError{fmt.Errorf("%s: flag --etcd is required", c.CommandPath())}
	}
	prefix, _ := c.Flags().GetString("prefix")
	if !strings.HasPrefix(prefix, "/") || strings.HasSuffix(prefix, "/") {
		return nil, usageError{fmt.Errorf("%s: --prefix must start with / and not end with /", c.CommandPath())}
	}
	s := &fleet.Store{Prefix: prefix}
	if key {
		path, _ := c.Flags().GetString("key-file")
		k, err := fleet.LoadKeys(path)
		if err != nil {
			return nil, err
		}
		s.Keys = k
	}
	f := &config.Fleet{Etcd: eps}
	f.CA, _ = c.Flags().GetString("etcd-ca")
	f.Cert, _ = c.Flags().GetString("etcd-cert")
	f.Key, _ = c.Flags().GetString("etcd-key")
	f.Username, _ = c.Flags().GetString("etcd-user")
	f.PasswordFile, _ = c.Flags().GetString("etcd-password-file")
	if (f.Cert == "") != (f.Key == "") || (f.Username == "") != (f.PasswordFile == "") {
		return nil, usageError{fmt.Errorf("%s: --etcd-cert goes with --etcd-key, --etcd-user with --etcd-password-file", c.CommandPath())}
	}
	secret := (&config.Config{}).ReadSecret
	cli, err := fleet.Dial(f, func(p string) string { return p }, secret)
	if err != nil {
		return nil, err
	}
	s.Client = cli
	return s, nil
}

// commandTimeout bounds one fleet command's talk with etcd (a variable for tests).
var commandTimeout = 15 * time.Second

func fleetPushCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "push --etcd HOST:PORT --prefix P --key-file F --config FILE",
		Short: "Validate a config and store it with every file it references as the fleet's next revision",
		Long: `Validate the config exactly as 'tlsgate check' does (every problem is printed, exit 1,
nothing stored), then store it and every certificate, key, CA bundle and CRL it names
in one etcd transaction as the fleet's next revision, and print that revision. Every
value is sealed with the fleet key (AES-256-GCM). With --expect-revision N the push
is a compare-and-swap: it stores only if the fleet is at revision N (0: empty).`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := requireFlag(c, "config"); err != nil {
				return err
			}
			path, _ := c.Flags().GetString("config")
			if err := checkConfig(c, path); err != nil {
				return err
			}
			r, err := fleet.Bundle(path)
			if err != nil {
				return err
			}
			s, err := openStore(c, true)
			if err != nil {
				return err
			}
			defer s.Client.Close()
			expect, _ := c.Flags().GetInt64("expect-revision")
			ctx, cancel := context.WithTimeout(c.Context(), commandTimeout)
			defer cancel()
			n, err := s.Push(ctx, r, expect)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "revision %d\n", n)
			return nil
		},
	}
	etcdFlags(c, true)
	c.Flags().String("config", "", "the fleet's config file (YAML)")
	c.Flags().Int64("expect-revision", -1, "store only if the fleet is at this revision (compare-and-swap)")
	return c
}

// checkConfig runs what `tlsgate check` runs, printing every problem.
func checkConfig(c *cobra.Command, path string) error {
	warnings, err := server.Check(path)
	for _, w := range warnings {
		fmt.Fprintln(c.ErrOrStderr(), w.String())
	}
	if err == nil {
		return nil
	}
	if ps, ok := errors.AsType[config.Problems](err); ok {
		for _, p := range ps {
			fmt.Fprintln(c.ErrOrStderr(), p.String())
		}
		return errReported
	}
	return fmt.Errorf("%s: %w", path, err)
}

func fleetPullCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "pull --etcd HOST:PORT --prefix P --key-file F --dir D",
		Short: "Write the fleet's current config and its files into a directory",
		Long: `Write the fleet's current revision out: D/config.yaml as pushed, and every file it
references at the path the config names, relative to D (absolute paths are written
under D too, without their leading /). Files are written 0600.`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := requireFlag(c, "dir"); err != nil {
				return err
			}
			s, err := openStore(c, true)
			if err != nil {
				return err
			}
			defer s.Client.Close()
			ctx, cancel := context.WithTimeout(c.Context(), commandTimeout)
			defer cancel()
			rev, _ := c.Flags().GetInt64("revision")
			r, _, err := s.Get(ctx, rev)
			if err != nil {
				return err
			}
			dir, _ := c.Flags().GetString("dir")
			if err := writeRevision(dir, r, c.ErrOrStderr()); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "revision %d written to %s\n", r.Number, dir)
			return nil
		},
	}
	etcdFlags(c, true)
	c.Flags().String("dir", "", "directory to write into (created)")
	c.Flags().Int64("revision", 0, "a revision to pull instead of the current one (the last 5 are kept)")
	return c
}

// writeRevision writes a revision's config and files under dir.
func writeRevision(dir string, r *fleet.Revision, warn io.Writer) error {
	root, err := openRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	if err := root.WriteFile(fleet.ConfigName, r.Config, 0o600); err != nil {
		return err
	}
	for p, b := range r.Files {
		rel := filepath.Clean(strings.TrimPrefix(filepath.ToSlash(p), "/"))
		if filepath.IsAbs(p) {
			fmt.Fprintf(warn, "%s: the config names it by absolute path; written as %s\n", p, filepath.Join(dir, rel))
		}
		if d := filepath.Dir(rel); d != "." {
			if err := root.MkdirAll(d, 0o700); err != nil {
				return err
			}
		}
		// os.Root refuses paths that leave dir ("../x" in the config).
		if err := root.WriteFile(rel, b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func openRoot(dir string) (*os.Root, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return os.OpenRoot(dir)
}

func fleetStatusCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "status --etcd HOST:PORT --prefix P [--json]",
		Short: "List the live instances of a fleet and the revision each serves",
		Args:  noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			s, err := openStore(c, false)
			if err != nil {
				return err
			}
			defer s.Client.Close()
			ctx, cancel := context.WithTimeout(c.Context(), commandTimeout)
			defer cancel()
			head, err := s.Head(ctx)
			if err != nil {
				return err
			}
			list, err := s.List(ctx)
			if err != nil {
				return err
			}
			if j, _ := c.Flags().GetBool("json"); j {
				enc := json.NewEncoder(c.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(nonNil(list))
			}
			fmt.Fprintf(c.OutOrStdout(), "fleet %s at revision %d, %d live instance(s)\n", s.Prefix, head, len(list))
			tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "INSTANCE\tREVISION\tSTATE\tSINCE\tVERSION")
			for _, st := range list {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", st.Instance, st.Revision, st.State, st.Since.Format(time.RFC3339), st.Version)
			}
			return tw.Flush()
		},
	}
	etcdFlags(c, false)
	// The same flags as push and pull work here: status reads nothing sealed, so the
	// key is not needed, but a command line copied from push must not be a usage error.
	c.Flags().String("key-file", "", "the fleet key (not needed: status reads nothing sealed)")
	c.Flags().Bool("json", false, "print JSON")
	return c
}

func nonNil(l []fleet.Status) []fleet.Status {
	if l == nil {
		return []fleet.Status{}
	}
	return l
}
