package server_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"tlsgate/internal/config"
	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
	"tlsgate/internal/server"
)

// TestCheckRefusesWhatServeRefuses: each config below was accepted by check before and
// refused by serve (or, for the foreign CRL, served while refusing every client with
// crl_unavailable). Check now names each at its file:line: path, and Start refuses it too.
func TestCheckRefusesWhatServeRefuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := pkitest.New(t, "check ca", pki.ECDSAP256)
	other := pkitest.New(t, "someone else", pki.ECDSAP256)
	pkitest.Write(t, dir, "ca.crt", ca.PEM())
	pkitest.Write(t, dir, "other.crl", other.CRL(time.Hour))
	pkitest.Write(t, dir, "ca.crl", ca.CRL(time.Hour))
	pkitest.Write(t, dir, "short.token", []byte("abc\n"))
	pkitest.Write(t, dir, "good.token", []byte("0123456789abcdef0123\n"))
	ca.Issue("localhost", pkitest.Server("localhost")).WritePair(t, dir, "server")
	const base = "certificates:\n  - {id: site, cert: server.crt, key: server.key}\n"
	for _, tc := range []struct{ name, yaml, want string }{
		{"token file missing", "admin:\n  listen: 127.0.0.1:0\n  token_file: nope.token\n" + base,
			":3: admin.token_file: open " + filepath.Join(dir, "nope.token") + ": no such file or directory"},
		{"token too short", "admin:\n  listen: 127.0.0.1:0\n  token_file: short.token\n" + base,
			":3: admin.token_file: short.token: the token must be at least 16 characters"},
		{"token too short beside a foreign CRL", "admin:\n  listen: 127.0.0.1:0\n  token_file: short.token\n" + base + "  - id: clients\n    ca: ca.crt\n    crl: [other.crl]\n",
			":3: admin.token_file: short.token: the token must be at least 16 characters"},
		{"token too short beside an unknown field", "admin:\n  listen: 127.0.0.1:0\n  token_file: short.token\n" + base + "colour: red\n",
			":3: admin.token_file: short.token: the token must be at least 16 characters"},
		{"foreign CRL", base + "  - id: clients\n    ca: ca.crt\n    crl: [other.crl]\n",
			`:5: certificates[1].crl[0]: ` + filepath.Join(dir, "other.crl") + `: the CRL of "CN=someone else" is not signed by any CA of this bundle`},
		{"admin ssl without bundle", "admin:\n  listen: 127.0.0.1:0\n  ssl: {mode: mutual, server_certificates: [site], ca_certificate: site}\n" + base,
			":3: admin.ssl.ca_certificate: certificate \"site\" is a server certificate, not a CA bundle"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := server.Check(path)
			ps, ok := errors.AsType[config.Problems](err)
			if !ok || !strings.Contains(ps.Error(), path+tc.want) {
				t.Fatalf("check: %v\nwant a problem %s%s", err, path, tc.want)
			}
			srv := server.New(server.Options{ConfigPath: path})
			if err := srv.Start(); err == nil {
				srv.Shutdown(t.Context())
				t.Fatal("serve started a config that check refuses")
			}
		})
	}
	// The same bundle with its own CRL beside the foreign one loads: the foreign one may
	// be an intermediate's.
	good := filepath.Join(dir, "good.yaml")
	cfg := fmt.Sprintf("admin: {listen: 127.0.0.1:0, token_file: good.token}\n%s  - {id: clients, ca: ca.crt, crl: [other.crl, ca.crl]}\n", base)
	if err := os.WriteFile(good, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Check(good); err != nil {
		t.Fatal(err)
	}
}

// TestPasswordFileLoadsPKCS12: a PKCS#12 server certificate opens with the password in
// password_file, and a wrong one is refused at the cert line.
func TestPasswordFileLoadsPKCS12(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := pkitest.New(t, "p12 ca", pki.ECDSAP256)
	leaf := ca.Issue("localhost", pkitest.Server("localhost"))
	p12, err := pkcs12.Modern.Encode(leaf.Key, leaf.Cert, nil, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	pkitest.Write(t, dir, "site.p12", p12)
	pkitest.Write(t, dir, "good.password", []byte("correct horse\n"))
	pkitest.Write(t, dir, "bad.password", []byte("battery staple\n"))
	for _, tc := range []struct{ file, want string }{{"good.password", ""}, {"bad.password", ":2: certificates[0].cert: "}} {
		path := filepath.Join(dir, tc.file+".yaml")
		cfg := "certificates:\n  - {id: site, cert: site.p12, password_file: " + tc.file + "}\n"
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := server.Check(path)
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), path+tc.want)) {
			t.Errorf("%s: check = %v, want %q", tc.file, err, tc.want)
		}
	}
}

