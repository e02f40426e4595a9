"""ONNX export (issue 39): every kind of run the app trains, as one ONNX graph to calibrated probabilities, within
1e-4 of the app's own Predictor on the run's test examples; predict_onnx.py (numpy + onnxruntime + Pillow/tokenizers)
in a subprocess prints the same; int8 measured; the CLI's export, share and (offline) push.

Each kind trains one tiny run (module-scoped fixture, exported once); the slowest, SetFit, keeps 40 texts and
48 pairs."""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tl_ui.core.config import RunConfig
from tl_ui.data import load_dataset, sample_dataset_path
from tl_ui.engine import Predictor, train_run
from tl_ui.engine.export.onnx_export import STANDALONE, load_standalone, onnx_probabilities
from tl_ui.engine.inference.onnx_package import export_run_onnx, readable_test_examples

from tests.helpers.common import REPO

os.environ["HF_HUB_OFFLINE"] = "1"
pytestmark = pytest.mark.slow   # trains five tiny runs and exports each (about 20-50 s apiece here)
DIGITS, REVIEWS = str(sample_dataset_path("image")), str(sample_dataset_path("text"))

CONFIGS = {
    "image_probe": dict(data_path=DIGITS, model_id="efficientnet_lite0", image_size=64, max_examples=60, epochs=2,
                        strategy="linear_probe"),
    "image_lora": dict(data_path=DIGITS, model_id="efficientnet_lite0", image_size=64, max_examples=60, epochs=1,
                       strategy="lora"),
    "text_probe": dict(data_path=REVIEWS, model_id="minilm_l6", strategy="linear_probe", max_length=32,
                       max_examples=40),
    "text_lora": dict(data_path=REVIEWS, model_id="minilm_l6", strategy="lora", max_length=32, epochs=1,
                      max_examples=40),
    "setfit": dict(data_path=REVIEWS, model_id="minilm_l6", strategy="setfit", max_length=32, max_examples=40,
                   extra={"setfit_max_pairs": 48}),
}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return {DIGITS: load_dataset(DIGITS, root / "digits"), REVIEWS: load_dataset(REVIEWS, root / "reviews")}


@pytest.fixture(scope="module")
def exported(tmp_path_factory, datasets):
    """kind -> (run folder, ONNX folder, onnx_report.json); each kind trained and exported on first use."""
    done: dict = {}

    def get(kind: str):
        if kind not in done:
            root = tmp_path_factory.mktemp(kind)
            config = RunConfig(**CONFIGS[kind])
            result = train_run(config, root / "run", dataset=datasets[config.data_path])
            assert result.status == "finished", result.message
            report = export_run_onnx(result.run_dir, root / "onnx", int8=kind in ("image_probe", "text_probe"))
            done[kind] = (result.run_dir, root / "onnx", report)
        return done[kind]
    return get


@pytest.mark.parametrize("kind", list(CONFIGS))
def test_onnx_probabilities_match_the_apps_predictor(exported, kind):
    """fp32 parity: on every test example the ONNX graph (temperature folded in, preprocessing in numpy+Pillow or
    tokenizers) gives the Predictor's probabilities within 1e-4 (a batch of several: the batch axis is dynamic).
    Over 60 s: each kind's first test trains its tiny run and exports it (SetFit about 3 min on 2 busy cores)."""
    run_dir, onnx_dir, report = exported(kind)
    config = json.loads((onnx_dir / "preprocess.json").read_text())
    items, _, _ = readable_test_examples(run_dir, config)
    assert len(items) >= 8
    predictor = Predictor.load(run_dir)
    assert config["classes"] == predictor.classes and config["opset"] == report["opset"] >= 17
    ours = onnx_probabilities(onnx_dir, items)
    app = predictor.predict_proba(items).numpy()
    assert ours.shape == app.shape == (len(items), len(predictor.classes))
    difference = float(np.abs(ours - app).max())
    print(f"{kind}: max |p_onnx - p_app| = {difference:.2e} on {len(items)} test examples")
    assert difference <= 1e-4
    assert report["parity_max_abs_diff"] <= 1e-4   # the figure the README shows (against predictions.csv)
    # owner-only, complete, nothing half-written left beside it
    assert stat.S_IMODE(onnx_dir.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in onnx_dir.iterdir())
    assert not [p for p in onnx_dir.parent.iterdir() if ".partial-" in p.name]
    readme = (onnx_dir / "README.md").read_text()
    assert all(f"`{p.name}`" in readme for p in onnx_dir.iterdir()), "the README lists every file"


