"""Recalibrate a finished run for a new site (issue 34, item 2): stream the site's labelled examples through the
exported model (as `Predictor`, exactly as try-it answers), refit on a random stratified half and report on the
other (tl_ui/engine/evaluation/recalibration.py), and save the result as a new, linked model version: a run
folder of its own (tl_ui/core/runfolder.py) whose model/ shares the parent's weights, with its own temperature,
prediction-set thresholds and operating-point threshold in transfer_lab.json. Called by the inference worker's
`recalibrate` verb and by `python -m tl_ui validate --recalibrate` (in its own process), the same function.
"""
from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path
from typing import Callable

import numpy as np

from tl_ui.contracts import RunState
from tl_ui.core.runfolder import RunFolder
from tl_ui.engine.evaluation.evaluate import write_predictions
from tl_ui.engine.evaluation.external import match_classes
from tl_ui.engine.evaluation.recalibration import RecalibrationError, recalibrate
from tl_ui.engine.inference.batch import BATCH, stream_answers
from tl_ui.engine.inference.predict import PredictError
from tl_ui.engine.inference.validation import item_names, refuse_unsuitable_data

DEFAULT_SEED = 0


def recalibrate_run(run_dir: str | Path, dataset, new_run_dir: str | Path, *, site: str = "", data_sha256: str = "",
                    seed: int = DEFAULT_SEED, predictor=None, batch_size: int = BATCH,
                    on_progress: Callable[[int, int, str], None] = lambda done, total, message: None,
                    should_stop: Callable[[], bool] = lambda: False) -> dict:
    """{"run_id" (the new version's), "parent_run_id", "site", "run_dir", "recalibration" (metrics.json's block:
    before vs after on the held-back half, its sentence)}. The new folder is removed again if anything fails or
    Stop is pressed. Raises PredictError with a plain sentence."""
    parent = RunFolder(run_dir)
    if predictor is None:
        from tl_ui.engine.inference.predict import Predictor

        predictor = Predictor.load(parent.path)
    manifest = parent.manifest()
    refuse_unsuitable_data(dataset, predictor, manifest, "Recalibrating")
    classes = list(predictor.classes)
    match = match_classes(classes, dataset.labels)
    if len(match.keep) < 2:
        raise PredictError("Too few of the new data's labels are the model's classes ("
                           + ", ".join(f"'{c}'" for c in classes) + ") to recalibrate on them.")
    kept = dataset.subset(match.keep)
    names = item_names(kept)
    site = " ".join(str(site or "").split())[:80] or (getattr(dataset, "source", "") or "new site")
    new = RunFolder(new_run_dir)
    if new.path.exists() and any(new.path.iterdir()):
        raise PredictError("The new version's folder is not empty; nothing is written.")
    new.create()
    try:
        probs = np.zeros((len(kept), len(classes)))
        for start, answers in stream_answers(predictor, kept.items, names=names, batch_size=batch_size,
                                             on_progress=on_progress, should_stop=should_stop,
                                             what="Recalibrating on"):
            for offset, answer in enumerate(answers):
                probs[start + offset] = [answer["probabilities"].get(c, 0.0) for c in classes]
        conformal = manifest.get("conformal") or {}
        set_level = float(conformal.get("default_level") or 0.9)
        try:
            done = recalibrate(probs, match.targets, classes, names, conformal=conformal,
                               operating_point=manifest.get("operating_point"), set_level=set_level, seed=seed)
        except RecalibrationError as exc:
            raise PredictError(str(exc)) from None
        _write_version(new, parent, manifest, done, site=site, data_sha256=data_sha256, match=match,
                       names=names, probs=probs, classes=classes)
    except BaseException:
        shutil.rmtree(new.path, ignore_errors=True)   # a stopped or failed recalibration keeps nothing
        raise
    return {"run_id": new.id, "parent_run_id": parent.id, "site": site, "run_dir": str(new.path),
            "recalibration": new.metrics()["recalibration"]}


def _write_version(new: RunFolder, parent: RunFolder, manifest: dict, done, *, site: str, data_sha256: str, match,
                   names: list[str], probs: np.ndarray, classes: list[str]) -> None:
    site_temperature = float(manifest.get("site_temperature") or 1.0) * float(done.calibration["temperature"])
    new.write_version_config(parent, {"recalibrated_from": parent.id, "site": site,
                                      "recalibration_seed": done.block["seed"]})
    new.set_status(RunState.RUNNING, f"Recalibrating {parent.id} for {site}")
    conformal = {**(manifest.get("conformal") or {}), "thresholds": done.calibration["thresholds"],
                 "n_calibration": int(len(done.fit_rows))}
    version = {**manifest, "conformal": conformal, "site_temperature": round(site_temperature, 6),
               "parent_run_id": parent.id, "site": site}
    if done.operating_point is not None:
        version["operating_point"] = done.operating_point
    card = (f"## Recalibrated for {site}\n\nThis version shares the weights of run `{parent.id}` (not retrained). "
            f"On a random half of {site}'s labelled data ({len(done.fit_rows)} examples, seed {done.block['seed']}) "
            f"its temperature, prediction-set thresholds"
            + (" and decision threshold" if done.operating_point else "") + " were refitted; every number in "
            f"metrics.json is measured on the other {len(done.report_rows)}. {done.block['sentence']}\n\n"
            f"The weights give the parent's calibrated logits: divide them by {site_temperature:.4g} "
            "(`site_temperature` in transfer_lab.json) before the softmax for this version's probabilities.\n")
    updates = {"decision_threshold": float(done.operating_point["threshold"])} if done.operating_point else None
    new.write_linked_model(parent, version, config_updates=updates, card_addendum=card)
    held = done.report_rows
    scaled = _softmax_log(probs[held], done.calibration["temperature"])
    write_predictions(new.predictions_csv, scaled, match.targets[held], classes, [names[i] for i in held])
    _write_split(new.site_split_csv, names, match.targets, classes, done.fit_rows)
    parent_metrics = parent.metrics() or {}
    metrics = {**{k: parent_metrics.get(k) for k in ("strategy", "model_id", "trainable_params", "total_params",
                                                      "random_init") if parent_metrics.get(k) is not None},
               **done.metrics,
               "recalibration": {"parent_run_id": parent.id, "site": site, "data_sha256": data_sha256 or None,
                                 "n_excluded": match.n_excluded, "site_temperature": round(site_temperature, 6),
                                 **done.block}}
    new.write_metrics(metrics)
    new.set_status(RunState.FINISHED, done.block["sentence"])


def _softmax_log(probs: np.ndarray, temperature: float) -> np.ndarray:
    from tl_ui import trust

    return trust.softmax(np.log(np.clip(probs, 1e-12, None)), temperature)


def _write_split(path: Path, names: list[str], targets: np.ndarray, classes: list[str], fit_rows) -> None:
    fitted = set(int(i) for i in fit_rows)
    partial = path.with_name(f".{path.name}.partial")
    with open(partial, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["item", "true", "half"])
        for i, name in enumerate(names):
            writer.writerow([name, classes[int(targets[i])], "fit" if i in fitted else "report"])
    os.replace(partial, path)
