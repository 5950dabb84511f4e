#!/usr/bin/python3
"""The tables of docs/findings.md from a scripts/findings.sh folder (issue 21 items 3 and 5).

    /usr/bin/python3 scripts/findings_report.py DIR > report.md

Reads what is finished (each run's metrics.json, each probe's JSON), so a partial set reports
what it has; writes DIR/findings.csv (one line per run). Every comparison is paired by seed:
the same seed means the same data order, batches and initial weights, so the difference
A - B is taken seed by seed and its mean is given with a 95% Student t interval over the seeds
(a negative difference in CE means A is better). Validation CE is in nats per byte on the
sweep's validation text (32 windows of 128 bytes).
"""
import json
import math
import os
import sys

# Two-sided 95% Student t quantiles by degrees of freedom.
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}
PRESETS_AUX, LOW_AUX = 0.01, 0.001
PAPER = ("Paper (182M, 60k steps, their Table 1-2): vanilla 1.9317, UniPool-lock and "
         "UniPool-full 1.9029 validation loss; reduced pools at 41.6-66.7% of the vanilla "
         "budget match or beat vanilla; routing deep layers at random costs 1.0-1.6 points "
         "(downstream accuracy) in production MoEs.")


def load_runs(sweep_dir):
    """{run name without the seed: {seed: metrics}} of the finished runs of one sweep."""
    out = {}
    if not os.path.isdir(sweep_dir):
        return out
    for name in sorted(os.listdir(sweep_dir)):
        m = os.path.join(sweep_dir, name, "metrics.json")
        if not os.path.exists(m):
            continue
        r = json.load(open(m))
        stem, seed = name.rsplit("-s", 1)
        out.setdefault(stem, {})[int(seed)] = r
    return out


def interval(diffs):
    n = len(diffs)
    mean = sum(diffs) / n
    if n < 2:
        return mean, float("nan")
    sd = math.sqrt(sum((x - mean) ** 2 for x in diffs) / (n - 1))
    return mean, T95.get(n - 1, 1.96) * sd / math.sqrt(n)


