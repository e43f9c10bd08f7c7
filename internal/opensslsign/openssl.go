//go:build openssl && cgo

package opensslsign

/*
#cgo LDFLAGS: -lcrypto
#cgo noescape tg_sign
#cgo nocallback tg_sign
#include <stdlib.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

// A goroutine may move to another thread between two C calls, and OpenSSL's error queue
// is per thread: each function takes the error code in the same call as the failure and
// leaves the queue empty.
static unsigned long tg_errcode(void) {
	unsigned long e = ERR_peek_last_error();
	ERR_clear_error();
	return e ? e : 1;
}

// tg_load parses a PKCS #1 RSAPrivateKey (type EVP_PKEY_RSA) or a SEC 1 ECPrivateKey
// (EVP_PKEY_EC) and wipes the DER it was given.
static EVP_PKEY *tg_load(int type, unsigned char *der, long len, unsigned long *e) {
	const unsigned char *p = der;
	ERR_clear_error();
	EVP_PKEY *k = d2i_PrivateKey(type, NULL, &p, len);
	OPENSSL_cleanse(der, len);
	if (k == NULL) {
		*e = tg_errcode();
	}
	return k;
}

static const EVP_MD *tg_md(int bits) {
	switch (bits) {
	case 160: return EVP_sha1();
	case 256: return EVP_sha256();
	case 384: return EVP_sha384();
	case 512: return EVP_sha512();
	}
	return NULL;
}

// tg_ctx makes a signing context for one padding, hash and salt length. A context
// signs any number of times, by one thread at a time.
static EVP_PKEY_CTX *tg_ctx(EVP_PKEY *k, int pss, int mdbits, int salt, unsigned long *e) {
	const EVP_MD *md = tg_md(mdbits);
	ERR_clear_error();
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(k, NULL);
	if (c == NULL || md == NULL || EVP_PKEY_sign_init(c) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_padding(c, pss ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING) <= 0 ||
	    EVP_PKEY_CTX_set_signature_md(c, md) <= 0 ||
	    (pss && EVP_PKEY_CTX_set_rsa_pss_saltlen(c, salt) <= 0)) {
		*e = tg_errcode();
		EVP_PKEY_CTX_free(c);
		return NULL;
	}
	return c;
}

// tg_ctx_ec makes an ECDSA signing context for SHA-256 digests.
static EVP_PKEY_CTX *tg_ctx_ec(EVP_PKEY *k, unsigned long *e) {
	ERR_clear_error();
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(k, NULL);
	if (c == NULL || EVP_PKEY_sign_init(c) <= 0 || EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()) <= 0) {
		*e = tg_errcode();
		EVP_PKEY_CTX_free(c);
		return NULL;
	}
	return c;
}

static int tg_sign(EVP_PKEY_CTX *c, unsigned char *sig, size_t *siglen, const unsigned char *dg, size_t dlen, unsigned long *e) {
	ERR_clear_error();
	if (EVP_PKEY_sign(c, sig, siglen, dg, dlen) <= 0) {
		*e = tg_errcode();
		return 0;
	}
	return 1;
}

// tg_sign_args carries tg_sign's arguments and results through tg_sign_direct, which
// Go calls on the thread's own stack without entering a system call (direct.go).
typedef struct {
	EVP_PKEY_CTX *c;
	unsigned char *sig;
	size_t siglen;
	const unsigned char *dg;
	size_t dlen;
	unsigned long e;
	int ok;
} tg_sign_args;

static void tg_sign_direct(void *p) {
	tg_sign_args *a = p;
	a->ok = tg_sign(a->c, a->sig, &a->siglen, a->dg, a->dlen, &a->e);
}

static void *tg_sign_direct_fn(void) { return (void *)tg_sign_direct; }
*/
import "C"

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/fips140"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"unsafe"
)

// Enabled reports whether this binary signs RSA and ECDSA P-256 through OpenSSL (built
// with cgo and the openssl tag).
const Enabled = true

// Library names the libcrypto this process loaded, as OpenSSL reports it at run time
// (e.g. "OpenSSL 3.0.19 …"), for `tlsgate version`.
func Library() string { return C.GoString(C.OpenSSL_version(C.OPENSSL_VERSION)) }

