#!/usr/bin/env bash
# UniPool-lock against its references (the table in docs/lock.md): trains unipool-full, unipool-lock,
# lock-random and vanilla for the same steps, data and seed, then prints per preset the
# validation loss at the end and each layer's coverage at the freeze (lock runs). Step times
# come from `unipool bench` (scripts/lock-bench.sh), taken alone on a quiet machine.
#   scripts/lock-table.sh [STEPS=1000] [OUT=/tmp/lock-table]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STEPS="${1:-1000}"
OUT="${2:-/tmp/lock-table}"
UNIPOOL="${UNIPOOL:-$ROOT/build/bin/unipool}"
mkdir -p "$OUT"
for preset in unipool-full unipool-lock lock-random vanilla; do
  rm -f "$OUT/$preset.jsonl"
  echo "==> $preset ($STEPS steps)" >&2
  OPENBLAS_NUM_THREADS=1 "$UNIPOOL" train --preset "$preset" --steps "$STEPS" --threads 1 \
    --every 100 --log "$OUT/$preset.jsonl" --out "$OUT/$preset.safetensors" >"$OUT/$preset.txt"
done
/usr/bin/python3 - "$OUT" "$STEPS" <<'PY'
import json, struct, sys
out, steps = sys.argv[1], int(sys.argv[2])
def lock_state(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        meta = json.loads(f.read(n)).get("__metadata__", {})
    return json.loads(meta["lock_state"]) if "lock_state" in meta else None
print("| preset | validation CE at the end | coverage at the freeze (per layer) |")
print("| --- | --- | --- |")
for p in ["unipool-full", "unipool-lock", "lock-random", "vanilla"]:
    ce = [l for l in open(f"{out}/{p}.txt") if l.startswith("validation: ce")][-1].split()[2]
    st = lock_state(f"{out}/{p}.train.safetensors")
    cov = ", ".join(f"{100*c:.1f}%" for c in st["coverage"]) if st and st.get("coverage") else "-"
    print(f"| {p} | {ce} | {cov} |")
PY
