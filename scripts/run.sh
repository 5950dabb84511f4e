#!/usr/bin/env bash
# Set up, build and start UniPool: trains the `default` preset on the built-in corpus with
# progress lines, and saves runs/default.safetensors. Extra arguments go to `unipool train`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
mkdir -p "$ROOT/runs"
exec "$BUILD_DIR/bin/unipool" train --preset default --steps 1000 --out "$ROOT/runs/default.safetensors" "$@"
