//go:build openssl && cgo && go1.27

package opensslsign

import "unsafe"

// Go 1.27's linker refuses the linkname to runtime.asmcgocall that direct.go uses
// ("invalid reference to runtime.asmcgocall"), so a release build with that toolchain
// makes every signature an ordinary cgo call: it links and signs, with the scheduler
// costs direct.go describes (bench/README.md, tenth round). Built only by Go 1.27 and
// later; CI's Go (1.26) builds direct.go.

// cgoOnly is always true here: signDigest never takes signDirect.
const cgoOnly = true

// maxDirectRSABits keeps openssl.go's choice; without direct calls it changes nothing.
const maxDirectRSABits = 2048

// asmcgocall is never called (cgoOnly); it exists so that signDirect compiles. Were it
// called, the signature would fail (its result's ok stays 0), never come out wrong.
func asmcgocall(fn, arg unsafe.Pointer) int32 { return -1 }
