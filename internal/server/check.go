package server

import (
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
	return b.store.Warnings, nil
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
