#!/usr/bin/env bash
# UniPool-lock's step against vanilla's (same K = 8 experts per layer, L = 6, sizes): `unipool
# bench` of vanilla, the locked model and the full-pool phase, alternating, ROUNDS times, then
# the locked/vanilla ratio of each round and their median (the figure the issue's +3% goal is
# about). Run it alone: the figures are medians of timed steps, but a busy neighbour moves them.
#   scripts/lock-bench.sh [ROUNDS=3]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
UNIPOOL="${UNIPOOL:-$ROOT/build/bin/unipool}"
OUT="$(mktemp)"
trap 'rm -f "$OUT"' EXIT
for round in $(seq 1 "${1:-3}"); do
  for args in "--preset vanilla" "--preset unipool-lock --locked" "--preset unipool-lock"; do
    OPENBLAS_NUM_THREADS=1 "$UNIPOOL" bench $args --json |
      /usr/bin/python3 -c "import json,sys; j=json.load(sys.stdin); print('round $round', '$args'.ljust(32), j['phase'].ljust(10), '%.1f ms/step' % j['ms_per_step'], '%.0f tokens/s' % j['train_tokens_per_s'])" |
      tee -a "$OUT"
  done
done
/usr/bin/python3 - "$OUT" <<'PY'
import re, statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
ms = {}
for r in rows:
    ms.setdefault(int(r[1]), {})[r[-5]] = float(r[-4])  # phase -> ms/step
ratios = [100.0 * (m["locked"] / m["none"] - 1.0) for m in ms.values() if "locked" in m and "none" in m]
print("locked over vanilla per round: " + ", ".join("%+.1f%%" % r for r in ratios) +
      "; median %+.1f%% (goal: at most +3%%)" % statistics.median(ratios))
PY
