#!/usr/bin/env bash
# Installs the Debian 12 packages UniPool Studio needs (only the missing ones; needs root or
# sudo), then configures and builds into ${BUILD_DIR:-build}. Sourced by run.sh and test.sh.
set -euo pipefail

PACKAGES=(cmake ninja-build g++ ccache pkg-config
  qt6-base-dev qt6-svg-dev libqcustomplot-dev fonts-dejavu-core
  libtorch-dev libopenblas0-pthread
  nlohmann-json3-dev libcli11-dev libfmt-dev libglpk-dev libgif-dev libgloo-dev python3-torch
  libpcre2-dev libutf8proc-dev xz-utils
  clang libclang-rt-14-dev)  # clang + compiler-rt: libFuzzer and the sanitizers (scripts/fuzz.sh)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
JOBS="${JOBS:-$(nproc)}"
echo "==> configuring $BUILD_DIR"
cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DUNIPOOL_BUILD_TESTS=ON >/dev/null
echo "==> building with $JOBS jobs (the first build takes several minutes: LibTorch headers)"
cmake --build "$BUILD_DIR" -j "$JOBS"
