"""Papercuts found by trying Transfer Lab as a new user would (issue: papercuts)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

from tl_ui.data import sample_dataset_path

REPO = Path(__file__).resolve().parents[1]


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


def test_hub_check_is_quick_and_remembered(monkeypatch):
    from tl_ui import catalog

    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    started = time.time()
    assert catalog.hub_reachable() is False
    assert catalog.hub_reachable() is False
    assert time.time() - started < catalog.HUB_CHECK_TIMEOUT_S + 1


def test_api_status_is_plain_text(launched_app):
    from gradio_client import Client

    client = Client(launched_app, verbose=False, analytics_enabled=False)
    status, metrics, _ = client.predict("resnet18", None, "linear_probe", 1, '{"max_examples": 20}',
                                        api_name="/train")
    assert metrics["state"] == "failed"
    assert status.startswith("Failed:") and "<" not in status and "&#x27;" not in status and "**" not in status


def test_setup_is_quiet_and_the_licence_is_an_spdx_string():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"   # a table made setuptools print a screen of warnings
    setup = (REPO / "scripts" / "setup.sh").read_text()
    assert "-qq" in setup and "setup.log" in setup and "Transfer Lab is set up" in setup


def test_the_page_marks_online_models_unavailable_once_the_hub_is_known_unreachable(monkeypatch):
    from tl_ui import catalog
    from tl_ui.ui.model import shelf_choices

    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    catalog.hub_reachable()
    labels = dict((value, label) for label, value in shelf_choices("image", offline_mode=False))
    assert "unavailable: no internet here" in labels["resnet18"]
    assert "unavailable" not in labels["efficientnet_lite0"]
