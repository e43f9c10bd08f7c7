# Local gates mirror .ci/run exactly: `make check` is what CI runs.
.PHONY: check test lint e2e fuzz bench demo build build-go install man

check:
	bash .ci/run

test:
	go test -race -count=1 ./...

lint:
	test -z "$$(gofmt -l .)"
	go vet ./...
	go fix -diff ./...
	go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

e2e:
	go test -count=1 ./e2e

bench:
	go test -run '^$$' -bench . ./internal/clientauth ./internal/httpproxy ./internal/server

FUZZTIME ?= 30s
fuzz:
	go test ./internal/config -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME)
	go test ./internal/certfile -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME)
	go test ./internal/certfile -run '^$$' -fuzz FuzzPEMBlocks -fuzztime $(FUZZTIME)
	go test ./internal/clientauth -run '^$$' -fuzz FuzzMatchURI -fuzztime $(FUZZTIME)
	go test ./internal/probe -run '^$$' -fuzz FuzzParseTarget -fuzztime $(FUZZTIME)
	go test ./internal/revocation -run '^$$' -fuzz FuzzParseIDP -fuzztime $(FUZZTIME)
	go test ./internal/h2proxy -run '^$$' -fuzz FuzzParseTimeout -fuzztime $(FUZZTIME)
	go test ./internal/backend -run '^$$' -fuzz FuzzProtoVarint -fuzztime $(FUZZTIME)
	go test ./internal/h1parse -run '^$$' -fuzz FuzzRequest -fuzztime $(FUZZTIME)
	go test ./internal/h1parse -run '^$$' -fuzz FuzzResponse -fuzztime $(FUZZTIME)

demo:
	go run ./cmd/tlsgate demo

# The binary is stamped with `git describe` as its version and with its commit and
# date; `tlsgate version` prints them. -buildvcs=true overrides a GOFLAGS that turns
# stamping off; the -X values cover builds go does not stamp (git worktrees).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
DATE ?= $(shell git log -1 --format=%cI 2>/dev/null)
PREFIX ?= /usr/local
LDFLAGS := $(if $(VERSION),-X tlsgate/internal/cli.version=$(VERSION)) $(if $(COMMIT),-X tlsgate/internal/cli.commit=$(COMMIT) -X tlsgate/internal/cli.date=$(DATE))

# The release build links the system's OpenSSL libcrypto for the server's RSA and ECDSA
# P-256 signatures (-tags openssl, internal/opensslsign: cgo, libssl-dev at build time, libcrypto.so.3 at
# run time) on linux/amd64 and linux/arm64, and otherwise keeps Go's own crypto: OpenSSL
# signs RSA-2048 1.8x faster than the BoringCrypto module on CPUs with AVX-512 IFMA, and
# with RSA signed there BoringCrypto no longer pays: every SHA-256, HMAC and AES-GCM set-up
# of a handshake (about a hundred per full handshake) and every AES-GCM record crosses cgo,
# which cost more than its faster ECDSA saves (bench/README.md, "hs"). BORING=1 builds
# with GOEXPERIMENT=boringcrypto as before (X25519 and Ed25519 stay Go's either way);
# OPENSSL=0, or `make build-go`, builds with Go's own crypto alone (static, no cgo).
GOOS_ARCH := $(shell go env GOOS)/$(shell go env GOARCH)
BORING ?= 0
OPENSSL ?= $(if $(filter linux/amd64 linux/arm64,$(GOOS_ARCH)),1,0)
BUILD_ENV := $(if $(filter 1,$(BORING)),CGO_ENABLED=1 GOEXPERIMENT=boringcrypto,$(if $(filter 1,$(OPENSSL)),CGO_ENABLED=1,CGO_ENABLED=0))
BUILD_TAGS := $(if $(filter 1,$(OPENSSL)),-tags openssl)

# Profile-guided optimization: go build uses cmd/tlsgate/default.pgo, a CPU profile of the
# benchmark's points (bench/pgo.sh regenerates it), to inline hot calls and devirtualize
# hot interface calls; 3-5 % fewer instructions per keep-alive request. PGO=off builds
# without it; PGO=FILE with another profile. A stale profile costs optimization only.
PGO ?= auto

build:
	$(BUILD_ENV) go build -buildvcs=true -pgo=$(PGO) $(BUILD_TAGS) -ldflags '$(LDFLAGS)' -o tlsgate ./cmd/tlsgate

build-go:
	$(MAKE) build BORING=0 OPENSSL=0

install: build
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 tlsgate $(DESTDIR)$(PREFIX)/bin/tlsgate

# Man pages (section 1) generated from the cobra command tree into ./man.
man:
	go run ./cmd/tlsgate man --dir man
