package server_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
)

// spoofed is every identity header a client might try, in several spellings.
func spoofed() http.Header {
	h := http.Header{}
	for _, name := range []string{
		"X-Client-Verify", "X-Client-Cert", "X-Client-Cert-Subject", "X-Client-Cert-Fingerprint",
		"x-client-cert-san-uri", "X_Client_Verify", "X-Forwarded-Client-Cert",
		"X-Forwarded-Tls-Client-Cert", "X-Forwarded-Tls-Client-Cert-Info", "X-SSL-Client-Verify",
		"X-SSL-Client-S-DN", "Ssl-Client-Cert", "Ssl-Client-Verify", "Client-Cert", "Client-Cert-Chain",
		"X-Amzn-Mtls-Clientcert", "X-ARR-ClientCert",
		// Not identity, but the client's address, which X-Forwarded-For carries, and the
		// rest of the X-Forwarded- family, which describes tlsgate's hop.
		"X-Real-Ip", "True-Client-Ip", "X-Forwarded-Prefix", "X-Forwarded-Port", "x-forwarded-ssl",
		// The same with underscores, which CGI-style backends fold into the dashed names.
		"X_Forwarded_For", "x_forwarded_proto", "X_Forwarded_Host", "X_Forwarded_Prefix", "X_Real_IP", "true_client_ip",
	} {
		h[name] = []string{"SUCCESS", "CN=admin"}
	}
	return h
}

// TestSpoofedIdentityHeaders sends every known identity header on every HTTP entry path
// (one-way, mutual and optional HTTPS over HTTP/1.1 and HTTP/2, plain HTTP) and also
// names them in Connection:. The backend must see only tlsgate's own values.
func TestSpoofedIdentityHeaders(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	alice := e.ca.Issue("alice").TLS()
	cases := []struct {
		name     string
		listener string
		version  uint16
		cert     *tls.Certificate
		h2       bool
		verify   string // X-Client-Verify the backend must see; "" = absent
	}{
		{"one-way h1", "one_way", tls.VersionTLS13, nil, false, "NONE"},
		{"one-way h2", "one_way", tls.VersionTLS13, nil, true, "NONE"},
		{"mutual h1", "mutual", tls.VersionTLS12, &alice, false, "SUCCESS"},
		{"mutual h2", "mutual", tls.VersionTLS13, &alice, true, "SUCCESS"},
		{"optional without certificate", "optional", tls.VersionTLS13, nil, true, "NONE"},
		{"plain http", "plain", 0, nil, false, ""},
	}
	for _, tc := range cases {
		for _, conn := range []bool{false, true} {
			if conn && tc.h2 {
				continue // HTTP/2 has no Connection header; Go's client refuses to send one
			}
			name := tc.name
			if conn {
				name += ", listed in Connection"
			}
			t.Run(name, func(t *testing.T) {
				e.t = t
				h := spoofed()
				if conn {
					h["Connection"] = []string{"keep-alive, X-Client-Verify, X-Forwarded-For, X-Client-Cert-Subject"}
				}
				got, err := e.get(tc.listener, tc.version, tc.cert, h, tc.h2)
				if err != nil {
					t.Fatal(err)
				}
				for name, v := range got.Headers {
					switch {
					case name == "X-Client-Verify":
						if v != tc.verify {
							t.Errorf("X-Client-Verify = %q, want %q", v, tc.verify)
						}
					case v == "SUCCESS" || v == "CN=admin" || v == "SUCCESS, CN=admin":
						t.Errorf("spoofed %s: %q reached the backend", name, v)
					}
				}
				if _, ok := got.Headers["X-Client-Verify"]; !ok && tc.verify != "" {
					t.Errorf("X-Client-Verify missing, want %q", tc.verify)
				}
				if tc.verify == "SUCCESS" && got.Headers["X-Client-Cert-Subject"] != "CN=alice" {
					t.Errorf("subject = %q, want CN=alice", got.Headers["X-Client-Cert-Subject"])
				}
				if got.Headers["X-Forwarded-For"] != "127.0.0.1" {
					t.Errorf("X-Forwarded-For = %q, want 127.0.0.1", got.Headers["X-Forwarded-For"])
				}
			})
		}
	}
}

