"""Continue a finished run (tl_ui/engine/training/continuation.py, Lab.continue_run): a new run linked to its
parent, from the parent's best weights, on the same split, with epochs numbered after the parent's."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from tl_ui.core.catalog import get_model
from tl_ui.core.config import RunConfig
from tl_ui.data import load_dataset, sample_dataset_path, stratified_subset
from tl_ui.engine import train_run
from tl_ui.engine.training.continuation import continue_config, load_parent_weights
from tl_ui.engine.models.build import load_model
from tl_ui.engine.inference.predict import Predictor
from tl_ui.engine.training.strategies import plan
from tl_ui.core.runfolder import RunFolder

os.environ["HF_HUB_OFFLINE"] = "1"


def _epoch_events(run_dir: Path) -> list[dict]:
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines() if line.strip()]
    return [e for e in events if e.get("kind") == "epoch"]


def test_a_continued_run_follows_its_parent_through_the_service(tmp_path):
    from tl_ui.service.errors import UserError
    from tl_ui.service.lab import Lab
    from tl_ui.service.owners import Owner
    from tl_ui.core.settings import Settings

    lab = Lab(Settings(runs_dir=tmp_path / "runs"))
    owner, stranger = Owner("user", "continuer"), Owner("user", "stranger")
    try:
        outcome = lab.load_sample(owner, "image")
        options = {"max_examples": 40, "image_size": 64, "seed": 3, "strategy": "partial", "epochs": 3}
        parent = lab.runner.wait(lab.start_run(owner, outcome.dataset, outcome.data_path, "efficientnet_lite0",
                                               options).id, timeout=300)
        assert parent.state == "finished", parent.message
        for bad, words in ((0, "at least 1"), ("many", "whole number"), (10_000, "TL_MAX_EPOCHS")):
            with pytest.raises(UserError, match=words):
                lab.continue_run(owner, parent.id, bad)
        with pytest.raises(UserError):
            lab.continue_run(stranger, parent.id, 2)    # another user's run is not theirs to continue

        child = lab.runner.wait(lab.continue_run(owner, parent.id, 2).id, timeout=300)
        assert child.state == "finished", child.message

        # the probe's head is fitted to convergence in one go: nothing to continue, and the user is told so
        probe = lab.runner.wait(lab.start_run(owner, outcome.dataset, outcome.data_path, "efficientnet_lite0",
                                              {**options, "strategy": "linear_probe"}).id, timeout=300)
        assert probe.state == "finished", probe.message
        with pytest.raises(UserError, match="fitted to convergence"):
            lab.continue_run(owner, probe.id, 2)
    finally:
        lab.close()
    parent_run, child_run = RunFolder(parent.run_dir), RunFolder(child.run_dir)
    assert child_run.config()["extra"]["continue_from"] == parent.id
    before, after = parent_run.metrics(), child_run.metrics()
    # the curves continue: the parent's epochs 1..3, then the child's 4..5
    assert [e["epoch"] for e in _epoch_events(parent.run_dir)] == [1, 2, 3]
    assert [e["epoch"] for e in _epoch_events(child.run_dir)] == [4, 5]
    assert after["epochs_run"] == 5 and after["best_epoch"] >= 3
    # the same examples train, choose and report, so the numbers compare
    assert after["evaluation"] == before["evaluation"]
    assert (after["n_train"], after["n_val"]) == (before["n_train"], before["n_val"])
    assert f"continues {parent.id}" in child_run.info().label()


def test_a_continued_lora_run_starts_exactly_from_its_parents_calibrated_model(tmp_path):
    reviews = load_dataset(str(sample_dataset_path("text")), tmp_path / "data")
    small = stratified_subset(reviews, 24, 0)   # what the engine trains on: max_examples with the seed
    config = RunConfig(model_id="minilm_l6", strategy="lora", epochs=1, max_length=32, seed=0, max_examples=24,
                       data_path=str(sample_dataset_path("text")))
    parent = train_run(config, tmp_path / "runs" / "parent", dataset=reviews)
    assert parent.status == "finished", parent.message

    child_config = continue_config(json.loads((tmp_path / "runs" / "parent" / "run.json").read_text()), "parent", 2)
    assert child_config.strategy == "lora" and child_config.epochs == 2
    loaded = load_model(get_model("minilm_l6"), small.classes)
    lora = plan(loaded, child_config)
    load_parent_weights(lora.model, loaded.head_names, RunFolder(tmp_path / "runs" / "parent"), "lora")

    texts = small.items[:4]
    temperature = json.loads((tmp_path / "runs" / "parent" / "model" / "transfer_lab.json").read_text())["temperature"]
    encoded = loaded.tokenizer(texts, truncation=True, max_length=32, padding=True, return_tensors="pt")
    with torch.no_grad():
        restored = (lora.model.eval()(**encoded).logits / temperature).softmax(-1)
    exported = Predictor.load(tmp_path / "runs" / "parent").predict_proba(texts)
    assert torch.allclose(restored, exported, atol=1e-4)

    # the command line's way (python -m tl_ui train --continue-from RUN --epochs N --out OUT)
    from tl_ui.service.headless import continue_headless
    from tl_ui.service.errors import UserError

    with pytest.raises(UserError, match="same folder"):
        continue_headless(tmp_path / "runs" / "parent", 1, tmp_path / "elsewhere" / "child")
    child = continue_headless(tmp_path / "runs" / "parent", 1, tmp_path / "runs" / "child")
    assert child.status == "finished", child.message
    assert [e["epoch"] for e in _epoch_events(tmp_path / "runs" / "child")] == [2]
    assert child.metrics["evaluation"] == parent.metrics["evaluation"]


def test_the_train_step_draws_a_continued_run_after_its_parents_epochs():
    from tl_ui.ui.train_view import TRAIN_SERIES, VAL_SERIES, train_view

    events = [{"kind": "started", "run_id": "child", "unit": "epoch", "epochs": 2, "total_steps": 4,
               "trainable_params": 10, "total_params": 100, "classes": ["a", "b"]}]
    for step, epoch in ((1, 5), (2, 5), (3, 6), (4, 6)):
        events.append({"kind": "step", "epoch": epoch, "step": step, "total_steps": 4, "train_loss": 0.5})
        if step % 2 == 0:
            events.append({"kind": "epoch", "epoch": epoch, "epochs": 6, "step": step, "train_loss": 0.5,
                           "val_loss": 0.6, "train_accuracy": 0.8, "val_accuracy": 0.7, "is_best": False})
    view = train_view(events[:3], "running")
    assert "epoch 5 of 6" in view.status
    view = train_view(events, "running")
    assert [x for x, _, series in view.loss_rows if series == TRAIN_SERIES] == [4.5, 5.0, 5.5, 6.0]
    assert [x for x, _, series in view.loss_rows if series == VAL_SERIES] == [5.0, 6.0] and view.epochs == 6
    assert [row["epoch"] for row in view.epoch_rows] == [5, 6] and view.fraction == 1.0


def test_runs_that_cannot_train_further_say_why(tmp_path):
    from tl_ui.engine.training.continuation import why_not

    def run_with(metrics: dict, export_format: str) -> RunFolder:
        run = RunFolder(tmp_path / export_format / str(len(metrics))).create()
        run.write_metrics(metrics)
        (run.model_dir).mkdir()
        (run.model_dir / "transfer_lab.json").write_text(json.dumps({"format": export_format}))
        return run

    import numpy as np

    from tl_ui.engine.evaluation.evaluate import evaluate

    scored = evaluate(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 1]), ["a", "b"], ["x", "y"])   # metrics.json's core
    probe_fit = {"method": "full-batch L-BFGS", "l2": 0.01, "iterations": 12, "fit_seconds": 0.1}
    assert why_not(run_with(scored, "timm")) is None
    assert "converge" in why_not(run_with({**scored, "probe_fit": probe_fit}, "transformers"))
    assert "sentence encoder" in why_not(run_with({**scored, "n_train": 4}, "sentence-transformers"))
