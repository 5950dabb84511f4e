#!/usr/bin/env bash
# A checkpoint pair survives SIGKILL at any moment (issue 23): `unipool train --save-every 1`
# is killed at random moments, ROUNDS times, and every time the run resumes from what is on
# disk: the old pair or the new pair, never a mix ("its step does not match"). At the end a
# resumed run trains to its last step and saves cleanly, and no temporary file is left.
#   tests/kill_resume.sh PATH/TO/unipool [ROUNDS]
set -u
CLI="$(readlink -f "$1")"
ROUNDS="${2:-50}"
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
cd "$DIR"
fail() { echo "FAIL: $*" >&2; ls -la "$DIR" >&2; exit 1; }
export OPENBLAS_NUM_THREADS=1
# The first pair, so that every round below resumes.
"$CLI" train --preset tiny --batch 2 --seq 32 --steps 5000 --stop-after 1 --out m.safetensors \
  --quiet || fail "first run"
killed=0
for round in $(seq 1 "$ROUNDS"); do
  rm -f log.jsonl
  "$CLI" train --resume m.safetensors --save-every 1 --out m.safetensors --log log.jsonl \
    --quiet > out.txt 2> err.txt &
  pid=$!
  # Once the run has trained and saved a step (its second log line), a random 0-150 ms more:
  # the kill lands anywhere in the step / save loop (a tiny step and its save take ~5-10 ms).
  for _ in $(seq 1 400); do
    [ "$(wc -l 2> /dev/null < log.jsonl || echo 0)" -ge 3 ] && break
    kill -0 "$pid" 2> /dev/null || break
    sleep 0.01
  done
  sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.3f", 0.15 * r / 32767 }')"
  if kill -9 "$pid" 2> /dev/null; then killed=$((killed + 1)); fi
  wait "$pid" 2> /dev/null
  if grep -q "error" err.txt; then fail "round $round: $(cat err.txt)"; fi
done
[ "$killed" -ge $((ROUNDS * 9 / 10)) ] || fail "only $killed of $ROUNDS runs were killed mid-run"
step=$("$CLI" inspect m.safetensors --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["step"])')
"$CLI" train --resume m.safetensors --stop-after $((step + 3)) --out m.safetensors --quiet \
  2> err.txt || fail "final resume from step $step: $(cat err.txt)"
leftovers=$(ls -A | grep -v -E '^(m\.safetensors|m\.train\.safetensors|out\.txt|err\.txt|log\.jsonl)$' || true)
[ -z "$leftovers" ] || fail "files left behind: $leftovers"
echo "killed $killed of $ROUNDS runs at random moments; each resumed; final step $((step + 3))"
