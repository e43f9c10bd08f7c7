// Package demo wires a zero-setup tlsgate: a throwaway PKI (root CA, server certificate,
// good, revoked and foreign client certificates, a CRL), echo backends, and a config with
// one-way and mutual HTTPS listeners (one of them refusing over HTTP, refusal: http) and
// a mutual TCP SSL listener on free loopback ports. It prints the exact curl and openssl commands that succeed and fail. It holds
// no logic of its own beyond the wiring: everything runs through pki and server.
package demo

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"tlsgate/internal/certfile"
	"tlsgate/internal/pki"
	"tlsgate/internal/server"
)

// Demo is a running demo.
type Demo struct {
	Dir      string
	temp     bool // Dir was made by Start and is removed by Close
	Server   *server.Server
	Backend  *Backend
	Commands []Command
}

// Command is one thing to try, with whether it should succeed.
type Command struct {
	Say  string // what it shows
	Argv []string
	OK   bool
	// Stdin is fed to the command (TCP SSL echo).
	Stdin string
}

// Shell renders the command for copy and paste.
func (c Command) Shell() string {
	var b strings.Builder
	if c.Stdin != "" {
		// The pause keeps stdin open until the echo has come back: s_client stops at EOF.
		fmt.Fprintf(&b, "(echo %s; sleep 1) | ", c.Stdin)
	}
	for i, a := range c.Argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		if strings.ContainsAny(a, " '\"$") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		b.WriteString(a)
	}
	return b.String()
}

const configTemplate = `# Written by tlsgate demo. Try: tlsgate check --config %[1]s
admin:
  listen: 127.0.0.1:0
certificates:
  - id: site
    cert: server.crt
    key: server.key
  - id: clients
    ca: ca.crt
    crl: [ca.crl]
    crl_policy: fail_closed
target_groups:
  - id: echo-http
    targets: [{address: %[2]s}]
  - id: echo-tcp
    targets: [{address: %[3]s}]
listeners:
  - id: https-one-way
    protocol: https
    listen: 127.0.0.1:0
    ssl: {mode: one_way, server_certificates: [site]}
    target_group: echo-http
  - id: https-mutual
    protocol: https
    listen: 127.0.0.1:0
    ssl: {mode: mutual, server_certificates: [site], ca_certificate: clients}
    target_group: echo-http
  - id: https-explain
    protocol: https
    listen: 127.0.0.1:0
    ssl: {mode: mutual, server_certificates: [site], ca_certificate: clients, refusal: http}
    target_group: echo-http
  - id: tcpssl-mutual
    protocol: tcp_ssl
    listen: 127.0.0.1:0
    ssl: {mode: mutual, server_certificates: [site], ca_certificate: clients}
    target_group: echo-tcp
`

// Start makes the PKI in dir (a new temporary directory when empty), starts the echo
// backends and tlsgate, and fills Commands.
func Start(dir string, log *slog.Logger) (*Demo, error) {
	temp := dir == ""
	if temp {
		var err error
		if dir, err = os.MkdirTemp("", "tlsgate-demo-"); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := writePKI(dir, time.Now()); err != nil {
		return nil, fmt.Errorf("making demo PKI in %s: %w", dir, err)
	}
	be, err := StartBackend()
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "tlsgate.yaml")
	cfg := fmt.Sprintf(configTemplate, cfgPath, be.HTTP.Addr(), be.TCP.Addr())
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		be.Close()
		return nil, err
	}
	srv := server.New(server.Options{ConfigPath: cfgPath, Log: log})
	if err := srv.Start(); err != nil {
		be.Close()
		return nil, err
	}
	d := &Demo{Dir: dir, temp: temp, Server: srv, Backend: be}
	d.Commands = d.commands()
	return d, nil
}

// Close stops tlsgate and the backends, and removes the PKI unless --dir named it.
func (d *Demo) Close(ctx context.Context) error {
	err := errors.Join(d.Server.Shutdown(ctx), d.Backend.Close())
	if d.temp {
		err = errors.Join(err, os.RemoveAll(d.Dir))
	}
	return err
}

