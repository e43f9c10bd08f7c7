package clientauth_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"tlsgate/internal/clientauth"
	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
	"tlsgate/internal/revocation"
)

// TestVerify runs the pipeline without TLS, as `cert verify` and probe will.
func TestVerify(t *testing.T) {
	ca := pkitest.New(t, "root", pki.ECDSAP256)
	inter := ca.Intermediate("inter")
	revokedLeaf := inter.Issue("revoked")
	revokedInter := ca.Intermediate("revoked inter")
	rootCRL, err := revocation.Parse(ca.CRL(time.Hour, revokedInter.Cert), ca.Chain)
	if err != nil {
		t.Fatal(err)
	}
	interCRL, err := revocation.Parse(inter.CRL(time.Hour, revokedLeaf.Cert), ca.Chain)
	if err != nil {
		t.Fatal(err)
	}
	v := &clientauth.Verifier{
		Roots: ca.Pool(),
		CRLs:  revocation.NewSet([]*revocation.CRL{rootCRL, interCRL}, false),
		Allow: &clientauth.AllowList{OU: []string{"ok"}, CN: []string{"revoked"}},
		Now:   func() time.Time { return pkitest.Now },
	}
	for _, tc := range []struct {
		name  string
		certs []*x509.Certificate
		want  clientauth.Reason
	}{
		{"ok via intermediate", inter.Issue("a", pkitest.OU("ok")).Chain, clientauth.OK},
		{"none", nil, clientauth.NoClientCert},
		{"revoked leaf of an intermediate", revokedLeaf.Chain, clientauth.Revoked},
		{"leaf under a revoked intermediate", revokedInter.Issue("b", pkitest.OU("ok")).Chain, clientauth.Revoked},
		{"not on the allow-list", inter.Issue("c", pkitest.OU("other")).Chain, clientauth.NotAllowed},
		{"expired", inter.Issue("d", pkitest.Valid(-2*time.Hour, -time.Hour)).Chain, clientauth.Expired},
		{"not yet valid", inter.Issue("e", pkitest.Valid(time.Hour, 2*time.Hour)).Chain, clientauth.NotYetValid},
		{"server EKU", inter.Issue("f", pkitest.EKU(x509.ExtKeyUsageServerAuth)).Chain, clientauth.BadUsage},
		{"CA as leaf", []*x509.Certificate{inter.Cert}, clientauth.BadUsage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(tc.certs)
			if got := clientauth.ReasonOf(err); got != tc.want {
				t.Fatalf("reason = %q (%v), want %q", got, err, tc.want)
			}
		})
	}
}

// TestReasonTable: every reason has a meaning, and a label distinct from the others.
func TestReasonTable(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range clientauth.Reasons() {
		if r.Text() == "" || r.Fix() == "" || seen[r.Label()] || r.Label() == "ok" {
			t.Errorf("reason %q: text %q, label %q", r, r.Text(), r.Label())
		}
		seen[r.Label()] = true
	}
	if clientauth.OK.Label() != "ok" {
		t.Error("OK label")
	}
}

// TestHandshakeReasonUntyped runs a real handshake for each entry of the table of
// untyped crypto/tls errors, so a change of wording in Go fails here.
func TestHandshakeReasonUntyped(t *testing.T) {
	ca := pkitest.New(t, "root", pki.ECDSAP256)
	srv := ca.Issue("localhost", pkitest.Server("localhost")).TLS()
	client := ca.Issue("client").TLS()
	wrongKey := client
	wrongKey.PrivateKey = pkitest.Key(t, pki.ECDSAP256)
	cases := []struct {
		name   string
		server *tls.Config
		client *tls.Config
		raw    string // sent instead of a TLS handshake
		want   clientauth.Reason
	}{
		{"no client certificate", &tls.Config{ClientAuth: tls.RequireAnyClientCert}, &tls.Config{}, "", clientauth.NoClientCert},
		{"bad CertificateVerify", &tls.Config{ClientAuth: tls.RequireAnyClientCert}, &tls.Config{Certificates: []tls.Certificate{wrongKey}}, "", clientauth.BadSignature},
		{"version", &tls.Config{MinVersion: tls.VersionTLS13}, &tls.Config{MaxVersion: tls.VersionTLS12}, "", clientauth.ProtocolMismatch},
		{"cipher", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}},
			&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}, "", clientauth.ProtocolMismatch},
		{"alpn", &tls.Config{NextProtos: []string{"h2"}}, &tls.Config{NextProtos: []string{"imap"}}, "", clientauth.ProtocolMismatch},
		{"plain HTTP on a TLS port", &tls.Config{}, nil, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", clientauth.NotTLS},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.server.Certificates = []tls.Certificate{srv}
			cc, sc := net.Pipe()
			errc := make(chan error, 1)
			go func() {
				defer cc.Close()
				if tc.client == nil {
					_, err := cc.Write([]byte(tc.raw))
					errc <- err
					return
				}
				tc.client.RootCAs, tc.client.ServerName = ca.Pool(), "localhost"
				c := tls.Client(cc, tc.client)
				err := c.Handshake()
				if err == nil {
					_, err = c.Read(make([]byte, 1)) // TLS 1.3: the rejection arrives here
				}
				errc <- err
			}()
			err := tls.Server(sc, tc.server).Handshake()
			sc.Close()
			<-errc
			if err == nil {
				t.Fatal("handshake succeeded")
			}
			if got := clientauth.HandshakeReason(err, time.Now()); got != tc.want {
				t.Fatalf("HandshakeReason(%q) = %q, want %q", err, got, tc.want)
			}
		})
	}
}

