"""A finished model on another site's labelled data, without retraining (issue 34): stream the new examples
through the exported model (as `Predictor`, exactly as try-it answers), then write `validation.json` and
`validation_predictions.csv` into a fresh `validation/<id>/` folder of the run (tl_ui/core/runfolder.py).
The numbers come from tl_ui/engine/evaluation/external.py. Called by the inference worker's `validate`
verb and by `python -m tl_ui validate` (in its own process), the same function for both.
"""
from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from tl_ui.core.runfolder import VALIDATION_PREDICTIONS_CSV, RunFolder
from tl_ui.engine.evaluation.external import match_classes, validation_report
from tl_ui.engine.inference.batch import BATCH, answer_row, columns, has_decision, stream_answers
from tl_ui.engine.inference.predict import PredictError


def refuse_unsuitable_data(dataset, predictor, manifest: dict, doing: str) -> None:
    """New labelled data that validation and recalibration cannot use: several labels per example, or inputs of
    another kind than the model reads. Raises PredictError saying which and what to do."""
    if getattr(dataset, "multilabel", False) or manifest.get("multilabel"):
        raise PredictError(f"{doing} is built for models with one label per example; this run or these data have "
                           "several labels per example.")
    if dataset.modality != predictor.modality:
        raise PredictError(f"This run's model reads {predictor.modality}s, but the new data are {dataset.modality}s. "
                           "Upload data of the kind the model was trained on.")


def item_names(dataset) -> list[str]:
    """What the table calls each example: an image's path inside the upload (its file name, never a DICOM
    header field), or the text itself."""
    if dataset.modality != "image" or not dataset.items:
        return [str(x) for x in dataset.items]
    root = Path(os.path.commonpath([str(Path(p).parent) for p in dataset.items]))
    return [Path(p).relative_to(root).as_posix() for p in dataset.items]


def validate_run(run_dir: str | Path, dataset, *, data_sha256: str = "", out_dir: Optional[str | Path] = None,
                 predictor=None, batch_size: int = BATCH,
                 on_progress: Callable[[int, int, str], None] = lambda done, total, message: None,
                 should_stop: Callable[[], bool] = lambda: False) -> dict:
    """validation.json's dict, with `folder`: where it and validation_predictions.csv were written
    (`out_dir`, or a new folder under the run's validation/). Raises PredictError with a plain sentence."""
    run = RunFolder(run_dir)
    if predictor is None:
        from tl_ui.engine.inference.predict import Predictor

        predictor = Predictor.load(run.path)
    refuse_unsuitable_data(dataset, predictor, run.manifest(), "Validating on new data")
    classes = list(predictor.classes)
    match = match_classes(classes, dataset.labels)
    if not match.keep:
        raise PredictError("None of the new data's labels is one of the model's classes ("
                           + ", ".join(f"'{c}'" for c in classes) + "). Check the class names: they must be the "
                           "ones the model was trained with.")
    kept = dataset.subset(match.keep)
    names = item_names(kept)
    folder = Path(out_dir) if out_dir else run.new_validation_folder()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        return _validate_into(folder, run, predictor, dataset, kept, names, match, data_sha256, batch_size,
                              on_progress, should_stop)
    except BaseException:
        if not out_dir:   # a stopped or failed check leaves no folder behind
            shutil.rmtree(folder, ignore_errors=True)
        raise


def _validate_into(folder: Path, run: RunFolder, predictor, dataset, kept, names, match, data_sha256, batch_size,
                   on_progress, should_stop) -> dict:
    classes = list(predictor.classes)
    point = predictor.manifest.get("operating_point") or None
    decision = has_decision(predictor)
    probs = np.zeros((len(kept), len(classes)))
    sets, unlike, decisions = [], [], []
    csv_path = folder / VALIDATION_PREDICTIONS_CSV
    partial = folder / f".{VALIDATION_PREDICTIONS_CSV}.partial"
    try:
        with open(partial, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns(classes, decision, first=("item", "true")) + ["correct"],
                                    extrasaction="ignore")
            writer.writeheader()
            for start, answers in stream_answers(predictor, kept.items, names=names, batch_size=batch_size, on_progress=on_progress,
                                                 should_stop=should_stop, what="Checking the model on"):
                for offset, answer in enumerate(answers):
                    index = start + offset
                    probs[index] = [answer["probabilities"].get(c, 0.0) for c in classes]
                    sets.append(answer.get("prediction_set"))
                    unlike.append(answer.get("unlike_training_data"))
                    decisions.append(answer.get("decision"))
                    row = answer_row(answer, classes)
                    true = classes[int(match.targets[index])]
                    writer.writerow({"item": names[index], "true": true, **row,
                                     "correct": str(classes[int(probs[index].argmax())] == true).lower()})
        os.replace(partial, csv_path)
    finally:
        partial.unlink(missing_ok=True)
    positive_scores = None
    if point and point.get("positive_class") in classes:
        positive_scores = probs[:, classes.index(point["positive_class"])]
    report = validation_report(
        run_id=run.id, data_sha256=data_sha256, classes=classes, probs=probs, match=match, prediction_sets=sets,
        unlike=unlike, internal_metrics=run.metrics() or {},
        set_level=(predictor.conformal or {}).get("default_level"),
        groups=kept.groups, group_column=kept.group_column, decisions=decisions if point else None,
        positive_scores=positive_scores, operating_point=point, source=dataset.source)
    run.write_validation(folder, report)
    return {**report, "folder": str(folder)}
