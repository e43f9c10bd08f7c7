#!/usr/bin/env bash
# ours.sh — tlsgate for ../shared/bench: writes a config for the harness's environment
# (PEER_LISTENER, PEER_AUTH, PEER_KEYTYPE, PEER_PORT, BACKEND_ADDR, CERT_DIR, RUN_DIR)
# and execs `tlsgate serve` in the foreground, so the harness's PID is tlsgate's.
#
#   go build -o bin/tlsgate ./cmd/tlsgate
#   cd ../shared/bench && ./gen-certs.sh
#   OURS_CMD="bash $PWD/../../main/bench/ours.sh" OURS_VERSION=tlsgate QUICK=1 ./run-peers.sh ours nginx
#   PEER_ACCESS_LOG=1 OURS_CMD=… ./run-peers.sh ours nginx haproxy   # every server logs each request
#   TLSGATE_BIN=bin/tlsgate-boring …   # another binary (e.g. GOEXPERIMENT=boringcrypto)
#   OURS_VERIFY_CACHE=1000 …   # mutual listeners keep 1,000 verified client chains
#                              # (ssl.verify_cache; default off, as the harness runs)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
BIN="${TLSGATE_BIN:-$HERE/../bin/tlsgate}"
for v in PEER_LISTENER PEER_AUTH PEER_KEYTYPE PEER_PORT BACKEND_ADDR CERT_DIR RUN_DIR; do
  [ -n "${!v:-}" ] || { echo "$0: $v not set" >&2; exit 2; }
done
protocol=https; [ "$PEER_LISTENER" = tcp ] && protocol=tcp_ssl
case "$PEER_AUTH" in
  oneway)       ssl="{mode: one_way, server_certificates: [site]}"; ca="" ;;
  mutual)       ssl="{mode: mutual, server_certificates: [site], ca_certificate: clients}"
                ca="  - {id: clients, ca: $CERT_DIR/client-ca.crt, crl: [$CERT_DIR/client-ca.crl]}" ;;
  mutual-nocrl) ssl="{mode: mutual, server_certificates: [site], ca_certificate: clients}"
                ca="  - {id: clients, ca: $CERT_DIR/client-ca.crt}" ;;
  *) echo "$0: unknown PEER_AUTH $PEER_AUTH" >&2; exit 2 ;;
esac
if [ -n "${OURS_VERIFY_CACHE:-}" ] && [ "$PEER_AUTH" != oneway ]; then
  ssl="${ssl%\}}, verify_cache: $OURS_VERIFY_CACHE}"
fi
admin=""
# OURS_PPROF=127.0.0.1:19901 serves /debug/pprof/ there, to profile a running point;
# OURS_FORWARD=headers|xfcc|rfc9440 forwards the client identity (default none, as the peers).
# Access lines follow the peers' logging (like with like): with PEER_ACCESS_LOG=1 tlsgate
# logs every request (log.access: all), otherwise none (off); OURS_ACCESS overrides.
access="${OURS_ACCESS:-off}"; [ "${PEER_ACCESS_LOG:-0}" = 1 ] && access="${OURS_ACCESS:-all}"
[ -n "${OURS_PPROF:-}" ] && admin="admin: {listen: $OURS_PPROF, pprof: true}"
cat > "$RUN_DIR/tlsgate.yaml" <<YAML
$admin
watch_interval: -1s
certificates:
  - {id: site, cert: $CERT_DIR/server.crt, key: $CERT_DIR/server.key}
$ca
target_groups:
  - {id: backend, targets: [{address: $BACKEND_ADDR}]}
listeners:
  - id: bench
    protocol: $protocol
    listen: 127.0.0.1:$PEER_PORT
    target_group: backend
    forward_client_cert: ${OURS_FORWARD:-none}
    ssl: $ssl
YAML
exec "$BIN" serve --config "$RUN_DIR/tlsgate.yaml" --log-file "$RUN_DIR/tlsgate.log" --log-access "$access"