// Wrap returns an OpenSSL-backed Signer for an *rsa.PrivateKey or an ECDSA P-256
// *ecdsa.PrivateKey, and every other key as it is. It checks the new Signer with one
// signature that Go verifies.
func Wrap(key crypto.Signer) (crypto.Signer, error) {
	if ek, ok := key.(*ecdsa.PrivateKey); ok {
		return wrapEC(ek)
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok || !eligible(rk) {
		return key, nil
	}
	k, err := newKey(rk)
	if err != nil {
		return nil, err
	}
	if err := k.selfTest(); err != nil {
		return nil, err
	}
	return k, nil
}

// eligible keeps Go's own refusals: crypto/rsa will not sign with a key under 1024
// bits (unless GODEBUG=rsa1024min=0), and in FIPS 140-3 mode every signature must come
// from Go's validated module. OpenSSL would sign either way, a silent downgrade, so those
// keys stay with crypto/rsa. (A key without a modulus goes on to be refused by Validate.)
func eligible(rk *rsa.PrivateKey) bool {
	if fips140.Enabled() {
		return false
	}
	return rk.N == nil || rk.N.BitLen() >= 1024
}

// Key is an RSA private key held by OpenSSL. It is safe for concurrent use.
type Key struct {
	pub   *rsa.PublicKey
	goKey *rsa.PrivateKey // for Decrypt only
	pkey  *C.EVP_PKEY
	// ctxs keep initialised signing contexts per variant (padding × hash × salt), so a
	// signature costs one EVP_PKEY_sign, not a context set-up (measured: bench/README.md).
	ctxs [numVariants]sync.Pool
}

// signCtx owns one EVP_PKEY_CTX; a cleanup frees it when the pool lets it go.
type signCtx struct{ c *C.EVP_PKEY_CTX }

func newKey(rk *rsa.PrivateKey) (*Key, error) {
	if err := rk.Validate(); err != nil {
		return nil, fmt.Errorf("opensslsign: invalid RSA key: %w", err)
	}
	der := x509.MarshalPKCS1PrivateKey(rk)
	cder := C.CBytes(der)
	clear(der)
	defer C.free(cder)
	var e C.ulong
	pkey := C.tg_load(C.EVP_PKEY_RSA, (*C.uchar)(cder), C.long(len(der)), &e)
	if pkey == nil {
		return nil, fmt.Errorf("opensslsign: loading the RSA key: %w", sslError(e))
	}
	k := &Key{pub: &rk.PublicKey, goKey: rk, pkey: pkey}
	runtime.AddCleanup(k, func(p *C.EVP_PKEY) { C.EVP_PKEY_free(p) }, pkey)
	return k, nil
}

// Public returns the *rsa.PublicKey.
func (k *Key) Public() crypto.PublicKey { return k.pub }

// Sign signs digest with PSS when opts is *rsa.PSSOptions, else with PKCS #1 v1.5.
// OpenSSL draws the PSS salt and the blinding from its own generator, so rand is not
// used.
func (k *Key) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	v, err := variantOf(opts, len(digest))
	if err != nil {
		return nil, err
	}
	sc, err := takeCtx(&k.ctxs[v], func() (*C.EVP_PKEY_CTX, C.ulong) {
		pss, bits, salt := v.params()
		var e C.ulong
		return C.tg_ctx(k.pkey, C.int(pss), C.int(bits), C.int(salt), &e), e
	})
	if err != nil {
		return nil, err
	}
	sig, err := signPooled(&k.ctxs[v], sc, k.pub.Size(), digest, k.pub.N.BitLen() <= maxDirectRSABits)
	runtime.KeepAlive(k)
	return sig, err
}

// Decrypt is Go's crypto/rsa decryption (TLS 1.2 RSA key exchange): its PKCS #1 v1.5
// session-key path answers a bad padding in constant time with a random key, which is
// what keeps the key exchange from being a Bleichenbacher oracle.
func (k *Key) Decrypt(rand io.Reader, msg []byte, opts crypto.DecrypterOpts) ([]byte, error) {
	return k.goKey.Decrypt(rand, msg, opts)
}

