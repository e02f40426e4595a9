#!/usr/bin/env bash
# Create .venv (if needed) and install Transfer Lab into it. Usage: scripts/setup.sh [--test]
# Uses pip on purpose: the lab machines keep torch 2.14.1 / torchvision 0.29.1 on local disk and
# pip finds them there (uv and poetry would download gigabytes).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
extras=""
[ "${1:-}" = "--test" ] && extras="[test]"
stamp=".venv/.installed${extras:+-test}"
# Reinstall only when the project's requirements changed since the last install.
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".${extras}"
  touch "$stamp"
fi
