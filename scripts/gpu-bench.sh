#!/usr/bin/env bash
# GPU build, kernel tests and benchmarks, for the device machine (no Qt, no network; cmake,
# nvcc and PyTorch with CUDA). Builds the kernels, their LibTorch glue and the Qt-free GPU
# tests against PyTorch's bundled LibTorch, runs the tests (and once under compute-sanitizer),
# the kernel micro-benchmark and the PyTorch eager / torch.compile training benchmark.
# Results go to ${OUT:-runs/gpu}: test logs, kernels.json, train.jsonl.
#   scripts/gpu-bench.sh [STEPS]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build-cuda}"
RESULTS="${OUT:-$ROOT/runs/gpu}"
STEPS="${1:-20}"
PY="${PYTHON:-python3}"
mkdir -p "$RESULTS"

TORCH_PREFIX="$("$PY" -c 'import torch; print(torch.utils.cmake_prefix_path)')"
echo "==> LibTorch from $TORCH_PREFIX"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$RESULTS/device.txt"

# The engine and the Qt suites are off: the device has no Qt, nlohmann_json or CLI11.
cmake -S "$ROOT" -B "$BUILD_DIR" -G "$(command -v ninja >/dev/null && echo Ninja || echo 'Unix Makefiles')" \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$TORCH_PREFIX" \
  -DUNIPOOL_BUILD_ENGINE=OFF -DUNIPOOL_BUILD_TESTS=OFF -DUNIPOOL_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90}" | tee "$RESULTS/configure.log"
cmake --build "$BUILD_DIR" -j "$(nproc)" 2>&1 | tee "$RESULTS/build.log"

echo "==> GPU kernel tests"
status=0
"$BUILD_DIR/bin/test_moe_kernels" 2>&1 | tee "$RESULTS/test_moe_kernels.log" || status=1
if command -v compute-sanitizer >/dev/null; then
  echo "==> compute-sanitizer (memcheck)"
  compute-sanitizer --tool memcheck --error-exitcode 3 "$BUILD_DIR/bin/test_moe_kernels" \
    > "$RESULTS/sanitizer.log" 2>&1 || status=1
  tail -3 "$RESULTS/sanitizer.log"
else
  echo "compute-sanitizer not found" | tee "$RESULTS/sanitizer.log"
fi
if [ "$status" -ne 0 ]; then
  echo "==> kernel tests FAILED: no benchmark (see $RESULTS)"
  exit 1
fi

echo "==> kernel micro-benchmark (one MoE layer, paper's smallest scale)"
"$BUILD_DIR/bin/bench_moe_kernels" 8192 20 | tee "$RESULTS/kernels.json"

echo "==> PyTorch eager and torch.compile training steps"
"$PY" "$ROOT/scripts/reference/gpu_bench.py" --device cuda --steps "$STEPS" \
  --out "$RESULTS/train.jsonl"
echo "==> results in $RESULTS"
