#!/usr/bin/env bash
# Set up (first time only) and start Transfer Lab on http://127.0.0.1:7860 with the built-in
# offline model and sample dataset. Extra arguments go to app.py (see `app.py --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export GRADIO_ANALYTICS_ENABLED=False HF_HUB_DISABLE_TELEMETRY=1
exec .venv/bin/python app.py "$@"
