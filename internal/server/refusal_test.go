package server_test

import (
	"crypto/tls"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"tlsgate/internal/clientauth"
	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
	"tlsgate/internal/tooltest"
)

// friendly is an extra: a mutual https listener that refuses over HTTP.
func friendly(*env) (string, string) {
	return "", "  - {id: friendly, protocol: https, listen: 127.0.0.1:0, target_group: web, ssl: {mode: mutual, server_certificates: [site], ca_certificate: clients, refusal: http}}\n"
}

// TestRefusalHTTP: with refusal: http every client completes the handshake, a verified
// one is served as on a mutual listener, and every other one gets tlsgate's 403 page
// naming its reason, over HTTP/1.1 and HTTP/2, with identity headers it sends itself
// ignored, the connection closed after, nothing sent to a backend, and the refusal
// counted and logged with its reason code.
func TestRefusalHTTP(t *testing.T) {
	matrix(t, func(t *testing.T, version uint16, kt pki.KeyType) {
		e := newEnv(t, kt, friendly)
		for _, tc := range clientCases() {
			if tc.reason == clientauth.BadSignature {
				continue // no handshake to answer on: the TLS layer refuses it
			}
			for _, h2 := range []bool{false, true} {
				name := tc.name + "/HTTP1.1"
				if h2 {
					name = tc.name + "/HTTP2"
				}
				t.Run(name, func(t *testing.T) {
					e.t = t
					counter := e.metrics.Handshakes.WithLabelValues("friendly", "mutual", "failure", string(tc.reason))
					before := testutil.ToFloat64(counter)
					spoof := http.Header{"X-Client-Verify": {"SUCCESS"}, "X-Client-Cert-Subject": {"CN=admin"}}
					resp, body := e.fetch("friendly", version, tc.cert(e), spoof, h2)
					if tc.reason == clientauth.OK {
						got := decodeEcho(t, resp.StatusCode, body)
						if got.Status != http.StatusOK || got.Headers["X-Client-Verify"] != "SUCCESS" {
							t.Fatalf("verified client: %+v", got)
						}
						if line := e.sink.Next(t, map[string]any{"msg": "request", "listener": "friendly"}); line["target"] == nil {
							t.Fatalf("verified client's request went to no target: %v", line)
						}
						return
					}
					if resp.StatusCode != http.StatusForbidden || !resp.Close && !h2 {
						t.Fatalf("status %d, close %v; want 403 and the connection closed", resp.StatusCode, resp.Close)
					}
					page := string(body)
					for _, want := range []string{"tlsgate reason code: " + string(tc.reason), tc.reason.Text(), tc.reason.Fix()} {
						if !strings.Contains(page, want) {
							t.Fatalf("page lacks %q:\n%s", want, page)
						}
					}
					line := e.sink.Next(t, map[string]any{"msg": "request", "listener": "friendly"})
					if line["reason"] != string(tc.reason) || line["status"] != float64(http.StatusForbidden) || line["target"] != nil {
						t.Fatalf("log line %v: want reason %s, status 403 and no target", line, tc.reason)
					}
					if n := testutil.ToFloat64(counter) - before; n != 1 {
						t.Fatalf("handshakes{result=failure,reason=%s} grew by %v, want 1", tc.reason, n)
					}
				})
			}
		}
	})
}

// fetch makes one GET on a new connection and returns the response and its body.
func (e *env) fetch(id string, version uint16, cert *tls.Certificate, hdr http.Header, h2 bool) (*http.Response, []byte) {
	e.t.Helper()
	resp, body, err := e.request(id, e.tlsConfig(version, cert), hdr, h2)
	if err != nil {
		e.t.Fatalf("GET %s: %v", id, err)
	}
	if h2 && resp.ProtoMajor != 2 {
		e.t.Fatalf("HTTP/%d.%d, want HTTP/2", resp.ProtoMajor, resp.ProtoMinor)
	}
	return resp, body
}

// TestRefusalHTTPCurl: curl, a real client, completes the handshake with the refusal:
// http listener and is shown the page with the reason, or served when verified.
func TestRefusalHTTPCurl(t *testing.T) {
	curl := tooltest.Path(t, "curl")
	e := newEnv(t, pki.ECDSAP256, friendly)
	pkitest.Write(t, e.dir, "root.pem", e.ca.PEM())
	_, port, _ := strings.Cut(e.addr("friendly"), ":")
	for _, tc := range interopCases(e) {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"-sS", "--cacert", e.dir + "/root.pem", "-w", "\nstatus %{http_code}\n", "https://localhost:" + port + "/"}
			if tc.files != nil {
				args = append(args, "--cert", tc.files[0], "--key", tc.files[1])
			}
			out, err := exec.Command(curl, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("curl: %v\n%s", err, out)
			}
			want := []string{"status 403", "tlsgate reason code: " + string(tc.reason)}
			if tc.reason == clientauth.OK {
				want = []string{"status 200", `"X-Client-Verify": "SUCCESS"`}
			}
			for _, w := range want {
				if !strings.Contains(string(out), w) {
					t.Fatalf("curl output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
