#!/usr/bin/env bash
# unipool-studio without any display (a server, ssh, CI): --help and --version answer and exit
# 0; a plain start says how to run it (a desktop, xvfb-run, -platform offscreen) and exits 2
# instead of Qt's abort (134).
#   tests/studio_no_display.sh PATH/TO/unipool-studio
set -u
STUDIO="$1"
fail() { echo "FAIL: $*" >&2; exit 1; }
run() { env -u DISPLAY -u WAYLAND_DISPLAY -u QT_QPA_PLATFORM "$STUDIO" "$@" 2>&1; }

out=$(run --help); rc=$?
[ $rc -eq 0 ] || fail "--help exited $rc: $out"
echo "$out" | grep -q -- "--sweep" || fail "--help does not list the options: $out"
out=$(run --version); rc=$?
[ $rc -eq 0 ] || fail "--version exited $rc: $out"
echo "$out" | grep -q "0\.1\.0" || fail "--version: $out"
out=$(run --preset tiny); rc=$?
[ $rc -eq 2 ] || fail "no display: exited $rc (want 2): $out"
echo "$out" | grep -q "xvfb-run -a" || fail "no display: no advice: $out"
echo "$out" | grep -q "platform offscreen" || fail "no display: no offscreen advice: $out"
# With -platform offscreen it does start (and --quit ends it).
out=$(run -platform offscreen --quit); rc=$?
[ $rc -eq 0 ] || fail "-platform offscreen --quit exited $rc: $out"
echo "studio without a display: help, version, advice and offscreen all as documented"
