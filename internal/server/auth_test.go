package server_test

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"tlsgate/internal/clientauth"
	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
)

// matrix runs f for every TLS version and key type of the handshake tests.
func matrix(t *testing.T, f func(t *testing.T, version uint16, kt pki.KeyType)) {
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		for _, kt := range []pki.KeyType{pki.ECDSAP256, pki.RSA2048} {
			t.Run(tls.VersionName(v)+"/"+string(kt), func(t *testing.T) {
				t.Parallel()
				f(t, v, kt)
			})
		}
	}
}

// clientCase is one client certificate and the verdict the server must reach.
type clientCase struct {
	name   string
	cert   func(e *env) *tls.Certificate
	reason clientauth.Reason
}

func clientCases() []clientCase {
	return []clientCase{
		{"valid", func(e *env) *tls.Certificate { return new(e.ca.Issue("alice").TLS()) }, clientauth.OK},
		{"no certificate", func(e *env) *tls.Certificate { return nil }, clientauth.NoClientCert},
		{"expired", func(e *env) *tls.Certificate {
			return new(e.ca.Issue("old", pkitest.Valid(-48*time.Hour, -24*time.Hour)).TLS())
		}, clientauth.Expired},
		{"not yet valid", func(e *env) *tls.Certificate {
			return new(e.ca.Issue("early", pkitest.Valid(24*time.Hour, 48*time.Hour)).TLS())
		}, clientauth.NotYetValid},
		{"revoked by CRL", func(e *env) *tls.Certificate { return new(e.revoked.TLS()) }, clientauth.Revoked},
		{"unknown CA", func(e *env) *tls.Certificate { return new(e.other.Issue("eve").TLS()) }, clientauth.UnknownCA},
		{"intermediate-signed, chain sent", func(e *env) *tls.Certificate { return new(e.inter.Issue("bob").TLS()) }, clientauth.OK},
		{"intermediate-signed, leaf only", func(e *env) *tls.Certificate { return new(e.inter.Issue("bob").LeafOnly()) }, clientauth.UnknownCA},
		{"serverAuth-only EKU", func(e *env) *tls.Certificate {
			return new(e.ca.Issue("srv", pkitest.EKU(x509.ExtKeyUsageServerAuth)).TLS())
		}, clientauth.BadUsage},
		{"CA certificate as leaf", func(e *env) *tls.Certificate {
			return &tls.Certificate{Certificate: [][]byte{e.ca.Cert.Raw}, PrivateKey: e.ca.Key, Leaf: e.ca.Cert}
		}, clientauth.BadUsage},
		{"wrong key", func(e *env) *tls.Certificate {
			c := e.ca.Issue("mallet").TLS()
			k, err := pki.NewKey(e.ca.KeyType)
			if err != nil {
				e.t.Fatal(err)
			}
			c.PrivateKey = k
			return &c
		}, clientauth.BadSignature},
	}
}

// TestMutual asserts the reason code of every client certificate case in the log line
// and the metric of a mutual HTTPS listener, and the TLS alert the client gets for it
// (SPEC §1's table).
func TestMutual(t *testing.T) {
	matrix(t, func(t *testing.T, version uint16, kt pki.KeyType) {
		e := newEnv(t, kt)
		for _, tc := range clientCases() {
			t.Run(tc.name, func(t *testing.T) {
				e.t = t
				counter := e.metrics.Handshakes.WithLabelValues("mutual", "mutual", "failure", string(tc.reason))
				before := testutil.ToFloat64(counter)
				got, err := e.get("mutual", version, tc.cert(e), nil, false)
				if tc.reason == clientauth.OK {
					if err != nil {
						t.Fatalf("request failed: %v", err)
					}
					if v := got.Headers["X-Client-Verify"]; v != "SUCCESS" {
						t.Fatalf("X-Client-Verify = %q, want SUCCESS", v)
					}
					return
				}
				if err == nil {
					t.Fatalf("request succeeded (status %d), want refusal with %s", got.Status, tc.reason)
				}
				if want := specAlert(tc.reason, version); !strings.Contains(err.Error(), "remote error: tls: "+want) {
					t.Fatalf("client error %q, want the alert %q of SPEC §1 for %s", err, want, tc.reason)
				}
				line := e.sink.Next(t, map[string]any{"msg": "handshake", "listener": "mutual"})
				if line["reason"] != string(tc.reason) {
					t.Fatalf("log reason = %v, want %s (line %v)", line["reason"], tc.reason, line)
				}
				if n := testutil.ToFloat64(counter) - before; n != 1 {
					t.Fatalf("handshakes{reason=%s} grew by %v, want 1", tc.reason, n)
				}
			})
		}
	})
}

