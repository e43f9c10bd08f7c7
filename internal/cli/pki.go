package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"software.sslmate.com/src/go-pkcs12"

	"tlsgate/internal/pki"
)

func pkiCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "pki",
		Short: "A small PKI: CA, server and client certificates, revocation and CRLs",
		Long: `Keep a PKI in a directory (default ./pki): a root CA (and optionally an
intermediate that issues every leaf), issued certificates under issued/, an index of
what was issued and revoked, and crl.pem. openssl verify -crl_check accepts what it
issues and rejects what it revoked.

  tlsgate pki init --name "My CA"
  tlsgate pki issue server www.example.com --dns www.example.com --ip 127.0.0.1
  tlsgate pki issue client alice --uri spiffe://example.org/alice --p12 --password secret
  tlsgate pki revoke issued/alice.crt --reason keyCompromise
  tlsgate pki crl
  tlsgate pki list`,
	}
	c.PersistentFlags().String("dir", "pki", "PKI directory")
	c.AddCommand(pkiInitCmd(), pkiIssueCmd(), pkiRevokeCmd(), pkiCRLCmd(), pkiListCmd())
	return c
}

func dirFlag(c *cobra.Command) string {
	d, _ := c.Flags().GetString("dir")
	return d
}

// withPKI opens the --dir PKI for f and closes it after.
func withPKI(c *cobra.Command, f func(d *pki.Dir) error) error {
	d, err := pki.Open(dirFlag(c), time.Now)
	if err != nil {
		return err
	}
	defer d.Close()
	return f(d)
}

func pkiInitCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "init",
		Short: "Make a root CA (and optionally an intermediate)",
		Args:  noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			f := c.Flags()
			var o pki.InitOptions
			o.Name, _ = f.GetString("name")
			kt, _ := f.GetString("key")
			o.Key = pki.KeyType(kt)
			days, err := daysFlag(c)
			if err != nil {
				return err
			}
			o.Days = days
			o.Intermediate, _ = f.GetBool("intermediate")
			o.CRLURL, _ = f.GetString("crl-url")
			if _, err := pki.NewKey(o.Key); err != nil {
				return usageError{fmt.Errorf("--key: %w", err)}
			}
			d, err := pki.Init(dirFlag(c), o, time.Now)
			if err != nil {
				return err
			}
			defer d.Close()
			fmt.Fprintf(c.OutOrStdout(), "made root CA %q in %s/%s", o.Name, d.Path, pki.RootCert)
			if o.Intermediate {
				fmt.Fprintf(c.OutOrStdout(), " and intermediate %s/%s", d.Path, pki.InterCert)
			}
			fmt.Fprintf(c.OutOrStdout(), "\nuse it as the CA bundle of a mutual listener: certificates: [{id: clients, ca: %s/%s, crl: [%s/%s]}]\nwrite %s/%s first with: tlsgate pki crl --dir %s\n", d.Path, pki.RootCert, d.Path, pki.CRLFile, d.Path, pki.CRLFile, d.Path)
			return nil
		},
	}
	c.Flags().String("name", "tlsgate CA", "root CA common name")
	c.Flags().String("key", "ecdsa-p256", "key type: ecdsa-p256, ecdsa-p384, rsa-2048, rsa-4096, ed25519")
	c.Flags().Int("days", 3650, "CA validity in days")
	c.Flags().Bool("intermediate", false, "also make an intermediate CA that issues every certificate")
	c.Flags().String("crl-url", "", "CRL distribution point written into issued certificates")
	return c
}

func pkiIssueCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "issue server|client NAME",
		Short: "Issue a server (EKU serverAuth) or client (EKU clientAuth) certificate",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 2 || (args[0] != "server" && args[0] != "client") {
				return usageError{fmt.Errorf("%s: want server|client NAME", c.CommandPath())}
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			f := c.Flags()
			usage := pki.UsageClient
			if args[0] == "server" {
				usage = pki.UsageServer
			}
			var o pki.IssueOptions
			o.DNS, _ = f.GetStringSlice("dns")
			ips, _ := f.GetStringSlice("ip")
			for _, s := range ips {
				ip := net.ParseIP(s)
				if ip == nil {
					return usageError{fmt.Errorf("--ip: %q is not an IP address", s)}
				}
				o.IPs = append(o.IPs, ip)
			}
			uris, _ := f.GetStringSlice("uri")
			for _, s := range uris {
				u, err := url.Parse(s)
				if err != nil || u.Scheme == "" {
					return usageError{fmt.Errorf("--uri: %q is not an absolute URI", s)}
				}
				o.URIs = append(o.URIs, u)
			}
			o.Emails, _ = f.GetStringSlice("email")
			days, err := daysFlag(c)
			if err != nil {
				return err
			}
			o.Days = days
			kt, _ := f.GetString("key")
			o.Key = pki.KeyType(kt)
			o.CRLURL, _ = f.GetString("crl-url")
			p12, _ := f.GetBool("p12")
			password, _ := f.GetString("password")
			legacy, _ := f.GetBool("legacy")
			if (password != "" || legacy) && !p12 {
				return usageError{fmt.Errorf("--password and --legacy need --p12")}
			}
			return withPKI(c, func(d *pki.Dir) error {
				return issue(c, d, usage, args[1], o, p12, password, legacy, !f.Changed("password"))
			})
		},
	}
	f := c.Flags()
	f.StringSlice("dns", nil, "DNS name (repeatable; default for servers given neither --dns nor --ip: NAME)")
	f.StringSlice("ip", nil, "IP address (repeatable)")
	f.StringSlice("uri", nil, "URI SAN, e.g. spiffe://example.org/alice (repeatable)")
	f.StringSlice("email", nil, "email SAN (repeatable)")
	f.Int("days", 397, "validity in days (cut to the issuing CA's end)")
	f.String("key", "ecdsa-p256", "key type: ecdsa-p256, ecdsa-p384, rsa-2048, rsa-4096, ed25519")
	f.String("crl-url", "", "CRL distribution point (default: the one given at init)")
	f.Bool("p12", false, "also write issued/NAME.p12 (PKCS#12 with key and chain, for browsers and OS stores)")
	f.String("password", "", "PKCS#12 password (without it the file has an empty password, and a warning says so)")
	f.Bool("legacy", false, "PKCS#12 with 3DES/SHA-1 for old Windows and macOS (default: AES-256/PBKDF2)")
	return c
}

// issue issues one certificate and, with p12, its PKCS#12 export.
func issue(c *cobra.Command, d *pki.Dir, usage pki.Usage, name string, o pki.IssueOptions, p12 bool, password string, legacy, noPassword bool) error {
	is, err := d.Issue(usage, name, o)
	if err != nil {
		return err
	}
	kind := map[pki.Usage]string{pki.UsageServer: "server", pki.UsageClient: "client"}[usage]
	out := c.OutOrStdout()
	fmt.Fprintf(out, "issued %s certificate %q, serial %s, expires %s\n  %s/%s\n  %s/%s\n", kind, name, is.Serial, is.NotAfter.Format(time.DateOnly), d.Path, is.CertFile, d.Path, is.KeyFile)
	if p12 {
		enc := pkcs12.Modern2023
		if legacy {
			enc = pkcs12.LegacyDES
		}
		data, err := enc.Encode(is.Key, is.Cert, is.Chain[1:], password)
		if err != nil {
			return fmt.Errorf("encoding PKCS#12: %w", err)
		}
		file := "issued/" + name + ".p12"
		if err := d.WriteFile(file, data, 0o600); err != nil {
			return err
		}
		fmt.Fprintf(out, "  %s/%s\n", d.Path, file)
		if noPassword {
			warnEmptyP12(c, d.Path+"/"+file)
		}
	}
	return nil
}

func pkiRevokeCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "revoke SERIAL|CERTFILE",
		Short: "Mark a certificate revoked (then run: tlsgate pki crl)",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{fmt.Errorf("%s: want one SERIAL or CERTFILE", c.CommandPath())}
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			reason, _ := c.Flags().GetString("reason")
			if _, ok := pki.Reasons[reason]; !ok {
				return usageError{fmt.Errorf("--reason: unknown reason %q", reason)}
			}
			return withPKI(c, func(d *pki.Dir) error {
				e, err := d.Revoke(args[0], reason)
				if err != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "revoked %s %q, serial %s; publish it with: tlsgate pki crl --dir %s\n", e.Kind, e.Name, e.Serial, d.Path)
				return nil
			})
		},
	}
	c.Flags().String("reason", "unspecified", "keyCompromise, superseded, cessationOfOperation, affiliationChanged, caCompromise, unspecified, …")
	return c
}

func pkiCRLCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "crl",
		Short: "Write a freshly signed CRL to crl.pem",
		Args:  noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			days, err := daysFlag(c)
			if err != nil {
				return err
			}
			return withPKI(c, func(d *pki.Dir) error {
				n, err := d.CRL(days)
				if err != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "wrote %s/%s, CRL number %d, next update in %d days\n", d.Path, pki.CRLFile, n, days)
				return nil
			})
		},
	}
	c.Flags().Int("days", 7, "days until nextUpdate")
	return c
}

// daysFlag reads a --days flag: at least 1. Zero or less was taken as the default
// before (crl --days 0 printed "next update in 0 days" and wrote 7).
func daysFlag(c *cobra.Command) (int, error) {
	days, _ := c.Flags().GetInt("days")
	if days < 1 {
		return 0, usageError{fmt.Errorf("%s: --days: want at least 1, not %d", c.CommandPath(), days)}
	}
	return days, nil
}

// warnEmptyP12 says on stderr that a PKCS#12 file was written with an empty password,
// as openssl pkcs12 -export and step certificate p12 ask for one instead (and mkcert
// writes "changeit"): the key is readable by anyone who gets the file, and some
// importers (macOS Keychain) refuse an empty password.
func warnEmptyP12(c *cobra.Command, file string) {
	fmt.Fprintf(c.ErrOrStderr(), "tlsgate: warning: %s has an empty password: anyone who gets the file gets the private key, and some importers (macOS Keychain) refuse it; give --password\n", file)
}

func pkiListCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "list",
		Short: "List issued certificates with status and expiry",
		Example: `  tlsgate pki list --dir pki
  tlsgate pki list --dir pki --json`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			asJSON, _ := c.Flags().GetBool("json")
			return withPKI(c, func(d *pki.Dir) error {
				es, err := d.List()
				if err != nil {
					return err
				}
				if asJSON {
					return writeListJSON(c.OutOrStdout(), es, time.Now())
				}
				writeList(c.OutOrStdout(), es, time.Now())
				return nil
			})
		},
	}
	c.Flags().Bool("json", false, "print a JSON array: serial, kind, name, subject, status (valid, revoked, pending, expired), not_after, days_left, revoked_at, reason")
	return c
}

// listEntry is one certificate of `pki list --json`.
type listEntry struct {
	pki.Entry
	Status   string `json:"status"` // valid | revoked | pending | expired
	DaysLeft int    `json:"days_left"`
}

func writeListJSON(w io.Writer, es []pki.Entry, now time.Time) error {
	out := make([]listEntry, 0, len(es))
	for _, e := range es {
		out = append(out, listEntry{Entry: e, Status: status(e, now), DaysLeft: int(e.NotAfter.Sub(now).Hours() / 24)})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// status is valid, revoked, pending (an interrupted issue: its files may exist; revoke
// it) or expired.
func status(e pki.Entry, now time.Time) string {
	switch {
	case e.Revoked():
		return "revoked"
	case e.Pending:
		return "pending"
	case now.After(e.NotAfter):
		return "expired"
	}
	return "valid"
}

func writeList(w io.Writer, es []pki.Entry, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERIAL\tKIND\tNAME\tSUBJECT\tSTATUS\tEXPIRES\tDAYS LEFT")
	for _, e := range es {
		st := status(e, now)
		if e.Revoked() {
			st += " " + e.RevokedAt.Format(time.DateOnly)
		}
		days := int(e.NotAfter.Sub(now).Hours() / 24)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", e.Serial, e.Kind, e.Name, e.Subject, st, e.NotAfter.Format(time.DateOnly), days)
	}
	tw.Flush()
}
