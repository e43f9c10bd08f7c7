package cli

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"software.sslmate.com/src/go-pkcs12"

	"tlsgate/internal/certfile"
	"tlsgate/internal/clientauth"
	"tlsgate/internal/revocation"
)

func certCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "cert",
		Short: "Read, convert (PEM/DER/PKCS#12) and check certificates",
	}
	c.AddCommand(certInspectCmd(), certConvertCmd(), certVerifyCmd())
	return c
}

// readBundle decodes a file, naming it in every error.
func readBundle(path, password string) (*certfile.Bundle, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b, err := certfile.Decode(data, password)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// certInfo is one certificate as inspect shows it; its JSON keys are the --json output.
type certInfo struct {
	Subject     string    `json:"subject"`
	Issuer      string    `json:"issuer"`
	Serial      string    `json:"serial"`
	Key         string    `json:"key"`
	NotBefore   time.Time `json:"not_before"`
	NotAfter    time.Time `json:"not_after"`
	Validity    string    `json:"validity"`
	DNS         []string  `json:"dns,omitempty"`
	IPs         []string  `json:"ips,omitempty"`
	URIs        []string  `json:"uris,omitempty"`
	Emails      []string  `json:"emails,omitempty"`
	EKU         []string  `json:"eku,omitempty"`
	KeyUsage    []string  `json:"key_usage,omitempty"`
	CA          bool      `json:"ca"`
	SHA256      string    `json:"sha256"`
	MatchesKey  bool      `json:"matches_key,omitempty"`
	SelfSigned  bool      `json:"self_signed"`
	CRLURLs     []string  `json:"crl_urls,omitempty"`
	OCSPServers []string  `json:"ocsp,omitempty"`
}

type fileInfo struct {
	File    string            `json:"file"`
	Format  string            `json:"format"`
	Key     string            `json:"key,omitempty"`
	P12     *certfile.P12Info `json:"p12_encryption,omitempty"`
	Certs   []certInfo        `json:"certificates"`
	InOrder bool              `json:"chain_in_order"`
	// KeyOf names, for a file with a key and no certificate, the certificates of the
	// other files given that the key belongs to ("server.crt [1] CN=www").
	KeyOf []string `json:"key_belongs_to,omitempty"`
	// keyChecked is set when KeyOf was looked for (other files gave certificates).
	keyChecked bool
}

// matchKeys fills KeyOf for each key-only file from the certificates of the others, so
// inspect server.crt server.key says whether the two belong together.
func matchKeys(infos []fileInfo, bundles []*certfile.Bundle) {
	for i, b := range bundles {
		if b.Key == nil || len(b.Certs) > 0 {
			continue
		}
		for j, o := range bundles {
			for k, c := range o.Certs {
				infos[i].keyChecked = true
				if certfile.KeyMatches(c, b.Key) {
					infos[i].KeyOf = append(infos[i].KeyOf, fmt.Sprintf("%s [%d] %s", infos[j].File, k+1, c.Subject))
				}
			}
		}
	}
}

var ekuNames = map[x509.ExtKeyUsage]string{
	x509.ExtKeyUsageAny: "any", x509.ExtKeyUsageServerAuth: "serverAuth", x509.ExtKeyUsageClientAuth: "clientAuth",
	x509.ExtKeyUsageCodeSigning: "codeSigning", x509.ExtKeyUsageEmailProtection: "emailProtection",
	x509.ExtKeyUsageTimeStamping: "timeStamping", x509.ExtKeyUsageOCSPSigning: "OCSPSigning",
}

var kuNames = []struct {
	bit  x509.KeyUsage
	name string
}{
	{x509.KeyUsageDigitalSignature, "digitalSignature"}, {x509.KeyUsageContentCommitment, "contentCommitment"},
	{x509.KeyUsageKeyEncipherment, "keyEncipherment"}, {x509.KeyUsageDataEncipherment, "dataEncipherment"},
	{x509.KeyUsageKeyAgreement, "keyAgreement"}, {x509.KeyUsageCertSign, "keyCertSign"},
	{x509.KeyUsageCRLSign, "cRLSign"}, {x509.KeyUsageEncipherOnly, "encipherOnly"}, {x509.KeyUsageDecipherOnly, "decipherOnly"},
}

func validity(c *x509.Certificate, now time.Time) string {
	switch {
	case now.Before(c.NotBefore):
		return fmt.Sprintf("NOT YET VALID (valid from %s)", c.NotBefore.UTC().Format(time.RFC3339))
	case now.After(c.NotAfter):
		return fmt.Sprintf("EXPIRED %d days ago", int(now.Sub(c.NotAfter).Hours()/24))
	}
	return fmt.Sprintf("valid, %d days left", int(c.NotAfter.Sub(now).Hours()/24))
}

func describe(path string, b *certfile.Bundle, now time.Time) fileInfo {
	fi := fileInfo{File: path, Format: b.Format, InOrder: certfile.InOrder(b.Certs), P12: b.P12}
	if b.Key != nil {
		fi.Key = certfile.KeyName(b.Key.Public())
	}
	for _, c := range b.Certs {
		sum := sha256.Sum256(c.Raw)
		ci := certInfo{
			Subject: c.Subject.String(), Issuer: c.Issuer.String(), Serial: certfile.SerialHex(c.SerialNumber),
			Key: certfile.KeyName(c.PublicKey), NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(), Validity: validity(c, now),
			DNS: c.DNSNames, Emails: c.EmailAddresses, CA: c.IsCA, SHA256: fmt.Sprintf("%X", sum[:]),
			SelfSigned: c.CheckSignatureFrom(c) == nil, CRLURLs: c.CRLDistributionPoints, OCSPServers: c.OCSPServer,
		}
		ci.SHA256 = colons(ci.SHA256)
		for _, ip := range c.IPAddresses {
			ci.IPs = append(ci.IPs, ip.String())
		}
		for _, u := range c.URIs {
			ci.URIs = append(ci.URIs, u.String())
		}
		for _, e := range c.ExtKeyUsage {
			ci.EKU = append(ci.EKU, ekuNames[e])
		}
		for _, k := range kuNames {
			if c.KeyUsage&k.bit != 0 {
				ci.KeyUsage = append(ci.KeyUsage, k.name)
			}
		}
		ci.MatchesKey = b.Key != nil && certfile.KeyMatches(c, b.Key)
		fi.Certs = append(fi.Certs, ci)
	}
	return fi
}

func colons(hex string) string {
	var b strings.Builder
	for i := 0; i < len(hex); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(hex[i : i+2])
	}
	return b.String()
}

