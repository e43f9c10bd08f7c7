#!/usr/bin/env bash
# pgo.sh — regenerates cmd/tlsgate/default.pgo, the CPU profile `go build` of the main
# package uses for profile-guided optimization (-pgo=auto: hot calls inlined, hot
# interface calls such as net.Conn's Read and Write devirtualized). It builds the
# release binary (make build's tags) without PGO, runs the representative points with
# bench/point.sh, takes a CPU profile of the server in each (4 s from the middle of the
# run, PROFILE=) and merges them. Weights: the points the targets are about — keep-alive
# HTTPS one-way and full one-way handshakes — are profiled twice, so they count double.
#
#   bench/pgo.sh                         writes cmd/tlsgate/default.pgo
#   env: PORT=… BPORT=… PPORT=…  (as point.sh; give concurrent runs their own)
#        OUT=file  (default cmd/tlsgate/default.pgo)  KEEPDIR=dir  (keep the per-point profiles)
#
# Needs the harness built as for point.sh. Run it on a machine as quiet as can be, after
# larger changes to the request or handshake paths: a stale profile only costs
# optimization (its call sites no longer match), never correctness.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$HERE/.."
OUT="${OUT:-$ROOT/cmd/tlsgate/default.pgo}"
DIR="${KEEPDIR:-$(mktemp -d)}"
mkdir -p "$DIR"; DIR="$(cd "$DIR" && pwd)"
BIN="$DIR/tlsgate-nopgo"

tags=(); cgo=0
case "$(go env GOOS)/$(go env GOARCH)" in linux/amd64 | linux/arm64) tags=(-tags openssl); cgo=1 ;; esac
(cd "$ROOT" && CGO_ENABLED=$cgo go build -pgo=off "${tags[@]}" -o "$BIN" ./cmd/tlsgate)

# name  weight  env for point.sh  -- SERVER MODE AUTH
points=(
  "ka-oneway      2 LST=https KEY=ecdsa PEER_ACCESS_LOG=0 -- keepalive oneway"
  "ka-oneway-log  1 LST=https KEY=ecdsa PEER_ACCESS_LOG=1 -- keepalive oneway"
  "ka-mutual      1 LST=https KEY=ecdsa PEER_ACCESS_LOG=0 -- keepalive mutual"
  "ka-mutual-log  1 LST=https KEY=ecdsa PEER_ACCESS_LOG=1 -- keepalive mutual"
  "full-rsa       2 LST=https KEY=rsa   PEER_ACCESS_LOG=0 -- full oneway"
  "full-ecdsa     2 LST=https KEY=ecdsa PEER_ACCESS_LOG=0 -- full oneway"
  "resume-mutual  1 LST=https KEY=ecdsa PEER_ACCESS_LOG=0 -- resume mutual"
  "ka-tcp         1 LST=tcp   KEY=ecdsa PEER_ACCESS_LOG=0 -- keepalive oneway"
)
profiles=()
for p in "${points[@]}"; do
  read -r name weight rest <<<"$p"
  envs="${rest%% -- *}" args="${rest#* -- }"
  for i in $(seq "$weight"); do
    f="$DIR/$name-$i.pb.gz"
    # shellcheck disable=SC2086 # envs and args are word lists
    env $envs TLSGATE_BIN="$BIN" PROFILE="$f" DUR=7s "$HERE/point.sh" ours $args >"$DIR/$name-$i.json"
    [ -s "$f" ] || { echo "$0: no profile for $name" >&2; exit 1; }
    echo "$name #$i: $(grep -o '"rate":[0-9.]*' "$DIR/$name-$i.json")"
    profiles+=("$f")
  done
done
go tool pprof -proto "${profiles[@]}" >"$OUT" 2>/dev/null
echo "wrote $OUT ($(wc -c <"$OUT") bytes) from ${#profiles[@]} profiles${KEEPDIR:+ (kept in $DIR)}"
[ -n "${KEEPDIR:-}" ] || rm -rf "$DIR"
