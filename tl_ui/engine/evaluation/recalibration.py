"""Recalibrate a finished model for a new site (issue 34, item 2), without retraining: on a random stratified
half of the site's labelled data (seeded) refit the temperature (the bounded fit, trust.temperature_fit, through
report.calibrate), the prediction-set thresholds and the operating point's threshold (the run's own rule,
trust.operating_point.choose_threshold); report before and after on the other half only — ECE with its interval,
set coverage, accuracy, sensitivity / specificity at the threshold. No example is fitted on and reported on.

Input: the parent model's calibrated probabilities on the site's examples (what its export answers). The refit
temperature applies on top of the parent's (already folded into the shared weights): softmax(log p / T_site).
numpy, scikit-learn and tl_ui.trust only: no torch, no model (tl_ui/engine/inference/recalibration.py streams
the data through the model and writes the new run folder).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from tl_ui import trust
from tl_ui.engine.evaluation.report import build_metrics, calibrate
from tl_ui.trust.operating_point import choose_threshold, operating_point_metrics, report_at_threshold

SPLIT_METHOD = ("random stratified half (scikit-learn train_test_split, seeded): the temperature, the prediction-set "
                "thresholds and the operating point's threshold are fitted on one half; every number is measured "
                "on the other half only")
MIN_PER_HALF = 10   # fewer site examples than this in a half: nothing honest can be fitted and reported


class RecalibrationError(ValueError):
    """Too few examples (or classes) to fit on one half and report on the other; the message says what to do."""


@dataclass
class Recalibrated:
    metrics: dict            # the new version's metrics.json: measured on the held-back half
    calibration: dict        # report.calibrate's dict: temperature (on top of the parent's), thresholds, n_calibration
    operating_point: Optional[dict]   # the saved operating point with its refitted threshold, or None
    block: dict              # metrics.json's `recalibration`: the split, before vs after, the sentence
    fit_rows: np.ndarray     # rows fitted on
    report_rows: np.ndarray  # rows reported on


def stratified_halves(targets: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit rows, report rows): a seeded random half, stratified by class where every class has two examples."""
    from sklearn.model_selection import train_test_split

    targets = np.asarray(targets, dtype=np.int64).reshape(-1)
    n = len(targets)
    if n < 2 * MIN_PER_HALF:
        raise RecalibrationError(
            f"Recalibrating needs at least {2 * MIN_PER_HALF} labelled examples of the new site (half to refit on, "
            f"half to check on); these data have {n}. Add examples and try again.")
    rows = np.arange(n)
    counts = np.bincount(targets)
    stratify = targets if counts[counts > 0].min() >= 2 else None
    fit, report = train_test_split(rows, test_size=n // 2, random_state=int(seed), stratify=stratify)
    return np.sort(fit), np.sort(report)


def _log(probs: np.ndarray) -> np.ndarray:
    return np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-12, None))


def _side(probs: np.ndarray, targets: np.ndarray, qhat: Optional[float], point: Optional[dict],
          threshold: Optional[float], classes: list[str], level: float, seed: int) -> dict:
    """One column of "before vs after" on the held-back half."""
    n = len(targets)
    right = int((probs.argmax(axis=1) == targets).sum())
    out = {"ece": round(trust.expected_calibration_error(probs, targets), 4),
           "ece_ci": trust.ece_interval(probs, targets, level=level, seed=seed),
           "accuracy": round(right / n, 4), "accuracy_ci": list(trust.wilson_interval(right, n, level)),
           "coverage": None, "coverage_ci": None, "mean_set_size": None}
    if qhat is not None:
        coverage, size = trust.set_coverage_and_size(probs, targets, qhat)
        out.update(coverage=coverage, mean_set_size=size,
                   coverage_ci=list(trust.wilson_interval(int(round(coverage * n)), n, level)))
    if point and threshold is not None:
        k = classes.index(point["positive_class"])
        at = report_at_threshold(probs[:, k], targets == k, float(threshold), level)
        out.update(threshold=float(threshold), **{key: at[key] for key in
                                                  ("sensitivity", "sensitivity_ci", "specificity", "specificity_ci")})
    return out


def _range(ci) -> str:
    return f"{ci[0]:.2f}–{ci[1]:.2f}"


