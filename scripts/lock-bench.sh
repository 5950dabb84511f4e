#!/usr/bin/env bash
# UniPool-lock's step against vanilla's (same K = 8 experts per layer, L = 6, sizes): `unipool
# bench` of the full-pool phase, the locked model and vanilla, alternating, ROUNDS times. Run
# it alone: the figures are medians of timed steps, but a busy neighbour still moves them.
#   scripts/lock-bench.sh [ROUNDS=3]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
UNIPOOL="${UNIPOOL:-$ROOT/build/bin/unipool}"
for round in $(seq 1 "${1:-3}"); do
  for args in "--preset vanilla" "--preset unipool-lock --locked" "--preset unipool-lock"; do
    OPENBLAS_NUM_THREADS=1 "$UNIPOOL" bench $args --json |
      /usr/bin/python3 -c "import json,sys; j=json.load(sys.stdin); print('round $round', '$args'.ljust(32), j['phase'].ljust(10), '%.1f ms/step' % j['ms_per_step'], '%.0f tokens/s' % j['train_tokens_per_s'])"
  done
done