func (d *Demo) commands() []Command {
	f := func(name string) string { return filepath.Join(d.Dir, name) }
	url := func(id string) string { return "https://localhost:" + port(d.Server.Addr(id)) + "/hello" }
	curl := func(id string, extra ...string) []string {
		return append(append([]string{"curl", "-sS", "--fail-with-body", "--cacert", f("ca.crt")}, extra...), url(id))
	}
	client := func(name string) []string { return []string{"--cert", f(name + ".crt"), "--key", f(name + ".key")} }
	tcp := "127.0.0.1:" + port(d.Server.Addr("tcpssl-mutual"))
	sclient := func(extra ...string) []string {
		return append([]string{"openssl", "s_client", "-quiet", "-no_ign_eof", "-verify_return_error", "-connect", tcp, "-servername", "localhost", "-CAfile", f("ca.crt")}, extra...)
	}
	return []Command{
		{Say: "one-way HTTPS: only the server proves who it is", Argv: curl("https-one-way"), OK: true},
		{Say: "mutual HTTPS with alice's certificate: the backend sees X-Client-Verify: SUCCESS", Argv: curl("https-mutual", client("alice")...), OK: true},
		{Say: "mutual HTTPS without a certificate: refused (reason no_client_cert)", Argv: curl("https-mutual"), OK: false},
		{Say: "mutual HTTPS with mallory's revoked certificate: refused (reason revoked)", Argv: curl("https-mutual", client("mallory")...), OK: false},
		{Say: "mutual HTTPS with eve's certificate from another CA: refused (reason unknown_ca)", Argv: curl("https-mutual", client("eve")...), OK: false},
		{Say: "mutual HTTPS with refusal: http and mallory's certificate: a 403 page says why (revoked)", Argv: curl("https-explain", client("mallory")...), OK: false},
		{Say: "mutual TCP SSL with alice's certificate: the echo backend answers", Argv: sclient("-cert", f("alice.crt"), "-key", f("alice.key")), Stdin: "hello", OK: true},
		{Say: "mutual TCP SSL without a certificate: refused (reason no_client_cert)", Argv: sclient(), Stdin: "hello", OK: false},
		{Say: "metrics: handshakes by listener, mode, result and reason", Argv: []string{"curl", "-sS", "http://" + d.Server.AdminAddr().String() + "/metrics"}, OK: true},
	}
}

func port(a net.Addr) string {
	if a == nil {
		return "0"
	}
	_, p, _ := net.SplitHostPort(a.String())
	return p
}

// Print writes what the demo is and what to try.
func (d *Demo) Print(w io.Writer) {
	fmt.Fprintf(w, "tlsgate demo is running. Files (CA, certificates, CRL, config) are in %s\n", d.Dir)
	fmt.Fprintf(w, "Listeners: https-one-way %s, https-mutual %s, https-explain %s, tcpssl-mutual %s; admin %s\n\n",
		d.Server.Addr("https-one-way"), d.Server.Addr("https-mutual"), d.Server.Addr("https-explain"), d.Server.Addr("tcpssl-mutual"), d.Server.AdminAddr())
	for i, c := range d.Commands {
		want := "succeeds"
		if !c.OK {
			want = "fails"
		}
		fmt.Fprintf(w, "%d. %s (%s)\n   %s\n\n", i+1, c.Say, want, c.Shell())
	}
	fmt.Fprint(w, "Each refusal is logged as one JSON line with its reason code. Press Ctrl-C to stop")
	if d.temp {
		fmt.Fprint(w, " (the files are removed then; --dir DIR keeps them)")
	}
	fmt.Fprintln(w, ".")
}

// writePKI writes ca.crt/ca.crl, server.crt/key, and client certificates alice (good),
// mallory (revoked) and eve (signed by another CA).
func writePKI(dir string, now time.Time) error {
	root, err := pki.NewRoot(pki.Request{CommonName: "tlsgate demo root CA", Now: now})
	if err != nil {
		return err
	}
	other, err := pki.NewRoot(pki.Request{CommonName: "some other CA", Now: now})
	if err != nil {
		return err
	}
	if err := write(dir, "ca.crt", certfile.EncodePEM(root.Cert), 0o644); err != nil {
		return err
	}
	issue := []struct {
		name string
		ca   *pki.CA
		req  pki.Request
	}{
		{"server", root, pki.Request{CommonName: "localhost", DNS: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, Usage: pki.UsageServer}},
		{"alice", root, pki.Request{CommonName: "alice", OU: []string{"demo"}, Emails: []string{"alice@example.org"}}},
		{"mallory", root, pki.Request{CommonName: "mallory", OU: []string{"demo"}}},
		{"eve", other, pki.Request{CommonName: "eve"}},
	}
	var revoked *big.Int
	for _, it := range issue {
		it.req.Now = now
		cert, key, err := it.ca.Issue(it.req)
		if err != nil {
			return err
		}
		if it.name == "mallory" {
			revoked = cert.SerialNumber
		}
		if err := writePair(dir, it.name, cert, key); err != nil {
			return err
		}
	}
	crl, err := root.CRL([]x509.RevocationListEntry{{SerialNumber: revoked, RevocationTime: now}}, 1, now, now.AddDate(0, 0, 7))
	if err != nil {
		return err
	}
	return write(dir, "ca.crl", pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl}), 0o644)
}

func writePair(dir, name string, cert *x509.Certificate, key crypto.Signer) error {
	kp, err := certfile.EncodeKeyPEM(key)
	if err != nil {
		return err
	}
	if err := write(dir, name+".key", kp, 0o600); err != nil {
		return err
	}
	return write(dir, name+".crt", certfile.EncodePEM(cert), 0o644)
}

func write(dir, name string, data []byte, perm os.FileMode) error {
	return os.WriteFile(filepath.Join(dir, name), data, perm)
}