// specAlert is the text crypto/tls gives a client for the TLS alert that SPEC §1's
// table names for reason r (clientauth.Reason.Alert, one version picked).
func specAlert(r clientauth.Reason, version uint16) string {
	alert := r.Alert()
	if r == clientauth.NoClientCert {
		alert = map[uint16]string{tls.VersionTLS12: "handshake_failure", tls.VersionTLS13: "certificate_required"}[version]
	}
	return map[string]string{
		"certificate_required": "certificate required",
		"handshake_failure":    "handshake failure",
		"unknown_ca":           "unknown certificate authority",
		"certificate_expired":  "expired certificate",
		"bad_certificate":      "bad certificate",
		"decrypt_error":        "error decrypting message",
	}[alert]
}

// TestOptional asserts X-Client-Verify: the optional listener serves every client and
// tells the backend NONE, SUCCESS or FAILED:<reason>.
func TestOptional(t *testing.T) {
	matrix(t, func(t *testing.T, version uint16, kt pki.KeyType) {
		e := newEnv(t, kt)
		for _, tc := range clientCases() {
			if tc.reason == clientauth.BadSignature {
				continue // the handshake itself fails: covered by TestMutual
			}
			t.Run(tc.name, func(t *testing.T) {
				e.t = t
				spoof := http.Header{"X-Client-Verify": {"SUCCESS"}, "X-Client-Cert-Subject": {"CN=admin"}}
				got, err := e.get("optional", version, tc.cert(e), spoof, false)
				if err != nil {
					t.Fatalf("request failed: %v", err)
				}
				want := clientauth.Verdict{Reason: tc.reason}.Header()
				if tc.reason == clientauth.OK {
					want = "SUCCESS"
				}
				if v := got.Headers["X-Client-Verify"]; v != want {
					t.Fatalf("X-Client-Verify = %q, want %q", v, want)
				}
				subject, hasSubject := got.Headers["X-Client-Cert-Subject"]
				if want != "SUCCESS" && hasSubject {
					t.Fatalf("unverified client forwarded with subject %q", subject)
				}
				if want == "SUCCESS" && subject == "CN=admin" {
					t.Fatal("spoofed subject reached the backend")
				}
			})
		}
	})
}

// TestTCPSSLMutual relays bytes for a verified client and refuses one without a
// certificate, with the reason in the log.
func TestTCPSSLMutual(t *testing.T) {
	matrix(t, func(t *testing.T, version uint16, kt pki.KeyType) {
		e := newEnv(t, kt)
		good := e.ca.Issue("alice").TLS()
		if got, err := tcpEcho(e, version, &good, "ping\n"); err != nil || got != "ping\n" {
			t.Fatalf("echo = %q, %v; want ping", got, err)
		}
		line := e.sink.Next(t, map[string]any{"msg": "connection", "listener": "tcpssl"})
		if line["verify"] != "SUCCESS" || line["client_subject"] != "CN=alice" || line["bytes_in"] != float64(5) {
			t.Fatalf("connection line = %v", line)
		}
		if _, err := tcpEcho(e, version, nil, "ping\n"); err == nil {
			t.Fatal("client without a certificate got an answer")
		}
		line = e.sink.Next(t, map[string]any{"msg": "handshake", "listener": "tcpssl"})
		if line["reason"] != string(clientauth.NoClientCert) {
			t.Fatalf("reason = %v, want no_client_cert", line["reason"])
		}
	})
}

// tcpEcho sends msg over TLS to the tcpssl listener, half-closes, and reads the answer.
func tcpEcho(e *env, version uint16, cert *tls.Certificate, msg string) (string, error) {
	c, err := tls.Dial("tcp", e.addr("tcpssl"), e.tlsConfig(version, cert))
	if err != nil {
		return "", err
	}
	defer c.Close()
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	if err := c.CloseWrite(); err != nil {
		return "", err
	}
	var b []byte
	buf := make([]byte, 1024)
	for {
		n, err := c.Read(buf)
		b = append(b, buf[:n]...)
		if err != nil {
			if len(b) > 0 {
				return string(b), nil
			}
			return "", err
		}
	}
}

// TestClientExpiryHistogram: presented client certificates are observed by days to
// expiry, refused ones too.
func TestClientExpiryHistogram(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	soon := e.ca.Issue("soon", pkitest.Valid(-time.Hour, 5*24*time.Hour))
	if _, err := e.get("mutual", tls.VersionTLS13, new(soon.TLS()), nil, false); err != nil {
		t.Fatal(err)
	}
	if _, err := e.get("mutual", tls.VersionTLS13, new(e.revoked.TLS()), nil, false); err == nil {
		t.Fatal("revoked served")
	}
	e.sink.Next(t, map[string]any{"msg": "handshake", "listener": "mutual"})
	if n := testutil.CollectAndCount(e.metrics.ClientExpiry, "tlsgate_client_certificate_days_to_expiry"); n != 1 {
		t.Fatalf("%d series", n)
	}
	out, err := testutil.CollectAndFormat(e.metrics.ClientExpiry, expfmt.TypeTextPlain, "tlsgate_client_certificate_days_to_expiry")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`le="7"} 1`, `_count{listener="mutual"} 2`} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("histogram lacks %q:\n%s", want, out)
		}
	}
}
