#!/usr/bin/env bash
# The libFuzzer targets (tests/fuzz/) built with Debian's clang into ${FUZZ_BUILD_DIR:-build-fuzz},
# then each run for FUZZ_SECONDS (default 45) from its committed seed corpus. A crash, a leak,
# a sanitizer report or an input running over 30 s (a stalled VM once took 13 s on one
# that runs in 0.1 s: 30 s leaves room for that) fails the run; the input that did it is kept under
# build-fuzz/crashes/<target>/ (turn it into a regression: tests/fuzz/regressions/<target>/).
# Prints each target's executions per second and coverage (docs/reliability.md records them).
#   scripts/fuzz.sh [TARGET...]          (after scripts/setup.sh has installed the packages)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
SECONDS_EACH="${FUZZ_SECONDS:-45}"
# A fixed seed makes a run repeatable (the same inputs in the same order, as far as the time
# allows); FUZZ_SEED=0 lets libFuzzer pick a new one and explore afresh.
SEED="${FUZZ_SEED:-1}"
JOBS="${JOBS:-$(nproc)}"
echo "==> building the fuzz targets with clang into $BUILD_DIR"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$ROOT/tests/fuzz" -B "$BUILD_DIR" -G Ninja -DCMAKE_CXX_COMPILER=clang++ \
  "${launcher[@]}" >/dev/null
cmake --build "$BUILD_DIR" -j "$JOBS"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=($(cd "$ROOT/tests/fuzz/corpus" && ls))
fi
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
summary="$BUILD_DIR/summary.tsv"
printf "target\tseconds\truns\texec_per_s\tedges\tof_pcs\tfeatures\tcorpus\n" > "$summary"
failed=()
for t in "${targets[@]}"; do
  corpus="$BUILD_DIR/corpus/$t"   # grows across runs; the committed seeds stay as they are
  crashes="$BUILD_DIR/crashes/$t"
  mkdir -p "$corpus" "$crashes"
  log="$BUILD_DIR/$t.log"
  echo "==> $t for ${SECONDS_EACH}s"
  set +e
  "$BUILD_DIR/$t" "$corpus" "$ROOT/tests/fuzz/corpus/$t" -max_total_time="$SECONDS_EACH" \
    -seed="$SEED" -timeout=30 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="$crashes/" > "$log" 2>&1
  rc=$?
  set -e
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  last=$(grep -E "^#[0-9]+" "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  # Instrumented code: every parser source in the target (edges: those its inputs reached).
  pcs=$(sed -n 's/^INFO: Loaded 1 PC tables (\([0-9]*\) PCs).*/\1/p' "$log" | head -1)
  files=$(ls "$corpus" | wc -l)
  printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n" "$t" "$SECONDS_EACH" "${runs:-?}" "${speed:-?}" \
    "${cov:-?}" "${pcs:-?}" "${ft:-?}" "$files" >> "$summary"
  if [ $rc -ne 0 ]; then
    failed+=("$t")
    echo "!! $t failed (exit $rc): the input is in $crashes/"
    grep -E "ERROR|SUMMARY|runtime error|deadly signal" "$log" | head -5 || true
  fi
done
column -t -s $'\t' "$summary"
if [ ${#failed[@]} -gt 0 ]; then
  echo "==> fuzzing found problems in: ${failed[*]}"
  exit 1
fi
echo "==> fuzzing: ${#targets[@]} targets, ${SECONDS_EACH}s each, nothing found"
