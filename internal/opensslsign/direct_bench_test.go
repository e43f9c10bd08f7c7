//go:build openssl && cgo && !go1.27

package opensslsign

import (
	"crypto"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"sync"
	"syscall"
	"testing"

	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
)

// BenchmarkHandshakeLike runs what a full RSA handshake's server does with its CPU,
// reduced to its two big parts: 32 goroutines at once, each one X25519 key share (Go's:
// two scalar multiplications) and one RSA-2048 PSS signature, signed as a cgo call or
// directly (direct.go). It reports the process's CPU (user + system) per handshake:
// run it on one core (taskset -c 0, GOMAXPROCS=1), as the benchmark server runs.
func BenchmarkHandshakeLike(b *testing.B) {
	rk := pkitest.Key(b, pki.RSA2048).(*rsa.PrivateKey)
	s, err := Wrap(rk)
	if err != nil {
		b.Fatal(err)
	}
	k := s.(*Key)
	peer, _ := ecdh.X25519().GenerateKey(rand.Reader)
	d := sha256.Sum256([]byte("handshake transcript"))
	opts := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
	for _, mode := range []struct {
		name   string
		direct bool
	}{{"cgo", false}, {"direct", true}} {
		b.Run(mode.name, func(b *testing.B) {
			cgoOnly = !mode.direct
			defer func() { cgoOnly = false }()
			one := func() {
				priv, _ := ecdh.X25519().GenerateKey(rand.Reader)
				if _, err := priv.ECDH(peer.PublicKey()); err != nil {
					b.Error(err)
				}
				if _, err := k.Sign(rand.Reader, d[:], opts); err != nil {
					b.Error(err)
				}
			}
			var u0 syscall.Rusage
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &u0)
			work := make(chan struct{}, 64)
			var wg sync.WaitGroup
			for range 32 {
				wg.Go(func() {
					for range work {
						one()
					}
				})
			}
			for b.Loop() {
				work <- struct{}{}
			}
			close(work)
			wg.Wait()
			var u1 syscall.Rusage
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &u1)
			cpu := syscall.TimevalToNsec(u1.Utime) - syscall.TimevalToNsec(u0.Utime) + syscall.TimevalToNsec(u1.Stime) - syscall.TimevalToNsec(u0.Stime)
			b.ReportMetric(float64(cpu)/1e3/float64(b.N), "cpu-µs/op")
		})
	}
}
