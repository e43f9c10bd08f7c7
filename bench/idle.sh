#!/usr/bin/env bash
# idle.sh — memory per idle HTTPS connection, handshake only (REQ=false) or after one
# request (true): N connections held, the server's RSS before and while holding them.
#
#   bench/idle.sh SERVER AUTH N REQ [KEY]     e.g. bench/idle.sh ours mutual 5000 false
#   env: TLSGATE_BIN (ours)  BENCH (default ../shared/bench)
# Needs the harness's loadgen with -idle-request (loadgen-idle-request.diff: patch a copy
# with `patch -p1 < …`, build it to $BENCH/bin2/loadgen).
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
: "${TLSGATE_BIN:=$HERE/../bin/tlsgate}"
export TLSGATE_BIN
cd "${BENCH:-$HERE/../../shared/bench}"
SERVER=$1 AUTH=$2 N=$3 REQ=$4 KEY=${5:-ecdsa}
PORT=${PORT:-19643} BACKEND=127.0.0.1:${BPORT:-19280}
RUN=$(mktemp -d); pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$RUN"; }
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
GOMAXPROCS=1 bin/backend -addr $BACKEND >/dev/null 2>&1 & pids+=($!)
cmd=(bash peers/$SERVER.sh run)
[ "$SERVER" = ours ] && cmd=(bash "$HERE/ours.sh")
PEER_LISTENER=https PEER_AUTH=$AUTH PEER_KEYTYPE=$KEY PEER_PORT=$PORT BACKEND_ADDR=$BACKEND CERT_DIR=$PWD/certs/$KEY RUN_DIR=$RUN \
  GOMAXPROCS=1 taskset -c 0 "${cmd[@]}" >$RUN/server.log 2>&1 & server=$!; pids+=($server)
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
sleep 0.5
cc=(); [[ $AUTH == mutual* ]] && cc=(-cert certs/$KEY/client.crt -key certs/$KEY/client.key)
GOMAXPROCS=1 taskset -c 1 bin2/loadgen -mode idle -addr 127.0.0.1:$PORT -n $N -c 50 -idle-request=$REQ -server-pid $server "${cc[@]}" -label "peer=$SERVER,auth=$AUTH,n=$N,req=$REQ,key=$KEY" | grep -o '"labels":{[^}]*}\|"ops":[0-9]*\|"errors":[0-9]*\|"rss_[a-z_]*":[0-9.]*' | tr '\n' ' '; echo