@pytest.mark.parametrize("kind", ["image_probe", "text_lora"])
def test_predict_onnx_script_prints_the_same_probabilities(exported, kind):
    """`python predict_onnx.py INPUT` in a subprocess, from the ONNX folder alone: its last line is the JSON of
    the app's probabilities for that input (within 1e-4)."""
    run_dir, onnx_dir, _ = exported(kind)
    config = json.loads((onnx_dir / "preprocess.json").read_text())
    items, _, _ = readable_test_examples(run_dir, config)
    predictor = Predictor.load(run_dir)
    expected = predictor.predict([items[0]])[0]
    out = subprocess.run([sys.executable, "predict_onnx.py", items[0]], cwd=onnx_dir, capture_output=True, text=True,
                         timeout=120, env={**os.environ, "PYTHONPATH": ""})
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])["probabilities"]
    assert set(got) == set(expected)
    assert max(abs(got[c] - expected[c]) for c in expected) <= 1e-4


@pytest.mark.parametrize("kind", ["image_probe", "text_probe"])
def test_int8_is_measured_on_the_test_examples(exported, kind):
    """int8 (static for images, calibrated on training images; dynamic for texts): smaller, its accuracy and its
    paired difference to fp32 on the same test examples, with an interval that holds the difference."""
    run_dir, onnx_dir, report = exported(kind)
    i8 = report["int8"]
    assert (onnx_dir / "model.int8.onnx").is_file() and i8["size_ratio"] > 2.5
    assert ("static" in i8["method"] and i8["n_calibration"] > 0) if kind == "image_probe" else "dynamic" in i8["method"]
    config = json.loads((onnx_dir / "preprocess.json").read_text())
    items, truth, _ = readable_test_examples(run_dir, config)
    int8 = onnx_probabilities(onnx_dir, items, "model.int8.onnx")
    fp32 = onnx_probabilities(onnx_dir, items)
    assert i8["accuracy"] == pytest.approx(float((int8.argmax(1) == truth).mean()))
    assert i8["difference"] == pytest.approx(i8["accuracy"] - float((fp32.argmax(1) == truth).mean()), abs=1e-4)
    low, high = i8["difference_ci"]
    assert low <= i8["difference"] <= high and high - low > 0
    assert i8["sentence"].startswith("int8: ") and "smaller" in i8["sentence"]
    assert json.loads((onnx_dir / "onnx_report.json").read_text())["int8"]["sentence"] == i8["sentence"]


def test_cli_export_share_and_offline_push(exported, tmp_path):
    """The contract's commands: `export --format onnx --int8 --out OUT` writes the fp32 and int8 files,
    predict_onnx.py and a README; `share --out SPACE` a Space folder (front matter, app.py, requirements.txt without
    the training stack, the model files); offline, `push` answers within 10 s with one sentence, no traceback.
    Over 60 s: two exports in subprocesses (each loads torch and MiniLM)."""
    run_dir, _, _ = exported("text_probe")
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    out = tmp_path / "onnx"
    done = subprocess.run([sys.executable, "-m", "tl_ui", "export", "--run", str(run_dir), "--format", "onnx",
                           "--int8", "--out", str(out)], capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stderr
    assert {"model.onnx", "model.int8.onnx", "predict_onnx.py", "README.md", "preprocess.json", "tokenizer.json",
            "onnx_report.json"} <= {p.name for p in out.iterdir()}
    assert "int8: " in done.stdout

    space = tmp_path / "space"
    done = subprocess.run([sys.executable, "-m", "tl_ui", "share", "--run", str(run_dir), "--out", str(space)],
                          capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stderr
    readme = (space / "README.md").read_text()
    assert readme.startswith("---\n") and "sdk: gradio" in readme and "app_file: app.py" in readme
    assert "license: apache-2.0" in readme   # MiniLM-L6's licence
    requirements = (space / "requirements.txt").read_text().lower()
    assert "onnxruntime" in requirements and "tokenizers" in requirements
    assert not any(word in requirements for word in ("torch", "peft", "accelerate", "setfit", "transformers"))
    assert {"app.py", "model.onnx", "tokenizer.json", "predict_onnx.py", "space.json"} <= {p.name for p in space.iterdir()}
    assert "Do not use it" in json.loads((space / "space.json").read_text())["intended_use"]   # the card's limits

    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "tl_ui", "push", "--run", str(run_dir), "--repo", "someone/model",
                           "--space"], capture_output=True, text=True, timeout=30,
                          env={**env, "HF_TOKEN": "hf_not_a_real_token"})
    assert time.monotonic() - start < 10
    assert done.returncode == 1 and "Traceback" not in done.stderr + done.stdout
    assert "offline" in done.stderr and "hf_not_a_real_token" not in done.stderr + done.stdout


