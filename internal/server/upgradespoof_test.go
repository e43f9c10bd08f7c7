package server_test

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"tlsgate/internal/pki"
)

// TestUpgradeIdentityHeaders covers S3 and S4 for WebSocket upgrades: an Upgrade
// request carrying forged identity headers (also named in Connection) reaches the
// backend with tlsgate's own verdict and subject only, on a mutual listener with a
// certificate and an optional one without. The backend answers 101 and then writes
// the headers it saw into the upgraded stream.
func TestUpgradeIdentityHeaders(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		hs := map[string]string{}
		for k, v := range r.Header {
			hs[k] = strings.Join(v, ", ")
		}
		b, _ := json.Marshal(hs)
		fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n%s\n", b)
		rw.Flush()
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		e.groups = fmt.Sprintf("  - {id: ws, targets: [{address: %s}]}\n", ln.Addr())
		return "", "  - {id: ws_mutual, protocol: https, listen: 127.0.0.1:0, target_group: ws,\n" +
			"     ssl: {mode: mutual, server_certificates: [site], ca_certificate: clients}}\n" +
			"  - {id: ws_optional, protocol: https, listen: 127.0.0.1:0, target_group: ws,\n" +
			"     ssl: {mode: optional, server_certificates: [site], ca_certificate: clients}}\n"
	})
	alice := new(e.ca.Issue("alice").TLS())
	var forged strings.Builder
	for name := range spoofed() {
		forged.WriteString(name + ": SUCCESS\r\n")
	}
	for _, tc := range []struct {
		listener     string
		cert         *tls.Certificate
		verify, subj string
	}{{"ws_mutual", alice, "SUCCESS", "CN=alice"}, {"ws_optional", nil, "NONE", ""}} {
		t.Run(tc.listener, func(t *testing.T) {
			c, err := tls.Dial("tcp", e.addr(tc.listener), e.tlsConfig(tls.VersionTLS13, tc.cert))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			req := "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade, X-Client-Verify\r\n" + forged.String() + "\r\n"
			if _, err := io.WriteString(c, req); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("status %d, want 101", resp.StatusCode)
			}
			var got map[string]string
			if err := json.NewDecoder(br).Decode(&got); err != nil {
				t.Fatal(err)
			}
			for name, v := range got {
				switch name {
				case "X-Client-Verify":
					if v != tc.verify {
						t.Errorf("X-Client-Verify = %q, want %q", v, tc.verify)
					}
				case "X-Client-Cert-Subject":
					if v != tc.subj {
						t.Errorf("subject = %q, want %q", v, tc.subj)
					}
				default:
					if strings.Contains(v, "SUCCESS") {
						t.Errorf("forged %s: %q reached the backend", name, v)
					}
				}
			}
			if got["X-Client-Verify"] != tc.verify {
				t.Errorf("X-Client-Verify = %q, want %q", got["X-Client-Verify"], tc.verify)
			}
		})
	}
}
