#!/usr/bin/env bash
# Set up (first time only) and run the whole test suite, browser tests included.
# Extra arguments go to pytest (e.g. `-m unit` for the quick pass: tests/unit, about 30 s).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
if [ ! -x /usr/bin/chromium ]; then
  # Debian's Chromium drives the browser tests (never `playwright install`: it downloads a browser).
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
export GRADIO_ANALYTICS_ENABLED=False HF_HUB_DISABLE_TELEMETRY=1 HF_HUB_OFFLINE=1
set +e
# Two test processes (TL_TEST_WORKERS; 0 = one process): much of a test's time is a worker process
# starting, a page waiting or a file being written, so two share the 2 cores well. Each test file
# stays in one process (its module fixtures share trained runs); files go out in the order tests/conftest.py
# sorts them, longest first (--no-loadscope-reorder: xdist would otherwise send files with many short tests first).
.venv/bin/python -m pytest -n "${TL_TEST_WORKERS:-2}" --dist loadfile --no-loadscope-reorder "$@"
status=$?
set -e
# pytest exits 5 when it collected no tests: for CI that is a failure too.
[ "$status" -eq 5 ] && echo "no tests were collected" >&2
exit "$status"
