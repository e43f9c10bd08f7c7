package pki

import (
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"tlsgate/internal/certfile"
)

// Files of a PKI directory.
const (
	RootCert  = "ca.crt"
	rootKey   = "ca.key"
	InterCert = "intermediate.crt"
	interKey  = "intermediate.key"
	CRLFile   = "crl.pem"
	indexFile = "index.json"
	lockFile  = ".lock"
	issuedDir = "issued"
)

// Dir is a PKI kept in a directory. Every file access goes through an os.Root, so no
// name can reach outside it; the index is updated under an exclusive lock, so
// concurrent commands never reuse a serial or lose an entry.
type Dir struct {
	root *os.Root
	Path string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Entry is one issued certificate in the index.
type Entry struct {
	Serial    string    `json:"serial"` // upper-case hex of even length, as openssl prints it
	Name      string    `json:"name"`
	Kind      string    `json:"kind"` // server | client | intermediate
	Subject   string    `json:"subject"`
	NotAfter  time.Time `json:"not_after"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	Reason    int       `json:"reason,omitempty"`
	// Pending marks an issuance that had not finished writing its files: Issue records
	// the entry first, so a certificate on disk always has one (and can be revoked),
	// and clears the mark once both files are written. A pending entry left behind by
	// an interrupted issue may or may not have its files.
	Pending bool `json:"pending,omitempty"`
}

// Revoked reports whether the entry is revoked.
func (e *Entry) Revoked() bool { return !e.RevokedAt.IsZero() }

type index struct {
	CRLNumber int64   `json:"crl_number"`
	CRLURL    string  `json:"crl_url,omitempty"`
	Certs     []Entry `json:"certs"`
}

// InitOptions configure a new PKI.
type InitOptions struct {
	Name         string  // root CA common name
	Key          KeyType // default ecdsa-p256
	Days         int     // root validity, default 3650
	Intermediate bool    // also make an intermediate CA that issues every leaf
	CRLURL       string  // written as CRL distribution point into issued certificates
}

// Init makes a new PKI in path, which must not hold one already.
func Init(path string, o InitOptions, now func() time.Time) (*Dir, error) {
	if err := os.MkdirAll(path, 0o755); err != nil {
		return nil, err
	}
	d, err := open(path, now)
	if err != nil {
		return nil, err
	}
	if _, err := d.root.Stat(RootCert); err == nil {
		d.Close()
		return nil, fmt.Errorf("%s: already holds a PKI (%s exists)", path, RootCert)
	}
	if o.Days <= 0 {
		o.Days = 3650
	}
	t := d.now()
	root, err := NewRoot(Request{CommonName: o.Name, KeyType: o.Key, Now: t, NotAfter: t.AddDate(0, 0, o.Days)})
	if err != nil {
		d.Close()
		return nil, err
	}
	err = d.locked(func(ix *index) error {
		ix.CRLURL = o.CRLURL
		if err := d.writePair(RootCert, rootKey, []*x509.Certificate{root.Cert}, root.Key); err != nil {
			return err
		}
		if !o.Intermediate {
			return nil
		}
		inter, err := root.Intermediate(Request{CommonName: o.Name + " intermediate", KeyType: o.Key, Now: t, NotAfter: t.AddDate(0, 0, o.Days)})
		if err != nil {
			return err
		}
		ix.Certs = append(ix.Certs, entryOf(inter.Cert, "intermediate", "intermediate"))
		return d.writePair(InterCert, interKey, []*x509.Certificate{inter.Cert}, inter.Key)
	})
	if err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// Open opens an existing PKI.
func Open(path string, now func() time.Time) (*Dir, error) {
	d, err := open(path, now)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: no PKI here (run tlsgate pki init --dir %s)", path, path)
	}
	if err != nil {
		return nil, err
	}
	if _, err := d.root.Stat(RootCert); err != nil {
		d.Close()
		return nil, fmt.Errorf("%s: no PKI here (run tlsgate pki init --dir %s)", path, path)
	}
	return d, nil
}

func open(path string, now func() time.Time) (*Dir, error) {
	r, err := os.OpenRoot(path)
	if err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &Dir{root: r, Path: path, Now: now}, nil
}

// Close releases the directory.
func (d *Dir) Close() error { return d.root.Close() }

func (d *Dir) now() time.Time { return d.Now() }

// locked runs f with the index loaded, under the directory's exclusive lock, and
// writes the index back if f succeeds.
func (d *Dir) locked(f func(*index) error) error { return d.withIndex(true, f) }

func (d *Dir) withIndex(write bool, f func(*index) error) error {
	lf, err := d.root.OpenFile(lockFile, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("locking %s: %w", d.Path, err)
	}
	defer syscall.Flock(int(lf.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing unlocks too
	ix := &index{CRLNumber: 0}
	b, err := d.root.ReadFile(indexFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	default:
		if err := json.Unmarshal(b, ix); err != nil {
			return fmt.Errorf("%s/%s: %w", d.Path, indexFile, err)
		}
		for i := range ix.Certs { // written before serials kept openssl's even length
			if n, ok := new(big.Int).SetString(ix.Certs[i].Serial, 16); ok {
				ix.Certs[i].Serial = serialHex(n)
			}
		}
	}
	if err := f(ix); err != nil || !write {
		return err
	}
	return d.saveIndex(ix)
}

// saveIndex writes the index atomically; call it under the lock only.
func (d *Dir) saveIndex(ix *index) error {
	out, err := json.MarshalIndent(ix, "", "  ")
	if err != nil {
		return err
	}
	return d.write(indexFile, append(out, '\n'), 0o644)
}

// write replaces name atomically: a temporary file in the same directory, then rename.
func (d *Dir) write(name string, data []byte, perm os.FileMode) error {
	tmp := name + ".tmp"
	f, err := d.root.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := d.root.Chmod(tmp, perm); err != nil {
		return err
	}
	return d.root.Rename(tmp, name)
}

func (d *Dir) writePair(certName, keyName string, chain []*x509.Certificate, key crypto.Signer) error {
	kp, err := certfile.EncodeKeyPEM(key)
	if err != nil {
		return err
	}
	if err := d.write(keyName, kp, 0o600); err != nil {
		return err
	}
	return d.write(certName, certfile.EncodePEM(chain...), 0o644)
}

// issuer is the CA that signs leaves and CRLs: the intermediate when there is one.
func (d *Dir) issuer() (*CA, error) {
	for _, p := range [][2]string{{InterCert, interKey}, {RootCert, rootKey}} {
		cb, err := d.root.ReadFile(p[0])
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		kb, err := d.root.ReadFile(p[1])
		if err != nil {
			return nil, err
		}
		certs, err := certfile.ParseCertificates(cb)
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %w", d.Path, p[0], err)
		}
		key, err := certfile.ParsePrivateKey(kb)
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %w", d.Path, p[1], err)
		}
		return &CA{Cert: certs[0], Key: key}, nil
	}
	return nil, fmt.Errorf("%s: no CA certificate", d.Path)
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// IssueOptions describe a leaf to issue.
type IssueOptions struct {
	DNS    []string
	IPs    []net.IP
	URIs   []*url.URL
	Emails []string
	Days   int     // default 397
	Key    KeyType // default: ecdsa-p256
	CRLURL string  // default: the one given at init
}

// Issued is an issued leaf and where its files are.
type Issued struct {
	Entry
	Cert     *x509.Certificate
	Key      crypto.Signer
	Chain    []*x509.Certificate // leaf first, then the intermediate if any
	CertFile string
	KeyFile  string
}

// Issue signs a server or client certificate named name and writes issued/NAME.crt
// (with its chain) and issued/NAME.key.
func (d *Dir) Issue(usage Usage, name string, o IssueOptions) (*Issued, error) {
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("name %q: use letters, digits, '.', '_', '@' and '-' (at most 64)", name)
	}
	ca, err := d.issuer()
	if err != nil {
		return nil, err
	}
	kind := map[Usage]string{UsageServer: "server", UsageClient: "client"}[usage]
	if usage == UsageServer && len(o.DNS)+len(o.IPs) == 0 {
		o.DNS = []string{name}
	}
	if o.Days <= 0 {
		o.Days = 397
	}
	key, err := NewKey(o.Key)
	if err != nil {
		return nil, err
	}
	out := &Issued{Key: key, CertFile: issuedDir + "/" + name + ".crt", KeyFile: issuedDir + "/" + name + ".key"}
	err = d.locked(func(ix *index) error {
		for _, e := range ix.Certs {
			if e.Name == name && e.Kind == kind && !e.Revoked() && e.NotAfter.After(d.now()) {
				if e.Pending {
					return fmt.Errorf("an interrupted issue of %s certificate %q is pending (serial %s); its files may exist: revoke it first or pick another name", kind, name, e.Serial)
				}
				return fmt.Errorf("%s certificate %q already exists (serial %s); revoke it first or pick another name", kind, name, e.Serial)
			}
		}
		serial, err := uniqueSerial(ix)
		if err != nil {
			return err
		}
		crlURL := o.CRLURL
		if crlURL == "" {
			crlURL = ix.CRLURL
		}
		t := d.now()
		// A certificate never outlives the CA that signs it: past the CA's NotAfter no
		// verifier accepts the chain, so the days asked for are cut to the CA's.
		notAfter := t.AddDate(0, 0, o.Days)
		if !t.Before(ca.Cert.NotAfter) {
			return fmt.Errorf("the issuing CA %q expired on %s: make a new PKI (tlsgate pki init --dir NEWDIR)", ca.Cert.Subject, ca.Cert.NotAfter.Format(time.DateOnly))
		}
		if notAfter.After(ca.Cert.NotAfter) {
			notAfter = ca.Cert.NotAfter
		}
		cert, _, err := ca.Issue(Request{
			CommonName: name, DNS: o.DNS, IPs: o.IPs, URIs: o.URIs, Emails: o.Emails, Usage: usage,
			Key: key, Now: t, NotAfter: notAfter, CRLURL: crlURL, Serial: serial,
		})
		if err != nil {
			return err
		}
		out.Cert, out.Chain = cert, []*x509.Certificate{cert}
		if root, err := d.rootCert(); err != nil {
			return err
		} else if !root.Equal(ca.Cert) {
			out.Chain = append(out.Chain, ca.Cert)
		}
		// Crash-safe order: the entry (pending) reaches the disk before any file that
		// holds the certificate, so a kill at any moment leaves no certificate that
		// Revoke does not know; withIndex then writes it completed.
		out.Entry = entryOf(cert, name, kind)
		pending := out.Entry
		pending.Pending = true
		ix.Certs = append(ix.Certs, pending)
		if err := d.saveIndex(ix); err != nil {
			return err
		}
		if err := d.root.MkdirAll(issuedDir, 0o755); err != nil {
			return err
		}
		if err := d.writePair(out.CertFile, out.KeyFile, out.Chain, key); err != nil {
			return err
		}
		// A PKCS#12 export of the name's previous (revoked or expired) certificate would
		// now sit beside the new pair with the old serial; `--p12` writes a new one.
		if err := d.root.Remove(issuedDir + "/" + name + ".p12"); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		ix.Certs[len(ix.Certs)-1] = out.Entry
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// rootCert reads the root CA certificate.
func (d *Dir) rootCert() (*x509.Certificate, error) {
	b, err := d.root.ReadFile(RootCert)
	if err != nil {
		return nil, err
	}
	certs, err := certfile.ParseCertificates(b)
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %w", d.Path, RootCert, err)
	}
	return certs[0], nil
}

// WriteFile writes data under the PKI directory (used for PKCS#12 exports).
func (d *Dir) WriteFile(name string, data []byte, perm os.FileMode) error {
	return d.write(name, data, perm)
}

func uniqueSerial(ix *index) (*big.Int, error) {
	for range 8 {
		s, err := Serial()
		if err != nil {
			return nil, err
		}
		hex := serialHex(s)
		if !slices.ContainsFunc(ix.Certs, func(e Entry) bool { return strings.TrimLeft(e.Serial, "0") == strings.TrimLeft(hex, "0") }) {
			return s, nil
		}
	}
	return nil, errors.New("could not draw an unused serial number")
}

func serialHex(s *big.Int) string { return certfile.SerialHex(s) }

func entryOf(c *x509.Certificate, name, kind string) Entry {
	return Entry{Serial: serialHex(c.SerialNumber), Name: name, Kind: kind, Subject: c.Subject.String(), NotAfter: c.NotAfter}
}

// Reasons are the CRL reason codes accepted by Revoke (RFC 5280 §5.3.1).
var Reasons = map[string]int{
	"unspecified": 0, "keyCompromise": 1, "caCompromise": 2, "affiliationChanged": 3,
	"superseded": 4, "cessationOfOperation": 5, "certificateHold": 6, "privilegeWithdrawn": 9,
}

// hexSerialRE matches a serial number as Revoke takes it (colons removed, upper case).
var hexSerialRE = regexp.MustCompile(`^[0-9A-F]+$`)

// Revoke marks a certificate revoked, found by serial (hex, colons allowed) or by the
// certificate file given. Run CRL afterwards to publish it.
func (d *Dir) Revoke(serialOrFile string, reason string) (*Entry, error) {
	code, ok := Reasons[reason]
	if !ok && reason != "" {
		return nil, fmt.Errorf("unknown reason %q (known: unspecified, keyCompromise, caCompromise, affiliationChanged, superseded, cessationOfOperation, certificateHold, privilegeWithdrawn)", reason)
	}
	serial := strings.ToUpper(strings.ReplaceAll(serialOrFile, ":", ""))
	b, err := os.ReadFile(serialOrFile)
	if err != nil && strings.HasSuffix(serialOrFile, ".crt") && !filepath.IsAbs(serialOrFile) {
		// issued/NAME.crt as the PKI names its files (and the --help example writes it).
		if rb, rerr := d.root.ReadFile(serialOrFile); rerr == nil {
			b, err = rb, nil
		}
	}
	if err != nil && !hexSerialRE.MatchString(serial) {
		// Not a serial number: a certificate file that cannot be read, named as such
		// (a missing issued/NAME.crt is not "serial ISSUED/NAME.CRT").
		return nil, fmt.Errorf("%s is neither a serial number (hex) nor a readable certificate file: %w", serialOrFile, err)
	}
	if err == nil {
		certs, err := certfile.ParseCertificates(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", serialOrFile, err)
		}
		serial = serialHex(certs[0].SerialNumber)
	}
	var out *Entry
	err = d.locked(func(ix *index) error {
		for i := range ix.Certs {
			e := &ix.Certs[i]
			if strings.TrimLeft(e.Serial, "0") != strings.TrimLeft(serial, "0") {
				continue
			}
			if e.Revoked() {
				return fmt.Errorf("serial %s (%s) is already revoked", e.Serial, e.Name)
			}
			e.RevokedAt, e.Reason = d.now().UTC().Truncate(time.Second), code
			out = e
			return nil
		}
		return fmt.Errorf("serial %s: not issued by this PKI (see tlsgate pki list)", serial)
	})
	return out, err
}

// CRL signs a CRL of every revoked certificate with the issuing CA, valid for days,
// with an increasing CRL number, and writes it to crl.pem. With an intermediate, the
// root's CRL (listing revoked intermediates) is appended, so one file serves
// `openssl verify -crl_check_all` and tlsgate alike.
func (d *Dir) CRL(days int) (number int64, err error) {
	if days <= 0 {
		days = 7
	}
	ca, err := d.issuer()
	if err != nil {
		return 0, err
	}
	err = d.locked(func(ix *index) error {
		ix.CRLNumber++
		number = ix.CRLNumber
		t := d.now()
		var leaves, inters []x509.RevocationListEntry
		for _, e := range ix.Certs {
			if !e.Revoked() {
				continue
			}
			s, ok := new(big.Int).SetString(e.Serial, 16)
			if !ok {
				return fmt.Errorf("index: bad serial %q", e.Serial)
			}
			re := x509.RevocationListEntry{SerialNumber: s, RevocationTime: e.RevokedAt, ReasonCode: e.Reason}
			if e.Kind == "intermediate" {
				inters = append(inters, re)
			} else {
				leaves = append(leaves, re)
			}
		}
		der, err := ca.CRL(leaves, number, t, t.AddDate(0, 0, days))
		if err != nil {
			return err
		}
		out := pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
		root, err := d.rootCert()
		if err != nil {
			return err
		}
		if !root.Equal(ca.Cert) {
			rk, err := d.root.ReadFile(rootKey)
			if err != nil {
				return err
			}
			key, err := certfile.ParsePrivateKey(rk)
			if err != nil {
				return err
			}
			rder, err := (&CA{Cert: root, Key: key}).CRL(inters, number, t, t.AddDate(0, 0, days))
			if err != nil {
				return err
			}
			out = append(out, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: rder})...)
		}
		return d.write(CRLFile, out, 0o644)
	})
	return number, err
}

// List returns every issued certificate, in issuance order.
func (d *Dir) List() ([]Entry, error) {
	var out []Entry
	err := d.withIndex(false, func(ix *index) error {
		out = ix.Certs
		return nil
	})
	return out, err
}
