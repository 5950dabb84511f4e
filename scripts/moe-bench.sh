#!/usr/bin/env bash
# Opening a big downloaded-style MoE checkpoint: writes a synthetic sharded Mixtral-layout
# checkpoint (scripts/make-synthetic-moe.py; 8 layers of Mixtral-8x7B's shapes are ~24 GB),
# opens it with `unipool inspect` and with the studio's Redundancy tab, prints the time to the
# first picture and the peak resident memory, and deletes it.
#   scripts/moe-bench.sh [LAYERS=8] [SCREENSHOT.png]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LAYERS="${1:-8}" SHOT="${2:-}"
DIR="$(mktemp -d "${TMPDIR:-/tmp}/moe-bench.XXXXXX")"
trap 'rm -rf "$DIR"' EXIT
start=$(date +%s.%N)
/usr/bin/python3 "$ROOT/scripts/make-synthetic-moe.py" "$DIR" --layers "$LAYERS" | tail -1
echo "generated in $(python3 -c "print(round($(date +%s.%N) - $start))") s: $(du -sh "$DIR" | cut -f1)"
cold() {  # the page cache would hold much of the file just written: drop it when allowed
  sync
  if echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; then echo "(page cache dropped: cold read)"
  else echo "(page cache not dropped: partly warm read)"; fi
}
report() {  # wall time and peak resident memory from /usr/bin/time -v
  awk -F': ' '/Elapsed \(wall clock\)/ {w=$2} /Maximum resident set size/ {m=$2}
    END {printf "  wall %s, peak resident %.0f MB\n", w, m / 1024}' "$1"
}
cold
echo "unipool inspect (architecture and similarity, 32 rows per matrix):"
/usr/bin/time -v "$ROOT/build/bin/unipool" inspect "$DIR" >"$DIR/inspect.txt" 2>"$DIR/time.txt"
grep -E "^(similarity|read)" "$DIR/inspect.txt" | sed 's/^/  /'
report "$DIR/time.txt"
if [ -x "$ROOT/build/bin/unipool-studio" ]; then
  cold
  echo "unipool-studio --moe (Redundancy tab):"
  args=(--moe "$DIR" --quit)
  [ -n "$SHOT" ] && args+=(--screenshot "$SHOT")
  /usr/bin/time -v xvfb-run -a -s "-screen 0 1600x1000x24" "$ROOT/build/bin/unipool-studio" \
    "${args[@]}" >"$DIR/studio.txt" 2>"$DIR/time.txt"
  grep -E "first picture|screenshot" "$DIR/studio.txt" | sed 's/^/  /'
  report "$DIR/time.txt"
fi
