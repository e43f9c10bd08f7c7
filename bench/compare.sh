#!/usr/bin/env bash
# compare.sh — the round's harness run: tlsgate built two ways ("ours": the release build,
# `make build`: Go's crypto with the server's RSA signatures through OpenSSL; "boring":
# `make build BORING=1`, the same with the BoringCrypto module) beside nginx and HAProxy, one full run of ../shared/bench/run-peers.sh per
# logging mode (none logs requests; every server logs each request). Writes
# results/harness-<UTC>-{nolog,log}.md: ratios per second of server CPU (ratios.py), then
# the harness's own report. Needs a quiet machine: nothing else should run meanwhile.
#
#   bench/compare.sh                 # both modes, REPS=3 DUR=3s (about 20 min a mode; REPS=5 about 30)
#   MODES=log REPS=5 bench/compare.sh
#   OURS_OPENSSL=0 bench/compare.sh  # both without the OpenSSL RSA signer
#   PEERS="ours nginx haproxy" bench/compare.sh   # without the BoringCrypto build (about 3/4 of the time)
#   PEERS="ours cache nginx haproxy" AUTHS=mutual METRICS="full resume" bench/compare.sh
#                                    # "cache": the release build with ssl.verify_cache: 1000
#                                    # on its mutual listeners (OURS_VERIFY_CACHE, ours.sh)
#   SAMPLE=1 bench/compare.sh        # also per cell: the page cache's dirty and written-back
#                                    # MiB and CPU 0's interrupt/softirq/iowait share (vmcells.py)
#   RUNDIR=/dev/shm bench/compare.sh # every server's run directory (its access log) on tmpfs:
#                                    # no disk writeback from earlier cells in a logged run
#   INTERLEAVE=0 bench/compare.sh    # one run-peers.sh call per mode, server by server (the
#                                    # harness's own order) instead of cell by cell (interleaved, below)
#   LISTENERS= KEYTYPES= AUTHS= METRICS= narrow the run (run-peers.sh's knobs)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$HERE/.."
BENCH="$(cd "${BENCH:-$ROOT/../shared/bench}" && pwd)"
BIN="$(mktemp -d)"
cleanup() {
  [ -n "${SAMPLER:-}" ] && kill "$SAMPLER" 2>/dev/null
  if [ -n "${RUNDIR:-}" ] && [ -L "$BENCH/run" ]; then rm -rf "$(readlink "$BENCH/run")" "$BENCH/run"; fi
  rm -rf "$BIN" "$BENCH/peers/boring.sh" "$BENCH/peers/cache.sh"
}
trap cleanup EXIT
# RUNDIR: the harness's run/ (each server's config, stdout and access log) under another
# directory, for all servers alike (a symlink; removed with what it holds on exit).
if [ -n "${RUNDIR:-}" ]; then
  rm -rf "$BENCH/run"; ln -s "$(mktemp -d "$RUNDIR/tlsgate-bench-run.XXXXXX")" "$BENCH/run"
fi
PEERS="${PEERS:-ours boring nginx haproxy}"
(cd "$ROOT" && make -s build OPENSSL=${OURS_OPENSSL:-1} && mv tlsgate "$BIN/tlsgate")
case " $PEERS " in *" boring "*)
  (cd "$ROOT" && make -s build BORING=1 OPENSSL=${OURS_OPENSSL:-1} && mv tlsgate "$BIN/tlsgate-boring") ;;
esac
[ -x "$BENCH/bin/loadgen" ] || (cd "$BENCH" && ./gen-certs.sh && go build -o bin/ ./backend ./loadgen ./report)
# A second hook beside peers/ours.sh for the BoringCrypto binary (removed on exit).
cat > "$BENCH/peers/boring.sh" <<HOOK
#!/usr/bin/env bash
OURS_CMD="env TLSGATE_BIN=$BIN/tlsgate-boring bash $HERE/ours.sh" OURS_VERSION="tlsgate (make build BORING=1)" \\
  exec "\$(dirname "\$0")/ours.sh" "\$@"
HOOK
chmod +x "$BENCH/peers/boring.sh"
# And one for the release binary with the client-chain verification cache turned on.
cat > "$BENCH/peers/cache.sh" <<HOOK
#!/usr/bin/env bash
OURS_CMD="env TLSGATE_BIN=$BIN/tlsgate OURS_VERIFY_CACHE=\${OURS_VERIFY_CACHE:-1000} bash $HERE/ours.sh" \\
  OURS_VERSION="tlsgate (make build, ssl.verify_cache: \${OURS_VERIFY_CACHE:-1000})" \\
  exec "\$(dirname "\$0")/ours.sh" "\$@"
