#!/usr/bin/env bash
# Trains the `default`, `vanilla` and `grouped` presets for 30 steps and `unipool-lock` for 60
# (through its freeze and lock, fitted to the run's length) with one `unipool` binary
# and records what must not change when the code is reorganised: the checkpoints' bytes (both
# files) and `eval --json` on a fixed text. Run it with the binary before and after a change
# and compare the two folders:
#   scripts/check-identical.sh OLD/bin/unipool /tmp/before
#   scripts/check-identical.sh build/bin/unipool /tmp/after
#   diff -r /tmp/before/summary /tmp/after/summary && echo identical
set -euo pipefail
UNIPOOL="${1:?usage: check-identical.sh path/to/unipool OUT_DIR}"
OUT="${2:?usage: check-identical.sh path/to/unipool OUT_DIR}"
STEPS="${STEPS:-30}"
mkdir -p "$OUT/summary"
TEXT="$OUT/eval-text.txt"
# A fixed text: the same bytes for every binary.
for i in $(seq 1 40); do
  printf 'Line %d: the quiet river carried 17 + 25 = 42 boats; def f(x): return x * %d\n' "$i" "$i"
done >"$TEXT"
for preset in default vanilla grouped unipool-lock; do
  ckpt="$OUT/$preset.safetensors"
  rm -f "$ckpt" "$OUT/$preset.train.safetensors"
  steps="$STEPS"
  [ "$preset" = unipool-lock ] && steps="${LOCK_STEPS:-60}"
  OPENBLAS_NUM_THREADS=1 "$UNIPOOL" train --preset "$preset" --steps "$steps" --threads 1 \
    --out "$ckpt" --quiet
  sha256sum "$ckpt" "$OUT/$preset.train.safetensors" | awk '{print $1}' \
    >"$OUT/summary/$preset.sha256"
  OPENBLAS_NUM_THREADS=1 "$UNIPOOL" eval --checkpoint "$ckpt" --text "$TEXT" --seq 64 --json \
    >"$OUT/summary/$preset.eval.json"
  echo "$preset: $(head -c 16 "$OUT/summary/$preset.sha256") ... $(head -c 80 "$OUT/summary/$preset.eval.json")"
done
