package server_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
)

// TestClientOCSP: with ocsp on a CA bundle, client certificates naming a responder are
// checked with it: revoked is refused, good is served (and cached), an unreachable
// responder refuses under fail_closed and serves under fail_open.
func TestClientOCSP(t *testing.T) {
	var status atomic.Int32 // ocsp status, or -1 for an HTTP 500
	var asked atomic.Int32
	var ca *pkitest.CA
	responder := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		if status.Load() < 0 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		body, _ := io.ReadAll(r.Body)
		req, err := ocsp.ParseRequest(body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		tmpl := ocsp.Response{Status: int(status.Load()), SerialNumber: req.SerialNumber, ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(time.Hour), RevokedAt: time.Now().Add(-time.Minute)}
		resp, err := ocsp.CreateResponse(ca.Cert, ca.Cert, tmpl, ca.Key)
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		_, _ = w.Write(resp)
	}))
	defer responder.Close()
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		ca = e.ca
		return "  - {id: ocsp_closed, ca: ca.crt, ocsp: true}\n  - {id: ocsp_open, ca: ca.crt, ocsp: true, ocsp_policy: fail_open}\n",
			"  - {id: oc, protocol: https, listen: 127.0.0.1:0, target_group: web, ssl: {mode: mutual, server_certificates: [site], ca_certificate: ocsp_closed}}\n" +
				"  - {id: oo, protocol: https, listen: 127.0.0.1:0, target_group: web, ssl: {mode: mutual, server_certificates: [site], ca_certificate: ocsp_open}}\n"
	})
	issue := func(name string) *tls.Certificate {
		return new(e.ca.Issue(name, pkitest.OCSPURL(responder.URL)).TLS())
	}
	for _, tc := range []struct {
		name     string
		status   int
		listener string
		reason   string
	}{
		{"good", ocsp.Good, "oc", ""},
		{"revoked", ocsp.Revoked, "oc", "revoked"},
		{"responder down, fail_closed", -1, "oc", "ocsp_unavailable"},
		{"responder down, fail_open", -1, "oo", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			status.Store(int32(tc.status))
			cert := issue(fmt.Sprintf("client-%d", tc.status+10))
			_, err := e.get(tc.listener, tls.VersionTLS13, cert, nil, false)
			if (err == nil) != (tc.reason == "") {
				t.Fatalf("err %v, want reason %q", err, tc.reason)
			}
			if tc.reason != "" {
				if line := e.sink.Next(t, map[string]any{"msg": "handshake", "listener": tc.listener}); line["reason"] != tc.reason {
					t.Fatalf("line %v", line)
				}
				return
			}
			if tc.status == ocsp.Good {
				before := asked.Load()
				if _, err := e.get(tc.listener, tls.VersionTLS13, cert, nil, false); err != nil {
					t.Fatal(err)
				}
				if asked.Load() != before {
					t.Fatal("the good answer was not cached")
				}
				// A reload with the same CA bundle keeps the cache.
				if err := e.srv.Reload(); err != nil {
					t.Fatal(err)
				}
				if err := e.waitReload(); err != nil {
					t.Fatal(err)
				}
				if _, err := e.get(tc.listener, tls.VersionTLS13, cert, nil, false); err != nil {
					t.Fatal(err)
				}
				if asked.Load() != before {
					t.Fatal("a reload emptied the OCSP cache")
				}
			}
		})
	}
}

// TestOCSPStapling: a server certificate with ocsp_staple gets its responder's answer
// stapled to handshakes from the start.
func TestOCSPStapling(t *testing.T) {
	var ca *pkitest.CA
	responder := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, err := ocsp.ParseRequest(body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		resp, _ := ocsp.CreateResponse(ca.Cert, ca.Cert, ocsp.Response{Status: ocsp.Good, SerialNumber: req.SerialNumber,
			ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(time.Hour)}, ca.Key)
		_, _ = w.Write(resp)
	}))
	defer responder.Close()
	var leafCert *pkitest.Leaf
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		ca = e.inter
		leafCert = e.inter.Issue("stapled", pkitest.Server("localhost"), pkitest.OCSPURL(responder.URL))
		leafCert.WritePair(t, e.dir, "stapled") // leaf, then the intermediate
		return "  - {id: stapled, cert: stapled.crt, key: stapled.key, ocsp_staple: true}\n",
			"  - {id: st, protocol: tcp_ssl, listen: 127.0.0.1:0, target_group: echo, ssl: {mode: one_way, server_certificates: [stapled]}}\n"
	})
	c, err := tls.Dial("tcp", e.addr("st"), e.tlsConfig(tls.VersionTLS13, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	staple := c.ConnectionState().OCSPResponse
	r, err := ocsp.ParseResponseForCert(staple, leafCert.Cert, e.inter.Cert)
	if err != nil || r.Status != ocsp.Good {
		t.Fatalf("staple %d bytes: %v", len(staple), err)
	}
}
