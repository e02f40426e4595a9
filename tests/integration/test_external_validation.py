"""A finished model on another site's data (issue 34), with a real trained linear probe and real worker
processes: validating on a shifted copy of held-out digits (rotated, low contrast) shows a lower accuracy, a
difference whose interval excludes 0 and more inputs flagged "unlike the training data" than on the run's own
test examples or on unshifted held-out digits; batch scoring's table equals `predict` one input at a time;
both run as long requests in a worker of their own, with progress and Stop; the command line writes the same
files; recalibrating for the shifted site (`validate --recalibrate`) saves a new, linked run whose calibration
error on the held-back half is lower than its parent's on the same half."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from tl_ui.core.config import RunConfig
from tl_ui.core.runfolder import RunFolder
from tl_ui.data import load_dataset, sample_dataset_path, stratified_subset

os.environ["HF_HUB_OFFLINE"] = "1"
pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def _shifted(path: str) -> Image.Image:
    """Another 'site': the digit turned a quarter and its contrast cut to a third."""
    image = Image.open(path).convert("L").rotate(90)
    return ImageEnhance.Contrast(image).enhance(0.35)


def _zip(path: Path, items, labels, shift: bool) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for item, label in zip(items, labels):
            image = _shifted(item) if shift else Image.open(item)
            folder = Path(path.stem) / label
            target = path.parent / folder / Path(item).name
            target.parent.mkdir(parents=True, exist_ok=True)
            image.save(target)
            archive.write(target, (folder / Path(item).name).as_posix())
    return path


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from tl_ui.engine import train_run

    root = tmp_path_factory.mktemp("external")
    digits = load_dataset(str(sample_dataset_path("image")), root / "digits")
    used = stratified_subset(digits, 100, seed=1)
    seen = set(used.items)
    rest = [int(i) for i in np.random.default_rng(0).permutation(
        [i for i, item in enumerate(digits.items) if item not in seen])]   # every class in both halves
    control, shifted = rest[0::2][:60], rest[1::2][:60]
    runs = root / "runs"
    config = RunConfig(model_id="efficientnet_lite0", strategy="linear_probe", image_size=64, epochs=3, seed=1)
    result = train_run(config, runs / "probe", dataset=used)
    assert result.status == "finished", result.message
    pick = lambda rows: ([digits.items[i] for i in rows], [digits.labels[i] for i in rows])  # noqa: E731
    return {"run": runs / "probe", "runs": runs,
            "control": _zip(root / "control.zip", *pick(control), shift=False),
            "shifted": _zip(root / "shifted.zip", *pick(shifted), shift=True),
            "shifted_all": _zip(root / "site_b.zip", *pick(rest[1::2]), shift=True),   # 100: two halves of 50
            "shifted_items": [str(p) for p in sorted((root / "shifted").rglob("*.png"))]}


def _validate(run_dir: Path, data: Path) -> dict:
    from tl_ui.engine.inference.validation import validate_run
    from tl_ui.service.workspace import data_sha256

    dataset = load_dataset(data, data.parent / f"read-{data.stem}")
    return validate_run(run_dir, dataset, data_sha256=data_sha256(data))


def test_a_shifted_site_scores_lower_with_an_interval_that_excludes_no_difference(site):
    control = _validate(site["run"], site["control"])
    shifted = _validate(site["run"], site["shifted"])
    internal = RunFolder(site["run"]).metrics()
    assert shifted["n"] == control["n"] == 60 and shifted["n_excluded"] == 0 and not shifted["missing_classes"]
    assert shifted["internal"]["accuracy"] == pytest.approx(internal["accuracy"])
    assert shifted["accuracy"] < internal["accuracy"] - 0.2, (shifted["accuracy"], internal["accuracy"])
    assert shifted["accuracy"] < control["accuracy"]
    assert shifted["difference"]["accuracy_ci"][0] > 0, shifted["difference"]
    assert "lower on the new data" in shifted["difference"]["sentence"]
    # the flag sees the new site: more shifted inputs are flagged than the run's own or unshifted held-out ones
    assert shifted["familiarity"]["flag_rate"] > internal["familiarity"]["test_flag_rate"]
    assert shifted["familiarity"]["n_flagged"] > control["familiarity"]["n_flagged"]
    # files where the run folder keeps them, readable as written
    folder = Path(shifted["folder"])
    assert folder.parent == RunFolder(site["run"]).validations_dir
    assert json.loads((folder / "validation.json").read_text())["accuracy"] == shifted["accuracy"]
    jsonschema = pytest.importorskip("jsonschema")   # the documented schema (docs/contracts.md) accepts the real file
    from tl_ui.contracts import ValidationReport
    jsonschema.validate(json.loads((folder / "validation.json").read_text()), ValidationReport.model_json_schema())
    latest = RunFolder(site["run"]).latest_validation_json   # the newest check, where the study report looks
    assert json.loads(latest.read_text())["data_sha256"] == shifted["data_sha256"]
    with open(folder / "validation_predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 60 and not any(os.sep + "tmp" in r["item"] or r["item"].startswith("/") for r in rows)
    assert sum(r["correct"] == "true" for r in rows) == round(shifted["accuracy"] * 60)


def test_batch_table_equals_predict_one_input_at_a_time(site, tmp_path):
    from tl_ui.engine import Predictor
    from tl_ui.engine.inference.batch import score_to_csv

    predictor = Predictor.load(site["run"])
    items = site["shifted_items"][:20]
    names = [Path(p).name for p in items]
    written = score_to_csv(predictor, items, names, tmp_path / "predictions.csv", batch_size=7)
    with open(written["csv"], newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["item"] for r in rows] == names
    for item, row in zip(items, rows):
        alone = predictor.predict_with_set([item])[0]
        for name, p in alone["probabilities"].items():
            assert abs(float(row[f"p_{name}"]) - p) < 1e-5
        assert row["predicted"] == next(iter(alone["probabilities"]))
        assert row["prediction_set"] == "; ".join(alone["prediction_set"] or [])
        assert row["unlike_training_data"] == str(alone["unlike_training_data"]).lower()
    if written["xlsx"]:   # openpyxl is installed here: the same table as a workbook
        from openpyxl import load_workbook

        sheet = load_workbook(written["xlsx"], read_only=True).active
        assert [c.value for c in next(sheet.iter_rows(max_row=1))] == list(rows[0])


def test_validation_and_batches_run_in_a_worker_of_their_own_with_progress_and_stop(site):
    from tl_ui.data.unlabelled import load_inputs
    from tl_ui.jobs.inference import Code, InferenceCaps, InferenceError, InferencePool
    import dataclasses

    pool = InferencePool(InferenceCaps(), site["runs"])
    try:
        dataset = load_dataset(site["shifted"], site["shifted"].parent / "read-worker")
        seen = []
        report = pool.call_long("alice", "validate", {"run_dir": str(site["run"]), "dataset": dataclasses.asdict(dataset)},
                                kind="inference", on_progress=lambda d, t, m: seen.append((d, t)))
        assert report["n"] == 60 and Path(report["folder"], "validation.json").is_file()
        assert seen and seen[-1] == (60, 60)
        inputs = load_inputs(site["shifted"], site["shifted"].parent / "read-batch")
        written = pool.call_long("alice", "score_batch", {"run_dir": str(site["run"]), "inputs": dataclasses.asdict(inputs)},
                                 kind="inference")
        assert written["n"] == 60 and Path(written["folder"]).parent == RunFolder(site["run"]).scores_dir
        # Stop once it has begun (6 batches of 32): the request ends between batches, nothing half-written is kept
        before = set(RunFolder(site["run"]).scores_dir.iterdir())
        begun = threading.Event()
        many = {**dataclasses.asdict(inputs), "items": inputs.items * 3, "names": inputs.names * 3}
        with pytest.raises(InferenceError) as stopped:
            pool.call_long("alice", "score_batch", {"run_dir": str(site["run"]), "inputs": many},
                           kind="inference", on_progress=lambda d, t, m: begun.set(), should_stop=begun.is_set)
        assert stopped.value.code == Code.CANCELLED
        assert set(RunFolder(site["run"]).scores_dir.iterdir()) == before
        with pytest.raises(InferenceError) as outside:   # only run folders inside the runs folder
            pool.call_long("alice", "validate", {"run_dir": str(site["control"].parent), "dataset": {}}, kind="inference")
        assert outside.value.code in (Code.REFUSED, Code.USER)
    finally:
        pool.close()


def test_command_line_validate_and_batch_predict(site, tmp_path):
    """Both commands work, and leave nothing in the temp directory (where they unpack the data they read)."""
    temp = tmp_path / "temp"
    temp.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(temp)}
    out = subprocess.run([sys.executable, "-m", "tl_ui", "validate", "--run", str(site["run"]), "--data",
                          str(site["control"]), "--out", str(tmp_path / "v"), "--json"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["n"] == 60 and (tmp_path / "v" / "validation.json").is_file()
    assert (tmp_path / "v" / "validation_predictions.csv").is_file()
    out = subprocess.run([sys.executable, "-m", "tl_ui", "predict", "--run", str(site["run"]), "--data",
                          str(site["shifted"]), "--out", str(tmp_path / "p.csv")],
                         capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    with open(tmp_path / "p.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 60
    bad = subprocess.run([sys.executable, "-m", "tl_ui", "validate", "--run", str(site["run"]), "--data",
                          str(tmp_path / "missing.zip")], capture_output=True, text=True, env=env, timeout=600)
    assert bad.returncode == 2 and "Could not find" in bad.stderr and "Traceback" not in bad.stderr
    assert list(temp.iterdir()) == []


def test_recalibrating_for_the_shifted_site_saves_a_linked_run_that_is_better_calibrated_on_the_held_back_half(site):
    """Through the command line (the same engine function the worker's `recalibrate` runs): the new run sits
    beside its parent, records it and the site, shares its weights, and its own Predictor (the one predict and
    score_batch load) gives a lower ECE on the held-back half than the parent's Predictor on the same examples.
    7 s on a quiet machine, over two minutes at load 12 on 2 cores: a fresh process loads torch and the model and
    scores the 100 images twice (validation, then recalibration), then both versions score the held-back half."""
    from tl_ui import trust
    from tl_ui.engine import Predictor

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    before = set(site["runs"].iterdir())
    out = subprocess.run([sys.executable, "-m", "tl_ui", "validate", "--run", str(site["run"]), "--data",
                          str(site["shifted_all"]), "--recalibrate", "--site", "Site B", "--seed", "3", "--json"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    done = report["recalibration"]
    (new_dir,) = set(site["runs"].iterdir()) - before
    assert done["run_id"] == new_dir.name and done["parent_run_id"] == "probe" and done["site"] == "Site B"
    new = RunFolder(new_dir)
    assert new.config()["extra"]["recalibrated_from"] == "probe" and new.config()["extra"]["site"] == "Site B"
    assert new.state() == "finished" and new.info().recalibrated_from == "probe"
    metrics = new.read_metrics()
    assert metrics.recalibration.parent_run_id == "probe" and metrics.recalibration.seed == 3
    assert metrics.recalibration.n_fit + metrics.recalibration.n_report == report["n"] == 100
    manifest = new.manifest()
    assert manifest["parent_run_id"] == "probe" and manifest["site_temperature"] == pytest.approx(
        metrics.recalibration.temperature, rel=1e-4)
    weights = new.model_dir / "model.safetensors"
    assert weights.stat().st_ino == (site["run"] / "model" / "model.safetensors").stat().st_ino   # shared, not copied
    assert (site["run"] / "model" / "transfer_lab.json").read_text() != (new.model_dir / "transfer_lab.json").read_text()

    # the held-back half, as recorded, scored by each version's own Predictor (what predict / score_batch load)
    with open(new.site_split_csv, newline="") as handle:
        split = list(csv.DictReader(handle))
    held = [r for r in split if r["half"] == "report"]
    assert len(held) == metrics.recalibration.n_report and not {r["item"] for r in held} & \
        {r["item"] for r in split if r["half"] == "fit"}
    root = site["shifted_all"].parent / "site_b"
    items = [str(root / r["item"]) for r in held]
    classes = metrics.classes
    targets = np.array([classes.index(r["true"]) for r in held])
    parent_probs = Predictor.load(site["run"]).predict_proba(items).numpy()
    new_probs = Predictor.load(new_dir).predict_proba(items).numpy()
    ece_parent = trust.expected_calibration_error(parent_probs, targets)
    ece_new = trust.expected_calibration_error(new_probs, targets)
    assert ece_new < ece_parent, (ece_new, ece_parent)
    assert ece_parent == pytest.approx(metrics.recalibration.before.ece, abs=2e-3)
    assert ece_new == pytest.approx(metrics.recalibration.after.ece, abs=2e-3)
    assert (new_probs.argmax(1) == parent_probs.argmax(1)).all()   # the same model: only its confidence moved
    assert done["recalibration"]["sentence"].startswith(f"Refitted on {metrics.recalibration.n_fit} of your 100 new")

    # its ONNX export (issue 39) divides by the version's own temperature too: the same probabilities
    from tl_ui.engine.export.onnx_export import onnx_probabilities
    from tl_ui.engine.inference.onnx_package import export_run_onnx

    export_run_onnx(new_dir, site["shifted_all"].parent / "recalibrated_onnx")
    onnx_probs = onnx_probabilities(site["shifted_all"].parent / "recalibrated_onnx", items)
    assert float(np.abs(onnx_probs - new_probs).max()) <= 1e-4
