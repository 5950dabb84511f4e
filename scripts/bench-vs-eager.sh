#!/usr/bin/env bash
# Training speed of the engine against the PyTorch eager reference, same machine, same
# preset, batch, sequence and thread count; runs alternate so both see the same machine state.
# Usage: scripts/bench-vs-eager.sh [ROUNDS] [THREADS]   (after scripts/setup.sh has built)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${1:-3}"
THREADS="${2:-1}"
CLI="${BUILD_DIR:-$ROOT/build}/bin/unipool"
[ -x "$CLI" ] || { echo "build first: scripts/setup.sh" >&2; exit 1; }
/usr/bin/python3 -c 'import torch' 2>/dev/null || { echo "needs Debian's python3-torch" >&2; exit 1; }
for round in $(seq "$ROUNDS"); do
  ours=$("$CLI" bench --preset default --batch 16 --seq 128 --threads "$THREADS" --steps 20 --json |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["train_tokens_per_s"])')
  eager=$(OPENBLAS_NUM_THREADS="$THREADS" /usr/bin/python3 "$ROOT/scripts/reference/unipool_ref.py" \
    bench --preset default --batch 16 --seq 128 --steps 10 --threads "$THREADS" |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["train_tokens_per_s"])')
  /usr/bin/python3 -c "print(f'round $round: engine {float($ours):8.0f} tokens/s, eager {float($eager):8.0f} tokens/s, ratio {float($ours)/float($eager):.2f}x')"
done
