#!/usr/bin/env bash
# kern.sh — where a server's CPU goes per operation outside its own code: runs one
# bench/point.sh point and counts on the server process (for nginx its worker), over the
# load generator's whole run, the minor page faults, context switches (every thread),
# threads, syscalls by name, softirqs and the wake-ups it causes. With PERF=1 it samples
# the server instead, 3 s from 2 s in (perf cpu-clock, call graphs; no tracepoints, they
# cost the server a few %), and splits its CPU into user space and the kernel by syscall
# (the loopback softirq run inside a send shown apart), µs per operation.
#
#   bench/kern.sh SERVER MODE AUTH [LABEL]     (as point.sh; CPUSPLIT=1 is set)
#   env: as point.sh (PORT BPORT PPORT BENCH KEY TLSGATE_BIN DUR …), PERF=1,
#        OUT=DIR (default /tmp/kern.$USER: LABEL.point.txt, LABEL.stat.txt, LABEL.perf.data)
#
# Needs perf (the software cpu-clock event, the syscalls/sched/irq tracepoints; no
# hardware counters) and root or perf_event_paranoid ≤ 1. Counts per operation = count ÷
# (rate × (seconds + the 1 s warm-up)); compare two servers or two builds in interleaved
# runs, as point.sh's pairs.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
SERVER=${1:?server} MODE=${2:?mode} AUTH=${3:?auth} LABEL=${4:-$1}
OUT=${OUT:-/tmp/kern.${USER:-root}}
PORT=${PORT:-19543}
export PORT CPUSPLIT=1
mkdir -p "$OUT"
"$HERE/point.sh" "$SERVER" "$MODE" "$AUTH" >"$OUT/$LABEL.point.txt" 2>&1 &
pt=$!
pid="" lg=""
for _ in $(seq 150); do
  pid=$(ss -ltnpH "sport = :$PORT" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)
  [ -n "$pid" ] && break
  sleep 0.1
done
[ -n "$pid" ] || { echo "kern.sh: no server on port $PORT" >&2; wait $pt; exit 1; }
for _ in $(seq 150); do
  lg=$(pgrep -f "loadgen .*-addr 127.0.0.1:$PORT " | head -1)
  [ -n "$lg" ] && break
  sleep 0.02
done
# A master process (nginx) hands the work to a child: take the child if there is one.
kid=$(pgrep -P "$pid" | head -1)
[ -n "$kid" ] && pid=$kid

