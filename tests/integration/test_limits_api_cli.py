"""The run limits refused through the API (a running app) and the command line (a process of its own)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


REPO = Path(__file__).resolve().parents[2]


def test_over_limit_refused_from_the_api(launched_app):
    from gradio_client import Client

    client = Client(launched_app, verbose=False, analytics_enabled=False)
    with pytest.raises(Exception, match="TL_MAX_BATCH_SIZE"):
        client.predict("efficientnet_lite0", None, "linear_probe", 1, '{"batch_size": 100000}', api_name="/train")


def test_over_limit_refused_from_the_cli(tmp_path):
    from tl_ui.data import sample_dataset_path

    env = {**os.environ, "TL_MAX_EPOCHS": "10"}
    done = subprocess.run([sys.executable, "-m", "tl_ui", "train", "--data", str(sample_dataset_path("image")),
                           "--epochs", "11", "--out", str(tmp_path / "run")], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=120)
    assert done.returncode == 2 and "TL_MAX_EPOCHS" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "run").exists()
