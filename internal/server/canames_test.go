package server_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"tlsgate/internal/clientauth"
	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
	"tlsgate/internal/tooltest"
)

// tenants is an extra: a CA bundle "tenants" of the env's root and 600 more CAs with
// long names (~75 KB of names, past what a CertificateRequest can carry), and listeners
// wide (mutual) and wide_optional using it with ca_names: none.
func tenants(e *env) (string, string) {
	bundle := e.ca.PEM()
	for i := range 600 {
		bundle = append(bundle, pkitest.New(e.t, fmt.Sprintf("tenant %03d %s", i, strings.Repeat("x", 100)), pki.ECDSAP256).PEM()...)
	}
	pkitest.Write(e.t, e.dir, "tenants.crt", bundle)
	return "  - {id: tenants, ca: tenants.crt, crl: [ca.crl, inter.crl]}\n",
		"  - {id: wide, protocol: https, listen: 127.0.0.1:0, target_group: web, ssl: {mode: mutual, server_certificates: [site], ca_certificate: tenants, ca_names: none}}\n" +
			"  - {id: wide_optional, protocol: https, listen: 127.0.0.1:0, target_group: web, ssl: {mode: optional, server_certificates: [site], ca_certificate: tenants, ca_names: none}}\n"
}

// TestCANamesNone: a bundle too large to name in the CertificateRequest is served with
// ca_names: none: the client sees no CA names, and the whole pipeline still decides,
// with the same reason codes (only the alert is bad_certificate).
func TestCANamesNone(t *testing.T) {
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			e := newEnv(t, pki.ECDSAP256, tenants)
			cases := []struct {
				name   string
				leaf   *pkitest.Leaf
				reason clientauth.Reason
			}{
				{"valid", e.ca.Issue("alice"), clientauth.OK},
				{"via intermediate", e.inter.Issue("bob"), clientauth.OK},
				{"no certificate", nil, clientauth.NoClientCert},
				{"revoked", e.revoked, clientauth.Revoked},
				{"expired", e.ca.Issue("old", pkitest.Valid(-48*time.Hour, -24*time.Hour)), clientauth.Expired},
				{"unknown CA", e.other.Issue("eve"), clientauth.UnknownCA},
				{"serverAuth only", e.ca.Issue("srv", pkitest.EKU(x509.ExtKeyUsageServerAuth)), clientauth.BadUsage},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					e.t = t
					var cert *tls.Certificate
					if tc.leaf != nil {
						cert = new(tc.leaf.TLS())
					}
					got, names, err := e.getNames("wide", version, cert)
					if names != 0 {
						t.Errorf("the CertificateRequest named %d CAs, want none", names)
					}
					if tc.reason == clientauth.OK {
						if err != nil || got.Status != http.StatusOK || got.Headers["X-Client-Verify"] != "SUCCESS" || got.Headers["X-Client-Cert-Subject"] != tc.leaf.Cert.Subject.String() {
							t.Fatalf("verified client: %+v, %v", got, err)
						}
					} else {
						if err == nil {
							t.Fatalf("refused client was served: %+v", got)
						}
						line := e.sink.Next(t, map[string]any{"msg": "handshake", "listener": "wide"})
						if line["reason"] != string(tc.reason) {
							t.Fatalf("reason %v, want %s", line["reason"], tc.reason)
						}
					}
					got, _, err = e.getNames("wide_optional", version, cert)
					want := "FAILED:" + string(tc.reason)
					switch tc.reason {
					case clientauth.OK:
						want = "SUCCESS"
					case clientauth.NoClientCert:
						want = "NONE"
					}
					if err != nil || got.Headers["X-Client-Verify"] != want {
						t.Fatalf("optional: %+v, %v; want X-Client-Verify %s", got, err, want)
					}
				})
			}
		})
	}
}

// getNames is get with a client that reports how many CA names the server's
// CertificateRequest carried (-1 when it sent none).
func (e *env) getNames(id string, version uint16, cert *tls.Certificate) (*echo, int, error) {
	e.t.Helper()
	names := -1
	cfg := e.tlsConfig(version, cert)
	cfg.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
		names = len(cri.AcceptableCAs)
		if cert == nil {
			return new(tls.Certificate), nil
		}
		return cert, nil
	}
	resp, body, err := e.request(id, cfg, nil, false)
	if err != nil {
		return nil, names, err
	}
	return decodeEcho(e.t, resp.StatusCode, body), names, nil
}

// TestCANamesTooMany: with the CA names advertised, a bundle whose names do not fit in
// a CertificateRequest (every handshake would fail inside crypto/tls: "pending child
// length exceeds 2-byte length prefix") is a config error at the line naming it, and a
// reload to it keeps the running listener serving.
func TestCANamesTooMany(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256, tenants)
	good := string(mustRead(t, e.dir, "tlsgate.yaml"))
	const from = "{mode: mutual, server_certificates: [site], ca_certificate: tenants, ca_names: none}"
	if !strings.Contains(good, from) {
		t.Fatalf("config has no %q", from)
	}
	e.writeFile("tlsgate.yaml", []byte(strings.Replace(good, from, "{mode: mutual, server_certificates: [site], ca_certificate: tenants}", 1)))
	err := e.waitReload()
	want := `listeners[5].ssl.ca_certificate: the names of the 601 CAs of bundle "tenants" take `
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "ca_names: none") {
		t.Fatalf("reload error %v: want %q and the fix", err, want)
	}
	if !strings.Contains(err.Error(), "tlsgate.yaml:") {
		t.Fatalf("reload error %v does not name the config line", err)
	}
	got, _, err := e.getNames("wide", tls.VersionTLS13, new(e.ca.Issue("alice").TLS()))
	if err != nil || got.Status != http.StatusOK {
		t.Fatalf("the running listener stopped serving: %+v, %v", got, err)
	}
}

// TestCANamesOpenSSL: openssl s_client, a real client, sees no CA names from the
// ca_names: none listener and the bundle's names from the default one.
func TestCANamesOpenSSL(t *testing.T) {
	openssl := tooltest.Path(t, "openssl")
	e := newEnv(t, pki.ECDSAP256, tenants)
	root := pkitest.Write(t, e.dir, "root.pem", e.ca.PEM())
	certFile, keyFile := e.ca.Issue("alice").WritePair(t, e.dir, "alice")
	for _, tc := range []struct{ listener, want string }{
		{"wide", "No client certificate CA names sent"},
		{"mutual", "Acceptable client certificate CA names\nCN = test root\n"},
	} {
		for _, flag := range []string{"-tls1_2", "-tls1_3"} {
			out, err := exec.Command(openssl, "s_client", flag, "-connect", e.addr(tc.listener), "-servername", "localhost",
				"-CAfile", root, "-cert", certFile, "-key", keyFile).CombinedOutput()
			if err != nil || !strings.Contains(string(out), tc.want) {
				t.Errorf("%s %s: s_client %v, want %q in:\n%s", tc.listener, flag, err, tc.want, out)
			}
		}
	}
}
