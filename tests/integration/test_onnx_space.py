"""The Space folder (issue 39) starts in a fresh virtual environment made from its own requirements.txt and answers
through gradio_client with the app's probabilities."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from tl_ui.core.config import RunConfig
from tl_ui.data import sample_dataset_path
from tl_ui.engine import Predictor, train_run

from tests.helpers.common import REPO

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(1500)
def test_space_starts_in_a_fresh_venv_and_answers_like_the_app(tmp_path, digits):
    """Slow on purpose: `pip install -r requirements.txt` into a fresh venv (gradio, onnxruntime, numpy, pillow from
    the machine's package index: 4 min 11 s alone) before the app starts; the whole test took 11 min 48 s here with
    five sessions sharing 2 cores."""
    config = RunConfig(data_path=str(sample_dataset_path("image")), model_id="efficientnet_lite0", image_size=64,
                       max_examples=60, epochs=2, strategy="linear_probe")
    result = train_run(config, tmp_path / "run", dataset=digits)
    assert result.status == "finished", result.message
    space = tmp_path / "space"
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "tl_ui", "share", "--run", str(result.run_dir), "--out", str(space)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    venv = tmp_path / "v"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-compile", "--disable-pip-version-check", "-r", "requirements.txt"], cwd=space,
                         capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stderr[-2000:]
    freeze = subprocess.run([str(venv / "bin" / "pip"), "freeze"], capture_output=True, text=True).stdout.lower()
    assert "onnxruntime" in freeze and not any(f"{name}==" in freeze for name in ("torch", "peft", "accelerate"))

    port = _free_port()
    app_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    app = subprocess.Popen([str(venv / "bin" / "python"), "app.py"], cwd=space, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, env={**app_env, "GRADIO_SERVER_PORT": str(port),
                                                          "GRADIO_ANALYTICS_ENABLED": "False"})
    try:
        from gradio_client import Client, handle_file

        deadline, client = time.monotonic() + 180, None
        while client is None:
            assert app.poll() is None, app.stdout.read().decode()[-2000:]
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False)
            except Exception:
                assert time.monotonic() < deadline, "the Space did not start within 3 minutes"
                time.sleep(2)
        assert list(client.view_api(return_format="dict")["named_endpoints"])[0] == "/classify"
        image = str(next((result.run_dir / "mistakes").glob("*.png"), None) or next(
            p for p in digits.items if str(p).endswith(".png")))
        answer = client.predict(handle_file(image), api_name="/classify")
        got = (answer[0] if isinstance(answer, (list, tuple)) else answer)["probabilities"]
        expected = Predictor.load(result.run_dir).predict([image])[0]
        assert set(got) == set(expected)
        assert max(abs(got[c] - expected[c]) for c in expected) <= 1e-4
    finally:
        app.terminate()
        app.wait(timeout=30)
