package revocation

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"
)

// maxOCSPBytes bounds an OCSP response.
const maxOCSPBytes = 1 << 20

// QueryOCSP asks url about leaf (issued by issuer) and returns the verified response.
// It is the one OCSP client of tlsgate: probe, client-certificate checks and stapling
// use it.
func QueryOCSP(ctx context.Context, client *http.Client, url string, leaf, issuer *x509.Certificate) (*ocsp.Response, []byte, error) {
	req, err := ocsp.CreateRequest(leaf, issuer, &ocsp.RequestOptions{Hash: crypto.SHA256})
	if err != nil {
		return nil, nil, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(req))
	if err != nil {
		return nil, nil, err
	}
	hr.Header.Set("Content-Type", "application/ocsp-request")
	resp, err := client.Do(hr)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("OCSP responder: HTTP %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxOCSPBytes))
	if err != nil {
		return nil, nil, err
	}
	r, err := ocsp.ParseResponseForCert(body, leaf, issuer)
	if err != nil {
		return nil, nil, fmt.Errorf("OCSP response: %w", err)
	}
	return r, body, nil
}

// OCSP checks client certificates with their issuers' OCSP responders, caching each
// answer until its NextUpdate (an hour when it has none) and a failure for a minute,
// so the responder is asked at most once per certificate per period.
type OCSP struct {
	Client   *http.Client
	Timeout  time.Duration
	FailOpen bool
	Now      func() time.Time

	mu    sync.Mutex
	cache map[[32]byte]ocspEntry
}

type ocspEntry struct {
	err   error
	until time.Time
}

// Check returns ErrRevoked, ErrOCSPUnavailable (fail closed) or nil for leaf.
func (o *OCSP) Check(leaf, issuer *x509.Certificate) error {
	if len(leaf.OCSPServer) == 0 {
		return nil
	}
	now := o.Now()
	key := sha256.Sum256(append(append([]byte{}, issuer.RawSubjectPublicKeyInfo...), leaf.SerialNumber.Bytes()...))
	o.mu.Lock()
	if e, ok := o.cache[key]; ok && now.Before(e.until) {
		o.mu.Unlock()
		return o.result(e.err)
	}
	o.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), o.Timeout)
	defer cancel()
	e := ocspEntry{until: now.Add(time.Minute)}
	r, _, err := QueryOCSP(ctx, o.Client, leaf.OCSPServer[0], leaf, issuer)
	switch {
	case err != nil:
		e.err = fmt.Errorf("%w: %w", ErrOCSPUnavailable, err)
	case r.Status == ocsp.Revoked:
		e.err, e.until = ErrRevoked, now.Add(24*time.Hour)
	case r.Status != ocsp.Good:
		e.err = fmt.Errorf("%w: the responder does not know the certificate", ErrOCSPUnavailable)
	default:
		e.until = now.Add(time.Hour)
		if !r.NextUpdate.IsZero() {
			e.until = r.NextUpdate
		}
	}
	o.mu.Lock()
	if o.cache == nil {
		o.cache = map[[32]byte]ocspEntry{}
	}
	o.cache[key] = e
	o.mu.Unlock()
	return o.result(e.err)
}

func (o *OCSP) result(err error) error {
	if err != nil && err != ErrRevoked && o.FailOpen {
		return nil
	}
	return err
}