@pytest.mark.parametrize("size,crop_pct,interpolation,shape", [
    (64, 1.0, "bicubic", (97, 53)), (224, 0.875, "bicubic", (300, 451)), (96, 0.9, "bilinear", (96, 96)),
])
def test_predict_onnx_preprocessing_equals_timms_transform(tmp_path, size, crop_pct, interpolation, shape):
    """The standalone script resizes, crops and normalises exactly as timm's eval transform (torchvision) does,
    from the numbers in preprocess.json (not hard-coded); tall and wide images alike."""
    from timm.data import create_transform

    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    config = {"modality": "image", "classes": ["a", "b"], "input_size": [3, size, size], "mean": mean, "std": std,
              "interpolation": interpolation, "crop_pct": crop_pct, "crop_mode": "center",
              "resize_to": int(size / crop_pct)}
    (tmp_path / "preprocess.json").write_text(json.dumps(config))
    shutil.copyfile(STANDALONE / "predict_onnx.py", tmp_path / "predict_onnx.py")
    rng = np.random.default_rng(0)
    for i, (w, h) in enumerate([shape, shape[::-1]]):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(tmp_path / f"x{i}.png")
    script = load_standalone(tmp_path)
    transform = create_transform(input_size=(3, size, size), interpolation=interpolation, mean=mean, std=std,
                                 crop_pct=crop_pct, crop_mode="center")
    for i in range(2):
        ours = script.image_pixels([tmp_path / f"x{i}.png"])[0]
        with Image.open(tmp_path / f"x{i}.png") as image:
            theirs = transform(image.convert("RGB")).numpy()
        assert ours.shape == theirs.shape == (3, size, size)
        assert np.abs(ours - theirs).max() < 1e-5


def test_the_page_exports_in_a_worker_into_the_run_folder(tmp_path):
    """The page's path: Lab.export_onnx asks the inference pool's long verb `export_onnx` (a worker of its own; the
    web process loads no model), which writes exports/onnx/ inside the run's folder; the answer is an owner-only zip
    and int8's sentence, and the run folder then reads its onnx_report.json. Over 60 s: trains a tiny run through the
    runner, then exports in a fresh worker."""
    import zipfile

    from tl_ui.core.settings import Settings
    from tl_ui.service.lab import Lab
    from tl_ui.service.owners import Owner

    lab = Lab(Settings(runs_dir=tmp_path / "runs", max_images=500))
    owner = Owner("user", "sharer")
    upload = tmp_path / "digits.zip"
    shutil.copyfile(DIGITS, upload)
    try:
        outcome = lab.load_data(owner, upload, upload.name)
        job = lab.start_run(owner, outcome.dataset, outcome.data_path, "efficientnet_lite0",
                            {"max_examples": 60, "image_size": 64, "epochs": 2, "seed": 1, "strategy": "linear_probe"})
        job = lab.runner.wait(job.id, timeout=300)
        assert job.state == "finished", job.message
        steps = []
        done = lab.export_onnx(owner, job.run_dir.name, int8=True, on_progress=lambda d, t, m: steps.append(m))
        assert done["sentence"].startswith("int8: ") and steps
        with zipfile.ZipFile(done["zip"]) as archive:
            assert {"model.onnx", "model.int8.onnx", "predict_onnx.py", "onnx_report.json"} <= set(archive.namelist())
        assert stat.S_IMODE(Path(done["zip"]).stat().st_mode) == 0o600
        assert lab.onnx_report(owner, job.run_dir.name)["int8"]["sentence"] == done["sentence"]
        assert (job.run_dir / "exports" / "onnx" / "model.onnx").is_file()
    finally:
        lab.close()
