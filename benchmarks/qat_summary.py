#!/usr/bin/env python3
"""Summarises QAT runs (directories of metrics.jsonl) as the markdown table of docs/results.md:
final test accuracy, mean and spread over seeds, and how closely the running transition rate
follows its target.

  python3 benchmarks/qat_summary.py RUNS_DIR

Runs are grouped by their name without the "-sN" seed suffix. Following the target: over the
logged steps after the first 10% of training, the share of (step, layer) pairs whose running TR
(the EMA) lies within a factor of 1.5 of the target; "while R_t > R_0/10" restricts that to the
part of training where the cosine target has not yet decayed below a tenth of its start;
"worst layer" is the lowest per-layer share of the first kind over all layers and seeds.
"""
import json, math, os, re, statistics, sys
from collections import defaultdict


def read(path):
    rows = []
    with open(path) as f:
        for line in f:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return rows


def following(rows):
    steps = [r for r in rows if r.get("kind") == "step" and "layers" in r and "target_tr" in r]
    if not steps:
        return None
    last = steps[-1]["step"]
    r0 = max(r["target_tr"] for r in steps)
    inside = total = inside_hi = total_hi = 0
    per_layer = defaultdict(lambda: [0, 0])  # name -> [inside, total]
    for r in steps:
        if r["step"] < 0.1 * last:
            continue
        t = r["target_tr"]
        for name, l in r["layers"].items():
            ok = t > 0 and t / 1.5 <= l["tr_ema"] <= 1.5 * t
            total += 1
            inside += ok
            if t > r0 / 10:
                total_hi += 1
                inside_hi += ok
            per_layer[name][0] += ok
            per_layer[name][1] += 1
    worst = min(a / max(b, 1) for a, b in per_layer.values())
    return inside / max(total, 1), inside_hi / max(total_hi, 1), worst


def main():
    root = sys.argv[1]
    groups = defaultdict(list)
    follow = defaultdict(list)
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name, "metrics.jsonl")
        if not os.path.isfile(path):
            continue
        rows = read(path)
        epochs = [r for r in rows if r.get("kind") == "epoch"]
        if not epochs:
            continue
        key = re.sub(r"-s\d+$", "", name)
        groups[key].append(100 * epochs[-1]["test_acc"])
        f = following(rows)
        if f:
            follow[key].append(f)
    print("| run | seeds | test acc % (each) | mean | spread (max-min) | TR within 1.5x of target | same, while R_t > R_0/10 | worst layer |")
    print("|---|---|---|---|---|---|---|---|")
    for key in sorted(groups):
        accs = groups[key]
        fl = follow.get(key)
        f1 = f"{100 * statistics.mean(x[0] for x in fl):.0f}%" if fl else "-"
        f2 = f"{100 * statistics.mean(x[1] for x in fl):.0f}%" if fl else "-"
        f3 = f"{100 * min(x[2] for x in fl):.0f}%" if fl else "-"
        print(f"| {key} | {len(accs)} | {', '.join(f'{a:.2f}' for a in accs)} | {statistics.mean(accs):.2f} | "
              f"{max(accs) - min(accs):.2f} | {f1} | {f2} | {f3} |")


if __name__ == "__main__":
    main()
