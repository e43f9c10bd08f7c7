#!/usr/bin/env bash
# idle.sh — memory per idle HTTPS connection, handshake only (REQ=false) or after one
# request (true): N connections held, the server's RSS before and while holding them.
#
#   bench/idle.sh SERVER AUTH N REQ [KEY]     e.g. bench/idle.sh ours mutual 5000 false
#   env: TLSGATE_BIN (ours)  BENCH (default ../shared/bench)  PORT BPORT
#        HARNESS=1  reproduce run-peers.sh's idle point: the server gets its 0.3 s, then
#                   the harness's checks (accept, TLS 1.2, no certificate, revoked,
#                   untrusted, s_client) run before the idle point, as there
#        LISTENER=tcp  a TCP SSL listener instead of HTTPS (the harness's tcp points)
#        PEER_ACCESS_LOG=1  every server logs each request (as the harness's log run)
#        INSPECT=CMD  run CMD (with $SERVER_PID set) while the connections are held
#                   (loadgen's hold is stretched to HOLD, default 8s); INSPECT_BEFORE=CMD
#                   runs just before the connections are opened
# The loadgen needs -idle-request (the harness's, or a copy patched with
# loadgen-idle-request.diff in $BENCH/bin2/loadgen).
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
: "${TLSGATE_BIN:=$HERE/../bin/tlsgate}"
export TLSGATE_BIN
cd "${BENCH:-$HERE/../../shared/bench}"
SERVER=$1 AUTH=$2 N=$3 REQ=$4 KEY=${5:-ecdsa}
PORT=${PORT:-19643} BACKEND=127.0.0.1:${BPORT:-19280}
LG=bin2/loadgen; [ -x $LG ] || LG=bin/loadgen
RUN=$(mktemp -d); pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$RUN"; }
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
GOMAXPROCS=1 bin/backend -addr $BACKEND >/dev/null 2>&1 & pids+=($!)
cmd=(bash peers/$SERVER.sh run)
[ "$SERVER" = ours ] && cmd=(bash "$HERE/ours.sh")
PEER_LISTENER=${LISTENER:-https} PEER_AUTH=$AUTH PEER_KEYTYPE=$KEY PEER_PORT=$PORT BACKEND_ADDR=$BACKEND CERT_DIR=$PWD/certs/$KEY RUN_DIR=$RUN \
  GOMAXPROCS=1 taskset -c 0 "${cmd[@]}" >$RUN/server.log 2>&1 & server=$!; pids+=($server)
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
C=certs/$KEY
cc=(); [[ $AUTH == mutual* ]] && cc=(-cert $C/client.crt -key $C/client.key)
lg() { GOMAXPROCS=1 taskset -c 1 $LG -server-cpu 0 -client-cpu 1 -curves x25519 -addr 127.0.0.1:$PORT -tls 1.3 -server-pid $server "$@"; }
if [ "${HARNESS:-0}" = 1 ]; then
  sleep 0.3
  lg -mode check -verify -ca $C/ca.crt "${cc[@]}" >/dev/null
  lg -mode check -tls 1.2 -curves x25519,p256 -verify -ca $C/ca.crt "${cc[@]}" >/dev/null
  if [[ $AUTH == mutual* ]]; then
    lg -mode check >/dev/null
    lg -mode check -cert $C/revoked.crt -key $C/revoked.key >/dev/null
    lg -mode check -cert $C/untrusted.crt -key $C/untrusted.key >/dev/null
  fi
  timeout 10 openssl s_client -connect 127.0.0.1:$PORT -servername localhost -CAfile $C/ca.crt \
    -verify_return_error -brief $([[ $AUTH == mutual* ]] && echo "-cert $C/client.crt -key $C/client.key") </dev/null >/dev/null 2>&1
else
  sleep 0.5
fi
[ -n "${INSPECT_BEFORE:-}" ] && SERVER_PID=$server bash -c "$INSPECT_BEFORE" >&2
hold=(); if [ -n "${INSPECT:-}" ]; then
  hold=(-hold "${HOLD:-8s}")
  ( sleep "${INSPECT_AFTER:-5}"; SERVER_PID=$server bash -c "$INSPECT" >&2 ) & pids+=($!)
fi
lg -mode idle -n $N -c 50 -idle-request=$REQ "${hold[@]}" "${cc[@]}" -label "peer=$SERVER,listener=${LISTENER:-https},auth=$AUTH,n=$N,req=$REQ,key=$KEY" | grep -o '"labels":{[^}]*}\|"ops":[0-9]*\|"errors":[0-9]*\|"rss_[a-z_]*":[0-9.]*' | tr '\n' ' '; echo