// keyMismatch reports a file whose private key matches no certificate: neither its own
// nor, for a key-only file, any of the other files given.
func keyMismatch(fi fileInfo) bool {
	own := fi.Key != "" && len(fi.Certs) > 0 && !slices.ContainsFunc(fi.Certs, func(c certInfo) bool { return c.MatchesKey })
	return own || (fi.keyChecked && len(fi.KeyOf) == 0)
}

func renderInfo(w io.Writer, fi fileInfo) {
	fmt.Fprintf(w, "%s: %s, %d certificate(s)", fi.File, fi.Format, len(fi.Certs))
	if fi.Key != "" {
		fmt.Fprintf(w, ", private key %s", fi.Key)
	}
	fmt.Fprintln(w)
	if fi.P12 != nil {
		fmt.Fprintf(w, "  encryption: %s\n", fi.P12)
	}
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "    %-11s %s\n", k+":", v)
		}
	}
	for i, c := range fi.Certs {
		fmt.Fprintf(w, "  [%d] %s\n", i+1, c.Subject)
		line("issuer", c.Issuer)
		line("serial", c.Serial)
		line("key", c.Key)
		line("validity", fmt.Sprintf("%s to %s (%s)", c.NotBefore.Format(time.RFC3339), c.NotAfter.Format(time.RFC3339), c.Validity))
		var sans []string
		for _, pre := range []struct {
			p  string
			vs []string
		}{{"DNS:", c.DNS}, {"IP:", c.IPs}, {"URI:", c.URIs}, {"email:", c.Emails}} {
			for _, v := range pre.vs {
				sans = append(sans, pre.p+v)
			}
		}
		line("SANs", strings.Join(sans, ", "))
		line("EKU", strings.Join(c.EKU, ", "))
		line("key usage", strings.Join(c.KeyUsage, ", "))
		kind := "no"
		if c.CA {
			kind = "yes"
		}
		if c.SelfSigned {
			kind += " (self-signed)"
		}
		line("CA", kind)
		line("CRL", strings.Join(c.CRLURLs, ", "))
		line("OCSP", strings.Join(c.OCSPServers, ", "))
		line("SHA-256", c.SHA256)
		if fi.Key != "" && c.MatchesKey {
			line("key match", "yes: the private key in this file belongs to this certificate")
		}
	}
	if fi.Key != "" && !slices.ContainsFunc(fi.Certs, func(c certInfo) bool { return c.MatchesKey }) && len(fi.Certs) > 0 {
		fmt.Fprintln(w, "  key match: NO certificate in this file matches its private key")
	}
	for _, of := range fi.KeyOf {
		fmt.Fprintf(w, "  key match: yes: this private key belongs to %s\n", of)
	}
	if fi.keyChecked && len(fi.KeyOf) == 0 {
		fmt.Fprintln(w, "  key match: NO certificate in the files given matches this private key")
	}
	if len(fi.Certs) > 1 {
		if fi.InOrder {
			fmt.Fprintln(w, "  chain: in order (each certificate is signed by the next)")
		} else {
			fmt.Fprintln(w, "  chain: NOT in order (a certificate is not followed by its issuer)")
		}
	}
}

func certInspectCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "inspect FILE...",
		Short: "Show what certificate files hold: chain order, key match, SANs, EKU, validity, fingerprint",
		Long: `Show what certificate files hold: chain order, key match, SANs, EKU, validity,
fingerprint. A file with only a private key is matched against the certificates of the
other files given (tlsgate cert inspect server.crt server.key). Exit 1 when a file
cannot be read or a private key belongs to no certificate given, 0 otherwise.`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{fmt.Errorf("%s: name at least one FILE", c.CommandPath())}
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			asJSON, _ := c.Flags().GetBool("json")
			password, _ := c.Flags().GetString("password")
			var infos []fileInfo
			var bundles []*certfile.Bundle
			var errs []error
			for _, f := range args {
				b, err := readBundle(f, password)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				infos = append(infos, describe(f, b, time.Now()))
				bundles = append(bundles, b)
			}
			matchKeys(infos, bundles)
			out := c.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(infos); err != nil {
					return err
				}
			} else {
				for _, fi := range infos {
					renderInfo(out, fi)
				}
			}
			if len(errs) > 0 {
				return errors.Join(errs...)
			}
			if slices.ContainsFunc(infos, keyMismatch) {
				// A key that belongs to no certificate given is a failure found (exit 1),
				// as for cert verify: scripts check the exit code, not the text.
				return errReported
			}
			return nil
		},
	}
	c.Flags().Bool("json", false, "print JSON")
	c.Flags().String("password", "", "PKCS#12 password")
	return c
}

func certConvertCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "convert --in FILE [--key FILE] --out FILE --format pem|der|p12",
		Short: "Convert between PEM, DER and PKCS#12 (chain and key kept)",
		Long: `Convert a certificate (with its chain and key) between formats.
  pem: the chain, leaf first, followed by the key (PKCS#8) when there is one
  der: the chain as concatenated DER certificates, leaf first (tools that read one
       certificate take the leaf); the key is not included: keep it in PEM
  p12: key, leaf and chain, AES-256/PBKDF2/SHA-256 (imports into browsers, OpenSSL 3,
       current Windows and macOS); --legacy for 3DES/SHA-1 for old systems`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			f := c.Flags()
			in, _ := f.GetString("in")
			keyPath, _ := f.GetString("key")
			out, _ := f.GetString("out")
			format, _ := f.GetString("format")
			inPass, _ := f.GetString("in-password")
			password, _ := f.GetString("password")
			legacy, _ := f.GetBool("legacy")
			if !f.Changed("in-password") {
				// The contract names one --password: it opens a PKCS#12 input too.
				inPass = password
			}
			for _, req := range []string{"in", "out", "format"} {
				if err := requireFlag(c, req); err != nil {
					return err
				}
			}
			if format != "pem" && format != "der" && format != "p12" {
				return usageError{fmt.Errorf("--format: want pem, der or p12, not %q", format)}
			}
			if in == out {
				return usageError{errors.New("--out: must differ from --in")}
			}
			b, err := readBundle(in, inPass)
			if err != nil {
				return err
			}
			if keyPath != "" {
				kb, err := readBundle(keyPath, inPass)
				if err != nil {
					return err
				}
				if kb.Key == nil {
					return fmt.Errorf("%s: %w", keyPath, certfile.ErrNoKey)
				}
				b.Key = kb.Key
			}
			data, perm, err := encode(b, format, password, legacy)
			if err != nil {
				return fmt.Errorf("%s: %w", in, err)
			}
			if err := os.WriteFile(out, data, perm); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "wrote %s (%s)\n", out, format)
			if format == "p12" && !f.Changed("password") {
				warnEmptyP12(c, out)
			}
			return nil
		},
	}
	f := c.Flags()
	f.String("in", "", "input file (PEM, DER or PKCS#12)")
	f.String("key", "", "private key file, when --in has none")
	f.String("out", "", "output file")
	f.String("format", "", "pem, der or p12")
	f.String("in-password", "", "password of a PKCS#12 input (default: --password)")
	f.String("password", "", "password of the PKCS#12 output (without it: empty, and a warning says so), and of a PKCS#12 input without --in-password")
	f.Bool("legacy", false, "PKCS#12 with 3DES/SHA-1 for old Windows and macOS")
	return c
}

