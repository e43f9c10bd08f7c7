package revocation

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// MaxCRLBytes bounds a downloaded CRL (S11: haproxy#819 crashed on a large CRL).
const MaxCRLBytes = 32 << 20

// FetchCRL downloads the CRL at url (bytes, unparsed). The server's CRL refresh and
// probe both use it.
func FetchCRL(ctx context.Context, client *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "tlsgate-crl-fetch")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxCRLBytes+1))
	if err != nil {
		return nil, err
	}
	if len(body) > MaxCRLBytes {
		return nil, fmt.Errorf("larger than %d bytes", MaxCRLBytes)
	}
	return body, nil
}
