#!/usr/bin/env bash
# The zero-gate regime mapped (issue 21 item 2): UniPool at the `default` shape with pools of
# 12, 24, 48 and 96 experts x aux coefficients 0, 1e-3, 1e-2 and 1e-1, 1,000 steps each, the
# vanilla baseline beside them; prints the summary (validation CE, zero-gate share over all
# layers and in the worst layer) and writes grid.csv. Resumable: run it again on the same
# folder and only unfinished runs train. About 30 min on 2 cores (--parallel 2).
#   scripts/zero-gate-grid.sh [DIR] [SEEDS]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${1:-$ROOT/experiments/zero-gate-grid}"
SEEDS="${2:-1}"
"$ROOT/build/bin/unipool" sweep --pool-sizes 12,24,48,96 --aux-coefs 0,0.001,0.01,0.1 \
  --steps 1000 --seeds "$SEEDS" --parallel 2 --out "$DIR"
"$ROOT/build/bin/unipool" sweep --pool-sizes 12,24,48,96 --aux-coefs 0,0.001,0.01,0.1 \
  --steps 1000 --seeds "$SEEDS" --out "$DIR" --json > "$DIR/summary.json"
/usr/bin/python3 - "$DIR" <<'PY'
import json, sys
d = sys.argv[1]
runs = json.load(open(d + "/summary.json"))["runs"]
with open(d + "/grid.csv", "w") as f:
    f.write("run,pool_size,aux_coef,valid_loss,zero_gate_all,zero_gate_worst_layer\n")
    for r in runs:
        worst = max(r["zero_gate"]) if r["zero_gate"] else float("nan")
        f.write(f'{r["name"]},{r["experts_per_group"]},{r["aux_coef"]},{r["valid_loss"]:.4f},'
                f'{r["zero_gate_all"]:.4f},{worst:.4f}\n')
print(open(d + "/grid.csv").read())
PY
