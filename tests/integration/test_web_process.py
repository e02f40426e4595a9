"""The web process holds no model and imports no torch, ever (issue 36): a real server in a process of
its own (tests/helpers/web_probe.py) trains runs, answers try-it through the `/predict` API and through the
page's handlers, explains an image and a text, draws the mistake maps, ranks the models (advisor) and
plans a run; then that process, the one serving the page, has neither torch nor transformers in
`sys.modules`, no libtorch mapped, and a resident memory well under 400 MB."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers.common import REPO, TINY_IMAGE_OPTIONS, TINY_TEXT_OPTIONS

pytestmark = pytest.mark.slow

WEB_PROCESS_MB = 400   # issue 36's bound for the web process through every inference feature


def _line(proc) -> dict:
    line = proc.stdout.readline()
    assert line, f"the server process ended (exit code {proc.poll()})"
    return json.loads(line)


def test_every_inference_feature_leaves_the_web_process_without_torch(tmp_path):
    from gradio_client import Client, handle_file

    proc = subprocess.Popen([sys.executable, "-m", "tests.helpers.web_probe", str(tmp_path / "runs")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            cwd=REPO)
    try:
        started = _line(proc)
        # the API's path: /train and /predict over HTTP, as gradio_client users reach it
        client = Client(started["url"], verbose=False, analytics_enabled=False)
        _, image_metrics, image_run = client.predict("efficientnet_lite0", None, "linear_probe", 2, TINY_IMAGE_OPTIONS,
                                                     api_name="/train")
        _, text_metrics, text_run = client.predict("minilm_l6", None, "linear_probe", 2, TINY_TEXT_OPTIONS,
                                                   api_name="/train")
        assert image_metrics["state"] == text_metrics["state"] == "finished"
        digit = tmp_path / "digit.png"
        from PIL import Image

        Image.new("L", (28, 28), 0).save(digit)
        image_answer = client.predict(image_run, handle_file(str(digit)), "", api_name="/predict")
        text_answer = client.predict(text_run, None, "A warm, funny film.", api_name="/predict")
        assert abs(sum(image_answer["probabilities"].values()) - 1) < 1e-4
        assert set(text_answer["probabilities"]) == {"fresh", "rotten"}

        # the page's path: its handlers in the serving process, every inference feature
        proc.stdin.write("walk\n")
        proc.stdin.flush()
        walked = _line(proc)
        assert walked["try_image"] and walked["try_text"]
        assert walked["why_image"].startswith('<img class="tl-why-map"') and "tl-explanation" in walked["why_text"]
        assert walked["mistake_maps"] >= 1
        assert len(walked["advisor_models"]) >= 3
        assert 0 < walked["plan"]["share"] < 1 and walked["plan"]["seconds"] > 0

        proc.stdin.write("report\n")
        proc.stdin.flush()
        report = _line(proc)
        print("the web process after every inference feature:", report)
        assert report["modules"] == [], f"the web process imported {report['modules']}"
        assert not report["libtorch_mapped"]
        assert report["peak_rss_mb"] < WEB_PROCESS_MB, report
        proc.stdin.write("quit\n")
        proc.stdin.flush()
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
