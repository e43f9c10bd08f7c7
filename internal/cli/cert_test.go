package cli

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/cryptotest"
	"time"

	"tlsgate/internal/certfile"
	"tlsgate/internal/pki"
	"tlsgate/internal/tooltest"
)

var update = flag.Bool("update", false, "rewrite golden files")

// fixedNow is the clock of the golden tests.
var fixedNow = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// goldenPKI makes a PKI whose every byte is the same on each run: a seeded global
// random source, Ed25519 keys (deterministic signatures) and a fixed clock.
func goldenPKI(t *testing.T) *pki.Dir {
	cryptotest.SetGlobalRandom(t, 1)
	clock := func() time.Time { return fixedNow }
	d, err := pki.Init(filepath.Join(t.TempDir(), "pki"), pki.InitOptions{Name: "Golden CA", Key: pki.Ed25519, Intermediate: true, CRLURL: "http://crl.example/golden.crl"}, clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if _, err := d.Issue(pki.UsageServer, "www.example.com", pki.IssueOptions{Key: pki.Ed25519}); err != nil {
		t.Fatal(err)
	}
	is, err := d.Issue(pki.UsageClient, "alice", pki.IssueOptions{Key: pki.Ed25519, Emails: []string{"alice@example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Issue(pki.UsageClient, "bob", pki.IssueOptions{Key: pki.Ed25519, Days: 10}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Revoke(is.Serial, "keyCompromise"); err != nil {
		t.Fatal(err)
	}
	return d
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("output differs from %s (run with -update to accept):\n%s", path, got)
	}
}

func TestListGolden(t *testing.T) {
	d := goldenPKI(t)
	es, err := d.List()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	writeList(&b, es, fixedNow.AddDate(0, 0, 30))
	golden(t, "list.golden", b.Bytes())
}

func TestInspectGolden(t *testing.T) {
	d := goldenPKI(t)
	for _, tc := range []struct{ file, golden string }{
		{"issued/www.example.com.crt", "inspect-server.golden"},
		{"issued/bob.key", "inspect-key.golden"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b, err := readBundle(filepath.Join(d.Path, tc.file), "")
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			renderInfo(&out, describe(tc.file, b, fixedNow))
			golden(t, tc.golden, out.Bytes())
		})
	}
}

// run executes the CLI and returns its exit code, stdout and stderr.
func run(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Execute(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestConvertRoundTrip: PEM → DER → PKCS#12 → PEM keeps the chain and the key, and
// openssl reads the PKCS#12 files (modern and legacy).
func TestConvertRoundTrip(t *testing.T) {
	dir := t.TempDir()
	d, err := pki.Init(filepath.Join(dir, "pki"), pki.InitOptions{Name: "CA", Intermediate: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	is, err := d.Issue(pki.UsageClient, "alice", pki.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	crt, key := filepath.Join(d.Path, is.CertFile), filepath.Join(d.Path, is.KeyFile)
	p := func(n string) string { return filepath.Join(dir, n) }
	steps := [][]string{
		{"--in", crt, "--key", key, "--out", p("a.der"), "--format", "der"},
		{"--in", p("a.der"), "--key", key, "--out", p("a.p12"), "--format", "p12", "--password", "pw"},
		{"--in", p("a.p12"), "--in-password", "pw", "--out", p("a.pem"), "--format", "pem"},
		{"--in", p("a.pem"), "--out", p("legacy.p12"), "--format", "p12", "--password", "pw", "--legacy"},
	}
	for _, s := range steps {
		if code, _, stderr := run(append([]string{"cert", "convert"}, s...)...); code != 0 {
			t.Fatalf("convert %v: exit %d: %s", s, code, stderr)
		}
	}
	data, err := os.ReadFile(p("a.pem"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := certfile.Decode(data, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Certs) != 2 || !b.Certs[0].Equal(is.Cert) || !b.Certs[1].Equal(is.Chain[1]) || b.Key == nil || !certfile.KeyMatches(is.Cert, b.Key) {
		t.Fatalf("round trip lost the chain or key: %d certs, key %v", len(b.Certs), b.Key != nil)
	}
	if st, _ := os.Stat(p("a.pem")); st.Mode().Perm() != 0o600 {
		t.Errorf("PEM with key written %v, want 0600", st.Mode().Perm())
	}
	openssl := tooltest.Path(t, "openssl")
	for _, f := range []string{"a.p12", "legacy.p12"} {
		out, err := exec.Command(openssl, "pkcs12", "-in", p(f), "-passin", "pass:pw", "-nodes").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "subject=CN = alice") || !strings.Contains(string(out), "BEGIN PRIVATE KEY") {
			t.Fatalf("openssl pkcs12 %s: %v\n%s", f, err, out)
		}
	}
}

// TestConvertPasswordOpensP12: the issue's one --password opens a PKCS#12 input (p12 →
// pem) when --in-password is not given; --in-password still wins when both are given.
func TestConvertPasswordOpensP12(t *testing.T) {
	dir := t.TempDir()
	d, err := pki.Init(filepath.Join(dir, "pki"), pki.InitOptions{Name: "CA"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	is, err := d.Issue(pki.UsageClient, "alice", pki.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p12 := filepath.Join(dir, "alice.p12")
	if code, _, stderr := run("cert", "convert", "--in", filepath.Join(d.Path, is.CertFile), "--key", filepath.Join(d.Path, is.KeyFile), "--out", p12, "--format", "p12", "--password", "secret"); code != 0 {
		t.Fatalf("pem → p12: exit %d: %s", code, stderr)
	}
	out := filepath.Join(dir, "alice.pem")
	if code, _, stderr := run("cert", "convert", "--in", p12, "--out", out, "--format", "pem", "--password", "secret"); code != 0 {
		t.Fatalf("p12 → pem with --password: exit %d: %s", code, stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	b, err := certfile.Decode(data, "")
	if err != nil || len(b.Certs) == 0 || !b.Certs[0].Equal(is.Cert) || b.Key == nil {
		t.Fatalf("p12 → pem lost the certificate or key: %v", err)
	}
	again := filepath.Join(dir, "again.p12")
	if code, _, stderr := run("cert", "convert", "--in", p12, "--in-password", "secret", "--out", again, "--format", "p12", "--password", "other"); code != 0 {
		t.Fatalf("p12 → p12 with a new password: exit %d: %s", code, stderr)
	}
	if data, err = os.ReadFile(again); err != nil {
		t.Fatal(err)
	}
	if _, err := certfile.Decode(data, "other"); err != nil {
		t.Fatalf("re-encoded PKCS#12 does not open with its new password: %v", err)
	}
}

// TestBadInputs: each bad input gives one clear error line naming the file.
func TestBadInputs(t *testing.T) {
	dir := t.TempDir()
	d, err := pki.Init(filepath.Join(dir, "pki"), pki.InitOptions{Name: "CA"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	is, err := d.Issue(pki.UsageClient, "alice", pki.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pem, _ := os.ReadFile(filepath.Join(d.Path, is.CertFile))
	if code, _, stderr := run("cert", "convert", "--in", filepath.Join(d.Path, is.CertFile), "--key", filepath.Join(d.Path, is.KeyFile), "--out", filepath.Join(dir, "a.p12"), "--format", "p12", "--password", "right"); code != 0 {
		t.Fatal(stderr)
	}
	files := map[string][]byte{
		"empty.pem":     nil,
		"truncated.pem": pem[:len(pem)/2],
		"text.txt":      []byte("hello, I am not a certificate\n"),
		"pubkey.pem":    []byte("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n"),
	}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"empty file", []string{"cert", "inspect", filepath.Join(dir, "empty.pem")}, "empty.pem: file is empty"},
		{"truncated PEM", []string{"cert", "inspect", filepath.Join(dir, "truncated.pem")}, "truncated.pem: PEM block 1 is damaged or truncated"},
		{"not a certificate", []string{"cert", "inspect", filepath.Join(dir, "text.txt")}, "text.txt: not PEM, DER or PKCS#12"},
		{"no certificate in PEM", []string{"cert", "inspect", filepath.Join(dir, "pubkey.pem")}, "pubkey.pem: no certificate found"},
		{"wrong password", []string{"cert", "inspect", "--password", "wrong", filepath.Join(dir, "a.p12")}, "a.p12: PKCS#12 password is wrong"},
		{"missing file", []string{"cert", "verify", "--ca", filepath.Join(dir, "nope.pem"), filepath.Join(dir, "a.p12")}, "nope.pem: no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := run(tc.args...)
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if code != 1 || len(lines) != 1 || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit 1 and one line with %q", code, stderr, tc.want)
			}
		})
	}
}

// TestInspectKeyAcrossFiles: inspect CERT KEY says whether the key in one file belongs
// to a certificate in another (issue #3's key match), in text and JSON.
func TestInspectKeyAcrossFiles(t *testing.T) {
	dir := t.TempDir()
	d, err := pki.Init(filepath.Join(dir, "pki"), pki.InitOptions{Name: "CA"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	alice, err := d.Issue(pki.UsageClient, "alice", pki.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := d.Issue(pki.UsageClient, "bob", pki.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	crt, key, other := filepath.Join(d.Path, alice.CertFile), filepath.Join(d.Path, alice.KeyFile), filepath.Join(d.Path, bob.KeyFile)
	code, out, stderr := run("cert", "inspect", crt, key, other)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (bob's key belongs to no certificate given): %s", code, stderr)
	}
	if !strings.Contains(out, "key match: yes: this private key belongs to "+crt+" [1] CN=alice") {
		t.Errorf("alice's key not matched to her certificate:\n%s", out)
	}
	if !strings.Contains(out, "key match: NO certificate in the files given matches this private key") {
		t.Errorf("bob's key not said to match nothing:\n%s", out)
	}
	if code, _, stderr := run("cert", "inspect", crt, key); code != 0 {
		t.Errorf("inspect CERT ITSKEY: exit %d, want 0: %s", code, stderr)
	}
	if code, _, _ := run("cert", "inspect", "--json", crt, other); code != 1 {
		t.Errorf("inspect --json CERT OTHERKEY: exit %d, want 1", code)
	}
	mixed := filepath.Join(dir, "mixed.pem")
	if err := os.WriteFile(mixed, append(readFile(t, crt), readFile(t, other)...), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := run("cert", "inspect", mixed); code != 1 || !strings.Contains(out, "NO certificate in this file matches its private key") {
		t.Errorf("inspect of a file whose key is not its certificate's: exit %d, want 1:\n%s", code, out)
	}
	code, out, _ = run("cert", "inspect", "--json", crt, key)
	var infos []struct {
		File  string   `json:"file"`
		KeyOf []string `json:"key_belongs_to"`
	}
	if err := json.Unmarshal([]byte(out), &infos); code != 0 || err != nil || len(infos) != 2 || len(infos[1].KeyOf) != 1 {
		t.Fatalf("--json: exit %d, %v: %s", code, err, out)
	}
}

// TestPKICommands runs the pki subcommands end to end, and their usage errors.
func TestPKICommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	steps := [][]string{
		{"pki", "init", "--dir", dir, "--name", "CLI CA", "--intermediate"},
		{"pki", "issue", "server", "www.example.com", "--dir", dir, "--ip", "127.0.0.1"},
		{"pki", "issue", "client", "alice", "--dir", dir, "--uri", "spiffe://example.org/alice", "--p12", "--password", "pw"},
		{"pki", "revoke", filepath.Join(dir, "issued", "alice.crt"), "--dir", dir, "--reason", "keyCompromise"},
		{"pki", "crl", "--dir", dir},
	}
	for _, s := range steps {
		if code, _, stderr := run(s...); code != 0 {
			t.Fatalf("%v: exit %d: %s", s, code, stderr)
		}
	}
	code, out, _ := run("pki", "list", "--dir", dir)
	if code != 0 || !strings.Contains(out, "alice") || !strings.Contains(out, "revoked") || !strings.Contains(out, "www.example.com") {
		t.Fatalf("list: %d\n%s", code, out)
	}
	for _, args := range [][]string{
		{"pki", "issue", "robot", "x", "--dir", dir},
		{"pki", "issue", "client", "x", "--dir", dir, "--ip", "not-an-ip"},
		{"pki", "init", "--dir", dir, "--key", "dsa-1024"},
		{"pki", "revoke", "--dir", dir},
		{"pki", "issue", "client", "x", "--dir", dir, "--password", "pw"},
		{"pki", "crl", "--dir", dir, "--days", "0"},
		{"pki", "crl", "--dir", dir, "--days", "-1"},
		{"pki", "issue", "client", "x", "--dir", dir, "--days", "0"},
		{"pki", "init", "--dir", filepath.Join(t.TempDir(), "pki2"), "--days", "-5"},
	} {
		if code, _, _ := run(args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	if code, _, stderr := run("pki", "list", "--dir", filepath.Join(t.TempDir(), "none")); code != 1 || !strings.Contains(stderr, "no PKI here") {
		t.Errorf("list without a PKI: %d %s", code, stderr)
	}
}

// TestInspectJSON: --json gives one object per file with the chain, SANs, EKU, key
// match and order.
func TestInspectJSON(t *testing.T) {
	d := goldenPKI(t)
	code, out, stderr := run("cert", "inspect", "--json", filepath.Join(d.Path, "issued/www.example.com.crt"), filepath.Join(d.Path, "issued/bob.key"))
	if code != 1 { // bob's key belongs to no certificate given
		t.Fatalf("exit %d, want 1: %s", code, stderr)
	}
	var files []fileInfo
	if err := json.Unmarshal([]byte(out), &files); err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Fatalf("%d files", len(files))
	}
	crt := files[0]
	if crt.Format != "PEM" || len(crt.Certs) != 2 || !crt.InOrder || crt.Certs[0].DNS[0] != "www.example.com" ||
		crt.Certs[0].EKU[0] != "serverAuth" || !crt.Certs[1].CA || crt.Certs[0].CRLURLs[0] != "http://crl.example/golden.crl" {
		t.Fatalf("certificate file: %+v", crt)
	}
	if files[1].Key != "Ed25519" || len(files[1].Certs) != 0 {
		t.Fatalf("key file: %+v", files[1])
	}
}

// TestListPending: pki list shows an interrupted issue as pending (it can be revoked).
func TestListPending(t *testing.T) {
	var b bytes.Buffer
	writeList(&b, []pki.Entry{{Serial: "01", Kind: "client", Name: "half", Subject: "CN=half", NotAfter: fixedNow.AddDate(1, 0, 0), Pending: true}}, fixedNow)
	if !strings.Contains(b.String(), " pending ") {
		t.Fatalf("list:\n%s", b.String())
	}
}

// TestPKIListJSON: --json lists every certificate with its status and days left.
func TestPKIListJSON(t *testing.T) {
	d := goldenPKI(t)
	code, out, stderr := run("pki", "list", "--dir", d.Path, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var es []struct {
		Serial, Name, Kind, Status string
		DaysLeft                   int `json:"days_left"`
	}
	if err := json.Unmarshal([]byte(out), &es); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	got := map[string]string{}
	for _, e := range es {
		got[e.Name] = e.Status
		if e.Serial == "" || e.Kind == "" {
			t.Errorf("entry without serial or kind: %+v", e)
		}
	}
	if got["alice"] != "revoked" || got["www.example.com"] != "valid" {
		t.Fatalf("statuses %v\n%s", got, out)
	}
}

// TestPKIReissueDropsStaleP12: issuing a name again after revoking it leaves no
// PKCS#12 file of the old serial behind.
func TestPKIReissueDropsStaleP12(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	p12 := filepath.Join(dir, "issued", "alice.p12")
	for _, s := range [][]string{
		{"pki", "init", "--dir", dir, "--name", "CLI CA"},
		{"pki", "issue", "client", "alice", "--dir", dir, "--p12", "--password", "pw"},
		{"pki", "revoke", filepath.Join(dir, "issued", "alice.crt"), "--dir", dir},
	} {
		if code, _, stderr := run(s...); code != 0 {
			t.Fatalf("%v: exit %d: %s", s, code, stderr)
		}
	}
	if _, err := os.Stat(p12); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := run("pki", "issue", "client", "alice", "--dir", dir); code != 0 {
		t.Fatalf("reissue: %d %s", code, stderr)
	}
	if _, err := os.Stat(p12); !os.IsNotExist(err) {
		t.Fatalf("the old serial's alice.p12 is still there (%v)", err)
	}
}

// TestPKICRLDays: crl --days N writes a nextUpdate N days out and says so; 0 and less are
// usage errors (before, --days 0 printed "next update in 0 days" and wrote 7 days).
func TestPKICRLDays(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	if code, _, stderr := run("pki", "init", "--dir", dir); code != 0 {
		t.Fatalf("init: %d %s", code, stderr)
	}
	code, out, stderr := run("pki", "crl", "--dir", dir, "--days", "3")
	if code != 0 || !strings.Contains(out, "next update in 3 days") {
		t.Fatalf("crl --days 3: %d %s %s", code, out, stderr)
	}
	crl, err := x509.ParseRevocationList(pemBlock(t, filepath.Join(dir, "crl.pem")))
	if err != nil {
		t.Fatal(err)
	}
	if got := crl.NextUpdate.Sub(crl.ThisUpdate); got != 3*24*time.Hour {
		t.Errorf("nextUpdate - thisUpdate = %v, want 72h", got)
	}
	code, _, stderr = run("pki", "crl", "--dir", dir, "--days", "0")
	if code != 2 || !strings.Contains(stderr, "--days: want at least 1, not 0") {
		t.Errorf("crl --days 0: exit %d, %q; want 2 and the flag named", code, stderr)
	}
}

// TestPKIRevokeMissingFile: a certificate path that does not exist is named as a file,
// not read as a serial number ("serial ISSUED/C15.CRT: not issued by this PKI").
func TestPKIRevokeMissingFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	if code, _, stderr := run("pki", "init", "--dir", dir); code != 0 {
		t.Fatalf("init: %d %s", code, stderr)
	}
	missing := filepath.Join(dir, "issued", "c15.crt")
	for _, arg := range []string{missing, "issued/c15.crt"} {
		code, _, stderr := run("pki", "revoke", arg, "--dir", dir)
		if code != 1 || !strings.Contains(stderr, arg+" is neither a serial number (hex) nor a readable certificate file") || strings.Contains(stderr, "not issued by this PKI") {
			t.Errorf("revoke %s: exit %d, %q", arg, code, stderr)
		}
	}
	if code, _, stderr := run("pki", "revoke", "0A:BC", "--dir", dir); code != 1 || !strings.Contains(stderr, "serial 0ABC: not issued by this PKI") {
		t.Errorf("revoke of an unknown serial: exit %d, %q", code, stderr)
	}
}

// TestP12EmptyPasswordWarns: --p12 (pki issue) and --format p12 (cert convert) without
// --password write the file and say on stderr that its password is empty; with one
// they say nothing.
func TestP12EmptyPasswordWarns(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	if code, _, stderr := run("pki", "init", "--dir", dir); code != 0 {
		t.Fatalf("init: %d %s", code, stderr)
	}
	const warn = "has an empty password"
	code, _, stderr := run("pki", "issue", "client", "alice", "--dir", dir, "--p12")
	if code != 0 || !strings.Contains(stderr, filepath.Join(dir, "issued", "alice.p12")+" "+warn) {
		t.Errorf("issue --p12 without --password: exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "issued", "alice.p12")); err != nil {
		t.Error(err)
	}
	if code, _, stderr := run("pki", "issue", "client", "bob", "--dir", dir, "--p12", "--password", "pw"); code != 0 || stderr != "" {
		t.Errorf("issue --p12 --password: exit %d, stderr %q", code, stderr)
	}
	crt, key := filepath.Join(dir, "issued", "bob.crt"), filepath.Join(dir, "issued", "bob.key")
	out := filepath.Join(t.TempDir(), "bob.p12")
	if code, _, stderr := run("cert", "convert", "--in", crt, "--key", key, "--out", out, "--format", "p12"); code != 0 || !strings.Contains(stderr, out+" "+warn) {
		t.Errorf("convert to p12 without --password: exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr := run("cert", "convert", "--in", crt, "--key", key, "--out", out+"2", "--format", "p12", "--password", "pw"); code != 0 || stderr != "" {
		t.Errorf("convert to p12 with --password: exit %d, stderr %q", code, stderr)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pemBlock is the DER of the first PEM block of path.
func pemBlock(t *testing.T, path string) []byte {
	t.Helper()
	b, _ := pem.Decode(readFile(t, path))
	if b == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	return b.Bytes
}

// TestInspectP12Encryption: inspect says how a PKCS#12 file is encrypted, legacy or
// modern, in text and in --json (p12_encryption).
func TestInspectP12Encryption(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	for _, s := range [][]string{
		{"pki", "init", "--dir", dir},
		{"pki", "issue", "client", "old", "--dir", dir, "--p12", "--password", "pw", "--legacy"},
		{"pki", "issue", "client", "new", "--dir", dir, "--p12", "--password", "pw"},
	} {
		if code, _, stderr := run(s...); code != 0 {
			t.Fatalf("%v: exit %d: %s", s, code, stderr)
		}
	}
	code, out, stderr := run("cert", "inspect", "--password", "pw", filepath.Join(dir, "issued", "old.p12"), filepath.Join(dir, "issued", "new.p12"))
	if code != 0 || !strings.Contains(out, "  encryption: certificates 3DES/SHA-1, key 3DES/SHA-1, MAC SHA-1: legacy") ||
		!strings.Contains(out, "  encryption: certificates AES-256-CBC/PBKDF2-HMAC-SHA256, key AES-256-CBC/PBKDF2-HMAC-SHA256, MAC SHA-256: modern") {
		t.Fatalf("exit %d: %s\n%s", code, stderr, out)
	}
	code, out, _ = run("cert", "inspect", "--json", "--password", "pw", filepath.Join(dir, "issued", "old.p12"))
	var infos []struct {
		P12 *certfile.P12Info `json:"p12_encryption"`
	}
	if err := json.Unmarshal([]byte(out), &infos); code != 0 || err != nil || len(infos) != 1 || infos[0].P12 == nil || !infos[0].P12.Legacy {
		t.Fatalf("--json: exit %d, %v: %s", code, err, out)
	}
}
