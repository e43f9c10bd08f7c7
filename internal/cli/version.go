package cli

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"tlsgate/internal/opensslsign"
)

// version, commit and date are set at link time by `make build` / `make install`
// (-ldflags "-X tlsgate/internal/cli.version=…", from git). The go command stamps the
// commit itself only in a plain clone (not in a git worktree) and not under
// GOFLAGS=-buildvcs=false, so the Makefile passes them too; the build info wins when it
// has them. An empty version falls back to the module version: "v1.2.3" after
// `go install tlsgate/cmd/tlsgate@v1.2.3`, "(devel)" for a plain `go build`.
var version, commit, date string

// Build describes the binary: what `tlsgate version` prints.
type Build struct {
	Version  string // release or module version; "(devel)" when unknown
	Commit   string // VCS revision; "" when the build did not stamp it (-buildvcs=false)
	Date     string // commit time, RFC 3339; "" when not stamped
	Modified bool   // built from a work tree with uncommitted changes
	Go       string // the Go toolchain, e.g. go1.26.8
	// Signer says what signs with the server's RSA and ECDSA P-256 keys: the OpenSSL
	// libcrypto loaded at run time (make build), or Go's crypto.
	Signer string
}

// BuildInfo reads the version, commit and Go version from the binary's build info.
// Builds with -buildvcs=false (or outside a repository) carry no commit or date; they are
// left empty rather than guessed.
func BuildInfo() Build {
	b := Build{Version: version, Commit: commit, Date: date, Go: runtime.Version(), Signer: keySigner()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		if b.Version == "" {
			b.Version = "(devel)"
		}
		return b
	}
	if b.Version == "" {
		b.Version = bi.Main.Version
	}
	if b.Version == "" {
		b.Version = "(devel)"
	}
	if bi.GoVersion != "" {
		b.Go = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Commit = s.Value
		case "vcs.time":
			b.Date = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// String is the one line of `tlsgate --version`.
func (b Build) String() string {
	commit := "unknown commit (built without VCS stamping: use make build)"
	if b.Commit != "" {
		commit = "commit " + b.Commit
		if b.Modified {
			commit += "-dirty"
		}
		if b.Date != "" {
			commit += " of " + b.Date
		}
	}
	return fmt.Sprintf("tlsgate %s, %s, %s %s/%s", b.Version, commit, b.Go, runtime.GOOS, runtime.GOARCH)
}

// write prints the build as labelled lines (`tlsgate version`).
func (b Build) write(w io.Writer) {
	fmt.Fprintf(w, "version:  %s\n", b.Version)
	commit, date := b.Commit, b.Date
	if commit == "" {
		commit = "unknown (built without VCS stamping: use make build)"
	} else if b.Modified {
		commit += " (modified)"
	}
	if date == "" {
		date = "unknown"
	}
	fmt.Fprintf(w, "commit:   %s\n", commit)
	fmt.Fprintf(w, "date:     %s\n", date)
	fmt.Fprintf(w, "go:       %s %s/%s\n", b.Go, runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(w, "signing:  %s\n", b.Signer)
}

// keySigner names what signs with the server's RSA and ECDSA P-256 keys in this binary.
// Other keys (Ed25519, other curves) always sign in Go's crypto.
func keySigner() string {
	if lib := opensslsign.Library(); lib != "" {
		return lib + " (system libcrypto; RSA and ECDSA P-256 keys)"
	}
	return "crypto/rsa, crypto/ecdsa (built without -tags openssl)"
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, VCS commit and date, and Go version of this binary",
		Args:  noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			BuildInfo().write(c.OutOrStdout())
			return nil
		},
	}
}
