#!/usr/bin/env bash
# The paper's findings at our scale, the whole set (issue 21; results in docs/findings.md).
#   scripts/findings.sh [DIR] [--parallel N] [--seeds N] [--steps N]
# Resumable: every part keeps what is finished (a sweep's runs, each probe's JSON), so run it
# again on the same DIR after a stop and only the rest is done. On 2 cores with --parallel 2 the
# whole set is about 100 min (each 1,000-step `default` run is ~3.3 min on one core).
#
#   DIR/main          sweep: pools 12/20/24/32/48 x aux {1e-2 (the presets), 1e-3 (low
#                     zero-gate, docs/findings.md section 2)}, vanilla, UniPool-lock and
#                     lock-random at both coefficients; same data and batches per seed
#   DIR/router-init   pool 24, aux 1e-2, routers drawn from N(0, 0.01)   (item 5)
#   DIR/router-decay  pool 24, aux 1e-2, weight decay 0.01 on the routers (item 5)
#   DIR/probe/*.json  the random-routing probe of every seed's UniPool (pool 24), lock and
#                     vanilla checkpoints, per layer and from k down
#   DIR/report.md     the tables (scripts/findings_report.py), DIR/findings.csv every run
#   DIR/*.png         the Experiments tab's own exports (sweep plot, probe plot)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/build/bin"
DIR="$ROOT/experiments/findings"
PARALLEL=2
SEEDS=3
STEPS=1000
while [ $# -gt 0 ]; do
  case "$1" in
    --parallel) PARALLEL="$2"; shift 2 ;;
    --seeds) SEEDS="$2"; shift 2 ;;
    --steps) STEPS="$2"; shift 2 ;;
    -h|--help) sed -n 2,17p "$0"; exit 0 ;;
    -*) echo "findings.sh: unknown option $1" >&2; exit 2 ;;
    *) DIR="$1"; shift ;;
  esac
done
mkdir -p "$DIR/probe"
COMMON=(--steps "$STEPS" --seeds "$SEEDS" --parallel "$PARALLEL")

echo "== 1/4 the main sweep: reduced pools, lock, lock-random, vanilla ($DIR/main)"
"$BIN/unipool" sweep --pool-sizes 12,20,24,32,48 --aux-coefs 0.01,0.001 --lock --lock-random \
  "${COMMON[@]}" --out "$DIR/main"

echo "== 2/4 the reference code's router details (item 5)"
"$BIN/unipool" sweep --pool-sizes 24 --aux-coefs 0.01 --no-vanilla --router-init-std 0.01 \
  "${COMMON[@]}" --out "$DIR/router-init"
"$BIN/unipool" sweep --pool-sizes 24 --aux-coefs 0.01 --no-vanilla --router-weight-decay 0.01 \
  "${COMMON[@]}" --out "$DIR/router-decay"

echo "== 3/4 the random-routing probe (256 windows of the validation text, 3 draws each)"
probe_one() {  # checkpoint run name, seed
  local out="$DIR/probe/$1.json"
  [ -s "$out" ] && return 0
  "$BIN/unipool" probe --checkpoint "$DIR/main/$1/model.safetensors" --windows 256 --json \
    > "$out.tmp"
  mv "$out.tmp" "$out"
  echo "probe $1 done"
}
export -f probe_one
export BIN DIR
for s in $(seq 1 "$SEEDS"); do
  for run in mg24-a0.01 mg24-a0.001 vanilla lock-a0.01 lock-a0.001; do
    echo "$run-s$s"
  done
done | xargs -P "$PARALLEL" -I{} bash -c 'probe_one {}'

echo "== 4/4 tables and plots"
/usr/bin/python3 "$ROOT/scripts/findings_report.py" "$DIR" > "$DIR/report.md"
# The plots are the studio's own exports (offscreen: no display needed).
QT_QPA_PLATFORM=offscreen "$BIN/unipool-studio" --sweep "$DIR/main" --tab experiments \
  --export-plot "sweep=$DIR/sweep.png" --quit
QT_QPA_PLATFORM=offscreen "$BIN/unipool-studio" --tab experiments \
  --probe "$DIR/main/mg24-a0.01-s1/model.safetensors,$DIR/main/vanilla-s1/model.safetensors" \
  --export-plot "probe=$DIR/probe.png" --quit
echo "report: $DIR/report.md (tables), $DIR/findings.csv, $DIR/sweep.png, $DIR/probe.png"