// TestCheckReportsFilesBesideConfigProblems: one run of check names the problems of the
// config and those of the files it names (issue 2: every problem at once). A certificate
// entry the config's own problems are about is not loaded, so it is not reported twice.
func TestCheckReportsFilesBesideConfigProblems(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := pkitest.New(t, "check ca", pki.ECDSAP256)
	ca.Issue("localhost", pkitest.Server("localhost")).WritePair(t, dir, "server")
	ca.Issue("other", pkitest.Server("other")).WritePair(t, dir, "other")
	path := filepath.Join(dir, "tlsgate.yaml")
	cfg := "certificates:\n" +
		"  - {id: site, cert: server.crt, key: other.key}\n" + // 2: the key does not match
		"  - {id: gone, cert: missing.crt, key: server.key}\n" + // 3: no such file
		"  - {id: half, cert: missing.crt, key: server.key, crl_policy: fail_open}\n" + // 4: crl_policy without ca: the config's problem only
		"target_groups:\n" +
		"  - {id: web, targets: [{address: 127.0.0.1:1}]}\n" +
		"listeners:\n" +
		"  - {id: a, protocol: https, listen: 127.0.0.1:0, target_group: nowhere, bogus: 1,\n" + // 8
		"     ssl: {mode: one_way, server_certificates: [site]}}\n"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := server.Check(path)
	ps, ok := errors.AsType[config.Problems](err)
	if !ok {
		t.Fatalf("check: %v, want problems", err)
	}
	got := ps.Error()
	for _, want := range []string{
		path + ":8: listeners[0].bogus: unknown field",
		path + ":8: listeners[0].target_group: unknown target group \"nowhere\"",
		path + ":2: certificates[0].key: ",
		path + ":3: certificates[1].cert: ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("check did not report %q; it said:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "certificates[2]"); n != 1 {
		t.Errorf("certificates[2] reported %d times, want once (crl_policy without ca); check said:\n%s", n, got)
	}
	// An entry that is not a mapping is left out of the decoded list, which shifts the
	// indexes of those after it: no file problem is then reported at a wrong line.
	shifted := "certificates:\n  - 3\n  - {id: site, cert: server.crt, key: server.key}\n  - {id: gone, cert: missing.crt, key: server.key}\n"
	if err := os.WriteFile(path, []byte(shifted), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = server.Check(path)
	if got := fmt.Sprint(err); got != path+":2: certificates[0]: must be a mapping (key: value), not \"3\"" {
		t.Errorf("check of a list with an entry that did not decode said:\n%s", got)
	}
}

// TestCheckLogFileDirectory: serve opens log.file and the admin unix socket at start and
// refuses to start when the directory does not exist; check said ok for such a config
// (README's examples name /var/log/tlsgate/ and /run/tlsgate/, which nothing but the
// systemd unit makes). Check names each at its line, creates nothing, and accepts both
// in an existing directory.
func TestCheckLogFileDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := pkitest.New(t, "check ca", pki.ECDSAP256)
	ca.Issue("localhost", pkitest.Server("localhost")).WritePair(t, dir, "server")
	const base = "certificates:\n  - {id: site, cert: server.crt, key: server.key}\n"
	bad := filepath.Join(dir, "bad.yaml")
	pkitest.Write(t, dir, "bad.yaml", []byte(base+"log:\n  file: logs/tlsgate.log\n"))
	_, err := server.Check(bad)
	ps, ok := errors.AsType[config.Problems](err)
	want := bad + ":4: log.file: stat " + filepath.Join(dir, "logs") + ": no such file or directory"
	if !ok || !strings.Contains(ps.Error(), want) {
		t.Fatalf("check: %v\nwant a problem %s", err, want)
	}
	sock := filepath.Join(dir, "run", "admin.sock")
	pkitest.Write(t, dir, "sock.yaml", []byte("admin: {listen: \"unix:"+sock+"\"}\n"+base))
	_, err = server.Check(filepath.Join(dir, "sock.yaml"))
	ps, ok = errors.AsType[config.Problems](err)
	want = ":1: admin.listen: stat " + filepath.Join(dir, "run") + ": no such file or directory"
	if !ok || !strings.Contains(ps.Error(), want) {
		t.Fatalf("check: %v\nwant a problem %s", err, want)
	}
	pkitest.Write(t, dir, "good.yaml", []byte("admin: {listen: \"unix:"+filepath.Join(dir, "admin.sock")+"\"}\n"+base+"log:\n  file: tlsgate.log\n"))
	if _, err := server.Check(filepath.Join(dir, "good.yaml")); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"tlsgate.log", "admin.sock"} {
		if _, err := os.Stat(filepath.Join(dir, f)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("check created %s: %v", f, err)
		}
	}
}
