#!/usr/bin/env bash
# Prefill benchmark of a downloaded-model layout at real size: writes a synthetic checkpoint
# with OLMoE-1B-7B's shapes (13.8 GB BF16, random weights: speed and memory only), drops the
# page cache (as root) so the first pass reads from the disk, runs `unipool bench --checkpoint`
# (3 passes of one 512-token window: the first cold, the others warm), then deletes it.
#   scripts/hf-bench.sh [DIR] [extra bench flags, e.g. --threads 1]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${1:-/tmp/unipool-olmoe-synthetic}"
shift || true
/usr/bin/python3 "$ROOT/scripts/make-synthetic-olmoe.py" "$DIR"
sync
[ "$(id -u)" -eq 0 ] && echo 3 > /proc/sys/vm/drop_caches || echo "(not root: the first pass may be warm)"
"$ROOT/build/bin/unipool" bench --checkpoint "$DIR" --tokens 512 --passes 3 "$@"
rm -rf "$DIR"
