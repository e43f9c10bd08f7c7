// Package pkitest is a test CA: roots, intermediates, leaves with options (EKU, names,
// validity, key type), CRLs and files, minted in-process with a pinned clock. Only
// _test.go files import it. Keys default to ECDSA P-256 (fast); RSA-2048 keys come from
// a small per-process pool so a matrix of tests does not spend its time in key
// generation.
package pkitest

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tlsgate/internal/certfile"
	"tlsgate/internal/pki"
)

// Now is the pinned issuance time of every test certificate: the clock tests pass to the
// code under test unless they move it.
var Now = time.Now().Truncate(time.Second)

var (
	rsaMu   sync.Mutex
	rsaPool []crypto.Signer
	rsaNext atomic.Uint32
)

const rsaPoolSize = 12

// Key returns a key of type kt: fresh for ECDSA and Ed25519, from the pool for RSA-2048.
func Key(tb testing.TB, kt pki.KeyType) crypto.Signer {
	tb.Helper()
	if kt == pki.RSA2048 {
		rsaMu.Lock()
		defer rsaMu.Unlock()
		i := int(rsaNext.Add(1)) % rsaPoolSize
		for len(rsaPool) <= i {
			k, err := pki.NewKey(pki.RSA2048)
			if err != nil {
				tb.Fatal(err)
			}
			rsaPool = append(rsaPool, k)
		}
		return rsaPool[i]
	}
	k, err := pki.NewKey(kt)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// CA is a test certificate authority.
type CA struct {
	*pki.CA
	tb      testing.TB
	KeyType pki.KeyType
	// Chain is this CA and its issuers up to the root, this CA first.
	Chain []*x509.Certificate
}

// New makes a root CA whose keys (and leaves' keys) are of type kt.
func New(tb testing.TB, name string, kt pki.KeyType) *CA {
	tb.Helper()
	root, err := pki.NewRoot(pki.Request{CommonName: name, Key: Key(tb, kt), Now: Now})
	if err != nil {
		tb.Fatal(err)
	}
	return &CA{CA: root, tb: tb, KeyType: kt, Chain: []*x509.Certificate{root.Cert}}
}

// Intermediate issues a subordinate CA; opts change its request (Valid, say).
func (ca *CA) Intermediate(name string, opts ...Option) *CA {
	ca.tb.Helper()
	req := pki.Request{CommonName: name, Key: Key(ca.tb, ca.KeyType), Now: Now}
	for _, o := range opts {
		o(&req)
	}
	sub, err := ca.CA.Intermediate(req)
	if err != nil {
		ca.tb.Fatal(err)
	}
	return &CA{CA: sub, tb: ca.tb, KeyType: ca.KeyType, Chain: append([]*x509.Certificate{sub.Cert}, ca.Chain...)}
}

// Option changes a leaf request.
type Option func(*pki.Request)

// Server makes a server certificate for names (DNS names or IPs).
func Server(names ...string) Option {
	return func(r *pki.Request) {
		r.Usage = pki.UsageServer
		for _, n := range names {
			if ip := net.ParseIP(n); ip != nil {
				r.IPs = append(r.IPs, ip)
			} else {
				r.DNS = append(r.DNS, n)
			}
		}
	}
}

// EKU sets the extended key usages.
func EKU(ekus ...x509.ExtKeyUsage) Option { return func(r *pki.Request) { r.EKU = ekus } }

// Valid sets the validity period relative to Now.
func Valid(from, to time.Duration) Option {
	return func(r *pki.Request) { r.NotBefore, r.NotAfter = Now.Add(from), Now.Add(to) }
}

// URI adds a URI SAN.
func URI(s string) Option {
	return func(r *pki.Request) {
		u, err := url.Parse(s)
		if err == nil {
			r.URIs = append(r.URIs, u)
		}
	}
}

// CRLURL sets the CRL distribution point.
func CRLURL(u string) Option { return func(r *pki.Request) { r.CRLURL = u } }

// OCSPURL sets the OCSP responder.
func OCSPURL(u string) Option { return func(r *pki.Request) { r.OCSPURL = u } }

// OU sets the organizational units.
func OU(ou ...string) Option { return func(r *pki.Request) { r.OU = ou } }

// Leaf is an issued certificate with its key and chain (leaf first, root excluded).
type Leaf struct {
	Cert  *x509.Certificate
	Key   crypto.Signer
	Chain []*x509.Certificate
}

// TLS is the leaf as a tls.Certificate presenting the leaf and its intermediates.
func (l *Leaf) TLS() tls.Certificate {
	tc := tls.Certificate{PrivateKey: l.Key, Leaf: l.Cert}
	for _, c := range l.Chain {
		tc.Certificate = append(tc.Certificate, c.Raw)
	}
	return tc
}

// LeafOnly presents the leaf without intermediates.
func (l *Leaf) LeafOnly() tls.Certificate {
	return tls.Certificate{PrivateKey: l.Key, Leaf: l.Cert, Certificate: [][]byte{l.Cert.Raw}}
}

// Issue makes a client certificate (EKU clientAuth) named cn unless options say otherwise.
func (ca *CA) Issue(cn string, opts ...Option) *Leaf {
	ca.tb.Helper()
	r := pki.Request{CommonName: cn, Key: Key(ca.tb, ca.KeyType), Now: Now}
	for _, o := range opts {
		o(&r)
	}
	c, k, err := ca.CA.Issue(r)
	if err != nil {
		ca.tb.Fatal(err)
	}
	// Chain: the leaf, then every CA below the root.
	chain := append([]*x509.Certificate{c}, ca.Chain[:len(ca.Chain)-1]...)
	return &Leaf{Cert: c, Key: k, Chain: chain}
}

// CRL returns a PEM CRL revoking certs, valid from Now-1h until nextUpdate after Now.
func (ca *CA) CRL(nextUpdate time.Duration, certs ...*x509.Certificate) []byte {
	ca.tb.Helper()
	var es []x509.RevocationListEntry
	for _, c := range certs {
		es = append(es, x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: Now.Add(-time.Minute)})
	}
	der, err := ca.CA.CRL(es, time.Now().UnixNano(), Now.Add(-time.Hour), Now.Add(nextUpdate))
	if err != nil {
		ca.tb.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}

// LongCRL returns a DER CRL listing serials 1 to n, with extra in place of the middle
// one when given, valid for an hour around Now (for benchmarks of large CRLs).
func (ca *CA) LongCRL(n int, extra *big.Int) []byte {
	ca.tb.Helper()
	es := make([]x509.RevocationListEntry, n)
	for i := range es {
		es[i] = x509.RevocationListEntry{SerialNumber: big.NewInt(int64(i + 1)), RevocationTime: Now}
	}
	if extra != nil {
		es[n/2].SerialNumber = extra
	}
	der, err := ca.CA.CRL(es, 1, Now.Add(-time.Hour), Now.Add(time.Hour))
	if err != nil {
		ca.tb.Fatal(err)
	}
	return der
}

// PEM is the CA certificate as PEM.
func (ca *CA) PEM() []byte { return certfile.EncodePEM(ca.Cert) }

// Pool is a pool holding the root of this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Chain[len(ca.Chain)-1])
	return p
}

// Write writes data to dir/name and returns the path.
func Write(tb testing.TB, dir, name string, data []byte) string {
	tb.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

// WritePair writes the leaf's chain as name.crt and its key as name.key.
func (l *Leaf) WritePair(tb testing.TB, dir, name string) (certPath, keyPath string) {
	tb.Helper()
	kp, err := certfile.EncodeKeyPEM(l.Key)
	if err != nil {
		tb.Fatal(err)
	}
	return Write(tb, dir, name+".crt", certfile.EncodePEM(l.Chain...)), Write(tb, dir, name+".key", kp)
}
