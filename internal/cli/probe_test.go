package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"regexp"
	"testing"
	"testing/cryptotest"
	"time"

	"tlsgate/internal/pki"
	"tlsgate/internal/porttest"
	"tlsgate/internal/probe"
)

// TestProbeGolden renders probes of an in-process server whose certificates, clock and
// randomness are fixed, so the text output is byte-for-byte stable but for the port.
func TestProbeGolden(t *testing.T) {
	cryptotest.SetGlobalRandom(t, 2)
	ca, err := pki.NewRoot(pki.Request{CommonName: "Golden Root", KeyType: pki.Ed25519, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	leaf, key, err := ca.Issue(pki.Request{CommonName: "localhost", DNS: []string{"localhost"}, Usage: pki.UsageServer, KeyType: pki.Ed25519, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	serverCert := tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}
	for _, tc := range []struct {
		name   string
		auth   tls.ClientAuthType
		golden string
	}{
		{"one-way", tls.NoClientCert, "probe-one-way.golden"},
		{"mutual without a client certificate", tls.RequireAndVerifyClientCert, "probe-mutual-no-cert.golden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientAuth: tc.auth, ClientCAs: roots,
				Time: func() time.Time { return fixedNow }, SessionTicketsDisabled: true}
			ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
			if err != nil {
				t.Fatal(err)
			}
			srv := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), ErrorLog: log.New(io.Discard, "", 0)}
			go func() { _ = srv.Serve(ln) }()
			defer srv.Close()
			target, err := probe.ParseTarget("https://" + ln.Addr().String() + "/")
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			o := probe.Options{Target: target, Roots: roots, ServerName: "localhost", Now: func() time.Time { return fixedNow }, Timeout: 5 * time.Second}
			probe.Run(context.Background(), o, &probe.Trace{Step: func(s probe.Step) { renderStep(&out, s) }})
			golden(t, tc.golden, normalize(out.Bytes(), ln.Addr()))
		})
	}
}

// normalize replaces what changes between runs: ports and durations.
func normalize(b []byte, addr net.Addr) []byte {
	_, port, _ := net.SplitHostPort(addr.String())
	b = bytes.ReplaceAll(b, []byte(":"+port), []byte(":PORT"))
	b = regexp.MustCompile(`127\.0\.0\.1:\d+ in [0-9.]+[µmn]?s`).ReplaceAll(b, []byte("127.0.0.1:CLIENTPORT in TIME"))
	return b
}

// TestProbeJSONAndExitCodes: --json prints one event per line and the result last;
// exit 1 on failure, 2 on usage errors.
func TestProbeJSONAndExitCodes(t *testing.T) {
	addr := porttest.Dead(t)
	code, out, _ := run("probe", "--json", addr)
	lines := bytes.Split(bytes.TrimSpace([]byte(out)), []byte("\n"))
	var first probe.Step
	var last struct{ Result probe.Result }
	if len(lines) < 2 || json.Unmarshal(lines[0], &first) != nil || json.Unmarshal(lines[len(lines)-1], &last) != nil {
		t.Fatalf("output:\n%s", out)
	}
	if code != 1 || first.Kind != "connect" || first.Status != probe.Fail || last.Result.OK {
		t.Fatalf("exit %d, first %+v, result %+v", code, first, last.Result)
	}
	// The result's keys are snake_case like the steps' ("diagnosis": {"cause", "fix"}).
	if !bytes.Contains(lines[len(lines)-1], []byte(`"diagnosis":{"cause":"`)) || !bytes.Contains(lines[len(lines)-1], []byte(`"fix":"`)) {
		t.Fatalf("result line %s: want diagnosis with cause and fix", lines[len(lines)-1])
	}
	for _, args := range [][]string{{"probe"}, {"probe", "http://x"}, {"probe", "x:1", "--tls", "1.1"}, {"probe", "x:1", "--cert", "a"}} {
		if code, _, _ := run(args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
