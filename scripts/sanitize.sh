#!/usr/bin/env bash
# The engine, the CLI and the non-GUI tests built with AddressSanitizer + UndefinedBehavior-
# Sanitizer (Debian's gcc) into ${SAN_BUILD_DIR:-build-asan}, then their ctest suite. Any report
# fails the run (halt_on_error). .ci/run calls it after the normal suite (issue 23).
#   scripts/sanitize.sh            (after scripts/setup.sh has installed the packages)
# Leak detection is off: LibTorch and OpenBLAS keep allocations alive until exit by design, and
# their (uninstrumented) libraries cannot be told apart from ours at exit.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${SAN_BUILD_DIR:-$ROOT/build-asan}"
JOBS="${JOBS:-$(nproc)}"
# float-cast-overflow is not part of gcc's "undefined" group: a JSON float cast to an integer out of
# range (found by fuzzing) must show here too.
SAN="-fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all -fno-omit-frame-pointer"
echo "==> configuring $BUILD_DIR (ASan + UBSan; engine, CLI, non-GUI tests)"
# -O1 -g1 (line tables only): full debug info of LibTorch's headers doubles the build time,
# and the reports need only file:line.
cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=None \
  -DUNIPOOL_BUILD_TESTS=ON -DUNIPOOL_BUILD_STUDIO=OFF -DUNIPOOL_CUDA=OFF \
  -DCMAKE_CXX_FLAGS="-O1 -g1 $SAN" -DCMAKE_C_FLAGS="-O1 -g1 $SAN" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
echo "==> building with $JOBS jobs"
start=$(date +%s)
cmake --build "$BUILD_DIR" -j "$JOBS"
built=$(date +%s)
cd "$BUILD_DIR"
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
ctest --output-on-failure -j "$JOBS"
echo "==> sanitizers: build $((built - start)) s, tests $(( $(date +%s) - built )) s"