// takeCtx takes a signing context from pool, or makes one with newCtx; a cleanup frees
// a made one once the pool lets it go.
func takeCtx(pool *sync.Pool, newCtx func() (*C.EVP_PKEY_CTX, C.ulong)) (*signCtx, error) {
	if sc, ok := pool.Get().(*signCtx); ok {
		return sc, nil
	}
	c, e := newCtx()
	if c == nil {
		return nil, fmt.Errorf("opensslsign: setting up a signature: %w", sslError(e))
	}
	sc := &signCtx{c: c}
	runtime.AddCleanup(sc, func(c *C.EVP_PKEY_CTX) { C.EVP_PKEY_CTX_free(c) }, c)
	return sc, nil
}

// signPooled signs digest with sc into a buffer of size bytes (directly: direct.go) and
// puts sc back in pool; a context that failed is dropped, not reused.
func signPooled(pool *sync.Pool, sc *signCtx, size int, digest []byte, direct bool) ([]byte, error) {
	sig := make([]byte, size)
	n, e := signDigest(sc.c, sig, digest, direct)
	if n == 0 {
		runtime.KeepAlive(sc)
		return nil, fmt.Errorf("opensslsign: signing: %w", sslError(e))
	}
	pool.Put(sc)
	return sig[:n], nil
}

// selfTest signs once and verifies with Go, so a key OpenSSL read differently from Go
// fails at load, not in every handshake.
func (k *Key) selfTest() error {
	d := sha256.Sum256([]byte("tlsgate opensslsign self-test"))
	sig, err := k.Sign(nil, d[:], crypto.SHA256)
	if err != nil {
		return err
	}
	if err := rsa.VerifyPKCS1v15(k.pub, crypto.SHA256, d[:], sig); err != nil {
		return fmt.Errorf("opensslsign: self-test signature does not verify: %w", err)
	}
	return nil
}

// loadKey hands a DER private key of OpenSSL type typ (PKCS #1 for EVP_PKEY_RSA, SEC 1
// for EVP_PKEY_EC) to OpenSSL, wiping der and OpenSSL's copy of it.
func loadKey(typ C.int, der []byte) (*C.EVP_PKEY, C.ulong) {
	cder := C.CBytes(der)
	clear(der)
	defer C.free(cder)
	var e C.ulong
	return C.tg_load(typ, (*C.uchar)(cder), C.long(len(der)), &e), e
}

// newECCtx makes an ECDSA signing context for SHA-256 digests.
func newECCtx(pkey *C.EVP_PKEY) (*C.EVP_PKEY_CTX, C.ulong) {
	var e C.ulong
	c := C.tg_ctx_ec(pkey, &e)
	return c, e
}

// signDigest signs digest into sig with an initialised context; n is the length used.
// With direct, the call keeps the goroutine's P (direct.go).
func signDigest(c *C.EVP_PKEY_CTX, sig, digest []byte, direct bool) (n int, e C.ulong) {
	if direct && !cgoOnly {
		return signDirect(c, sig, digest)
	}
	sn := C.size_t(len(sig))
	if C.tg_sign(c, (*C.uchar)(&sig[0]), &sn, (*C.uchar)(&digest[0]), C.size_t(len(digest)), &e) == 0 {
		return 0, e
	}
	return int(sn), 0
}

// sslError names OpenSSL's error code e.
func sslError(e C.ulong) error {
	var buf [256]C.char
	C.ERR_error_string_n(e, &buf[0], C.size_t(len(buf)))
	return errors.New(C.GoString(&buf[0]))
}

// signDirect is signDigest through tg_sign_direct, called by asmcgocall (direct.go).
func signDirect(c *C.EVP_PKEY_CTX, sig, digest []byte) (n int, e C.ulong) {
	a := C.tg_sign_args{c: c, sig: (*C.uchar)(&sig[0]), siglen: C.size_t(len(sig)), dg: (*C.uchar)(&digest[0]), dlen: C.size_t(len(digest))}
	asmcgocall(signDirectFn, unsafe.Pointer(&a))
	runtime.KeepAlive(sig)
	runtime.KeepAlive(digest)
	if a.ok == 0 {
		return 0, a.e
	}
	return int(a.siglen), 0
}

// signDirectFn is tg_sign_direct's address.
var signDirectFn = C.tg_sign_direct_fn()
