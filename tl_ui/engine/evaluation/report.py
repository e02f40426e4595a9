"""How far to trust the numbers: intervals, calibration, prediction sets, groups, cross-validation.

Choices (temperature, prediction-set thresholds) are made on the `choose` examples; everything
reported is measured on the `report` examples (see roles.py). The statistics themselves live in
`tl_ui.trust` (statsmodels, fairlearn, scikit-learn).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from pathlib import Path

from tl_ui.core.config import SET_LEVELS
from tl_ui.engine.evaluation.evaluate import evaluate
from tl_ui import trust
from tl_ui.core.runfolder import RunFolder
from tl_ui.trust.floors import FloorLog

CV_BELOW_N = 100    # below this many test examples the cross-validated estimate is shown first


def calibrate(choose_logits: np.ndarray, choose_targets: np.ndarray) -> dict:
    """Temperature and prediction-set thresholds, all fitted on the choose examples. The temperature
    is bounded (trust.calibration.temperature_fit): kept at 1 when the examples cannot inform it,
    never sharper than their accuracy supports; `fit` and `temperature_note` say which happened."""
    fit = trust.temperature_fit(choose_logits, choose_targets)
    temperature = float(fit["temperature"])
    probs = trust.softmax(choose_logits, temperature)
    thresholds = {str(level): trust.conformal_threshold(probs, choose_targets, level) for level in SET_LEVELS}
    return {"temperature": temperature, "thresholds": thresholds, "n_calibration": int(len(choose_targets)),
            "fit": fit["fit"], "temperature_note": fit["note"], "nll_optimum": fit["nll_optimum"],
            "confidence_cap": fit["confidence_cap"]}


def _calibration_record(fitted: dict, probs_before: np.ndarray, probs: np.ndarray, targets: np.ndarray,
                        level: float) -> dict:
    """metrics.json's `calibration`: the temperature and how it was chosen, ECE before and after with
    the range the per-bin counts allow, and the reliability bins."""
    n = len(targets)
    ece_after, ece_after_ci = (trust.expected_calibration_error(probs, targets),
                               trust.ece_interval(probs, targets, 15, level))
    record = {
        "temperature": round(fitted["temperature"], 4),
        # runs fitted before the bounds (calibrate() without `fit`) read as a plain fit
        "fit": fitted.get("fit", "fitted"),
        "temperature_note": fitted.get("temperature_note") or trust.temperature_sentence(fitted),
        "nll_optimum": fitted.get("nll_optimum"),
        "confidence_cap": fitted.get("confidence_cap"),
        "ece_before": trust.expected_calibration_error(probs_before, targets),
        "ece_before_ci": trust.ece_interval(probs_before, targets, 15, level),
        "ece_after": ece_after,
        "ece_after_ci": ece_after_ci,
        "ece_ci_method": ("percentile bootstrap over the test examples (2000 resamples), widened to the gap between "
                          "mean confidence and the accuracy's Wilson interval (what the counts cannot rule out)"),
        "ece_sentence": trust.ece_sentence(ece_after, ece_after_ci, n) if n else "",
        "bins": trust.reliability_bins(probs, targets),
        "bins_before": trust.reliability_bins(probs_before, targets),
        "n_bins": 15,
    }
    return record


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
    floors = FloorLog()
    macro_f1_ci = floors.keep("macro_f1_ci", trust.at_least_as_share(
        metrics["macro_f1"], trust.bootstrap_macro_f1_ci(report_targets, predicted, len(classes), level, seed=seed),
        n, level))
    metrics.update(
        accuracy_ci=list(accuracy_ci),
        macro_f1_ci=macro_f1_ci,
        ci_level=level, ci_method="Wilson score (accuracy, precision, recall); stratified bootstrap, "
                                  "2000 resamples (macro-F1), never narrower than the Wilson interval of "
                                  "macro-F1 as a share of the test examples where the bootstrap collapses "
                                  "or reaches 0 or 1",
        accuracy_sentence=trust.accuracy_sentence(correct, n, accuracy_ci, noun="test examples"),
    )
    if floors.names:
        metrics["macro_f1_sentence"] = trust.floor_sentence("macro-F1", metrics["macro_f1"], n, macro_f1_ci)
    for i, name in enumerate(classes):
        row = metrics["per_class"][name]
        n_pred, n_true = int((predicted == i).sum()), int((report_targets == i).sum())
        hits = int(((predicted == i) & (report_targets == i)).sum())
        row["precision_ci"] = list(trust.wilson_interval(hits, n_pred, level))
        row["recall_ci"] = list(trust.wilson_interval(hits, n_true, level))
    metrics["calibration"] = _calibration_record(fitted, probs_before, probs, report_targets, level)
    metrics["conformal"] = conformal_report(probs, report_targets, fitted, set_level)
    if groups is not None:
        metrics["groups"] = {"column": group_column, **trust.group_metrics(
            report_targets, predicted, list(groups), list(classes), level)}
    metrics["floored_intervals"] = floors.field()
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
