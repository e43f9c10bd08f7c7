package pki_test

import (
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"tlsgate/internal/certfile"
	"tlsgate/internal/pki"
	"tlsgate/internal/revocation"
	"tlsgate/internal/tooltest"
)

func newDir(t *testing.T, intermediate bool) *pki.Dir {
	t.Helper()
	d, err := pki.Init(filepath.Join(t.TempDir(), "pki"), pki.InitOptions{Name: "Test CA", Intermediate: intermediate, CRLURL: "http://crl.example/ca.crl"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func readCerts(t *testing.T, path string) []*x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := certfile.ParseCertificates(b)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// TestIssuedCertificates checks usage, SKI/AKI, CDP, chain and file modes.
func TestIssuedCertificates(t *testing.T) {
	for _, inter := range []bool{false, true} {
		t.Run(fmt.Sprintf("intermediate=%v", inter), func(t *testing.T) {
			d := newDir(t, inter)
			srv, err := d.Issue(pki.UsageServer, "www", pki.IssueOptions{})
			if err != nil {
				t.Fatal(err)
			}
			cli, err := d.Issue(pki.UsageClient, "alice", pki.IssueOptions{Emails: []string{"a@example.org"}})
			if err != nil {
				t.Fatal(err)
			}
			if srv.Cert.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth || len(srv.Cert.ExtKeyUsage) != 1 || srv.Cert.DNSNames[0] != "www" {
				t.Errorf("server EKU %v, DNS %v", srv.Cert.ExtKeyUsage, srv.Cert.DNSNames)
			}
			if cli.Cert.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth || len(cli.Cert.ExtKeyUsage) != 1 {
				t.Errorf("client EKU %v", cli.Cert.ExtKeyUsage)
			}
			chain := readCerts(t, filepath.Join(d.Path, cli.CertFile))
			wantLen := 1
			if inter {
				wantLen = 2
			}
			if len(chain) != wantLen {
				t.Fatalf("chain of %d certificates, want %d", len(chain), wantLen)
			}
			issuer := chain[len(chain)-1]
			if inter {
				root := readCerts(t, filepath.Join(d.Path, pki.RootCert))[0]
				if err := issuer.CheckSignatureFrom(root); err != nil {
					t.Fatal(err)
				}
			} else {
				issuer = readCerts(t, filepath.Join(d.Path, pki.RootCert))[0]
			}
			if len(cli.Cert.SubjectKeyId) == 0 || string(cli.Cert.AuthorityKeyId) != string(issuer.SubjectKeyId) {
				t.Error("SKI/AKI missing or not the issuer's")
			}
			if len(cli.Cert.CRLDistributionPoints) != 1 || cli.Cert.CRLDistributionPoints[0] != "http://crl.example/ca.crl" {
				t.Errorf("CDP %v", cli.Cert.CRLDistributionPoints)
			}
			if cli.Cert.SerialNumber.Sign() <= 0 || cli.Cert.SerialNumber.BitLen() < 64 {
				t.Errorf("serial %v is not a large positive random number", cli.Cert.SerialNumber)
			}
			for _, f := range []string{cli.KeyFile, "ca.key"} {
				st, err := os.Stat(filepath.Join(d.Path, f))
				if err != nil {
					t.Fatal(err)
				}
				if st.Mode().Perm() != 0o600 {
					t.Errorf("%s mode %v, want 0600", f, st.Mode().Perm())
				}
			}
		})
	}
}

// TestConcurrentIssue: parallel issuance never reuses a serial or loses an index entry.
func TestConcurrentIssue(t *testing.T) {
	d := newDir(t, false)
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			// Separate handles, as separate processes would have.
			d2, err := pki.Open(d.Path, nil)
			if err != nil {
				errs <- err
				return
			}
			defer d2.Close()
			_, err = d2.Issue(pki.UsageClient, fmt.Sprintf("c%d", i), pki.IssueOptions{})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	es, err := d.List()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range es {
		if seen[e.Serial] {
			t.Fatalf("serial %s issued twice", e.Serial)
		}
		seen[e.Serial] = true
	}
	if len(es) != n {
		t.Fatalf("index has %d entries, want %d", len(es), n)
	}
}

// TestRevokeAndCRL: revocation by file and by serial, CRL numbers increase, and the CRL
// verifies and lists the revoked serials for tlsgate's revocation package.
func TestRevokeAndCRL(t *testing.T) {
	d := newDir(t, true)
	a, _ := d.Issue(pki.UsageClient, "a", pki.IssueOptions{})
	b, _ := d.Issue(pki.UsageClient, "b", pki.IssueOptions{})
	if _, err := d.Revoke(filepath.Join(d.Path, a.CertFile), "keyCompromise"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Revoke(strings.ToLower(b.Serial[:2])+":"+b.Serial[2:], ""); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Revoke(b.Serial, ""); err == nil || !strings.Contains(err.Error(), "already revoked") {
		t.Fatalf("second revoke: %v", err)
	}
	if _, err := d.Revoke("ABCDEF", ""); err == nil || !strings.Contains(err.Error(), "not issued by this PKI") {
		t.Fatalf("unknown serial: %v", err)
	}
	n1, err := d.CRL(7)
	if err != nil {
		t.Fatal(err)
	}
	n2, err := d.CRL(7)
	if err != nil || n2 != n1+1 {
		t.Fatalf("CRL numbers %d then %d (%v)", n1, n2, err)
	}
	data, err := os.ReadFile(filepath.Join(d.Path, pki.CRLFile))
	if err != nil {
		t.Fatal(err)
	}
	issuers := append(readCerts(t, filepath.Join(d.Path, pki.RootCert)), readCerts(t, filepath.Join(d.Path, pki.InterCert))...)
	crls, err := revocation.ParseFile(data, issuers)
	if err != nil {
		t.Fatal(err)
	}
	if len(crls) != 2 {
		t.Fatalf("%d CRLs, want the intermediate's and the root's", len(crls))
	}
	l := crls[0].List
	if l.Number.Int64() != n2 || l.NextUpdate.Sub(l.ThisUpdate) != 7*24*time.Hour || len(l.RevokedCertificateEntries) != 2 {
		t.Fatalf("CRL number %v, window %v, %d entries", l.Number, l.NextUpdate.Sub(l.ThisUpdate), len(l.RevokedCertificateEntries))
	}
	if l.RevokedCertificateEntries[0].ReasonCode != 1 {
		t.Errorf("reason %d, want keyCompromise (1)", l.RevokedCertificateEntries[0].ReasonCode)
	}
	set := revocation.NewSet(crls, false)
	chain := append([]*x509.Certificate{a.Cert}, issuers[1], issuers[0])
	if err := set.CheckChain(chain, time.Now()); err != revocation.ErrRevoked {
		t.Fatalf("CheckChain = %v, want revoked", err)
	}
}

// TestOpenSSLVerify: openssl verify -crl_check_all accepts what the PKI issued and
// rejects what it revoked.
func TestOpenSSLVerify(t *testing.T) {
	openssl := tooltest.Path(t, "openssl")
	for _, inter := range []bool{false, true} {
		t.Run(fmt.Sprintf("intermediate=%v", inter), func(t *testing.T) {
			d := newDir(t, inter)
			good, _ := d.Issue(pki.UsageClient, "good", pki.IssueOptions{})
			bad, _ := d.Issue(pki.UsageClient, "bad", pki.IssueOptions{})
			srv, _ := d.Issue(pki.UsageServer, "srv", pki.IssueOptions{})
			if _, err := d.Revoke(bad.Serial, "superseded"); err != nil {
				t.Fatal(err)
			}
			if _, err := d.CRL(7); err != nil {
				t.Fatal(err)
			}
			verify := func(is *pki.Issued, purpose string) (string, error) {
				args := []string{"verify", "-crl_check_all", "-purpose", purpose, "-CAfile", filepath.Join(d.Path, pki.RootCert), "-CRLfile", filepath.Join(d.Path, pki.CRLFile)}
				if inter {
					args = append(args, "-untrusted", filepath.Join(d.Path, pki.InterCert))
				}
				out, err := exec.Command(openssl, append(args, filepath.Join(d.Path, is.CertFile))...).CombinedOutput()
				return string(out), err
			}
			if out, err := verify(good, "sslclient"); err != nil {
				t.Fatalf("good client rejected: %s", out)
			}
			if out, err := verify(srv, "sslserver"); err != nil {
				t.Fatalf("server rejected: %s", out)
			}
			if out, err := verify(srv, "sslclient"); err == nil {
				t.Fatalf("server certificate accepted for client auth: %s", out)
			}
			out, err := verify(bad, "sslclient")
			if err == nil || !strings.Contains(out, "certificate revoked") {
				t.Fatalf("revoked client: %v %s", err, out)
			}
		})
	}
}

func TestBadUse(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	if _, err := pki.Open(dir, nil); err == nil || !strings.Contains(err.Error(), "no PKI here") {
		t.Fatalf("open before init: %v", err)
	}
	d := newDir(t, false)
	if _, err := pki.Init(d.Path, pki.InitOptions{Name: "again"}, nil); err == nil || !strings.Contains(err.Error(), "already holds a PKI") {
		t.Fatalf("init twice: %v", err)
	}
	for _, name := range []string{"../escape", "a/b", ".hidden", ""} {
		if _, err := d.Issue(pki.UsageClient, name, pki.IssueOptions{}); err == nil {
			t.Errorf("name %q accepted", name)
		}
	}
	if _, err := d.Issue(pki.UsageClient, "dup", pki.IssueOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Issue(pki.UsageClient, "dup", pki.IssueOptions{}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("duplicate name: %v", err)
	}
	if _, err := d.Revoke("x", "maybe"); err == nil || !strings.Contains(err.Error(), "unknown reason") {
		t.Fatalf("bad reason: %v", err)
	}
}

// TestListSerialsEvenLength: an index written with serials as big.Int.Text(16) printed
// them (leading zero dropped) lists them as openssl prints them.
func TestListSerialsEvenLength(t *testing.T) {
	d, err := pki.Init(filepath.Join(t.TempDir(), "pki"), pki.InitOptions{Name: "Test CA"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	old := `{"crl_number": 0, "certs": [{"serial": "abc", "name": "old", "kind": "client", "subject": "CN=old", "not_after": "2030-01-01T00:00:00Z"}]}`
	if err := os.WriteFile(filepath.Join(d.Path, "index.json"), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	es, err := d.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].Serial != "0ABC" {
		t.Fatalf("entries %+v, want serial 0ABC", es)
	}
}

// TestIssueWithinCAValidity: a certificate asked for longer than its CA lives ends when
// the CA ends (root or intermediate), and a CA that has expired issues nothing.
func TestIssueWithinCAValidity(t *testing.T) {
	for _, inter := range []bool{false, true} {
		t.Run(fmt.Sprintf("intermediate=%v", inter), func(t *testing.T) {
			now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
			clock := func() time.Time { return now }
			d, err := pki.Init(filepath.Join(t.TempDir(), "pki"), pki.InitOptions{Name: "Short CA", Days: 30, Intermediate: inter}, clock)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			is, err := d.Issue(pki.UsageClient, "alice", pki.IssueOptions{})
			if err != nil {
				t.Fatal(err)
			}
			issuer := readCerts(t, filepath.Join(d.Path, is.CertFile))
			ca := issuer[len(issuer)-1]
			if !inter {
				ca = readCerts(t, filepath.Join(d.Path, pki.RootCert))[0]
			}
			if is.Cert.NotAfter.After(ca.NotAfter) {
				t.Fatalf("alice's certificate ends %v, after its CA's %v", is.Cert.NotAfter, ca.NotAfter)
			}
			if short, err := d.Issue(pki.UsageClient, "bob", pki.IssueOptions{Days: 7}); err != nil || !short.Cert.NotAfter.Equal(now.AddDate(0, 0, 7)) {
				t.Fatalf("a shorter certificate: %v, %v; want it to end in 7 days", err, short)
			}
			now = now.AddDate(0, 0, 31)
			if _, err := d.Issue(pki.UsageClient, "carol", pki.IssueOptions{}); err == nil || !strings.Contains(err.Error(), "expired") {
				t.Fatalf("issue from an expired CA: %v, want an error saying it expired", err)
			}
		})
	}
}
