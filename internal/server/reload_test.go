package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tlsgate/internal/certfile"
	"tlsgate/internal/clientauth"
	"tlsgate/internal/config"
	"tlsgate/internal/metrics"
	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
	"tlsgate/internal/porttest"
	"tlsgate/internal/server"
)

// TestCRLSwappedWhileServing: a CRL file replaced on disk takes effect without a restart.
func TestCRLSwappedWhileServing(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	carol := e.ca.Issue("carol")
	if _, err := e.get("mutual", tls.VersionTLS13, new(carol.TLS()), nil, false); err != nil {
		t.Fatalf("carol before revocation: %v", err)
	}
	e.writeFile("ca.crl", e.ca.CRL(24*time.Hour, e.revoked.Cert, carol.Cert))
	if err := e.waitReload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if _, err := e.get("mutual", tls.VersionTLS13, new(carol.TLS()), nil, false); err == nil {
		t.Fatal("carol was served after her certificate was revoked")
	}
	line := e.sink.Next(t, map[string]any{"msg": "handshake", "listener": "mutual", "client_subject": "CN=carol"})
	if line["reason"] != "revoked" {
		t.Fatalf("reason = %v, want revoked", line["reason"])
	}
}

// TestCRLStale: a CRL past its NextUpdate refuses clients under fail_closed (default).
func TestCRLStale(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	e.writeFile("ca.crl", e.ca.CRL(-time.Minute))
	if err := e.waitReload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	_, err := e.get("mutual", tls.VersionTLS13, new(e.ca.Issue("dave").TLS()), nil, false)
	if err == nil {
		t.Fatal("served with a stale CRL under fail_closed")
	}
	if want := specAlert(clientauth.CRLUnavailable, tls.VersionTLS13); !strings.Contains(err.Error(), "remote error: tls: "+want) {
		t.Fatalf("client error %q, want the alert %q of SPEC §1", err, want)
	}
	line := e.sink.Next(t, map[string]any{"msg": "handshake", "listener": "mutual"})
	if line["reason"] != "crl_unavailable" {
		t.Fatalf("reason = %v, want crl_unavailable", line["reason"])
	}
}

// TestCRLStaleFailOpen: under crl_policy: fail_open a CRL past its NextUpdate lets
// clients in, on the same stale file that refuses them under fail_closed (TestCRLStale);
// a revoked client stays refused by the stale list.
func TestCRLStaleFailOpen(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		return "  - {id: open, ca: ca.crt, crl: [ca.crl, inter.crl], crl_policy: fail_open}\n",
			"  - {id: open, protocol: https, listen: 127.0.0.1:0, target_group: web,\n" +
				"     ssl: {mode: mutual, server_certificates: [site], ca_certificate: open}}\n"
	})
	e.writeFile("ca.crl", e.ca.CRL(-time.Minute, e.revoked.Cert))
	if err := e.waitReload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	got, err := e.get("open", tls.VersionTLS13, new(e.ca.Issue("dave").TLS()), nil, false)
	if err != nil {
		t.Fatalf("refused with a stale CRL under fail_open: %v", err)
	}
	if v := got.Headers["X-Client-Verify"]; v != "SUCCESS" {
		t.Fatalf("X-Client-Verify = %q, want SUCCESS", v)
	}
	if _, err := e.get("open", tls.VersionTLS13, new(e.revoked.TLS()), nil, false); err == nil {
		t.Fatal("a client the stale CRL lists was served under fail_open")
	}
	line := e.sink.Next(t, map[string]any{"msg": "handshake", "listener": "open"})
	if line["reason"] != "revoked" {
		t.Fatalf("reason = %v, want revoked", line["reason"])
	}
	if _, err := e.get("mutual", tls.VersionTLS13, new(e.ca.Issue("erin").TLS()), nil, false); err == nil {
		t.Fatal("served with the same stale CRL under fail_closed")
	}
}

