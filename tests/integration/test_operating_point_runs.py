"""Issue 33 end to end, with real training: a linear probe on a two-class subset of the sample digits
from `python -m tl_ui train --positive-class --operating-point` writes `roc`, `operating_point` and
`decision_curve`, saves the threshold in the export, and `predict --json` decides as plain timm code does
from the exported files; a replay chooses the same threshold. A text LoRA run's export decides in a
transformers `pipeline` as the app does."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TL_FAST_PATH": "0"}
POSITIVE, NEGATIVE = "8", "3"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tl_ui", *args], capture_output=True, text=True, cwd=REPO,
                          env=ENV, timeout=600)


def two_digits(folder: Path) -> Path:
    """The sample digits' 3s and 8s as a folder of two class folders."""
    from tl_ui.data import sample_dataset_path

    with zipfile.ZipFile(sample_dataset_path("image")) as archive:
        for name in archive.namelist():
            parts = name.split("/")
            if name.endswith(".png") and parts[-2] in (POSITIVE, NEGATIVE):
                target = folder / parts[-2] / parts[-1]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(name))
    return folder


def test_probe_saves_an_operating_point_and_decides_as_plain_timm(tmp_path):
    data = two_digits(tmp_path / "digits")
    trained = cli("train", "--data", str(data), "--model", "efficientnet_lite0", "--strategy", "linear_probe",
                  "--image-size", "64", "--seed", "1", "--positive-class", POSITIVE,
                  "--operating-point", "sensitivity:0.9", "--prevalence", "0.1", "--out", str(tmp_path / "run"),
                  "--quiet")
    assert trained.returncode == 0, trained.stderr
    run = tmp_path / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    op, roc = metrics["operating_point"], metrics["roc"]
    assert op["positive_class"] == POSITIVE and op["rule"] == "sensitivity" and op["target"] == 0.9
    assert op["chosen_on"] == "validation" and op["n_chosen"] == metrics["evaluation"]["n_chosen"]
    assert op["n_reported"] == metrics["n_val"] and op["tp"] + op["fp"] + op["fn"] + op["tn"] == metrics["n_val"]
    assert op["at_prevalence"]["prevalence"] == 0.1
    assert roc["positive_class"] == POSITIVE and "one_vs_rest" not in roc and roc["auroc"] is not None
    assert op["threshold"] in roc["curve"]["thresholds"] or any(
        t is not None and abs(t - op["threshold"]) < 1e-6 for t in roc["curve"]["thresholds"]) or op["fallback"]
    assert metrics["decision_curve"]["positive_class"] == POSITIVE
    assert json.loads(trained.stdout)["metrics"]["operating_point"]["threshold"] == op["threshold"]

    # the export carries it: manifest, timm config.json, model card
    model_dir = run / "model"
    manifest = json.loads((model_dir / "transfer_lab.json").read_text())
    assert manifest["operating_point"] == {"positive_class": POSITIVE, "threshold": op["threshold"],
                                           "rule": "sensitivity", "target": 0.9, "chosen_on": "validation"}
    timm_config = json.loads((model_dir / "config.json").read_text())
    assert timm_config["decision_threshold"] == op["threshold"] and timm_config["positive_label"] == POSITIVE
    assert f"Operating point for **{POSITIVE}**" in (model_dir / "README.md").read_text()

    # predict --json decides at the saved threshold, as plain timm code from the exported files does
    images = sorted((data / POSITIVE).glob("*.png"))[:4] + sorted((data / NEGATIVE).glob("*.png"))[:4]
    predicted = cli("predict", "--run", str(run), *map(str, images), "--json")
    assert predicted.returncode == 0, predicted.stderr
    answers = json.loads(predicted.stdout)
    assert all(a["threshold"] == op["threshold"] and a["positive_class"] == POSITIVE for a in answers)
    import timm
    import torch
    from PIL import Image

    model = timm.create_model(f"local-dir:{model_dir}", pretrained=True).eval()
    transform = timm.data.create_transform(**timm.data.resolve_data_config({}, model=model))
    cfg = json.loads((model_dir / "config.json").read_text())   # timm's pretrained_cfg keeps only its own keys
    with torch.no_grad():
        probs = model(torch.stack([transform(Image.open(p).convert("RGB")) for p in images])).softmax(-1).numpy()
    column = list(model.pretrained_cfg["label_names"]).index(cfg["positive_label"])
    plain = ["positive" if p >= cfg["decision_threshold"] else "negative" for p in probs[:, column]]
    assert [a["decision"] for a in answers] == plain
    np.testing.assert_allclose([a["probabilities"][POSITIVE] for a in answers], probs[:, column], atol=1e-4)

    # a replay of run.json chooses the same threshold
    replay = cli("train", "--config", str(run / "run.json"), "--out", str(tmp_path / "replay"), "--quiet")
    assert replay.returncode == 0, replay.stderr
    again = json.loads((tmp_path / "replay" / "metrics.json").read_text())["operating_point"]
    assert again["threshold"] == op["threshold"] and again["tp"] == op["tp"] and again["fp"] == op["fp"]


def test_text_export_decides_in_a_transformers_pipeline(tmp_path):
    from transformers import pipeline

    from tl_ui.core.config import RunConfig
    from tl_ui.data import sample_dataset_path
    from tl_ui.engine import Predictor
    from tl_ui.engine.training.loop import train_run

    config = RunConfig.from_options({"data_path": str(sample_dataset_path("text")), "model_id": "minilm_l6",
                                     "strategy": "lora", "max_length": 32, "epochs": 1, "max_examples": 60,
                                     "positive_class": "rotten", "operating_point": "youden"}, modality="text")
    result = train_run(config, tmp_path / "run")
    assert result.status == "finished", result.message
    model_dir = result.run_dir / "model"
    threshold = result.metrics["operating_point"]["threshold"]
    hf_config = json.loads((model_dir / "config.json").read_text())
    assert hf_config["decision_threshold"] == threshold and hf_config["positive_label"] == "rotten"
    texts = ["A dull, lifeless mess.", "Warm, funny and wise.", "It is a film.", "Not worth the ticket.",
             "One of the year's best."]
    classify = pipeline("text-classification", model=str(model_dir), top_k=None)
    plain = []
    for scores in classify(texts, truncation=True, max_length=32):
        p = {s["label"]: s["score"] for s in scores}[classify.model.config.positive_label]
        plain.append("positive" if p >= classify.model.config.decision_threshold else "negative")
    app = [a["decision"] for a in Predictor.load(result.run_dir).predict_with_set(texts)]
    assert app == plain