// TestHTTP2 checks that HTTPS listeners speak HTTP/2 to clients that offer it.
func TestHTTP2(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	tr := &http.Transport{TLSClientConfig: e.tlsConfig(tls.VersionTLS13, nil), ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("https://" + e.addr("one_way") + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("client spoke %s, want HTTP/2", resp.Proto)
	}
	line := e.sink.Next(t, map[string]any{"msg": "request", "listener": "one_way"})
	if line["alpn"] != "h2" || line["status"] != float64(200) {
		t.Fatalf("request line = %v", line)
	}
}

// TestDialects: xfcc and rfc9440 listeners send their format for a verified client,
// and a client-sent XFCC or Client-Cert never survives.
func TestDialects(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		return "", "  - {id: xfcc, protocol: https, listen: 127.0.0.1:0, target_group: web, forward_client_cert: xfcc,\n" +
			"     ssl: {mode: optional, server_certificates: [site], ca_certificate: clients}}\n" +
			"  - {id: rfc9440, protocol: https, listen: 127.0.0.1:0, target_group: web, forward_client_cert: rfc9440,\n" +
			"     ssl: {mode: optional, server_certificates: [site], ca_certificate: clients}}\n"
	})
	alice := new(e.ca.Issue("alice").TLS())
	spoof := http.Header{"X-Forwarded-Client-Cert": {"Hash=forged;Subject=\"CN=admin\""}, "Client-Cert": {":Zm9yZ2Vk:"}}
	for _, tc := range []struct {
		listener string
		cert     *tls.Certificate
		header   string
		want     string // prefix of the header the backend sees; "" = absent
	}{
		{"xfcc", alice, "X-Forwarded-Client-Cert", "Hash="},
		{"xfcc", nil, "X-Forwarded-Client-Cert", ""},
		{"rfc9440", alice, "Client-Cert", ":MII"},
		{"rfc9440", nil, "Client-Cert", ""},
	} {
		t.Run(fmt.Sprintf("%s/cert=%v", tc.listener, tc.cert != nil), func(t *testing.T) {
			e.t = t
			got, err := e.get(tc.listener, tls.VersionTLS13, tc.cert, spoof, false)
			if err != nil {
				t.Fatal(err)
			}
			v, ok := got.Headers[tc.header]
			switch {
			case tc.want == "" && ok:
				t.Fatalf("%s = %q reached the backend", tc.header, v)
			case tc.want != "" && (!strings.HasPrefix(v, tc.want) || strings.Contains(v, "forged") || strings.Contains(v, "Zm9yZ2Vk")):
				t.Fatalf("%s = %q", tc.header, v)
			}
			if _, ok := got.Headers["X-Client-Verify"]; ok {
				t.Fatal("headers dialect sent on a non-headers listener")
			}
		})
	}
}

// TestIdentityHeaders: with forward_client_cert: headers (the default) a verified
// client's backend sees every header of SPEC §4 with its value, over HTTP/1.1 and
// HTTP/2: X-Client-Cert (URL-encoded PEM of the leaf), -Subject, -Issuer, -Serial (as
// openssl prints it), -Fingerprint (SHA-256 hex of the DER), -Not-Before and -Not-After
// (RFC 3339, UTC), -SAN-URI, -SAN-DNS, and X-Client-Proto, X-Forwarded-Proto,
// X-Forwarded-For.
func TestIdentityHeaders(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	sans := pkitest.Option(func(r *pki.Request) { r.DNS = []string{"alice.example.org"} })
	alice := e.ca.Issue("alice", pkitest.URI("spiffe://example.org/ns/a/sa/alice"), sans)
	leaf := alice.Cert
	sum := sha256.Sum256(leaf.Raw)
	serial := fmt.Sprintf("%X", leaf.SerialNumber)
	if len(serial)%2 == 1 {
		serial = "0" + serial
	}
	want := map[string]string{
		"X-Client-Verify":           "SUCCESS",
		"X-Client-Cert-Subject":     "CN=alice",
		"X-Client-Cert-Issuer":      "CN=test root",
		"X-Client-Cert-Serial":      serial,
		"X-Client-Cert-Fingerprint": hex.EncodeToString(sum[:]),
		"X-Client-Cert-Not-Before":  leaf.NotBefore.UTC().Format(time.RFC3339),
		"X-Client-Cert-Not-After":   leaf.NotAfter.UTC().Format(time.RFC3339),
		"X-Client-Cert-SAN-URI":     "spiffe://example.org/ns/a/sa/alice",
		"X-Client-Cert-SAN-DNS":     "alice.example.org",
		"X-Client-Proto":            "TLS 1.3",
		"X-Forwarded-Proto":         "https",
		"X-Forwarded-For":           "127.0.0.1",
	}
	for _, h2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("h2=%v", h2), func(t *testing.T) {
			e.t = t
			got, err := e.get("mutual", tls.VersionTLS13, new(alice.TLS()), nil, h2)
			if err != nil {
				t.Fatal(err)
			}
			for name, v := range want {
				if g := got.Headers[http.CanonicalHeaderKey(name)]; g != v {
					t.Errorf("%s = %q, want %q", name, g, v)
				}
			}
			esc := got.Headers["X-Client-Cert"]
			if strings.ContainsAny(esc, " \n+") {
				t.Errorf("X-Client-Cert %q is not URL-encoded as nginx's $ssl_client_escaped_cert", esc)
			}
			text, err := url.PathUnescape(esc)
			if err != nil {
				t.Fatalf("X-Client-Cert %q: %v", esc, err)
			}
			if b, _ := pem.Decode([]byte(text)); b == nil || !bytes.Equal(b.Bytes, leaf.Raw) {
				t.Errorf("X-Client-Cert %q is not the PEM of the client's leaf", esc)
			}
		})
	}
}
