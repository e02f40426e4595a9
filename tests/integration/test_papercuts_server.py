"""Papercuts (issue 32) that need a server or a command-line process: an unreachable Hub fails fast; /status is plain text."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from tl_ui.data import sample_dataset_path

REPO = Path(__file__).resolve().parents[2]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]   # nothing listens there once the socket is closed


def test_an_online_model_without_a_network_fails_within_seconds(tmp_path):
    """Not in offline mode, the Hub unreachable: the answer comes in seconds, not after ~50 s of retries."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "TL_OFFLINE")}
    env["HF_ENDPOINT"] = f"http://127.0.0.1:{_closed_port()}"
    started = time.time()
    done = subprocess.run([sys.executable, "-m", "tl_ui", "train", "--data", str(sample_dataset_path("image")),
                           "--model", "resnet18", "--max-examples", "30", "--image-size", "32", "--epochs", "1",
                           "--out", str(tmp_path / "run")], capture_output=True, text=True, cwd=REPO, env=env,
                          timeout=120)
    elapsed = time.time() - started
    assert done.returncode == 2, done.stderr
    assert "must be downloaded" in done.stderr and "efficientnet_lite0" in done.stderr
    assert elapsed < 30, f"took {elapsed:.0f} s (python start-up and the data included)"


def test_api_status_is_plain_text(launched_app):
    from gradio_client import Client

    client = Client(launched_app, verbose=False, analytics_enabled=False)
    status, metrics, _ = client.predict("resnet18", None, "linear_probe", 1, '{"max_examples": 20}',
                                        api_name="/train")
    assert metrics["state"] == "failed"
    assert status.startswith("Failed:") and "<" not in status and "&#x27;" not in status and "**" not in status


# -- issue 32, item 6: small words -------------------------------------------------------------------
