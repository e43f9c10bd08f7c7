package server

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"tlsgate/internal/certstore"
	"tlsgate/internal/config"
	"tlsgate/internal/tlsconf"
)

// Check loads and builds the config at path without opening any socket: what `tlsgate
// check` runs. The error is config.Problems for problems in the config or the files it
// names; warnings are lint findings that do not stop it from loading.
func Check(path string) (warnings config.Problems, err error) {
	b, err := build(path, time.Now, nil, nil)
	if err != nil {
		return nil, err
	}
	if ps := startProblems(b.cfg); len(ps) > 0 {
		return nil, ps
	}
	return append(b.store.Warnings, adminWarnings(b.cfg)...), nil
}

// startProblems checks what serve refuses when it opens log.file and the admin unix
// socket at start (only then: a reload reopens neither): a directory that does not
// exist. Check creates nothing; serve creates the file and the socket.
func startProblems(cfg *config.Config) config.Problems {
	var ps config.Problems
	dirMissing := func(path, file string) {
		dir := filepath.Dir(file)
		fi, err := os.Stat(dir)
		if err == nil && !fi.IsDir() {
			err = fmt.Errorf("%s is not a directory", dir)
		}
		if err != nil {
			ps = append(ps, cfg.Problem(path, fmt.Sprintf("%v: serve could not create %s", err, filepath.Base(file))))
		}
	}
	if cfg.Log.File != "" {
		dirMissing("log.file", cfg.Resolve(cfg.Log.File))
	}
	if sock, ok := strings.CutPrefix(cfg.Admin.Listen, "unix:"); ok && filepath.IsAbs(sock) {
		dirMissing("admin.listen", sock)
	}
	return ps
}

// adminProblems checks what startAdmin would refuse, so that check refuses it too and a
// reload that breaks it is refused before anything changes: the token file (readable,
// long enough) and the admin listener's TLS policy.
func adminProblems(cfg *config.Config, store *certstore.Store, now func() time.Time) config.Problems {
	if cfg.Admin.Listen == "" {
		return nil
	}
	var ps config.Problems
	if _, err := readToken(cfg); err != nil {
		ps = append(ps, cfg.Problem("admin.token_file", err.Error()))
	}
	if s := cfg.Admin.SSL; s != nil {
		if _, err := tlsconf.New(s, store, tlsconf.Env{Now: now}); err != nil {
			ps = append(ps, cfg.Problem("admin.ssl", err.Error()))
		}
	}
	return ps
}

// adminListen opens the admin listener: host:port, or unix:/path for a unix socket
// that only its owner may connect to (mode 0600, set right after bind, before the
// server accepts; put the socket in a directory only tlsgate's user can enter, such as
// /run/tlsgate, to close the moment between bind and chmod too).
func (s *Server) adminListen(listen string) (net.Listener, bool, error) {
	sock, ok := strings.CutPrefix(listen, "unix:")
	if !ok {
		ln, err := s.opts.Listen("tcp", listen)
		return ln, false, err
	}
	// A socket file left by a process that died makes bind fail; a live one answers,
	// so only a dead one is removed. Listen first: after a binary upgrade it returns the
	// socket inherited from the old process, which answers.
	ln, err := s.opts.Listen("unix", sock)
	if err != nil {
		if c, derr := net.Dial("unix", sock); derr == nil {
			c.Close()
			return nil, true, fmt.Errorf("%s is in use by another process", sock)
		}
		_ = os.Remove(sock)
		if ln, err = s.opts.Listen("unix", sock); err != nil {
			return nil, true, err
		}
	}
	if err := os.Chmod(sock, 0o600); err != nil {
		ln.Close()
		return nil, true, err
	}
	return ln, true, nil
}

// adminWarnings says when the management API is read-only: an admin listener with no
// token, no mutual TLS and no unix socket refuses every change (403).
func adminWarnings(cfg *config.Config) config.Problems {
	a := cfg.Admin
	if a.Listen == "" || a.TokenFile != "" || a.SSL != nil || strings.HasPrefix(a.Listen, "unix:") {
		return nil
	}
	return config.Problems{cfg.Problem("admin.listen", "warning: no token_file, ssl or unix socket: the management API is read-only (changes answer 403)")}
}
