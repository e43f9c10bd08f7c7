#!/usr/bin/env python3
"""ratios.py RUN.jsonl — per config and metric: median over reps of ops per server-process
CPU-second (rate / server_proc_cpu: load on the shared machine lowers the raw rate but
less this), raw median rate, spread; then ratios against nginx and HAProxy."""
import json, sys, statistics as st
from collections import defaultdict
rows = defaultdict(list); idle = {}
OURS = ('ours', 'release', 'boring', 'cache')  # tlsgate builds; the rest are peers
ORDER = list(OURS) + ['nginx', 'haproxy']
for f in sys.argv[1:]:
    for line in open(f):
        r = json.loads(line); L = r.get('labels', {}); m = L.get('metric')
        if not m or m == 'calib': continue
        k = (L['listener'], L['key'], L['auth'], m); p = L['peer']
        if m == 'idle':
            idle[(p,) + k] = r.get('rss_per_conn_kb'); continue
        val = r.get('mb_s') if m.startswith('bulk') else r.get('rate')
        pc = r.get('server_proc_cpu')
        if not val or not pc or r.get('errors'): continue
        rows[(p,) + k].append((val / pc, val))
peers = sorted({k[0] for k in list(rows) + list(idle)}, key=lambda p: ORDER.index(p) if p in ORDER else 9)
cfgs = sorted({k[1:] for k in rows} | {k[1:] for k in idle})
def med(p, c):
    v = rows.get((p,) + c)
    if not v: return None
    pcs = [x[0] for x in v]; m = st.median(pcs)
    return m, (max(pcs) - min(pcs)) / m, st.median(x[1] for x in v)
print('| listener key auth metric | ' + ' | '.join(f'{p} per CPU-s (spread; raw)' for p in peers) + ' | ' +
      ' | '.join(f'{p} ÷ nginx / ÷ HAProxy' for p in peers if p in OURS) + ' |')
print('|---|' + '---:|' * (len(peers) + len([p for p in peers if p in OURS])))
for c in cfgs:
    if c[3] == 'idle':
        vals = [idle.get((p,) + c) for p in peers]
        cells = [f'{v} KiB' if v else '–' for v in vals]
        n, h = idle.get(('nginx',) + c), idle.get(('haproxy',) + c)
        rat = []
        for p in peers:
            if p not in OURS: continue
            o = idle.get((p,) + c)
            rat.append(' / '.join(f'{o/x:.2f}×' if o and x else '–' for x in (n, h)))
    else:
        ms = [med(p, c) for p in peers]
        cells = [f'{m[0]:.0f} ({m[1]*100:.0f} %; {m[2]:.0f})' if m else '–' for m in ms]
        n, h = med('nginx', c), med('haproxy', c)
        rat = []
        for p in peers:
            if p not in OURS: continue
            o = med(p, c)
            rat.append(' / '.join(f'{o[0]/x[0]:.2f}×' if o and x else '–' for x in (n, h)))
    print(f'| {" ".join(c)} | ' + ' | '.join(cells) + ' | ' + ' | '.join(rat) + ' |')