// TestFileChangedDuringReload: a file that changes while a reload reads the files (an
// editor writing in place, a CRL landing mid-reload) is loaded by the next poll; the
// reload must not take it as already seen. The change is made from inside the reload:
// the socket of a listener the reload adds is opened after every file was read.
func TestFileChangedDuringReload(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	carol := e.ca.Issue("carol")
	var midReload atomic.Bool
	s := server.New(server.Options{
		ConfigPath: e.cfgPath, Log: e.sink.Logger(), Metrics: metrics.New(),
		OnReload: func(err error) { e.reloaded <- err },
		Listen: func(network, addr string) (net.Listener, error) {
			if midReload.CompareAndSwap(true, false) {
				e.writeFile("ca.crl", e.ca.CRL(24*time.Hour, e.revoked.Cert, carol.Cert))
			}
			return net.Listen(network, addr)
		},
	})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { s.Watch(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if err := s.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	// This test's server alone reloads from now on: e's own stops watching.
	e.stopWatching()
	e.srv = s
	if _, err := e.get("mutual", tls.VersionTLS13, new(carol.TLS()), nil, false); err != nil {
		t.Fatalf("carol before revocation: %v", err)
	}

	midReload.Store(true)
	e.writeFile("tlsgate.yaml", append(mustRead(t, e.dir, "tlsgate.yaml"),
		"  - {id: added, protocol: https, listen: 127.0.0.1:0, target_group: web, ssl: {mode: one_way, server_certificates: [site]}}\n"...))
	if err := e.waitReload(); err != nil {
		t.Fatalf("reload adding a listener: %v", err)
	}
	if midReload.Load() {
		t.Fatal("the reload opened no socket; the CRL was not changed during it")
	}
	if err := e.waitReload(); err != nil { // the CRL written during the first reload
		t.Fatalf("reload of the CRL written mid-reload: %v", err)
	}
	if _, err := e.get("mutual", tls.VersionTLS13, new(carol.TLS()), nil, false); err == nil {
		t.Fatal("carol was served after the CRL revoking her was written")
	}
	line := e.sink.Next(t, map[string]any{"msg": "handshake", "listener": "mutual", "client_subject": "CN=carol"})
	if line["reason"] != "revoked" {
		t.Fatalf("reason = %v, want revoked", line["reason"])
	}
}

// TestBadReloadKeepsServing: a broken config or a broken certificate on reload is
// rejected with its errors, and the running configuration keeps serving — in
// particular the mutual listener never falls back to one-way.
func TestBadReloadKeepsServing(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	good, err := os.ReadFile(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	alice := new(e.ca.Issue("alice").TLS())
	breakages := []struct {
		name  string
		apply func()
		want  string // fragment of the reload error
	}{
		{"unknown field", func() { e.writeFile("tlsgate.yaml", append(good, []byte("lisen: oops\n")...)) }, "lisen: unknown field"},
		{"mutual without CA", func() {
			e.writeFile("tlsgate.yaml", []byte(strings.Replace(string(good), ", ca_certificate: clients}}\n  - {id: optional", "}}\n  - {id: optional", 1)))
		}, "ca_certificate: required when mode is mutual"},
		{"CA file garbage", func() { e.writeFile("ca.crt", []byte("not a certificate")) }, "ca.crt: no certificate found"},
		{"CRL in the CA's name signed by another key", func() {
			impostor := pkitest.New(t, "test root", pki.ECDSAP256)
			e.writeFile("ca.crl", impostor.CRL(time.Hour))
		}, "CRL signature does not verify"},
		{"server key of another certificate", func() {
			e.other.Issue("x").WritePair(t, e.dir, "wrong")
			e.writeFile("server.key", mustRead(t, e.dir, "wrong.key"))
		}, "does not match"},
	}
	for _, b := range breakages {
		t.Run(b.name, func(t *testing.T) {
			e.t = t
			snapshot := snapshotFiles(t, e.dir)
			b.apply()
			err := e.waitReload()
			for err == nil { // an intermediate write may reload fine; wait for the broken one
				err = e.waitReload()
			}
			if !strings.Contains(err.Error(), b.want) {
				t.Fatalf("reload error %q does not mention %q", err, b.want)
			}
			if _, err := e.get("one_way", tls.VersionTLS13, nil, nil, false); err != nil {
				t.Fatalf("one-way stopped serving: %v", err)
			}
			if _, err := e.get("mutual", tls.VersionTLS13, alice, nil, false); err != nil {
				t.Fatalf("mutual stopped serving alice: %v", err)
			}
			if _, err := e.get("mutual", tls.VersionTLS13, nil, nil, false); err == nil {
				t.Fatal("mutual listener served a client without a certificate")
			}
			e.restoreFiles(snapshot)
			if err := e.waitReload(); err != nil {
				t.Fatalf("restoring: %v", err)
			}
		})
	}
}

// TestStartRefusesBrokenMutual: at start-up a mutual listener whose CA cannot load is
// an error, not a one-way listener.
func TestStartRefusesBrokenMutual(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	if err := os.Remove(filepath.Join(e.dir, "ca.crt")); err != nil {
		t.Fatal(err)
	}
	s := server.New(server.Options{ConfigPath: e.cfgPath})
	err := s.Start()
	if err == nil {
		_ = s.Shutdown(t.Context())
		t.Fatal("started without the CA bundle")
	}
	if !strings.Contains(err.Error(), "ca.crt") {
		t.Fatalf("error %q does not name ca.crt", err)
	}
}

// TestConfigProblemsHaveLines: a reload error lists every problem with file and line.
func TestConfigProblemsHaveLines(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	e.writeFile("tlsgate.yaml", []byte(`listeners:
  - id: a
    protocol: https
    listen: 127.0.0.1:0
    target_group: nope
    ssl: {mode: mutual, server_certificates: [site]}
`))
	err := e.waitReload()
	ps, ok := errors.AsType[config.Problems](err)
	if !ok {
		t.Fatalf("reload error %v is not config.Problems", err)
	}
	want := []string{
		"tlsgate.yaml:5: listeners[0].target_group: unknown target group \"nope\"",
		"tlsgate.yaml:6: listeners[0].ssl.server_certificates[0]: unknown certificate \"site\"",
		"tlsgate.yaml:6: listeners[0].ssl.ca_certificate: required when mode is mutual",
	}
	var got []string
	for _, p := range ps {
		p.File = filepath.Base(p.File)
		got = append(got, p.String())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func mustRead(t testing.TB, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func snapshotFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	for _, n := range []string{"tlsgate.yaml", "ca.crt", "ca.crl", "server.crt", "server.key"} {
		m[n] = mustRead(t, dir, n)
	}
	return m
}

// restoreFiles writes back, atomically, the files of a snapshot that changed since: one
// reload, of whole files.
func (e *env) restoreFiles(m map[string][]byte) {
	e.t.Helper()
	for n, b := range m {
		if !bytes.Equal(mustRead(e.t, e.dir, n), b) {
			e.writeFile(n, b)
		}
	}
}

// TestCheckNamesFileAndLine: problems loading certificates point at the config line
// that names the file.
func TestCheckNamesFileAndLine(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	e.writeFile("ca.crt", []byte("garbage"))
	e.writeFile("server.key", mustRead(t, e.dir, "ca.crl"))
	_, err := server.Check(e.cfgPath)
	ps, ok := errors.AsType[config.Problems](err)
	if !ok {
		t.Fatalf("Check error %v is not config.Problems", err)
	}
	var got []string
	for _, p := range ps {
		got = append(got, strings.TrimPrefix(p.String(), e.dir+"/"))
	}
	want := []string{
		"tlsgate.yaml:4: certificates[0].key: " + e.dir + "/server.key: no private key found (expected PKCS#1, PKCS#8 or SEC1, PEM or DER)",
		"tlsgate.yaml:5: certificates[1].ca: " + e.dir + "/ca.crt: no certificate found (expected PEM \"CERTIFICATE\" blocks, DER or PKCS#12)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestCheckWarnings: lint findings are warnings with the config line; the config loads.
func TestCheckWarnings(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	leaf := e.inter.Issue("www", pkitest.Server("localhost"))
	pkitest.Write(t, e.dir, "server.crt", certfile.EncodePEM(e.inter.Cert, leaf.Cert))
	kp, err := certfile.EncodeKeyPEM(leaf.Key)
	if err != nil {
		t.Fatal(err)
	}
	pkitest.Write(t, e.dir, "server.key", kp)
	ws, err := server.Check(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 1 || ws[0].Line != 4 || !strings.Contains(ws[0].Msg, "warning: the first certificate is not the key's") {
		t.Fatalf("warnings %v", ws)
	}
}

// TestCheckWarnsStaleCRL: a crl: file already past its NextUpdate is a warning at its
// config line saying what it does under the entry's crl_policy (fail_closed: every
// client refused with crl_unavailable); check said ok before. The fresh inter.crl
// beside it draws none (TestCheckWarnings: a fresh one draws none either).
func TestCheckWarnsStaleCRL(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	pkitest.Write(t, e.dir, "ca.crl", e.ca.CRL(-time.Minute, e.revoked.Cert))
	ws, err := server.Check(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 1 || ws[0].Line != 5 || ws[0].Path != "certificates[1].crl[0]" ||
		!strings.Contains(ws[0].Msg, "warning: the CRL of \""+e.ca.Cert.Subject.String()+"\" in "+e.dir+"/ca.crl is past its next update") ||
		!strings.Contains(ws[0].Msg, "refused with crl_unavailable (crl_policy fail_closed)") {
		t.Fatalf("warnings %v", ws)
	}
}

// TestReloadUnderLoad drives requests on keep-alive and new connections, HTTP/1.1 and
// HTTP/2, one-way and mutual, while the configuration is reloaded 100 times, and counts
// zero failed requests.
func TestReloadUnderLoad(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	alice := new(e.ca.Issue("alice").TLS())
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	progress := make(chan struct{}, 64)
	for i := range 4 {
		wg.Go(func() {
			tr := &http.Transport{TLSClientConfig: e.tlsConfig(tls.VersionTLS13, alice), ForceAttemptHTTP2: i%2 == 0, DisableKeepAlives: i == 3}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			url := "https://" + e.addr([]string{"one_way", "mutual"}[i%2]) + "/"
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get(url)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				ok.Add(1)
				select {
				case progress <- struct{}{}:
				default:
				}
			}
		})
	}
	for i := range 100 {
		if err := e.srv.Reload(); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		if err := e.waitReload(); err != nil {
			t.Fatal(err)
		}
		// Let several requests complete under this configuration before the next.
		for range 4 {
			select {
			case <-progress:
			case <-time.After(10 * time.Second):
				t.Fatalf("no requests complete after reload %d (%d failed: %v)", i, failed.Load(), firstErr.Load())
			}
		}
	}
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || ok.Load() == 0 {
		t.Fatalf("%d requests failed (first: %v), %d succeeded", failed.Load(), firstErr.Load(), ok.Load())
	}
	t.Logf("%d requests across 100 reloads, none failed", ok.Load())
}

// TestLeafInCABundleRefused: a non-CA certificate in a CA bundle would trust itself as a
// client certificate (S6); the bundle is refused with a line naming it.
func TestLeafInCABundleRefused(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	leaf := e.ca.Issue("stray")
	e.writeFile("ca.crt", append(e.ca.PEM(), certfile.EncodePEM(leaf.Cert)...))
	_, err := server.Check(e.cfgPath)
	if err == nil || !strings.Contains(err.Error(), "certificate 2 (CN=stray) is not a CA certificate") || !strings.Contains(err.Error(), "tlsgate.yaml:5: certificates[1].ca") {
		t.Fatalf("Check: %v", err)
	}
	if err := e.waitReload(); err == nil {
		t.Fatal("a bundle with a leaf was loaded")
	}
	if _, err := e.get("mutual", tls.VersionTLS13, new(leaf.TLS()), nil, false); err != nil {
		t.Fatalf("the previous bundle stopped serving: %v", err)
	}
}

// TestProtocolChangeNamesTheField: a new protocol takes a new socket on the same
// address, which the running listener still holds. The reload fails with an error that
// names the setting and says a restart applies it, and the listener keeps serving.
func TestProtocolChangeNamesTheField(t *testing.T) {
	addr := porttest.Hold(t)
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		return "", "  - {id: fixed, protocol: https, listen: " + addr + ", target_group: web, ssl: {mode: one_way, server_certificates: [site]}}\n"
	})
	good, err := os.ReadFile(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	e.writeFile("tlsgate.yaml", []byte(strings.Replace(string(good), "protocol: https, listen: "+addr+",", "protocol: tcp_ssl, listen: "+addr+",", 1)))
	err = e.waitReload()
	if want := `listener "fixed": protocol changed`; err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "restart") {
		t.Fatalf("reload error %v: want it to name %q and a restart", err, want)
	}
	if _, err := e.get("fixed", tls.VersionTLS13, nil, nil, false); err != nil {
		t.Fatalf("the listener stopped serving: %v", err)
	}
}

// TestTimeoutsFollowReload: a reload that changes idle_timeout keeps the listener's
// socket and applies the timeout to new connections, HTTP/1.1 and HTTP/2 alike: the
// server closes them once idle for it (the old 120 s would outlast the test's wait).
func TestTimeoutsFollowReload(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	addr := e.addr("one_way")
	// HTTP/2 served before the reload, under the old timeout.
	if got, err := e.get("one_way", tls.VersionTLS13, nil, nil, true); err != nil || got.Headers["User-Agent"] != "Go-http-client/2.0" {
		t.Fatalf("HTTP/2 before the reload: %+v, %v", got, err)
	}
	good, err := os.ReadFile(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	const from = "{id: one_way, protocol: https, listen: 127.0.0.1:0,"
	if !strings.Contains(string(good), from) {
		t.Fatalf("config has no %q", from)
	}
	e.writeFile("tlsgate.yaml", []byte(strings.Replace(string(good), from, from+" idle_timeout: 100ms, header_timeout: 5s,", 1)))
	if err := e.waitReload(); err != nil {
		t.Fatalf("reload changing the timeouts: %v", err)
	}
	if got := e.addr("one_way"); got != addr {
		t.Fatalf("the listener moved from %s to %s: a new socket was opened", addr, got)
	}
	for _, proto := range []string{"http/1.1", "h2"} {
		t.Run(proto, func(t *testing.T) {
			c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: e.ca.Pool(), ServerName: "localhost", NextProtos: []string{proto}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := c.ConnectionState().NegotiatedProtocol; got != proto {
				t.Fatalf("negotiated %q, want %q", got, proto)
			}
			if proto == "h2" {
				_, err = c.Write([]byte(h2Idle))
			} else {
				_, err = c.Write([]byte("GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n"))
			}
			if err != nil {
				t.Fatal(err)
			}
			if proto == "http/1.1" {
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, resp.Body); err != nil || resp.StatusCode != http.StatusOK || resp.Close {
					t.Fatalf("kept-alive request: status %d, close %v, body %v", resp.StatusCode, resp.Close, err)
				}
			}
			// Whatever else the server sends (SETTINGS, GOAWAY), it must then close.
			if err := c.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
				t.Fatal(err)
			}
			_, err = io.Copy(io.Discard, c)
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
				t.Fatal("the connection was not closed when idle: the new idle_timeout does not apply")
			}
		})
	}
}
