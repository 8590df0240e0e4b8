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
baselines = servers[1:]


def row(sc, unit, values):
    """One table row: each server's median, then Switchboard's against each baseline."""
    med = {s: statistics.median(values[(sc, s)]) for s in servers if values[(sc, s)]}
    cells = [f"{med[s]:.2f}" if s in med else "-" for s in servers]
    ratios = [f"{med['switchboard'] / med[b]:.2f}" if "switchboard" in med and b in med else "-" for b in baselines]
    print(f"| {sc} | {unit} | " + " | ".join(cells + ratios) + " |")


scenarios = sorted({k[0] for k in cpu}, key=lambda s: [r["scenario"] for r in rows].index(s))
print("| scenario | unit | " + " | ".join(servers) + " | " + " | ".join(f"vs {b}" for b in baselines) + " |")
print("|---|---|" + "---:|" * (len(servers) + len(baselines)))
for sc in scenarios:
    unit = next(r["result"]["unit"] for r in rows if r["scenario"] == sc and r.get("result"))
    row(sc, f"µs CPU per {unit}", cpu)
    if any(rss[(sc, s)] for s in servers):
        row(sc, "KiB RSS per connection", rss)
print()
for sc in scenarios:
    for s in servers:
        e = extra[(sc, s)]
        if e:
            shares = [g for _, _, _, g in e if g is not None]
            busy = f", generator {100 * max(shares):.0f}% busy at most" if shares else ""
            print(f"{sc} {s}: throughput median {statistics.median(t for t, _, _, _ in e):,.0f}/s, p99 median {statistics.median(p for _, p, _, _ in e):.1f} ms, lost {sum(l for _, _, l, _ in e)}{busy}")
