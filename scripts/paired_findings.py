#!/usr/bin/python3
"""Paired comparisons of a finished sweep against its vanilla runs, by seed (issue 21 item 3).

    /usr/bin/python3 scripts/paired_findings.py SWEEP_DIR [--markdown]

For every UniPool configuration (pool size, aux coefficient) with the same seeds as vanilla:
the mean validation CE, the per-seed values, and the mean of the per-seed differences
(configuration minus vanilla, same seed = same data and batches) with its 95% interval
(Student t over the seeds). A negative difference means the configuration beats vanilla.
Reads the runs' metrics.json directly, so a partial sweep reports what is finished.
"""
import json
import math
import os
import sys

# Two-sided 95% Student t quantiles by degrees of freedom.
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def main():
    d = sys.argv[1]
    spec = json.load(open(os.path.join(d, "sweep.json")))
    runs = {}
    for name in sorted(os.listdir(d)):
        m = os.path.join(d, name, "metrics.json")
        if os.path.exists(m):
            runs[name] = json.load(open(m))
    vanilla = {r["seed"]: r["valid_loss"] for r in runs.values() if r["kind"] == "vanilla"}
    groups = {}
    for r in runs.values():
        if r["kind"] == "vanilla":
            continue
        key = (r["kind"], r["experts_per_group"], r.get("aux_coef", -1))
        groups.setdefault(key, {})[r["seed"]] = r
    rows = []
    for (kind, mg, aux), by_seed in sorted(groups.items()):
        seeds = sorted(s for s in by_seed if s in vanilla)
        if not seeds:
            continue
        values = [by_seed[s]["valid_loss"] for s in seeds]
        diffs = [by_seed[s]["valid_loss"] - vanilla[s] for s in seeds]
        n = len(diffs)
        mean = sum(diffs) / n
        if n > 1:
            sd = math.sqrt(sum((x - mean) ** 2 for x in diffs) / (n - 1))
            half = T95.get(n - 1, 1.96) * sd / math.sqrt(n)
        else:
            half = float("nan")
        budget = by_seed[seeds[0]]["budget"]
        rows.append((kind, mg, aux, budget, sum(values) / n, values, mean, half, n))
    v = [vanilla[s] for s in sorted(vanilla)]
    if "--markdown" in sys.argv:
        print(f"vanilla: mean {sum(v) / len(v):.4f}, seeds {', '.join(f'{x:.4f}' for x in v)}\n")
        print("| run | budget | mean CE | per seed | minus vanilla (95% interval) | seeds |")
        print("| --- | --- | --- | --- | --- | --- |")
        for kind, mg, aux, budget, m, values, diff, half, n in rows:
            label = f"{kind} pool {mg}" + (f", aux {aux}" if aux >= 0 else "")
            print(f"| {label} | {100 * budget:.1f}% | {m:.4f} | {', '.join(f'{x:.4f}' for x in values)} "
                  f"| {diff:+.4f} +- {half:.4f} | {n} |")
    else:
        print(json.dumps({"spec": spec, "vanilla": vanilla, "rows": [
            {"kind": r[0], "pool": r[1], "aux": r[2], "budget": r[3], "mean": r[4], "per_seed": r[5],
             "diff_vs_vanilla": r[6], "ci95_half": r[7], "seeds": r[8]} for r in rows]}, indent=1))


if __name__ == "__main__":
    main()