HOOK
chmod +x "$BENCH/peers/cache.sh"
export OURS_CMD="env TLSGATE_BIN=$BIN/tlsgate bash $HERE/ours.sh" OURS_VERSION="tlsgate (make build)"
: "${REPS:=3}" "${DUR:=3s}" "${WARMUP:=0.5s}"
export REPS DUR WARMUP
# interleaved LOGGING JSONL: the harness run cell by cell instead of server by server.
# run-peers.sh measures every cell of one server before the next server starts, so a
# cell's servers are measured 10-20 minutes apart and the host's drift over that time
# lands in their ratio. Here each repetition runs every cell (listener, key, client auth)
# for all servers back to back, a run-peers.sh call per cell and repetition with REPS=1,
# the servers' order rotated by one each repetition; check and idle run in the first
# repetition only. The points, their durations and the calibration are the harness's
# own; the repetitions' labels are renumbered so that one JSONL file holds them all, and
# the harness's report and ratios.py read it as one run.
interleaved() {
  local logging=$1 jsonl=$2 rep l k a order part n
  local -a peers=($PEERS)
  n=${#peers[@]}
  mkdir -p "$(dirname "$jsonl")"
  : > "$jsonl"; : > "${jsonl%.jsonl}.log"
  for rep in $(seq "$REPS"); do
    order=()
    for i in $(seq 0 $((n - 1))); do order+=("${peers[$(( (i + rep - 1) % n ))]}"); done
    metrics="${METRICS:-check idle full resume keepalive bulk}"
    [ "$rep" -gt 1 ] && metrics="$(sed 's/\bcheck\b//; s/\bidle\b//' <<<"$metrics")"
    for l in ${LISTENERS:-https tcp}; do for k in ${KEYTYPES:-ecdsa rsa}; do for a in ${AUTHS:-oneway mutual}; do
      part="$BIN/part.jsonl"
      PEER_ACCESS_LOG=$logging OUT="$part" REPS=1 LISTENERS=$l KEYTYPES=$k AUTHS=$a METRICS="$metrics" \
        "$BENCH/run-peers.sh" "${order[@]}" > /dev/null
      sed "s/\"rep\":\"1\"/\"rep\":\"$rep\"/" "$part" >> "$jsonl"
      cat "${part%.jsonl}.log" >> "${jsonl%.jsonl}.log"
      cp "${part%.jsonl}.versions.txt" "${jsonl%.jsonl}.versions.txt"
      rm -f "$part" "${part%.jsonl}".*
    done; done; done
  done
  sed -i "s|, 1 reps, median|, $REPS reps interleaved cell by cell (bench/compare.sh), median|" "${jsonl%.jsonl}.versions.txt"
  "$BENCH/bin/report" -versions "${jsonl%.jsonl}.versions.txt" "$jsonl"
}
for mode in ${MODES:-nolog log}; do
  ts="$(date -u +%Y%m%dT%H%MZ)"
  out="$HERE/results/harness-$ts-$mode.md"
  jsonl="$BENCH/results/compare-$ts-$mode.jsonl"
  logging=0; [ "$mode" = log ] && logging=1
  vm="$BIN/vm-$mode.tsv"
  if [ -n "${SAMPLE:-}" ]; then
    # once a second: nr_dirty nr_writeback nr_dirtied nr_written, then CPU 0's jiffies
    (while :; do
       printf '%s %s %s\n' "$(date +%H:%M:%S)" \
         "$(awk '$1=="nr_dirty"||$1=="nr_writeback"||$1=="nr_dirtied"||$1=="nr_written"{printf "%s ",$2}' /proc/vmstat)" \
         "$(awk '$1=="cpu0"{print $2,$3,$4,$5,$6,$7,$8,$9}' /proc/stat)"
       sleep 1
     done > "$vm") &
    SAMPLER=$!
  fi
  if [ "${INTERLEAVE:-1}" = 1 ]; then
    interleaved "$logging" "$jsonl" > "$BIN/report.md"
  else
    PEER_ACCESS_LOG=$logging OUT="$jsonl" "$BENCH/run-peers.sh" $PEERS > "$BIN/report.md"
  fi
  [ -n "${SAMPLER:-}" ] && { kill "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null || true; SAMPLER=; }
  {
    echo "# Harness run $ts, access logs on every server: $([ $logging = 1 ] && echo yes || echo no) (PEER_ACCESS_LOG=$logging)"
    echo
    echo "tlsgate at $(git -C "$ROOT" log -1 --format='%h %s'); \"ours\" = make build (Go crypto), \"boring\" = make build BORING=1; both sign RSA through OpenSSL unless OURS_OPENSSL=0."
    echo
    echo "## Per second of the server process's CPU (bench/ratios.py)"
    echo
    python3 "$HERE/ratios.py" "$jsonl"
    echo
    if [ -s "$vm" ]; then
      echo "## The page cache and the server's core per cell (SAMPLE=1, bench/vmcells.py; run directories in ${RUNDIR:-$BENCH/run})"
      echo
      python3 "$HERE/vmcells.py" "${jsonl%.jsonl}.log" "$vm"
      echo
    fi
    echo "## The harness's report"
    echo
    cat "$BIN/report.md"
  } > "$out"
  echo "wrote $out"
done
