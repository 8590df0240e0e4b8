"""Medians of bench/run.sh results: server CPU per unit (and RSS per connection) per scenario and server, with ratios.

Usage: /usr/bin/python3 bench/summarize.py artifacts/bench/results.jsonl   (standard library only)
"""
import json
import statistics
import sys
from collections import defaultdict

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
cpu = defaultdict(list)
rss = defaultdict(list)
extra = defaultdict(list)
for r in rows:
    x = r.get("result")
    if not x:
        continue
    key = (r["scenario"], r["server"])
    if x.get("serverCpuUsPerUnit") is not None:
        cpu[key].append(x["serverCpuUsPerUnit"])
    if x.get("rssPerConnectionKiB") is not None:
        rss[key].append(x["rssPerConnectionKiB"])
    extra[key].append((x["throughput"], x["p99Us"] / 1000, x["lost"], x.get("generatorCpuShare")))

servers = ["switchboard", "aspnetcore", "node-ws", "uws"]
scenarios = sorted({k[0] for k in cpu}, key=lambda s: [r["scenario"] for r in rows].index(s))
print("| scenario | unit | " + " | ".join(servers) + " | vs aspnetcore | vs node-ws | vs uws |")
print("|---|---|" + "---:|" * (len(servers) + 3))
for sc in scenarios:
    unit = next(r["result"]["unit"] for r in rows if r["scenario"] == sc and r.get("result"))
    med = {s: statistics.median(cpu[(sc, s)]) for s in servers if cpu[(sc, s)]}
    cells = [f"{med[s]:.2f}" if s in med else "-" for s in servers]
    ratio = lambda b: f"{med['switchboard'] / med[b]:.2f}" if "switchboard" in med and b in med else "-"
    print(f"| {sc} | µs CPU per {unit} | " + " | ".join(cells) + f" | {ratio('aspnetcore')} | {ratio('node-ws')} | {ratio('uws')} |")
    if any(rss[(sc, s)] for s in servers):
        m = {s: statistics.median(rss[(sc, s)]) for s in servers if rss[(sc, s)]}
        cells = [f"{m[s]:.2f}" if s in m else "-" for s in servers]
        r2 = lambda b: f"{m['switchboard'] / m[b]:.2f}" if "switchboard" in m and b in m else "-"
        print(f"| {sc} | KiB RSS per connection | " + " | ".join(cells) + f" | {r2('aspnetcore')} | {r2('node-ws')} | {r2('uws')} |")
print()
for sc in scenarios:
    for s in servers:
        e = extra[(sc, s)]
        if e:
            shares = [g for _, _, _, g in e if g is not None]
            busy = f", generator {100 * max(shares):.0f}% busy at most" if shares else ""
            print(f"{sc} {s}: throughput median {statistics.median(t for t, _, _, _ in e):,.0f}/s, p99 median {statistics.median(p for _, p, _, _ in e):.1f} ms, lost {sum(l for _, _, l, _ in e)}{busy}")
