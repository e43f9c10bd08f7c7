package server_test

import (
	"bufio"
	"crypto/tls"
	"os/exec"
	"strings"
	"testing"
	"time"

	"tlsgate/internal/clientauth"
	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
	"tlsgate/internal/tooltest"
)

// interopCases are the client certificates the cross-checks present, written as files.
func interopCases(e *env) []struct {
	name   string
	files  []string // -cert, -key
	reason clientauth.Reason
} {
	write := func(l *pkitest.Leaf, name string) []string {
		c, k := l.WritePair(e.t, e.dir, name)
		return []string{c, k}
	}
	return []struct {
		name   string
		files  []string
		reason clientauth.Reason
	}{
		{"valid", write(e.ca.Issue("alice"), "alice"), clientauth.OK},
		{"via intermediate", write(e.inter.Issue("bob"), "bob"), clientauth.OK},
		{"no certificate", nil, clientauth.NoClientCert},
		{"revoked", write(e.revoked, "revoked"), clientauth.Revoked},
		{"expired", write(e.ca.Issue("old", pkitest.Valid(-48*time.Hour, -24*time.Hour)), "old"), clientauth.Expired},
		{"unknown CA", write(e.other.Issue("eve"), "eve"), clientauth.UnknownCA},
		{"no EKU (accepted, as by nginx and Go)", write(e.ca.Issue("any", pkitest.EKU()), "noeku"), clientauth.OK},
	}
}

// TestOpenSSLClient cross-checks the TCP SSL mutual listener with `openssl s_client`:
// verified clients get their bytes echoed, refused ones see s_client fail, and the
// server logs the reason.
func TestOpenSSLClient(t *testing.T) {
	openssl := tooltest.Path(t, "openssl")
	matrix(t, func(t *testing.T, version uint16, kt pki.KeyType) {
		e := newEnv(t, kt)
		pkitest.Write(t, e.dir, "root.pem", e.ca.PEM())
		flag := map[uint16]string{tls.VersionTLS12: "-tls1_2", tls.VersionTLS13: "-tls1_3"}[version]
		for _, tc := range interopCases(e) {
			t.Run(tc.name, func(t *testing.T) {
				e.t = t
				args := []string{"s_client", "-quiet", "-no_ign_eof", "-verify_return_error", flag,
					"-connect", e.addr("tcpssl"), "-servername", "localhost", "-CAfile", e.dir + "/root.pem"}
				if tc.files != nil {
					// -cert sends only the first certificate of the file; -cert_chain
					// sends the intermediates (a classic cause of unknown_ca).
					args = append(args, "-cert", tc.files[0], "-cert_chain", tc.files[0], "-key", tc.files[1])
				}
				cmd := exec.Command(openssl, args...)
				stdin, err := cmd.StdinPipe()
				if err != nil {
					t.Fatal(err)
				}
				stdout, err := cmd.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				var stderr strings.Builder
				cmd.Stderr = &stderr
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				if _, err := stdin.Write([]byte("hello\n")); err != nil && tc.reason == clientauth.OK {
					t.Fatal(err)
				}
				line, _ := bufio.NewReader(stdout).ReadString('\n')
				stdin.Close()
				err = cmd.Wait()
				if tc.reason == clientauth.OK {
					if line != "hello\n" {
						t.Fatalf("echo %q; s_client: %v\n%s", line, err, stderr.String())
					}
					return
				}
				if line != "" || err == nil {
					t.Fatalf("refused client got %q, s_client exit %v", line, err)
				}
				got := e.sink.Next(t, map[string]any{"msg": "handshake", "listener": "tcpssl"})
				if got["reason"] != string(tc.reason) {
					t.Fatalf("reason %v, want %s", got["reason"], tc.reason)
				}
			})
		}
	})
}

// TestCurlClient cross-checks the mutual HTTPS listener with curl.
func TestCurlClient(t *testing.T) {
	curl := tooltest.Path(t, "curl")
	for _, version := range []string{"1.2", "1.3"} {
		t.Run("TLS "+version, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, pki.ECDSAP256)
			pkitest.Write(t, e.dir, "root.pem", e.ca.PEM())
			for _, tc := range interopCases(e) {
				t.Run(tc.name, func(t *testing.T) {
					e.t = t
					_, port, _ := strings.Cut(e.addr("mutual"), ":")
					args := []string{"-sS", "--fail", "--tlsv" + version, "--tls-max", version, "--cacert", e.dir + "/root.pem",
						"https://localhost:" + port + "/"}
					if tc.files != nil {
						args = append(args, "--cert", tc.files[0], "--key", tc.files[1])
					}
					out, err := exec.Command(curl, args...).CombinedOutput()
					if tc.reason == clientauth.OK {
						if err != nil || !strings.Contains(string(out), `"X-Client-Verify": "SUCCESS"`) {
							t.Fatalf("curl: %v\n%s", err, out)
						}
						return
					}
					if err == nil {
						t.Fatalf("curl succeeded:\n%s", out)
					}
					got := e.sink.Next(t, map[string]any{"msg": "handshake", "listener": "mutual"})
					if got["reason"] != string(tc.reason) {
						t.Fatalf("reason %v, want %s", got["reason"], tc.reason)
					}
				})
			}
		})
	}
}
