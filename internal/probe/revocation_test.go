package probe_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
	"tlsgate/internal/probe"
	"tlsgate/internal/proxytest"
)

// TestServerRevocationSources: probe fetches the CRL the server certificate names and
// asks its OCSP responder, and fails the handshake when either says revoked.
func TestServerRevocationSources(t *testing.T) {
	ca := pkitest.New(t, "root", pki.ECDSAP256)
	var crlRevoked, ocspRevoked atomic.Bool
	var leaf *pkitest.Leaf
	responder := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/crl" {
			if crlRevoked.Load() {
				_, _ = w.Write(ca.CRL(time.Hour, leaf.Cert))
			} else {
				_, _ = w.Write(ca.CRL(time.Hour))
			}
			return
		}
		body, _ := io.ReadAll(r.Body)
		req, err := ocsp.ParseRequest(body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		tmpl := ocsp.Response{Status: ocsp.Good, SerialNumber: req.SerialNumber, ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(time.Hour)}
		if ocspRevoked.Load() {
			tmpl.Status, tmpl.RevokedAt = ocsp.Revoked, time.Now().Add(-time.Minute)
		}
		resp, err := ocsp.CreateResponse(ca.Cert, ca.Cert, tmpl, ca.Key)
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		_, _ = w.Write(resp)
	}))
	defer responder.Close()
	leaf = ca.Issue("localhost", pkitest.Server("localhost"), pkitest.CRLURL(responder.URL+"/crl"), pkitest.OCSPURL(responder.URL+"/ocsp"))
	addr := tlsServer(t, leaf.TLS())
	for _, tc := range []struct {
		name        string
		crl, ocsp   bool
		ok          bool
		failedCheck string
	}{
		{"good", false, false, true, ""},
		{"revoked in the CRL", true, false, false, "CRL distribution point"},
		{"revoked by OCSP", false, true, false, "OCSP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			crlRevoked.Store(tc.crl)
			ocspRevoked.Store(tc.ocsp)
			tg, _ := probe.ParseTarget(addr)
			roots := x509.NewCertPool()
			roots.AddCert(ca.Cert)
			var chain probe.Step
			res := probe.Run(context.Background(), probe.Options{Target: tg, Roots: roots, ServerName: "localhost", Timeout: 5 * time.Second},
				&probe.Trace{Step: func(s probe.Step) {
					if s.Kind == "server_chain" {
						chain = s
					}
				}})
			if res.OK != tc.ok {
				t.Fatalf("result %+v; checks %+v", res, chain.Checks)
			}
			if tc.failedCheck != "" && (!failedCheck(chain, tc.failedCheck) || !strings.Contains(res.Verdict, "revoked")) {
				t.Fatalf("verdict %q, checks %+v", res.Verdict, chain.Checks)
			}
		})
	}
}

// TestUnusableCRLIsNamed: a --crl file probe cannot use (not a CRL, a delta CRL, …) is
// named in the server chain's checks, not dropped in silence.
func TestUnusableCRLIsNamed(t *testing.T) {
	ca := pkitest.New(t, "root", pki.ECDSAP256)
	leaf := ca.Issue("localhost", pkitest.Server("localhost"))
	addr := tlsServer(t, leaf.TLS())
	tg, _ := probe.ParseTarget(addr)
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	var chain probe.Step
	probe.Run(context.Background(), probe.Options{Target: tg, Roots: roots, ServerName: "localhost", Timeout: 5 * time.Second,
		CRLs: [][]byte{ca.CRL(time.Hour), []byte("not a CRL")}},
		&probe.Trace{Step: func(s probe.Step) {
			if s.Kind == "server_chain" {
				chain = s
			}
		}})
	for _, c := range chain.Checks {
		if c.Status == probe.Warn && strings.Contains(c.Detail, "--crl file 2 is not used: ") {
			return
		}
	}
	t.Fatalf("no check names the unusable --crl file: %+v", chain.Checks)
}

// tlsServer serves TLS with cert on a loopback port until the test ends: handshakes,
// then reads until the client closes.
func tlsServer(t *testing.T, cert tls.Certificate) string {
	t.Helper()
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	return proxytest.Raw(t, func(c net.Conn) {
		tc := tls.Server(c, cfg)
		if tc.Handshake() == nil {
			_, _ = io.Copy(io.Discard, tc)
			_ = tc.Close()
		}
	})
}
