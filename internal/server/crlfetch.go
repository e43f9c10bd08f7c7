package server

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/ocsp"

	"tlsgate/internal/certfile"
	"tlsgate/internal/certstore"
	"tlsgate/internal/config"
	"tlsgate/internal/revocation"
)

// fetchCRLs downloads every due CRL of cfg into its cache file, checking each against
// the CA bundle and refusing one older than the cached copy. A failed fetch leaves the
// last good CRL in place. It reports whether any cache file changed.
func (s *Server) fetchCRLs(ctx context.Context, cfg *config.Config) bool {
	changed := false
	for i := range cfg.Certificates {
		c := &cfg.Certificates[i]
		if !c.IsCA() {
			continue
		}
		data, err := cfg.ReadFile(cfg.Resolve(c.CA))
		if err != nil {
			continue // the build reports it
		}
		bundle, err := certfile.ParseCertificates(data)
		if err != nil {
			continue
		}
		for _, u := range certstore.FetchURLs(c, bundle) {
			if !s.fetchesCRL(cfg.CRLCache(u)) {
				continue
			}
			ok, err := s.fetchCRL(ctx, cfg.CRLCache(u), u, bundle, time.Duration(c.CRLRefresh))
			result := "unchanged"
			switch {
			case err != nil:
				result = "failure"
				s.opts.Log.Warn("CRL fetch failed; the last good CRL stays", "certificate", c.ID, "url", u, "error", err.Error())
			case ok:
				result = "updated"
				changed = true
				s.opts.Log.Info("CRL updated", "certificate", c.ID, "url", u)
				s.publishCRL(u, cfg.CRLCache(u))
			}
			s.opts.Metrics.CRLFetches.WithLabelValues(c.ID, result).Inc()
			s.history.CRLFetched(u, result, err)
		}
	}
	return changed
}

// fetchesCRL reports whether this node fetches the CRL cached at cache: always, except
// in a fleet, where the elected node fetches for all (a fleet of N asks the CA once)
// and the others only fetch a CRL they have no copy of yet.
func (s *Server) fetchesCRL(cache string) bool {
	if s.opts.Fleet == nil || s.opts.Fleet.FetchesCRLs() {
		return true
	}
	_, err := os.Stat(cache)
	return err != nil
}

// publishCRL shares a fetched CRL with the fleet.
func (s *Server) publishCRL(url, cache string) {
	if s.opts.Fleet == nil {
		return
	}
	if b, err := os.ReadFile(cache); err == nil {
		s.opts.Fleet.PublishCRL(url, b)
	}
}

// fetchStaples refreshes the OCSP responses of server certificates with ocsp_staple,
// keeping the last good one when the responder fails. It reports whether any changed.
func (s *Server) fetchStaples(ctx context.Context, cfg *config.Config) bool {
	changed := false
	for i := range cfg.Certificates {
		c := &cfg.Certificates[i]
		if c.IsCA() || !c.OCSPStaple {
			continue
		}
		data, err := cfg.ReadFile(cfg.Resolve(c.Cert))
		if err != nil {
			continue // the build reports it
		}
		b, err := certfile.Decode(data, c.Password)
		if err != nil || len(b.Certs) < 2 || len(b.Certs[0].OCSPServer) == 0 {
			s.opts.Log.Warn("cannot staple OCSP: the certificate names no responder or its issuer does not follow it in the file", "certificate", c.ID)
			continue
		}
		leaf, issuer := b.Certs[0], b.Certs[1]
		ok, err := s.fetchStaple(ctx, cfg.OCSPCache(leaf.Raw), leaf, issuer)
		result := "unchanged"
		switch {
		case err != nil:
			result = "failure"
			s.opts.Log.Warn("OCSP staple fetch failed; the last good response stays while current", "certificate", c.ID, "error", err.Error())
		case ok:
			result = "updated"
			changed = true
		}
		s.opts.Metrics.OCSPFetches.WithLabelValues(c.ID, result).Inc()
	}
	return changed
}

