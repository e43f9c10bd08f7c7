package server_test

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/url"
	"testing"
	"time"

	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
)

// TestNameConstrainedTenantCA covers S8: a tenant intermediate whose name constraints
// permit only DNS names under .tenant.example (excluding secret.tenant.example), URIs of
// host tenant.example and mailboxes of exactly tenant.example lets in the clients inside
// them and refuses, as unknown_ca, every client with one name outside: a wildcard under
// the excluded subtree (CVE-2025-61727), a URI or mailbox of a subdomain
// (CVE-2026-78664/78665: constraints matched subdomains), a URI with an IPv6 zone
// (CVE-2024-45341). The bundle holds the root; the client sends the intermediate.
func TestNameConstrainedTenantCA(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) { return "", "" })
	key := pkitest.Key(t, pki.ECDSAP256)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(4242), Subject: pkix.Name{CommonName: "tenant CA"},
		NotBefore: pkitest.Now.Add(-time.Hour), NotAfter: pkitest.Now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
		PermittedDNSDomainsCritical: true,
		PermittedDNSDomains:         []string{".tenant.example"},
		ExcludedDNSDomains:          []string{"secret.tenant.example"},
		PermittedURIDomains:         []string{"tenant.example"},
		PermittedEmailAddresses:     []string{"tenant.example"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, e.ca.Cert, key.Public(), e.ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	inter, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	tenant := &pki.CA{Cert: inter, Key: key}
	// The env's CRLs do not cover the tenant CA: give the bundle one of its own.
	crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: pkitest.Now.Add(-time.Hour), NextUpdate: pkitest.Now.Add(24 * time.Hour)}, inter, key)
	if err != nil {
		t.Fatal(err)
	}
	e.writeFile("tenant.crl", pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl}))
	cfg := mustRead(t, e.dir, "tlsgate.yaml")
	e.writeFile("tlsgate.yaml", bytes.Replace(cfg, []byte("crl: [ca.crl, inter.crl]"), []byte("crl: [ca.crl, inter.crl, tenant.crl]"), 1))
	if err := e.waitReload(); err != nil {
		t.Fatal(err)
	}
	issue := func(dns, uri, email string) *tls.Certificate {
		r := pki.Request{CommonName: "tenant client", Usage: pki.UsageClient, Now: pkitest.Now, Key: pkitest.Key(t, pki.ECDSAP256)}
		if dns != "" {
			r.DNS = []string{dns}
		}
		if uri != "" {
			u, err := url.Parse(uri)
			if err != nil {
				t.Fatal(err)
			}
			r.URIs = []*url.URL{u}
		}
		if email != "" {
			r.Emails = []string{email}
		}
		c, k, err := tenant.Issue(r)
		if err != nil {
			t.Fatal(err)
		}
		return &tls.Certificate{Certificate: [][]byte{c.Raw, inter.Raw}, PrivateKey: k, Leaf: c}
	}
	for _, tc := range []struct {
		name            string
		dns, uri, email string
		ok              bool
	}{
		{"inside every constraint", "a.tenant.example", "spiffe://tenant.example/svc/a", "a@tenant.example", true},
		{"DNS outside", "evil.example", "", "", false},
		{"DNS in the excluded subtree", "x.secret.tenant.example", "", "", false},
		{"wildcard over the excluded subtree", "*.secret.tenant.example", "", "", false},
		{"URI of another host", "", "spiffe://evil.example/svc/a", "", false},
		{"URI of a subdomain", "", "spiffe://sub.tenant.example/svc/a", "", false},
		{"URI with an IPv6 zone", "", "https://[fe80::1%25tenant.example]/", "", false},
		{"mailbox of a subdomain", "", "", "a@sub.tenant.example", false},
		{"mailbox of another domain", "", "", "a@evil.example", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			resp, _, err := e.request("mutual", e.tlsConfig(tls.VersionTLS13, issue(tc.dns, tc.uri, tc.email)), nil, false)
			if tc.ok {
				if err != nil || resp.StatusCode != 200 {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("served (%d) a client outside the tenant CA's name constraints", resp.StatusCode)
			}
			line := e.sink.Next(t, map[string]any{"msg": "handshake", "listener": "mutual", "client_subject": "CN=tenant client"})
			if line["reason"] != "unknown_ca" {
				t.Fatalf("line %v, want reason unknown_ca", line)
			}
		})
	}
}