def recalibrate(probs: np.ndarray, targets: np.ndarray, classes: Sequence[str], names: Sequence[str], *,
                conformal: Optional[dict], operating_point: Optional[dict], set_level: float, seed: int,
                level: float = trust.DEFAULT_LEVEL) -> Recalibrated:
    """`probs`: (n, K) the parent's calibrated probabilities on the site's kept examples; `targets`: their class
    ids; `names`: what the tables call them; `conformal` / `operating_point`: the parent export's blocks
    (transfer_lab.json)."""
    classes = list(classes)
    probs = np.asarray(probs, dtype=np.float64).reshape(-1, len(classes))
    targets = np.asarray(targets, dtype=np.int64).reshape(-1)
    fit, held = stratified_halves(targets, seed)
    logp = _log(probs)
    fitted = calibrate(logp[fit], targets[fit])
    after = trust.softmax(logp, fitted["temperature"])
    thresholds_before = (conformal or {}).get("thresholds") or {}
    qhat_before = thresholds_before.get(str(set_level))
    qhat_after = (fitted.get("thresholds") or {}).get(str(set_level))

    saved = None
    threshold_before = threshold_after = None
    if operating_point and operating_point.get("positive_class") in classes:
        k = classes.index(operating_point["positive_class"])
        threshold_before = float(operating_point["threshold"])
        rule = operating_point.get("rule") or "youden"
        choice = choose_threshold(after[fit, k], targets[fit] == k, rule, operating_point.get("target"))
        threshold_after = float(choice["threshold"])
        saved = {**{key: operating_point.get(key) for key in ("positive_class", "rule", "target")},
                 "threshold": threshold_after, "chosen_on": choice["chosen_on"] if rule == "threshold" else "site"}

    metrics = build_metrics(logp[held], targets[held], classes, [names[i] for i in held], fitted,
                            set_level=set_level, seed=seed)
    metrics["conformal"]["n_calibration"] = int(len(fit))
    if saved is not None:   # the operating point chosen on the fit half, measured on the held-back half
        blocks = operating_point_metrics(after[fit], targets[fit], after[held], targets[held], classes,
                                         positive_class=saved["positive_class"], rule=saved["rule"],
                                         target=saved["target"], seed=seed, level=level)
        metrics.update({key: value for key, value in blocks.items() if value is not None})
        metrics["operating_point"]["chosen_on"] = saved["chosen_on"]
    metrics["evaluation"] = {
        "design": "site_halves", "reported_on": "held-back half of the new site's data", "n_reported": int(len(held)),
        "chosen_on": "the other half of the new site's data", "n_chosen": int(len(fit)),
        "chosen": ["temperature", "prediction-set thresholds"] + (["operating-point threshold"] if saved else []),
        "sentence": (f"Refitted on {len(fit)} of the new site's {len(targets)} examples and measured on the other "
                     f"{len(held)}; the model's weights are its parent's (not retrained).")}
    metrics["n_train"] = 0

    before_side = _side(probs[held], targets[held], qhat_before, saved, threshold_before, classes, level, seed)
    after_side = _side(after[held], targets[held], qhat_after, saved, threshold_after, classes, level, seed)
    sentence = (f"Refitted on {len(fit)} of your {len(targets)} new examples; on the other {len(held)} the "
                f"calibration error {'fell' if after_side['ece'] < before_side['ece'] else 'went'} from "
                f"{before_side['ece']:.2f} ({_range(before_side['ece_ci'])}) to {after_side['ece']:.2f} "
                f"({_range(after_side['ece_ci'])})"
                + ("." if after_side["ece_ci"][1] < before_side["ece_ci"][0] else
                   f" (the two ranges overlap: with {len(held)} examples the size of the change is uncertain)."))
    if after_side["coverage"] is not None and before_side["coverage"] is not None:
        sentence += (f" The {set_level:.0%} prediction sets held the right class for {before_side['coverage']:.0%} "
                     f"of them before and {after_side['coverage']:.0%} after.")
    if saved is not None:
        sentence += (f" The threshold for '{saved['positive_class']}' moved from {threshold_before:.3g} to "
                     f"{threshold_after:.3g}: sensitivity {before_side['sensitivity']:.0%} → "
                     f"{after_side['sensitivity']:.0%}, specificity {before_side['specificity']:.0%} → "
                     f"{after_side['specificity']:.0%}.")
    block = {"seed": int(seed), "split": SPLIT_METHOD, "n_fit": int(len(fit)), "n_report": int(len(held)),
             "temperature": round(float(fitted["temperature"]), 4), "temperature_fit": fitted.get("fit"),
             "temperature_note": fitted.get("temperature_note"), "set_level": set_level,
             "thresholds": fitted.get("thresholds"),
             "before": before_side, "after": after_side, "ci_level": level, "sentence": sentence}
    return Recalibrated(metrics, fitted, saved, block, fit, held)
