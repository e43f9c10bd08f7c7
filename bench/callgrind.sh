#!/usr/bin/env bash
# callgrind.sh — instructions a server executes (valgrind's callgrind, every process of
# it) while the harness's loadgen runs one point; unlike rates, the machine's load does
# not change them. Prints the total and the operations; per operation =
# (total − total of MODE=none over the same DUR) ÷ ops.
#
#   bench/callgrind.sh SERVER MODE AUTH KEY [DUR]   SERVER: ours | nginx | haproxy
#        MODE: full | resume | keepalive | none (idle: the baseline);  DUR default 20s
#   env: TLSGATE_BIN (ours; default bin/tlsgate)  PEER_ACCESS_LOG=1 (every server logs
#        each request)  LST=https|tcp  KEEP=DIR (keep the callgrind files for
#        callgrind_annotate)  BENCH (default ../shared/bench, built as for point.sh)
#        CACHESIM=1: valgrind's cache model too (last level = a 2 MiB L2, as this machine's
#        per-core L2); prints data-cache misses beside the instructions (D1 read/write
#        misses, last-level read/write misses), per operation as the instructions
# tlsgate runs with GODEBUG=asyncpreemptoff=1 (callgrind asserts on Go's preemption
# signals) and is dumped with callgrind_control before it is stopped.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
: "${TLSGATE_BIN:=$HERE/../bin/tlsgate}"
cd "${BENCH:-$HERE/../../shared/bench}"
SERVER=$1 MODE=$2 AUTH=$3 KEY=$4 DUR=${5:-20s}
PORT=${PORT:-19843} BACKEND=127.0.0.1:${BPORT:-19480}
RUN=$(mktemp -d); chmod 1777 $RUN; pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; [ -n "${KEEP:-}" ] && cp -r "$RUN" "$KEEP"; rm -rf "$RUN"; }
trap cleanup EXIT
GOMAXPROCS=1 bin/backend -addr $BACKEND >/dev/null 2>&1 & pids+=($!)
cmd=(bash peers/$SERVER.sh run)
[ "$SERVER" = ours ] && cmd=(bash "$HERE/ours.sh")
# valgrind around the server binary itself: wrap via a PATH shim for nginx/haproxy, TLSGATE_BIN for ours
mkdir -p $RUN/shim
cg="--tool=callgrind"; [ -n "${CACHESIM:-}" ] && cg="$cg --cache-sim=yes --LL=2097152,16,64"
for b in nginx haproxy; do printf '#!/bin/sh\nexec valgrind %s --trace-children=yes --callgrind-out-file=%s/cg.%%p /usr/sbin/%s "$@"\n' "$cg" $RUN $b > $RUN/shim/$b; chmod +x $RUN/shim/$b; done
printf '#!/bin/sh\nGODEBUG=asyncpreemptoff=1 exec valgrind %s --callgrind-out-file=%s/cg.%%p %s "$@"\n' "$cg" $RUN "${TLSGATE_BIN}" > $RUN/shim/tlsgate; chmod +x $RUN/shim/tlsgate
PATH=$RUN/shim:$PATH TLSGATE_BIN=$RUN/shim/tlsgate PEER_LISTENER=${LST:-https} PEER_AUTH=$AUTH PEER_KEYTYPE=$KEY PEER_PORT=$PORT BACKEND_ADDR=$BACKEND CERT_DIR=$PWD/certs/$KEY RUN_DIR=$RUN \
  GOMAXPROCS=1 "${cmd[@]}" >$RUN/server.log 2>&1 & server=$!; pids+=($server)
for _ in $(seq 600); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
sleep 2
cc=(); [[ $AUTH == mutual* ]] && cc=(-cert certs/$KEY/client.crt -key certs/$KEY/client.key)
ops=0
if [ "$MODE" != none ]; then
  bin/loadgen -mode $MODE -addr 127.0.0.1:$PORT -c 8 -d $DUR -warmup 0s -timeout 30s "${cc[@]}" > $RUN/lg.json 2>$RUN/lg.err
  ops=$(grep -o '"ops":[0-9]*' $RUN/lg.json | cut -d: -f2); errs=$(grep -o '"errors":[0-9]*' $RUN/lg.json | cut -d: -f2)
else
  sleep ${DUR%s}
fi
[ "$SERVER" = ours ] && { for p in $server $(pgrep -P $server); do timeout 20 callgrind_control -d $p >/dev/null 2>&1; done; sleep 2; }
kill -TERM $server; for p in $(pgrep -P $server); do kill -TERM $p 2>/dev/null; done
for _ in $(seq 300); do kill -0 $server 2>/dev/null || break; sleep 0.1; done
sleep 1
tot=$(cat $RUN/cg.* 2>/dev/null | awk '/^summary:/ {s+=$2} END {printf "%.0f", s}')
echo "$SERVER $MODE $AUTH $KEY dur=$DUR ops=$ops errors=${errs:-0} instructions=$tot"
if [ -n "${CACHESIM:-}" ]; then # events: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw
  cat $RUN/cg.* 2>/dev/null | awk '/^summary:/ {for (i = 2; i <= NF; i++) s[i] += $i}
    END {printf "D1mr=%.0f D1mw=%.0f DLmr=%.0f DLmw=%.0f Dr=%.0f Dw=%.0f\n", s[6], s[7], s[9], s[10], s[3], s[4]}'
fi
