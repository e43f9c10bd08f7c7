//go:build openssl && cgo && !go1.27

package opensslsign_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestSignKeepsTheP: an RSA-2048 signature is not a cgo call, which Go's scheduler
// treats as a system call (runtime.NumCgoCall counts those), so on one P no other
// goroutine runs while it is made (direct.go). As a cgo call, sysmon, once awake, took
// the P after 20-40 µs and another thread ran the other goroutines, here a spinner that
// counts (in 56-101 of 200 signatures in 3 of 5 runs; sysmon is not always awake). A signature slowed past 10 ms
// by a loaded machine may let the spinner in once as it returns (sysmon asks a goroutine
// that long on the P to yield), hence the margin.
func TestSignKeepsTheP(t *testing.T) {
	_, k := wrapped(t)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var spins atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			spins.Add(1)
			runtime.Gosched()
		}
	}()
	d := sha256.Sum256([]byte("handshake transcript"))
	opts := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
	// A blocking system call longer than two of sysmon's slowest ticks (10 ms): sysmon
	// takes the P from it and polls at 20 µs again, as in a busy server.
	ts := syscall.NsecToTimespec(int64(30 * time.Millisecond))
	_ = syscall.Nanosleep(&ts, nil)
	const n = 200
	interleaved := 0
	cgoCalls := runtime.NumCgoCall()
	for range n {
		runtime.Gosched() // a fresh time slice, and the spinner has been running
		before := spins.Load()
		if _, err := k.Sign(rand.Reader, d[:], opts); err != nil {
			t.Fatal(err)
		}
		if spins.Load() != before {
			interleaved++
		}
	}
	close(stop)
	<-done
	if c := runtime.NumCgoCall() - cgoCalls; c >= n/2 {
		t.Errorf("%d cgo calls for %d signatures: each signature is a system call to the scheduler", c, n)
	}
	t.Logf("another goroutine ran during %d of %d signatures", interleaved, n)
	if interleaved > n/10 {
		t.Fatalf("another goroutine ran during %d of %d signatures: the signature gave up its P", interleaved, n)
	}
}
