#!/usr/bin/env bash
# point.sh — one benchmark point outside the harness, for profiles, syscall counts and
# A/B pairs. Pinned as ../shared/bench/run-peers.sh pins: the server on CPU 0, the
# backend and the load generator on CPU 1. Prints the load generator's JSON line, then
# what was asked for.
#
#   bench/point.sh SERVER MODE AUTH    SERVER: ours or a peer of the harness (nginx, haproxy…)
#                                      MODE: full | resume | keepalive | bulk-down | bulk-up
#                                      (bulk: LST=tcp, MIB per connection, CONC default 1; the
#                                      figure is mb_s ÷ server_proc_cpu, MB per server CPU-second)
#                                      AUTH: oneway | mutual
#   env: LST=https|tcp  DUR=6s  CONC=32  KEY=ecdsa|rsa  TLSGATE_BIN=… (ours; default bin/tlsgate)
#        PROFILE=cpu.pb.gz  a 4 s CPU profile from the middle of the run (ours only)
#        CPUSPLIT=1         user and system CPU µs per operation on the server core
#        SYSCALLS=1         the server's syscalls per operation (strace -f -c; slows it)
#        PORT=19543 BPORT=19180 PPORT=19901  ports (server, backend, pprof): give each concurrent run its own
#
# Needs the harness built once: cd ../shared/bench && ./gen-certs.sh &&
# go build -o bin/ ./backend ./loadgen ./report. Machine noise is ±10-20 %: compare
# binaries in interleaved pairs (for b in old new old new …), never across sessions.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
BENCH="${BENCH:-$HERE/../../shared/bench}"
SERVER="${1:?server}" MODE="${2:?mode}" AUTH="${3:?auth}"
LST="${LST:-https}" DUR="${DUR:-6s}" CONC="${CONC:-32}" KEY="${KEY:-ecdsa}"
PORT=${PORT:-19543} BACKEND=127.0.0.1:${BPORT:-19180} PPROF=127.0.0.1:${PPORT:-19901}
cd "$BENCH"
RUN="$(mktemp -d)"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$RUN"; }
trap cleanup EXIT

GOMAXPROCS=1 taskset -c 1 bin/backend -addr "$BACKEND" 2>/dev/null &
pids+=($!)
cmd=(bash "peers/$SERVER.sh" run)
[ "$SERVER" = ours ] && cmd=(bash "$HERE/ours.sh")
[ -n "${PROFILE:-}" ] && export OURS_PPROF=$PPROF
warmup=1s
if [ -n "${SYSCALLS:-}" ]; then
  cmd=(strace -f -c -o "$RUN/strace.txt" "${cmd[@]}")
  warmup=0s # so the counts and the operations cover the same time
fi
PEER_LISTENER=$LST PEER_AUTH=$AUTH PEER_KEYTYPE=$KEY PEER_PORT=$PORT BACKEND_ADDR=$BACKEND \
  CERT_DIR="$PWD/certs/$KEY" RUN_DIR="$RUN" GOMAXPROCS=1 taskset -c 0 "${cmd[@]}" >"$RUN/server.log" 2>&1 &
server=$!
pids+=($server)
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done

cc=()
[[ $AUTH == mutual* ]] && cc=(-cert "certs/$KEY/client.crt" -key "certs/$KEY/client.key")
how=(-mode "$MODE" -c "$CONC" -d "$DUR" -warmup $warmup)
[[ $MODE == bulk-* ]] && how=(-mode bulk -dir "${MODE#bulk-}" -c "${CONC_BULK:-1}" -mib "${MIB:-4096}")
GOMAXPROCS=1 taskset -c 1 bin/loadgen "${how[@]}" -addr 127.0.0.1:$PORT -server-pid "$server" "${cc[@]}" >"$RUN/lg.json" &
lg=$!

# cpu prints the user and system clock ticks of the server's process tree.
tree() { echo "$server" $(pgrep -P "$server") $(for p in $(pgrep -P "$server"); do pgrep -P "$p"; done); }
cpu() { for p in $(tree); do awk '{print $14, $15}' "/proc/$p/stat" 2>/dev/null; done | awk '{u+=$1; s+=$2} END {print u+0, s+0}'; }
if [ -n "${CPUSPLIT:-}" ]; then
  sleep 2
  read -r u0 s0 < <(cpu); t0=$(date +%s.%N)
  sleep 3
  read -r u1 s1 < <(cpu); t1=$(date +%s.%N)
fi
if [ -n "${PROFILE:-}" ]; then
  sleep 1
  curl -sf -o "$PROFILE" "http://$PPROF/debug/pprof/profile?seconds=4"
fi
wait $lg
cat "$RUN/lg.json"
rate=$(grep -o '"rate":[0-9.]*' "$RUN/lg.json" | cut -d: -f2)
ops=$(grep -o '"ops":[0-9]*' "$RUN/lg.json" | cut -d: -f2)
if [[ $MODE == bulk-* ]]; then # per MiB instead of per operation
  bytes=$(grep -o '"bytes":[0-9]*' "$RUN/lg.json" | cut -d: -f2)
  secs=$(grep -o '"seconds":[0-9.]*' "$RUN/lg.json" | cut -d: -f2)
  ops=$((bytes >> 20)); rate=$(awk -v o="$ops" -v s="$secs" 'BEGIN {print o / s}')
  awk -v j="$(cat "$RUN/lg.json")" 'BEGIN { match(j, /"mb_s":[0-9.]*/); m = substr(j, RSTART + 7, RLENGTH - 7)
    match(j, /"server_proc_cpu":[0-9.]*/); c = substr(j, RSTART + 18, RLENGTH - 18)
    if (c > 0) printf "MB per server CPU-second: %.0f\n", m / c }'
fi
if [ -n "${CPUSPLIT:-}" ]; then
  hz=$(getconf CLK_TCK)
  awk -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v hz="$hz" -v t0="$t0" -v t1="$t1" -v r="$rate" \
    'BEGIN {dt = t1 - t0; printf "cpu per op: user %.1f µs, system %.1f µs\n", u/hz/dt/r*1e6, s/hz/dt/r*1e6}'
fi
if [ -n "${SYSCALLS:-}" ]; then
  # strace writes its table when the traced server exits.
  pkill -TERM -P "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  echo "syscalls per op (calls, of which failed, e.g. EAGAIN):"
  awk -v ops="$ops" 'NR > 2 && $4 ~ /^[0-9]+$/ && $NF != "total" && $4 / ops >= 0.01 {
    err = ($5 ~ /^[0-9]+$/) ? $5 : 0; printf "  %-14s %6.2f  (%.2f)\n", $NF, $4 / ops, err / ops }' "$RUN/strace.txt"
fi
