"""How far to trust the numbers: intervals, calibration, prediction sets, groups, cross-validation.

Choices (temperature, prediction-set thresholds) are made on the `choose` examples; everything
reported is measured on the `report` examples (see roles.py). The statistics themselves live in
`tl_ui.trust` (statsmodels, fairlearn, scikit-learn).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from pathlib import Path

from tl_ui.config import SET_LEVELS
from tl_ui.engine.evaluate import evaluate
from tl_ui import trust
from tl_ui.runfolder import RunFolder

CV_BELOW_N = 100    # below this many test examples the cross-validated estimate is shown first


def calibrate(choose_logits: np.ndarray, choose_targets: np.ndarray) -> dict:
    """Temperature and prediction-set thresholds, all fitted on the choose examples."""
    temperature = float(trust.fit_temperature(choose_logits, choose_targets)) if len(choose_targets) else 1.0
    probs = trust.softmax(choose_logits, temperature)
    thresholds = {str(level): trust.conformal_threshold(probs, choose_targets, level) for level in SET_LEVELS}
    return {"temperature": temperature, "thresholds": thresholds, "n_calibration": int(len(choose_targets))}


def build_metrics(report_logits: np.ndarray, report_targets: np.ndarray, classes: Sequence[str],
                  report_items: Sequence[str], fitted: dict, *, set_level: float, seed: int,
                  groups: Optional[Sequence[str]] = None, group_column: Optional[str] = None) -> dict:
    """metrics.json (docs/contracts.md) for the report examples, with the calibrated probabilities."""
    level = trust.DEFAULT_LEVEL
    probs_before = trust.softmax(report_logits)
    probs = trust.softmax(report_logits, fitted["temperature"])
    metrics = evaluate(probs, report_targets, classes, report_items)
    n, predicted = len(report_targets), probs.argmax(axis=1)
    correct = int((predicted == report_targets).sum())
    accuracy_ci = trust.wilson_interval(correct, n, level)
    metrics.update(
        accuracy_ci=list(accuracy_ci),
        macro_f1_ci=list(trust.bootstrap_macro_f1_ci(report_targets, predicted, len(classes), level, seed=seed)),
        ci_level=level, ci_method="Wilson score (accuracy, precision, recall); stratified bootstrap, "
                                  "2000 resamples (macro-F1)",
        accuracy_sentence=trust.accuracy_sentence(correct, n, accuracy_ci, noun="test examples"),
    )
    for i, name in enumerate(classes):
        row = metrics["per_class"][name]
        n_pred, n_true = int((predicted == i).sum()), int((report_targets == i).sum())
        hits = int(((predicted == i) & (report_targets == i)).sum())
        row["precision_ci"] = list(trust.wilson_interval(hits, n_pred, level))
        row["recall_ci"] = list(trust.wilson_interval(hits, n_true, level))
    metrics["calibration"] = {
        "temperature": round(fitted["temperature"], 4),
        "ece_before": trust.expected_calibration_error(probs_before, report_targets),
        "ece_after": trust.expected_calibration_error(probs, report_targets),
        "bins": trust.reliability_bins(probs, report_targets),
        "bins_before": trust.reliability_bins(probs_before, report_targets),
        "n_bins": 15,
    }
    metrics["conformal"] = conformal_report(probs, report_targets, fitted, set_level)
    if groups is not None:
        metrics["groups"] = {"column": group_column, **trust.group_metrics(
            report_targets, predicted, list(groups), list(classes), level)}
    return metrics


def conformal_report(probs: np.ndarray, targets: np.ndarray, fitted: dict, set_level: float) -> dict:
    qhat = fitted["thresholds"].get(str(set_level))
    out = {"level": set_level, "n_calibration": fitted["n_calibration"], "method": "split conformal (LAC)"}
    if qhat is None:
        need = trust.min_calibration_size(set_level)
        out.update(coverage=None, mean_set_size=None, threshold=None,
                   note=f"Too few validation examples for {set_level:.0%} prediction sets: "
                        f"{fitted['n_calibration']} were kept aside, at least {need} are needed. "
                        "Add examples or pick a lower level.")
        return out
    coverage, size = trust.set_coverage_and_size(probs, targets, qhat)
    out.update(coverage=coverage, mean_set_size=size, threshold=float(qhat),
               coverage_ci=list(trust.wilson_interval(int(round(coverage * len(targets))), len(targets))))
    return out


def cross_validate_probe(features: np.ndarray, targets: np.ndarray, n_classes: int, seed: int) -> Optional[dict]:
    """Repeated stratified k-fold of a linear probe on every labelled example's embedding: a steadier
    estimate than one small test set (the recipe is fixed; nothing is chosen on the test folds)."""
    if np.bincount(targets, minlength=n_classes).min() < 2:
        return None
    try:
        return trust.cv_probe_estimate(features, targets, n_classes, folds=5, repeats=3, seed=seed)
    except ValueError:
        return None


def trust_softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    from tl_ui.trust import softmax

    return softmax(logits, temperature)


def keep_mistake_images(mistakes: list[dict], run: RunFolder, window: Optional[str] = None) -> None:
    """Metadata-free previews of the shown mistakes in the run folder (uploads are cleaned up
    later; an original file may carry identifiers, e.g. a DICOM header, so it is never copied)."""
    from tl_ui.data.images import save_preview_png

    run.mistakes_dir.mkdir(exist_ok=True)
    for i, mistake in enumerate(mistakes):
        source = Path(mistake["item"])
        if source.is_file():
            try:
                target = save_preview_png(source, run.mistakes_dir / f"{i:02d}.png", window=window)
            except (OSError, ValueError):
                continue
            mistake["file"] = str(Path(target).relative_to(run.path))
