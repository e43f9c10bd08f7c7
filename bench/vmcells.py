#!/usr/bin/env python3
"""vmcells.py RUN.log VM.tsv — per harness cell (from the run log's "== peer listener key
auth" lines to the next), what the page cache and the server's core did meanwhile, from the
per-second samples compare.sh takes with SAMPLE=1 (/proc/vmstat, /proc/stat's cpu0): MiB
dirtied and written back during the cell, the most dirty MiB at once, and the share of
CPU 0 (the server's core) spent in interrupts, softirqs and I/O wait (none of which the
harness counts as the server's CPU)."""
import re, sys

log, tsv = sys.argv[1], sys.argv[2]

def clock():
    """HH:MM:SS to seconds, monotonic over one file (a run may pass midnight)."""
    last, day = [0], [0]
    def sec(t):
        h, m, s = map(int, t.split(':'))
        v = h * 3600 + m * 60 + s + day[0]
        if v < last[0]:
            day[0] += 86400
            v += 86400
        last[0] = v
        return v
    return sec
cells, sec = [], clock()
for line in open(log):
    m = re.match(r'\[(\d\d:\d\d:\d\d)\] (== (\S+ \S+ \S+ \S+)|results:)', line)
    if not m:
        continue
    t = sec(m.group(1))
    if cells and cells[-1][2] is None:
        cells[-1][2] = t
    if m.group(3):
        cells.append([m.group(3), t, None])
rows, sec = [], clock()
for line in open(tsv):
    f = line.split()
    if not f or f[0] == 'time':
        continue
    rows.append((sec(f[0]), [int(x) for x in f[1:]]))
# columns: time nr_dirty nr_writeback nr_dirtied nr_written cpu0 user nice system idle iowait irq softirq steal
def at(t):
    return [r for r in rows if t[0] <= r[0] < t[1]]
page = 4096 / 2**20
print('| cell | MiB dirtied | MiB written back | most dirty MiB | CPU 0 irq+softirq | CPU 0 iowait |')
print('|---|---:|---:|---:|---:|---:|')
for name, t0, t1 in cells:
    if t1 is None:
        continue
    s = at((t0, t1))
    if len(s) < 2:
        continue
    a, b = s[0][1], s[-1][1]
    tot = sum(b[4:12]) - sum(a[4:12]) or 1
    print(f'| {name} | {(b[2]-a[2])*page:.0f} | {(b[3]-a[3])*page:.0f} | {max(r[1][0] for r in s)*page:.0f} | '
          f'{100*((b[9]-a[9])+(b[10]-a[10]))/tot:.1f} % | {100*(b[8]-a[8])/tot:.1f} % |')
