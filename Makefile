# Local gates mirror .ci/run exactly: `make check` is what CI runs.
.PHONY: check test lint e2e fuzz bench demo build

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
	go test ./internal/clientauth -run '^$$' -fuzz FuzzMatchURI -fuzztime $(FUZZTIME)
	go test ./internal/probe -run '^$$' -fuzz FuzzParseTarget -fuzztime $(FUZZTIME)
	go test ./internal/revocation -run '^$$' -fuzz FuzzParseIDP -fuzztime $(FUZZTIME)

demo:
	go run ./cmd/tlsgate demo

build:
	go build -o tlsgate ./cmd/tlsgate
