"""`python -m tl_ui train / predict`: a run from the command line, and a UI run replayed exactly."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.helpers.baselines import assert_beats_the_majority_class
from tl_ui.data import sample_dataset_path

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tl_ui", *args], capture_output=True, text=True, cwd=REPO,
                          env=ENV, timeout=600)


def test_train_predict_and_replay(tmp_path):
    digits = str(sample_dataset_path("image"))
    first = cli("train", "--data", digits, "--model", "efficientnet_lite0", "--strategy", "linear_probe",
                "--epochs", "3", "--image-size", "64", "--max-examples", "40", "--seed", "3",
                "--out", str(tmp_path / "first"), "--quiet")
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["status"] == "finished"
    assert_beats_the_majority_class(json.loads((tmp_path / "first" / "metrics.json").read_text()))

    # Replaying the saved run.json gives the same result (fixed seed, same data, same recipe).
    replay = cli("train", "--config", str(tmp_path / "first" / "run.json"), "--out", str(tmp_path / "replay"),
                 "--quiet")
    assert replay.returncode == 0, replay.stderr
    assert json.loads(replay.stdout)["metrics"] == summary["metrics"]

    with zipfile.ZipFile(digits) as archive:
        png = next(n for n in archive.namelist() if n.endswith(".png"))
        image = tmp_path / "digit.png"
        image.write_bytes(archive.read(png))
    predicted = cli("predict", "--run", str(tmp_path / "first"), str(image), "--json")
    assert predicted.returncode == 0, predicted.stderr
    row = json.loads(predicted.stdout)
    assert set(row) == {"probabilities", "prediction_set", "set_level", "unlike_training_data",
                        "unlike_training_data_score", "unlike_training_data_threshold"} and row["set_level"] == 0.9
    assert isinstance(row["unlike_training_data"], bool) and row["unlike_training_data_score"] >= 0
    assert set(row["probabilities"]) == {str(d) for d in range(10)}
    assert abs(sum(row["probabilities"].values()) - 1) < 1e-4
    plain = cli("predict", "--run", str(tmp_path / "first"), str(image))
    assert plain.returncode == 0 and "digit.png:" in plain.stdout


def test_bad_arguments_exit_non_zero_with_a_message(tmp_path):
    missing = cli("train", "--data", str(tmp_path / "nope.zip"), "--out", str(tmp_path / "run"))
    assert missing.returncode == 2 and "nope.zip" in missing.stderr and "Traceback" not in missing.stderr
    strategy = cli("train", "--data", "x.zip", "--strategy", "magic", "--out", str(tmp_path / "run"))
    assert strategy.returncode == 2 and "invalid choice" in strategy.stderr
    bad_data = tmp_path / "one_class.csv"
    bad_data.write_text("text,label\n" + "".join(f"note {i},benign\n" for i in range(6)))
    one_class = cli("train", "--data", str(bad_data), "--model", "minilm_l6", "--out", str(tmp_path / "run2"))
    assert one_class.returncode == 2 and "same label" in one_class.stderr and "Traceback" not in one_class.stderr
    no_model = cli("predict", "--run", str(tmp_path / "run2"), "some text")
    assert no_model.returncode == 2 and "no finished model" in no_model.stderr
