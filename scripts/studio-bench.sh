#!/usr/bin/env bash
# The studio's figures (docs/studio.md): frames per second while training, the training speed
# with the window against the CLI's headless `unipool bench`, and memory after an hour of
# history. Runs under Xvfb when there is no display (installs xvfb if it is missing).
# Usage: scripts/studio-bench.sh [seconds per phase, default 20]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
SECONDS_PER_PHASE="${1:-20}"
export OPENBLAS_NUM_THREADS=1

run_gui() {
  if [ -n "${DISPLAY:-}" ]; then
    "$@"
  else
    if ! command -v xvfb-run >/dev/null; then
      SUDO=""
      [ "$(id -u)" -ne 0 ] && SUDO="sudo"
      $SUDO apt-get install -y -qq xvfb xauth >/dev/null
    fi
    xvfb-run -a -s "-screen 0 1600x1000x24" "$@"
  fi
}

echo "==> headless engine: unipool bench --preset default --threads 1"
"$BUILD_DIR/bin/unipool" bench --preset default --threads 1 | grep -E "training|memory"
echo "==> studio: default preset, ${SECONDS_PER_PHASE}s with normal updates, then ${SECONDS_PER_PHASE}s repainting continuously"
run_gui "$BUILD_DIR/bin/unipool-studio" --preset default --train-steps 30 \
  --measure-fps "$SECONDS_PER_PHASE" --simulate-hour --quit 2>&1 | grep -v -E "XDG_RUNTIME|propagateSizeHints"