// encode writes a bundle in format; the leaf is the certificate matching the key.
func encode(b *certfile.Bundle, format, password string, legacy bool) ([]byte, os.FileMode, error) {
	certs := b.Certs
	if len(certs) == 0 {
		return nil, 0, certfile.ErrNoCertificate
	}
	if b.Key != nil {
		chain, err := certfile.OrderChain(certs, b.Key)
		if err != nil {
			return nil, 0, err
		}
		certs = chain
	}
	switch format {
	case "der":
		var out []byte
		for _, c := range certs {
			out = append(out, c.Raw...)
		}
		return out, 0o644, nil
	case "p12":
		if b.Key == nil {
			return nil, 0, errors.New("PKCS#12 needs the private key: give --key")
		}
		enc := pkcs12.Modern2023
		if legacy {
			enc = pkcs12.LegacyDES
		}
		data, err := enc.Encode(b.Key, certs[0], certs[1:], password)
		return data, 0o600, err
	}
	out := certfile.EncodePEM(certs...)
	if b.Key == nil {
		return out, 0o644, nil
	}
	kp, err := certfile.EncodeKeyPEM(b.Key)
	return append(out, kp...), 0o600, err
}

func certVerifyCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "verify --ca FILE [--crl FILE]... CERT",
		Short: "Check a certificate as tlsgate's listeners do, and give the reason code",
		Long: `Run tlsgate's verification pipeline on CERT (leaf first, intermediates after it):
chain to the CA bundle → validity → EKU → CA-as-leaf → CRL. Prints OK, or the reason
code (the same as in tlsgate's logs) with its meaning. Exit 0 when OK, 1 otherwise.`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{fmt.Errorf("%s: want one CERT", c.CommandPath())}
			}
			return requireFlag(c, "ca")
		},
		RunE: func(c *cobra.Command, args []string) error {
			f := c.Flags()
			caPath, _ := f.GetString("ca")
			crlPaths, _ := f.GetStringSlice("crl")
			purpose, _ := f.GetString("purpose")
			v, err := verifierFrom(caPath, crlPaths, purpose)
			if err != nil {
				return err
			}
			b, err := readBundle(args[0], "")
			if err != nil {
				return err
			}
			if len(b.Certs) == 0 {
				return fmt.Errorf("%s: %w", args[0], certfile.ErrNoCertificate)
			}
			chain, err := v.Verify(b.Certs)
			out := c.OutOrStdout()
			if err != nil {
				r := clientauth.ReasonOf(err)
				fmt.Fprintf(out, "%s: FAILED: %s: %s\n  %v\n", args[0], r, r.Text(), err)
				return errReported
			}
			names := make([]string, len(chain))
			for i, cert := range chain {
				names[i] = cert.Subject.String()
			}
			fmt.Fprintf(out, "%s: OK (%s)\n", args[0], strings.Join(names, " → "))
			return nil
		},
	}
	c.Flags().String("ca", "", "CA bundle (PEM or DER)")
	c.Flags().StringSlice("crl", nil, "CRL file (repeatable)")
	c.Flags().String("purpose", "client", "client (EKU clientAuth) or server (EKU serverAuth)")
	return c
}

func verifierFrom(caPath string, crlPaths []string, purpose string) (*clientauth.Verifier, error) {
	usage := map[string]x509.ExtKeyUsage{"client": x509.ExtKeyUsageClientAuth, "server": x509.ExtKeyUsageServerAuth}
	eku, ok := usage[purpose]
	if !ok {
		return nil, usageError{fmt.Errorf("--purpose: want client or server, not %q", purpose)}
	}
	b, err := readBundle(caPath, "")
	if err != nil {
		return nil, err
	}
	if len(b.Certs) == 0 {
		return nil, fmt.Errorf("%s: %w", caPath, certfile.ErrNoCertificate)
	}
	v := &clientauth.Verifier{Roots: x509.NewCertPool(), KeyUsages: []x509.ExtKeyUsage{eku}}
	for _, c := range b.Certs {
		v.Roots.AddCert(c)
	}
	var crls []*revocation.CRL
	for _, p := range crlPaths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		cs, err := revocation.ParseFile(data, b.Certs)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		crls = append(crls, cs...)
	}
	if len(crls) > 0 {
		v.CRLs = revocation.NewSet(crls, false)
	}
	return v, nil
}