def paired(a, b, key="valid_loss"):
    """Seeds both have, A's values, and the mean difference A - B with its 95% half-width."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    values = [a[s][key] for s in seeds]
    mean, half = interval([a[s][key] - b[s][key] for s in seeds])
    return seeds, values, mean, half


def fmt_values(values):
    return ", ".join(f"{x:.4f}" for x in values)


def verdict(mean, half):
    if not math.isfinite(half):
        return "one seed"
    if mean + half < 0:
        return "better"
    if mean - half > 0:
        return "worse"
    return "no difference shown"


def comparison_table(title, rows):
    """rows: (label, A by seed, B by seed, B's label)."""
    print(f"\n{title}\n")
    print("| run | mean CE | per seed | zero-gate | minus | difference (95% interval) | reads |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for label, a, b, b_label in rows:
        p = paired(a, b)
        if p is None:
            continue
        seeds, values, mean, half = p
        zg = [a[s].get("zero_gate_all", float("nan")) for s in seeds]
        zg_mean = sum(zg) / len(zg)
        print(f"| {label} | {sum(values) / len(values):.4f} | {fmt_values(values)} "
              f"| {100 * zg_mean:.1f}% | {b_label} | {mean:+.4f} +- {half:.4f} "
              f"| {verdict(mean, half)} ({len(seeds)} seeds) |")


def sweep_tables(runs):
    vanilla = runs.get("vanilla", {})
    if vanilla:
        v = [vanilla[s]["valid_loss"] for s in sorted(vanilla)]
        print(f"\nvanilla: mean {sum(v) / len(v):.4f}, seeds {fmt_values(v)} "
              f"(softmax router, layer balance 1e-2 summed over layers, no zero-gate tokens)")
    for aux, regime in ((PRESETS_AUX, "at the presets (aux 1e-2)"),
                        (LOW_AUX, "in the low zero-gate setting (aux 1e-3)")):
        rows = []
        for mg in (12, 20, 24, 32, 48):
            stem = f"mg{mg}-a{aux:g}"
            if stem in runs:
                budget = next(iter(runs[stem].values()))["budget"]
                rows.append((f"UniPool pool {mg} ({100 * budget:.1f}%)", runs[stem], vanilla,
                             "vanilla"))
        comparison_table(f"### Reduced pools against vanilla, {regime}", rows)
        full, lock, rnd = (runs.get(f"{k}-a{aux:g}", {}) for k in ("mg48", "lock", "lock-random"))
        rows = [("UniPool-lock", lock, vanilla, "vanilla"),
                ("UniPool-lock", lock, full, "UniPool-full (pool 48)"),
                ("UniPool-lock", lock, rnd, "lock-random"),
                ("UniPool-full (pool 48)", full, vanilla, "vanilla"),
                ("lock-random", rnd, vanilla, "vanilla")]
        comparison_table(f"### UniPool-lock, {regime}", rows)


def router_table(d, main):
    base = main.get(f"mg24-a{PRESETS_AUX:g}", {})
    rows = []
    for sub, label in (("router-init", "routers from N(0, 0.01)"),
                       ("router-decay", "weight decay 0.01 on the routers")):
        r = load_runs(os.path.join(d, sub)).get(f"mg24-a{PRESETS_AUX:g}", {})
        rows.append((f"pool 24, {label}", r, base, "today's defaults"))
    comparison_table("### The reference code's router details (pool 24, aux 1e-2)", rows)


def probe_tables(d):
    """Per layer and from k down: the loss increase under random routing, UniPool - vanilla."""
    pdir = os.path.join(d, "probe")
    if not os.path.isdir(pdir):
        return
    probes = {}
    for f in sorted(os.listdir(pdir)):
        if not f.endswith(".json"):
            continue
        stem, seed = f[:-5].rsplit("-s", 1)
        result = json.load(open(os.path.join(pdir, f)))[0]
        probes.setdefault(stem, {})[int(seed)] = {r["name"]: r for r in result["rows"]}
    vanilla = probes.get("vanilla", {})
    if not vanilla:
        return
    names = [n for n in next(iter(vanilla.values())) if n != "none"]
    for stem, label in ((f"mg24-a{PRESETS_AUX:g}", "UniPool pool 24, aux 1e-2"),
                        (f"mg24-a{LOW_AUX:g}", "UniPool pool 24, aux 1e-3"),
                        (f"lock-a{PRESETS_AUX:g}", "UniPool-lock, aux 1e-2"),
                        (f"lock-a{LOW_AUX:g}", "UniPool-lock, aux 1e-3")):
        model = probes.get(stem, {})
        seeds = sorted(set(model) & set(vanilla))
        if not seeds:
            continue
        print(f"\n### Random-routing probe: {label} against vanilla ({len(seeds)} seeds)\n")
        print("Loss increase with random routing (nats/byte, mean of 3 draws, mean over seeds), "
              "next-byte accuracy change in points, and the paired difference of the loss "
              "increases (model - vanilla; negative: the model loses less).\n")
        print("| random in | model: +loss | model: accuracy | vanilla: +loss | vanilla: accuracy "
              "| model - vanilla (95% interval) |")
        print("| --- | --- | --- | --- | --- | --- |")
        for n in names:
            dm = [model[s][n]["d_loss_mean"] for s in seeds]
            dv = [vanilla[s][n]["d_loss_mean"] for s in seeds]
            am = [100 * model[s][n]["d_accuracy_mean"] for s in seeds]
            av = [100 * vanilla[s][n]["d_accuracy_mean"] for s in seeds]
            mean, half = interval([x - y for x, y in zip(dm, dv)])
            avg = lambda xs: sum(xs) / len(xs)
            print(f"| {n} | {avg(dm):+.3f} | {avg(am):+.1f} | {avg(dv):+.3f} | {avg(av):+.1f} "
                  f"| {mean:+.3f} +- {half:.3f} |")


def write_csv(d, sets):
    with open(os.path.join(d, "findings.csv"), "w") as f:
        f.write("sweep,run,kind,pool_size,aux_coef,seed,budget,valid_loss,valid_accuracy,"
                "zero_gate_all,tokens_per_s\n")
        for sub, runs in sets:
            for stem, by_seed in sorted(runs.items()):
                for seed, r in sorted(by_seed.items()):
                    f.write(f"{sub},{stem}-s{seed},{r['kind']},{r['experts_per_group']},"
                            f"{r.get('aux_coef', -1)},{seed},{r['budget']:.4f},"
                            f"{r['valid_loss']:.5f},{r['valid_accuracy']:.5f},"
                            f"{r.get('zero_gate_all', float('nan')):.4f},"
                            f"{r['tokens_per_s']:.0f}\n")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    d = sys.argv[1]
    main_runs = load_runs(os.path.join(d, "main"))
    print(f"# Findings report ({d})\n\n{PAPER}")
    sweep_tables(main_runs)
    router_table(d, main_runs)
    probe_tables(d)
    write_csv(d, [(s, load_runs(os.path.join(d, s))) for s in ("main", "router-init", "router-decay")])


if __name__ == "__main__":
    main()
