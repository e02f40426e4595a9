"""Run folders for the study report's unit tests, made without training: synthetic logits go through the
engine's own builders (`tl_ui.engine.evaluation.report.build_metrics`, `tl_ui.engine.tasks.multi_label.build_multilabel_metrics`),
the trust functions the engine calls (cross-validation, the paired scratch comparison) and issue 33's
`operating_point_metrics`, and the files are written through `RunFolder`, `RunConfig` and `ExportManifest`
as a real run writes them. The data file is a real CSV whose rows match the roles' labels and groups.
"""
from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from tl_ui import trust
from tl_ui.core.config import RunConfig
from tl_ui.contracts import ExportManifest
from tl_ui.data import Limits
from tl_ui.core.runfolder import FINISHED, RUNNING, RunFolder, write_json_atomic
from tl_ui.study_report.data_summary import file_sha256


def _logits(rng, targets: np.ndarray, k: int, signal: float) -> np.ndarray:
    return rng.normal(0, 1.0, (len(targets), k)) + signal * np.eye(k)[targets]


def _targets(rng, n: int, k: int) -> np.ndarray:
    base = np.arange(n) % k
    return rng.permutation(base)


def _write_data(path: Path, labels: Sequence[str], groups: Optional[Sequence[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"] + (["site"] if groups is not None else []))
        for i, label in enumerate(labels):
            words = f"example number {i} of the {label} kind"
            writer.writerow([words, label] + ([groups[i]] if groups is not None else []))
    return path


def _finish(folder: Path, config: RunConfig, metrics: dict, manifest: dict) -> RunFolder:
    run = RunFolder(folder).create()
    write_json_atomic(run.run_json, config.to_dict())
    run.set_status(RUNNING)
    run.model_dir.mkdir(exist_ok=True)
    write_json_atomic(run.model_dir / "transfer_lab.json", ExportManifest.model_validate(manifest).to_dict())
    run.write_metrics(metrics)
    run.set_status(FINISHED)
    return run


def single_label_run(folder: Path, *, classes: Sequence[str] = ("benign", "malignant"), sizes=(120, 60, 80),
                     positive: Optional[str] = "malignant", groups: bool = True, scratch: bool = True,
                     cross_validation: bool = True, signal: float = 2.2, seed: int = 0) -> RunFolder:
    """A finished single-label text run: train / choose / report sizes, optional groups ('site'),
    from-scratch comparison, cross-validation and (with `positive`) issue 33's operating point."""
    from tl_ui.engine.evaluation.evaluate import write_predictions
    from tl_ui.engine.evaluation.report import build_metrics, calibrate, cross_validate_probe
    from tl_ui.engine.evaluation.roles import Roles
    from tl_ui.trust.operating_point import operating_point_metrics

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    k = len(classes)
    n_train, n_choose, n_report = sizes
    train_t, choose_t, report_t = (_targets(rng, n, k) for n in sizes)
    choose_logits = _logits(rng, choose_t, k, signal)
    report_logits = _logits(rng, report_t, k, signal)
    all_targets = np.concatenate([train_t, choose_t, report_t])
    sites = ["north" if i % 3 else "south" for i in range(len(all_targets))]
    report_sites = sites[n_train + n_choose:] if groups else None
    items = [f"example number {n_train + n_choose + i} of the {classes[t]} kind" for i, t in enumerate(report_t)]

    fitted = calibrate(choose_logits, choose_t)
    metrics = build_metrics(report_logits, report_t, list(classes), items, fitted, set_level=0.9, seed=seed,
                            groups=report_sites, group_column="site" if groups else None)
    roles = Roles("three_way", np.arange(n_train), np.arange(n_train, n_train + n_choose),
                  np.arange(n_train + n_choose, len(all_targets)))
    metrics.update({"n_train": n_train, "best_epoch": 40, "epochs_run": 40, "strategy": "linear_probe",
                    "model_id": "minilm_l6", "random_init": False, "trainable_params": 770 * k,
                    "total_params": 22_713_216 + 770 * k, "train_seconds": 1.84, "evaluation": roles.describe()})
    if cross_validation:
        features = rng.normal(0, 1, (len(all_targets), 16)) + 1.5 * np.eye(k, 16)[all_targets]
        cv = cross_validate_probe(features, all_targets, k, seed)
        if cv is not None:
            metrics["cross_validation"] = {**cv, "scope": "whole_recipe"}
    if scratch:
        scratch_logits = _logits(rng, report_t, k, signal * 0.4)
        scratch_metrics = build_metrics(scratch_logits, report_t, list(classes), items,
                                        calibrate(_logits(rng, choose_t, k, signal * 0.4), choose_t),
                                        set_level=0.9, seed=seed)
        gain = trust.paired_bootstrap_accuracy_diff(report_t, report_logits.argmax(1), scratch_logits.argmax(1),
                                                    seed=seed)
        metrics.update(scratch_run=f"{folder.name}-scratch",
                       pretraining_gain={"accuracy": gain["difference"], "ci": gain["ci"], "n": gain["n"],
                                         "floored": gain["floored"]},
                       scratch_accuracy=scratch_metrics["accuracy"], scratch_accuracy_ci=scratch_metrics["accuracy_ci"])
    probs_choose = trust.softmax(choose_logits, fitted["temperature"])
    probs_report = trust.softmax(report_logits, fitted["temperature"])
    if positive is not None or k > 2:
        metrics.update(operating_point_metrics(probs_choose, choose_t, probs_report, report_t, list(classes),
                                               positive_class=positive, n_resamples=300, seed=seed))
    labels = [classes[t] for t in all_targets]
    data = _write_data(folder.parent / f"{folder.name}-data.csv", labels, sites if groups else None)
    config = RunConfig(model_id="minilm_l6", strategy="linear_probe", data_path=str(data),
                       data_sha256=file_sha256(data), text_column="text", label_column="label",
                       group_column="site" if groups else None, compare_scratch=scratch, seed=seed,
                       limits=dataclasses.asdict(Limits()))
    manifest = {"format": "transformers", "modality": "text", "classes": list(classes), "base_model": "minilm_l6",
                "strategy": "linear_probe", "max_length": 128, "temperature": float(fitted["temperature"]),
                "conformal": {"method": "LAC", "thresholds": fitted["thresholds"],
                              "n_calibration": fitted["n_calibration"], "default_level": 0.9}}
    run = _finish(folder, config, metrics, manifest)
    write_predictions(run.predictions_csv, probs_report, report_t, list(classes), items)
    return run


def multilabel_run(folder: Path, *, labels: Sequence[str] = ("care", "fairness", "harm", "loyalty"),
                   sizes=(90, 45, 60), seed: int = 0) -> RunFolder:
    """A finished multi-label text run, its metrics from the engine's multi-label builder."""
    from tl_ui.engine.tasks.multi_label import build_multilabel_metrics
    from tl_ui.engine.evaluation.roles import Roles
    from tl_ui.trust.multilabel import choose_thresholds, sigmoid

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_labels = len(labels)
    rates = np.linspace(0.15, 0.45, n_labels)
    targets = [(rng.random((n, n_labels)) < rates).astype(int) for n in sizes]
    logits = [rng.normal(-1.0, 1.0, t.shape) + 2.5 * t for t in targets]
    thresholds, how = choose_thresholds(sigmoid(logits[1]), targets[1])
    n_train, n_choose, _ = sizes
    items = [f"term {n_train + n_choose + i}" for i in range(sizes[2])]
    metrics = build_multilabel_metrics(sigmoid(logits[2]), targets[2], list(labels), items, thresholds, how, seed=seed)
    roles = Roles("three_way", np.arange(n_train), np.arange(n_train, n_train + n_choose),
                  np.arange(n_train + n_choose, sum(sizes)))
    evaluation = roles.describe()
    evaluation["chosen"] = ["epoch (early stopping)", "a score threshold per label"]
    metrics.update({"n_train": n_train, "best_epoch": 12, "epochs_run": 12, "strategy": "linear_probe",
                    "model_id": "minilm_l6", "random_init": False, "trainable_params": 385 * n_labels,
                    "total_params": 22_713_216 + 385 * n_labels, "train_seconds": 0.9, "evaluation": evaluation,
                    "pos_weight": {name: round(float((1 - r) / r), 4) for name, r in zip(labels, rates)}})
    all_targets = np.concatenate(targets)
    rows = [";".join(name for name, on in zip(labels, row) if on) for row in all_targets]
    data = folder.parent / f"{folder.name}-data.csv"
    with open(data, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "labels"])
        writer.writerows([[f"term {i}", r] for i, r in enumerate(rows)])
    config = RunConfig(model_id="minilm_l6", strategy="linear_probe", data_path=str(data),
                       data_sha256=file_sha256(data), text_column="text", label_column="labels",
                       label_separator=";", seed=seed, limits=dataclasses.asdict(Limits()))
    manifest = {"format": "sentence-transformers", "modality": "text", "classes": list(labels),
                "base_model": "minilm_l6", "strategy": "linear_probe", "max_length": 128, "temperature": 1.0,
                "multilabel": {"thresholds": dict(zip(labels, thresholds)), "threshold_choice": how}}
    return _finish(folder, config, metrics, manifest)


def metrics_of(run: RunFolder) -> dict:
    return json.loads(run.metrics_json.read_text(encoding="utf-8"))


def report_runs(root: Path) -> dict:
    """Three finished run folders built from known arrays (no model): a two-class run with groups, the scratch
    comparison and cross-validation, a three-class run without them, and a multi-label run."""
    return {
        "binary": single_label_run(root / "binary"),
        "three": single_label_run(root / "three", classes=("cyst", "nodule", "normal"), positive=None, groups=False,
                                  scratch=False, cross_validation=False, seed=3),
        "multilabel": multilabel_run(root / "multilabel"),
    }