# snap prints minflt majflt vcsw ivcsw threads cpu-ticks summed over the process's threads.
snap() {
  local t mf=0 mj=0 v=0 iv=0 n=0 ck=0 f
  for t in /proc/$pid/task/*; do
    f=$(awk '{i = index($0, ")"); split(substr($0, i + 2), a, " "); print a[8], a[10], a[12] + a[13]}' "$t/stat" 2>/dev/null) || continue
    set -- $f
    mf=$((mf + $1)); mj=$((mj + $2)); ck=$((ck + $3))
    f=$(awk '/^voluntary_ctxt/ {v = $2} /^nonvoluntary_ctxt/ {iv = $2} END {print v + 0, iv + 0}' "$t/status" 2>/dev/null) || continue
    set -- $f
    v=$((v + $1)); iv=$((iv + $2))
    n=$((n + 1))
  done
  echo $mf $mj $v $iv $n $ck
}
read -r mf0 mj0 v0 iv0 _ ck0 < <(snap)
if [ -n "${PERF:-}" ]; then # no tracepoints then: they cost the server a few %
  sleep 2
  perf record -q -e cpu-clock -g -p "$pid" -o "$OUT/$LABEL.perf.data" -- sleep 3 2>/dev/null
else
  events=raw_syscalls:sys_enter,sched:sched_switch,sched:sched_wakeup,irq:softirq_entry,page-faults
  for s in read write writev readv sendto recvfrom sendmsg recvmsg epoll_wait epoll_pwait futex nanosleep getsockopt setsockopt madvise; do
    events="$events,syscalls:sys_enter_$s"
  done
  perf stat -x, -o "$OUT/$LABEL.stat.txt" -e "$events" -p "$pid" 2>/dev/null &
  ps=$!
fi
# The last snapshot before the load generator ends (the server is stopped right after).
last=""
while kill -0 "$lg" 2>/dev/null; do
  cur=$(snap) && last=$cur
  sleep 0.1
done
[ -n "${ps:-}" ] && { kill -INT "$ps"; wait "$ps"; }
read -r mf1 mj1 v1 iv1 n1 ck1 <<<"$last"
wait $pt
rate=$(grep -o '"rate":[0-9.]*' "$OUT/$LABEL.point.txt" | cut -d: -f2)
pc=$(grep -o '"server_proc_cpu":[0-9.]*' "$OUT/$LABEL.point.txt" | cut -d: -f2)
[ -n "$rate" ] && [ -n "$pc" ] || { cat "$OUT/$LABEL.point.txt"; exit 1; }
# The counts cover the load generator's whole run, its 1 s warm-up and its start included
# (so they come out a few % low per operation, for every server alike).
secs=$(grep -o '"seconds":[0-9.]*' "$OUT/$LABEL.point.txt" | cut -d: -f2)
ops=$(awk -v r="$rate" -v s="$secs" 'BEGIN {print r * (s + 1)}')
awk -v l="$LABEL" -v r="$rate" -v pc="$pc" -v ops="$ops" -v mf=$((mf1 - mf0)) -v mj=$((mj1 - mj0)) \
  -v v=$((v1 - v0)) -v iv=$((iv1 - iv0)) -v n="$n1" 'BEGIN {
  printf "%s: %.0f ops/s, %.0f per server CPU-second (server at %.0f %% of a core); threads %d\n", l, r, r / pc, pc * 100, n
  printf "  per 1000 ops: minor faults %.2f, major %.2f, voluntary switches %.2f, involuntary %.2f\n", mf / ops * 1000, mj / ops * 1000, v / ops * 1000, iv / ops * 1000 }'
grep "cpu per op" "$OUT/$LABEL.point.txt" | sed 's/^/  /'
[ -z "${PERF:-}" ] && awk -F, -v ops="$ops" '$1 ~ /^[0-9]+$/ && $1 > 0 {e = $3; sub(/^syscalls:sys_enter_/, "", e); printf "  %-24s %6.3f per op\n", e, $1 / ops}' "$OUT/$LABEL.stat.txt"
if [ -n "${PERF:-}" ]; then
  us=$(awk -v r="$rate" -v pc="$pc" 'BEGIN {print 1e6 * pc / r}')
  perf script -i "$OUT/$LABEL.perf.data" -F ip,sym 2>/dev/null | python3 -c '
import sys, collections
us = float(sys.argv[1]); c = collections.Counter()
for block in sys.stdin.read().split("\n\n"):
    syms = [l.split(None, 1)[1] if len(l.split(None, 1)) > 1 else "?" for l in block.strip().split("\n") if l.strip()]
    if not syms:
        continue
    if "do_syscall_64" in syms:
        i = syms.index("do_syscall_64")
        k = "kernel: " + (syms[i - 1] if i > 0 else "syscall entry")
        if "handle_softirqs" in syms:
            k += " (softirq inside)"
    elif any(s.startswith("asm_") for s in syms):
        k = "kernel: interrupt/fault"
    elif any(s.startswith(("runtime.findRunnable", "runtime.schedule")) for s in syms):
        k = "user: scheduler"
    elif any(s.startswith(("runtime.gcBgMarkWorker", "runtime.gcAssist", "runtime.bgsweep", "runtime.bgscavenge")) for s in syms):
        k = "user: GC"
    else:
        k = "user"
    c[k] += 1
tot = sum(c.values())
print("  CPU per op by where (perf cpu-clock, %d samples):" % tot)
for k, v in c.most_common(14):
    print("    %-44s %5.1f %%  %5.2f µs" % (k, 100 * v / tot, us * v / tot))
' "$us"
fi
