#!/usr/bin/env bash
# The layering rules of the code map (docs/code-map.md), checked on the sources (a ctest test):
#   core/        no Qt; core/include/unipool has no LibTorch (plain C++ types only)
#   kernels/     no LibTorch, no Qt, nothing of core but unipool/random.h
#   ui/          no LibTorch anywhere
#   ui/session/  Qt Core only: no Qt Widgets/Gui header, no QCustomPlot
#   ui/views/    never constructs or opens an Engine (only the session layer owns one)
#   app/cli/     no Qt
#   core/src rooms: model/ is the bottom (never includes training/, lock/, distributed/, io/,
#                gpu/, hf/, experiments/); gpu/ builds on model/ only; lock/ and distributed/
#                sit below training's public face (reached from training/ and config/
#                only, never from model/, stats/, hf/, experiments/, tokenizer/, gpu/);
#                distributed/ knows nothing of lock/; io/ serialises plain records and
#                includes no engine room (training/, lock/, distributed/); experiments/ (the
#                analyses: probe, sweep, redundancy) uses the public API only
#   ui/views/    runs no model: no Engine or HfModel calls (value types such as TokenRoutes
#                and HfModelInfo only)
# Prints each violation with its file and line; exits 1 if there is any.
#   scripts/check-layers.sh [ROOT]   (ROOT: a source tree, default this one; --self-test
#                                     plants a violation in a copy and expects the failure)
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ "${1:-}" = "--self-test" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  cp -r "$ROOT/core" "$ROOT/ui" "$ROOT/app" "$ROOT/kernels" "$tmp/"
  bash "$0" "$tmp" > /dev/null || { echo "self-test: the clean copy fails"; exit 1; }
  for plant in 'core/src/model/rope.cpp:#include "training/engine_state.h"' \
               'core/src/hf/run_moe.cpp:#include "lock/partition.h"' \
               'core/src/io/checkpoint.cpp:#include "training/engine_state.h"' \
               'ui/views/experiments_view.cpp:auto e = Engine::open(path, false, {}, 1);'; do
    file="${plant%%:*}"
    cp "$ROOT/$file" "$tmp/$file.orig"
    echo "${plant#*:}" >> "$tmp/$file"
    if bash "$0" "$tmp" > /dev/null; then
      echo "self-test: a planted violation in $file was not caught"
      exit 1
    fi
    mv "$tmp/$file.orig" "$tmp/$file"
  done
  echo "self-test: each planted violation fails the check"
  exit 0
fi
[ -n "${1:-}" ] && ROOT="$1"
cd "$ROOT"
status=0
# rule DESCRIPTION PATTERN PATH...: no line of the files under PATH matches PATTERN.
rule() {
  local what="$1" pattern="$2"
  shift 2
  local hits
  hits=$(grep -rnE --include='*.h' --include='*.cpp' --include='*.cu' --include='*.cuh' \
    --include='*.inc' "$pattern" "$@" 2>/dev/null || true)
  if [ -n "$hits" ]; then
    echo "layer rule broken: $what"
    echo "$hits" | sed 's/^/  /'
    status=1
  fi
}
rule "core/ includes Qt" '#include *<Q|#include *<qcustomplot' core
rule "core's public headers include LibTorch" '#include *<(torch|ATen|c10)/' core/include
rule "kernels/ include LibTorch or Qt" '#include *<(torch|ATen|c10|Q)' kernels
rule "kernels/ include core other than unipool/random.h" \
  '#include *"unipool/(config|engine|corpus|stats|safetensors|bench|live_settings|architecture|schedule)\.h"' kernels
rule "ui/ includes LibTorch" '#include *<(torch|ATen|c10)/' ui
rule "ui/session includes Qt Widgets or Gui" \
  '#include *<(QtWidgets|QtGui|QWidget|QMainWindow|QDialog|QPainter|QColor|QImage|QPixmap|QMessageBox|QApplication|QFileDialog|QAbstract[A-Z][a-z]+View|QLabel|QPushButton)|#include *<qcustomplot' \
  ui/session
rule "a view owns an Engine" 'Engine::open|make_unique<Engine>|new Engine|unique_ptr<Engine>|Engine [a-z_]+\(' ui/views
rule "app/cli includes Qt" '#include *<Q' app/cli
rule "model/ includes a room above it" \
  '#include *"(training|lock|distributed|io|gpu|hf|experiments)/' core/src/model
rule "gpu/ includes more than model/" '#include *"(training|lock|distributed|io|hf|experiments)/' \
  core/src/gpu
rule "lock/ or distributed/ reached from outside training and config" \
  '#include *"(lock|distributed)/' core/src/model core/src/stats core/src/hf core/src/experiments \
  core/src/tokenizer core/src/gpu core/src/cpu_kernels
rule "distributed/ includes lock/" '#include *"lock/' core/src/distributed
rule "experiments/ (the analyses) reach past the public API" \
  '#include *"(model|training|lock|distributed|io|hf|gpu|stats|config|tokenizer|cpu_kernels)/' \
  core/src/experiments
rule "io/ includes the engine (it serialises plain records)" \
  '#include *"(training|lock|distributed|experiments)/' core/src/io
rule "a view runs a model" 'Engine::|HfModel::open|make_unique<HfModel>|unique_ptr<HfModel>' \
  ui/views
if [ $status -eq 0 ]; then echo "layer rules hold (core and its rooms, kernels, ui/session, ui/views, app/cli)"; fi
exit $status
