//go:build openssl && cgo && !go1.27

package opensslsign

import "unsafe"

// A signature is called directly rather than as a cgo call. A cgo call enters a system
// call as far as Go's scheduler is concerned, and an RSA-2048 signature (230-300 µs) is
// far longer than the 20 µs after which sysmon takes the P of a goroutine in a system
// call away and starts another thread to run the P's other goroutines. In a full
// handshake benchmark on one core that made every signature a hand-over: 20 threads
// taking turns on the core, 3.4 context switches per handshake, and sysmon, which every
// retaken P keeps polling at 20 µs, at about 5 % of the process's CPU (bench/README.md,
// fourth round, hs3). asmcgocall, the runtime's own way into C on the thread's system
// stack (cgo calls and sysmon's libc hook go through it), runs the signature while the
// goroutine keeps its P, as Go's own crypto/rsa would, only without preemption: the
// P's other goroutines and a stop-the-world of the collector wait for the signature to
// end. That bounds what may be called so: OpenSSL's EVP_PKEY_sign with a context of our
// own, which never calls into Go and takes only OpenSSL's locks (held by other threads
// in C, which need no P to let go of them); and keys that sign fast, ECDSA P-256 (about
// 21 µs) and RSA up to 2048 bits; larger RSA keys (3072 bits: about 1 ms) keep the cgo
// call. The arguments live on the goroutine's stack, which cannot move while the
// goroutine is in C, and the Go buffers they point to are kept alive across the call.
// In a CPU profile the signature's time shows as runtime._ExternalCode, without the Go
// callers a cgo call's samples carry.

// cgoOnly makes every signature a cgo call (BenchmarkHandshakeLike compares the two).
var cgoOnly bool

// maxDirectRSABits is the largest RSA key whose signatures are called directly.
const maxDirectRSABits = 2048

// asmcgocall runs fn(arg) on the current thread's system stack (g0) and returns; the
// runtime's cgocall is entersyscall + asmcgocall + exitsyscall.
//
//go:linkname asmcgocall runtime.asmcgocall
//go:noescape
func asmcgocall(fn, arg unsafe.Pointer) int32