func (s *Server) fetchStaple(ctx context.Context, cache string, leaf, issuer *x509.Certificate) (bool, error) {
	now := s.opts.Now()
	if b, err := os.ReadFile(cache); err == nil {
		if r, err := ocsp.ParseResponseForCert(b, leaf, issuer); err == nil && now.Before(r.ThisUpdate.Add(r.NextUpdate.Sub(r.ThisUpdate)/2)) {
			return false, nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	r, body, err := revocation.QueryOCSP(ctx, http.DefaultClient, leaf.OCSPServer[0], leaf, issuer)
	if err != nil {
		return false, err
	}
	if r.Status != ocsp.Good {
		return false, fmt.Errorf("the responder says the certificate is not good (status %d): nothing is stapled", r.Status)
	}
	if err := os.MkdirAll(filepath.Dir(cache), 0o755); err != nil {
		return false, err
	}
	return true, writeAtomic(cache, body, 0o600)
}

// fetchCRL refreshes one cache file when it is missing, older than refresh, or past half
// of its CRL's validity.
func (s *Server) fetchCRL(ctx context.Context, cache, url string, bundle []*x509.Certificate, refresh time.Duration) (bool, error) {
	now := s.opts.Now()
	var old *revocation.CRL
	if b, err := os.ReadFile(cache); err == nil {
		if cs, err := revocation.ParseFile(b, bundle); err == nil && len(cs) > 0 {
			old = cs[0]
			l := old.List
			st, _ := os.Stat(cache)
			half := l.ThisUpdate.Add(l.NextUpdate.Sub(l.ThisUpdate) / 2)
			if now.Before(half) && st != nil && now.Sub(st.ModTime()) < refresh {
				return false, nil
			}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	body, err := revocation.FetchCRL(ctx, http.DefaultClient, url)
	if err != nil {
		return false, err
	}
	cs, err := revocation.ParseFile(body, bundle)
	if err != nil {
		return false, err
	}
	fresh := cs[0].List
	if old != nil {
		// Never roll back: an older CRL could un-revoke a certificate.
		if fresh.Number != nil && old.List.Number != nil && fresh.Number.Cmp(old.List.Number) < 0 || fresh.ThisUpdate.Before(old.List.ThisUpdate) {
			return false, errors.New("the served CRL is older than the cached one")
		}
		if string(fresh.Raw) == string(old.List.Raw) {
			return false, os.Chtimes(cache, now, now)
		}
	}
	if err := os.MkdirAll(filepath.Dir(cache), 0o755); err != nil {
		return false, err
	}
	return true, writeAtomic(cache, body, 0o600)
}

// crlLoop refreshes fetched CRLs until ctx ends, reloading when one changed.
func (s *Server) crlLoop(ctx context.Context) {
	for {
		s.mu.Lock()
		cfg := s.cfg
		s.mu.Unlock()
		interval := time.Duration(0)
		for _, c := range cfg.Certificates {
			if c.OCSPStaple && (interval == 0 || interval > time.Hour) {
				interval = time.Hour
			}
			if c.IsCA() && (len(c.CRLURLs) > 0 || c.CRLFetchCDP) && (interval == 0 || time.Duration(c.CRLRefresh) < interval) {
				interval = time.Duration(c.CRLRefresh)
			}
		}
		if interval == 0 {
			interval = time.Hour // nothing to fetch now; look again after a reload
		}
		// Between 30s and 5m: often enough to catch CRLs reaching half-life, never a
		// busy loop against a responder.
		t := time.NewTimer(min(max(interval, 30*time.Second), 5*time.Minute))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if s.fetchRevocation(ctx, cfg) {
			_ = s.Reload()
		}
	}
}

// FetchCRLs fetches due CRLs now and reloads if any changed (also what the loop does).
func (s *Server) FetchCRLs(ctx context.Context) error {
	s.mu.Lock()
	cfg := s.cfg
	s.mu.Unlock()
	if s.fetchRevocation(ctx, cfg) {
		return s.Reload()
	}
	return nil
}

// fetchRevocation refreshes fetched CRLs and OCSP staples.
func (s *Server) fetchRevocation(ctx context.Context, cfg *config.Config) bool {
	crls := s.fetchCRLs(ctx, cfg)
	return s.fetchStaples(ctx, cfg) || crls
}
