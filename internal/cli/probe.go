package cli

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"tlsgate/internal/certfile"
	"tlsgate/internal/probe"
)

func probeCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "probe URL|host:port",
		Short: "Walk a TLS handshake as a client and explain each step and why it failed",
		Long: `Connect to https://host[:port]/path or host:port (TCP SSL) and print the handshake as
numbered steps: TCP connect, ClientHello, ServerHello, the server chain with each check
(validity, trust, name, revocation), the CertificateRequest (one-way vs mutual, the
acceptable CAs), the client certificate sent, the server's verdict and the HTTP status.
It ends with one plain-language verdict. When the server refuses the client certificate,
probe checks that certificate itself (validity, issuer, EKU, key, CRLs) and names the
failing check. Exit 0 on success, 1 on failure, 2 on usage errors.`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{fmt.Errorf("%s: want one URL or host:port", c.CommandPath())}
			}
			return nil
		},
		RunE: runProbe,
	}
	f := c.Flags()
	f.String("ca", "", "trusted CA certificates for the server (default: system roots)")
	f.String("cert", "", "client certificate (PEM/DER, leaf first; intermediates after it are sent too)")
	f.String("key", "", "client private key")
	f.String("p12", "", "client certificate and key as PKCS#12")
	f.String("password", "", "PKCS#12 password")
	f.String("servername", "", "SNI and the name to check (default: the host)")
	f.StringSlice("crl", nil, "CRL file checked against the server chain and the client certificate (repeatable)")
	f.String("tls", "", "pin the TLS version: 1.2 or 1.3")
	f.Bool("json", false, "print each step as a JSON line, then the result")
	f.Duration("timeout", 10*time.Second, "connect, handshake and verdict timeout")
	return c
}

func runProbe(c *cobra.Command, args []string) error {
	t, err := probe.ParseTarget(args[0])
	if err != nil {
		return usageError{err}
	}
	o, err := probeOptions(c)
	if err != nil {
		return err
	}
	o.Target = t
	asJSON, _ := c.Flags().GetBool("json")
	out := c.OutOrStdout()
	enc := json.NewEncoder(out)
	trace := &probe.Trace{Step: func(s probe.Step) {
		if asJSON {
			_ = enc.Encode(s)
			return
		}
		renderStep(out, s)
	}}
	res := probe.Run(c.Context(), o, trace)
	if asJSON {
		_ = enc.Encode(map[string]any{"result": res})
	}
	if !res.OK {
		return errReported
	}
	return nil
}

func probeOptions(c *cobra.Command) (probe.Options, error) {
	f := c.Flags()
	var o probe.Options
	ca, _ := f.GetString("ca")
	certPath, _ := f.GetString("cert")
	keyPath, _ := f.GetString("key")
	p12, _ := f.GetString("p12")
	password, _ := f.GetString("password")
	version, _ := f.GetString("tls")
	crls, _ := f.GetStringSlice("crl")
	o.ServerName, _ = f.GetString("servername")
	o.Timeout, _ = f.GetDuration("timeout")
	switch version {
	case "":
	case "1.2":
		o.Version = tls.VersionTLS12
	case "1.3":
		o.Version = tls.VersionTLS13
	default:
		return o, usageError{fmt.Errorf("--tls: want 1.2 or 1.3, not %q", version)}
	}
	if (certPath == "") != (keyPath == "") && p12 == "" {
		return o, usageError{errors.New("--cert and --key go together (or use --p12)")}
	}
	if p12 != "" && certPath != "" {
		return o, usageError{errors.New("--p12 and --cert are exclusive")}
	}
	if ca != "" {
		b, err := readBundle(ca, "")
		if err != nil {
			return o, err
		}
		o.Roots = x509.NewCertPool()
		for _, cert := range b.Certs {
			o.Roots.AddCert(cert)
		}
	}
	if p12 != "" {
		certPath, keyPath = p12, ""
	}
	if certPath != "" {
		b, err := readBundle(certPath, password)
		if err != nil {
			return o, err
		}
		if keyPath != "" {
			kb, err := readBundle(keyPath, password)
			if err != nil {
				return o, err
			}
			b.Key = kb.Key
		}
		if b.Key == nil {
			return o, fmt.Errorf("%s: %w", certPath, certfile.ErrNoKey)
		}
		// The certificate is sent as given, even with the wrong key: probe shows what
		// the server makes of it.
		tc := tls.Certificate{PrivateKey: b.Key, Leaf: b.Certs[0]}
		for _, cert := range b.Certs {
			tc.Certificate = append(tc.Certificate, cert.Raw)
		}
		o.ClientCert = &tc
	}
	for _, p := range crls {
		data, err := os.ReadFile(p)
		if err != nil {
			return o, err
		}
		o.CRLs = append(o.CRLs, data)
	}
	return o, nil
}

var marks = map[probe.Status]string{probe.Pass: "[ok]  ", probe.Fail: "[FAIL]", probe.Info: "[info]", probe.Warn: "[warn]"}

func renderStep(w io.Writer, s probe.Step) {
	fmt.Fprintf(w, "%2d. %s %s\n", s.N, marks[s.Status], s.Title)
	for _, l := range s.Lines {
		fmt.Fprintf(w, "           %s\n", l)
	}
	for _, ch := range s.Checks {
		fmt.Fprintf(w, "           %s %s: %s\n", marks[ch.Status], ch.Name, ch.Detail)
	}
}