func TestErrorUnwraps(t *testing.T) {
	inner := errors.New("inner")
	err := error(&clientauth.Error{Reason: clientauth.Revoked, Err: inner})
	if !errors.Is(err, inner) || !strings.Contains(err.Error(), "revoked") {
		t.Fatal(err)
	}
}

// TestExpiryGrace: a leaf past its NotAfter passes within the grace, flagged InGrace,
// with revocation and the allow-list still checked; past the grace, or not yet valid,
// it is refused as without one.
func TestExpiryGrace(t *testing.T) {
	ca := pkitest.New(t, "root", pki.ECDSAP256)
	inter := ca.Intermediate("inter")
	expiredRevoked := inter.Issue("gone", pkitest.OU("ok"), pkitest.Valid(-72*time.Hour, -24*time.Hour))
	interCRL, err := revocation.Parse(inter.CRL(time.Hour, expiredRevoked.Cert), ca.Chain)
	if err != nil {
		t.Fatal(err)
	}
	expiredInter := ca.Intermediate("expired inter", pkitest.Valid(-96*time.Hour, -time.Hour)) // the grace is for leaves only
	v := &clientauth.Verifier{
		Roots: ca.Pool(), CRLs: revocation.NewSet([]*revocation.CRL{interCRL}, true),
		Allow: &clientauth.AllowList{OU: []string{"ok"}}, Now: func() time.Time { return pkitest.Now },
		ExpiryGrace: 48 * time.Hour,
	}
	for _, tc := range []struct {
		name  string
		leaf  *pkitest.Leaf
		want  clientauth.Reason
		grace bool
	}{
		{"valid", inter.Issue("a", pkitest.OU("ok")), clientauth.OK, false},
		{"expired a day ago", inter.Issue("b", pkitest.OU("ok"), pkitest.Valid(-72*time.Hour, -24*time.Hour)), clientauth.OK, true},
		{"expired three days ago", inter.Issue("c", pkitest.OU("ok"), pkitest.Valid(-96*time.Hour, -72*time.Hour)), clientauth.Expired, false},
		{"not yet valid", inter.Issue("d", pkitest.OU("ok"), pkitest.Valid(time.Hour, 2*time.Hour)), clientauth.NotYetValid, false},
		{"expired a day ago and revoked", expiredRevoked, clientauth.Revoked, false},
		{"expired a day ago, not on the allow-list", inter.Issue("e", pkitest.OU("other"), pkitest.Valid(-72*time.Hour, -24*time.Hour)), clientauth.NotAllowed, false},
		{"expired a day ago, under an expired intermediate", expiredInter.Issue("f", pkitest.OU("ok"), pkitest.Valid(-72*time.Hour, -24*time.Hour)), clientauth.Expired, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chain, err := v.Verify(tc.leaf.Chain)
			if got := clientauth.ReasonOf(err); got != tc.want {
				t.Fatalf("reason = %q (%v), want %q", got, err, tc.want)
			}
			if grace := err == nil && v.InGrace(chain[0]); grace != tc.grace {
				t.Fatalf("in grace = %v, want %v", grace, tc.grace)
			}
		})
	}
}
