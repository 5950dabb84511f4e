#!/usr/bin/env bash
# Data-parallel scaling on one machine: the same run (global batch, steps) on 1 rank and on
# ROUNDS x 2 ranks (`--nproc 2`), 1 compute thread each. Prints tokens/s from wall time (startup
# included, so use enough steps) and rank 0's share of time in collectives.
#   scripts/dp-bench.sh [STEPS=40] [PRESET=default] [BATCH=16]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
UNIPOOL="${UNIPOOL:-$ROOT/build/bin/unipool}"
STEPS="${1:-40}" PRESET="${2:-default}" BATCH="${3:-16}" SEQ=128
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
for ranks in 1 2 1 2; do
  args=(train --preset "$PRESET" --steps "$STEPS" --batch "$BATCH" --seq "$SEQ" --threads 1
        --every 1000000 --out "$OUT/m.safetensors")
  [ "$ranks" -gt 1 ] && args+=(--nproc "$ranks")
  start=$(date +%s.%N)
  OPENBLAS_NUM_THREADS=1 "$UNIPOOL" "${args[@]}" >"$OUT/out.txt" 2>&1
  end=$(date +%s.%N)
  comm=$(grep -o 'in collectives ([0-9]*%)' "$OUT/out.txt" || echo "-")
  python3 -c "print(f'{$ranks} rank(s): {($STEPS*$BATCH*$SEQ)/($end-$start):8.0f} tokens/s  ({$end-$start:.1f} s wall)  $comm')"
done
