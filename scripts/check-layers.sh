#!/usr/bin/env bash
# The layering rules of the code map (docs/code-map.md), checked on the sources (a ctest test):
#   core/        no Qt; core/include/unipool has no LibTorch (plain C++ types only)
#   kernels/     no LibTorch, no Qt, nothing of core but unipool/random.h
#   ui/          no LibTorch anywhere
#   ui/session/  Qt Core only: no Qt Widgets/Gui header, no QCustomPlot
#   ui/views/    never constructs or opens an Engine (only the session layer owns one)
#   app/cli/     no Qt
# Prints each violation with its file and line; exits 1 if there is any.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
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
if [ $status -eq 0 ]; then echo "layer rules hold (core, kernels, ui/session, ui/views, app/cli)"; fi
exit $status
