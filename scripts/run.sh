#!/usr/bin/env bash
# Set up, build and start UniPool Studio with the built-in corpus and the `default` preset,
# ready to press Start. Extra arguments go to unipool-studio (see --help); the command-line
# trainer is $BUILD_DIR/bin/unipool.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ -z "${QT_QPA_PLATFORM:-}" ]; then
  echo "unipool-studio needs a desktop session (DISPLAY or WAYLAND_DISPLAY is not set)." >&2
  echo "Without one, try: xvfb-run -a scripts/run.sh, or the CLI: $BUILD_DIR/bin/unipool --help" >&2
  exit 1
fi
exec "$BUILD_DIR/bin/unipool-studio" --preset default "$@"
