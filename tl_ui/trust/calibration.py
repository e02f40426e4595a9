"""Calibration: does "90% sure" mean right 9 times in 10? Temperature scaling, ECE, reliability bins."""
from __future__ import annotations

import numpy as np
from scipy.optimize import brentq, minimize_scalar
from scipy.special import log_softmax

# Search range for the temperature; wide enough for any real model, narrow enough to stay stable.
_MIN_TEMPERATURE, _MAX_TEMPERATURE = 0.05, 20.0
# exp(-50) is ~1e-22: far below any probability that matters, yet finite.
_LOG_PROB_FLOOR_MARGIN = 50.0


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of logits / temperature, stable for large or -inf logits."""
    scaled = np.asarray(logits, dtype=np.float64) / float(temperature)
    shifted = scaled - np.max(scaled, axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def _finite_logits(logits: np.ndarray) -> np.ndarray:
    """Replace -inf (e.g. log of a zero probability) by a very low finite value."""
    if np.isnan(logits).any() or np.isposinf(logits).any():
        raise ValueError("logits must not contain NaN or +inf")
    finite = logits[np.isfinite(logits)]
    if finite.size == logits.size:
        return logits
    floor = (finite.min() if finite.size else 0.0) - _LOG_PROB_FLOOR_MARGIN
    return np.where(np.isfinite(logits), logits, floor)


def _unbounded_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """The temperature minimising the mean NLL of softmax(logits / T) within the search range."""
    rows = np.arange(len(targets))

    def mean_nll(log_temperature: float) -> float:
        log_probs = log_softmax(logits / np.exp(log_temperature), axis=1)
        return float(-log_probs[rows, targets].mean())

    # Optimising log T keeps T positive and makes the search symmetric (T and 1/T equally far).
    result = minimize_scalar(mean_nll, bounds=(np.log(_MIN_TEMPERATURE), np.log(_MAX_TEMPERATURE)),
                             method="bounded", options={"xatol": 1e-5})
    return float(np.exp(result.x))


def _mean_confidence(logits: np.ndarray, temperature: float) -> float:
    return float(softmax(logits, temperature).max(axis=1).mean())


def _percent(x: float) -> str:
    return f"{100 * x:.0f}%"


def temperature_fit(logits: np.ndarray, targets: np.ndarray) -> dict:
    """Temperature scaling that cannot make the model surer than its validation examples allow.

    Returns {"temperature", "fit", "note", "nll_optimum", "confidence_cap"}; `fit` is one of

    * "kept at 1": no validation examples, or none wrong. When every validation example is right
      the likelihood keeps improving as T -> 0 (on separable data T went to 0.07 and the export
      answered 100.0% for anything), so those examples cannot say how sure the model may be.
    * "fitted": the likelihood's own optimum (as in Guo et al. 2017). Softening (T > 1) is never
      limited: it only makes the model less sure.
    * "limited": the optimum was sharper (T < 1) than the examples support. Sharpening may go only
      until the mean top-class probability on the validation examples reaches the rule-of-succession
      estimate of their accuracy, (right + 1) / (n + 2): a calibrated model is on average as sure as
      it is right, and with k of n right the data do not support being surer than that (31 of 32
      right: 94%; 199 of 200: 99%). If the model is already that sure at T = 1, T stays 1.

    Works on log-probabilities too: softmax ignores a per-row constant, so log p / T behaves like z / T.
    """
    logits = np.asarray(logits, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.int64).reshape(-1)
    if logits.size == 0 or targets.size == 0:
        return {"temperature": 1.0, "fit": "kept at 1", "nll_optimum": None, "confidence_cap": None,
                "note": "Kept at 1: there were no validation examples to calibrate on."}
    logits = _finite_logits(logits.reshape(len(targets), -1))
    n = len(targets)
    right = int((logits.argmax(axis=1) == targets).sum())
    cap = (right + 1) / (n + 2)
    optimum = _unbounded_temperature(logits, targets)   # what the plain fit gives; recorded for comparison
    record = {"nll_optimum": round(optimum, 4), "confidence_cap": round(cap, 4)}
    if right == n:
        return {**record, "temperature": 1.0, "fit": "kept at 1",
                "note": (f"Kept at 1: all {n} validation examples were right, so they cannot show how sure the "
                         "model should be (fitting would only make it surer, towards 100% for everything).")}
    if optimum >= 1.0 or _mean_confidence(logits, optimum) <= cap:
        sharper = "sharpens" if optimum < 1 else "softens"
        return {**record, "temperature": optimum, "fit": "fitted",
                "note": (f"Fitted on {n} validation examples ({right} right): T = {optimum:.2f} {sharper} the "
                         "model's probabilities to match how often it was right there.")}
    if _mean_confidence(logits, 1.0) >= cap:
        return {**record, "temperature": 1.0, "fit": "kept at 1",
                "note": (f"Kept at 1: with {right} of {n} validation examples right, the data do not support "
                         f"being surer than {_percent(cap)} on average, and at T = 1 the model already is that sure "
                         f"(the unlimited fit wanted T = {optimum:.2f}, sharper still).")}
    # mean confidence falls as T grows: find where it meets the cap between the optimum and 1
    limited = float(np.exp(brentq(lambda log_t: _mean_confidence(logits, np.exp(log_t)) - cap,
                                  np.log(optimum), 0.0, xtol=1e-6)))
    return {**record, "temperature": limited, "fit": "limited",
            "note": (f"Limited to T = {limited:.2f}: the best fit on {n} validation examples wanted "
                     f"T = {optimum:.2f}, which would make the model surer on average than {right} of {n} right "
                     f"supports ({_percent(cap)}).")}


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """The temperature of `temperature_fit` (1.0 for empty input or when nothing can inform it)."""
    return float(temperature_fit(logits, targets)["temperature"])


def _top_label(probs, targets) -> tuple[np.ndarray, np.ndarray]:
    """Confidence (max probability) and correctness of the top label for each row."""
    probs = np.asarray(probs, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.int64).reshape(-1)
    if probs.size == 0 or targets.size == 0:
        return np.empty(0), np.empty(0, dtype=bool)
    probs = probs.reshape(len(targets), -1)
    return probs.max(axis=1), probs.argmax(axis=1) == targets


def _bin_index(confidence: np.ndarray, n_bins: int) -> np.ndarray:
    # Bins are (low, high]; a confidence of exactly 0 joins the first bin.
    return np.clip(np.ceil(confidence * n_bins).astype(np.int64) - 1, 0, n_bins - 1)


def expected_calibration_error(probs, targets, n_bins: int = 15) -> float:
    """Top-label ECE: weighted mean |accuracy - confidence| over equal-width confidence bins."""
    confidence, correct = _top_label(probs, targets)
    if confidence.size == 0:
        return 0.0
    bins = _bin_index(confidence, n_bins)
    counts = np.bincount(bins, minlength=n_bins)
    gap = np.abs(np.bincount(bins, weights=correct.astype(np.float64), minlength=n_bins)
                 - np.bincount(bins, weights=confidence, minlength=n_bins))
    return float(gap.sum() / counts.sum())


def reliability_bins(probs, targets, n_bins: int = 15) -> list[dict]:
    """Per non-empty confidence bin: its range, mean confidence, accuracy and count (for a diagram)."""
    confidence, correct = _top_label(probs, targets)
    bins = _bin_index(confidence, n_bins)
    result = []
    for b in np.unique(bins):
        in_bin = bins == b
        result.append({
            "low": round(b / n_bins, 4),
            "high": round((b + 1) / n_bins, 4),
            "confidence": round(float(confidence[in_bin].mean()), 4),
            "accuracy": round(float(correct[in_bin].mean()), 4),
            "count": int(in_bin.sum()),
        })
    return result


def ece_interval(probs, targets, n_bins: int = 15, level: float = 0.95) -> list[float]:
    """[low, high]: the expected calibration errors the per-bin counts allow.

    In each confidence bin the accuracy is k right of n_b, known only up to its Wilson interval
    [L_b, U_b]; the ECE computed with any accuracy inside those intervals lies in
    [sum w_b * distance(conf_b, [L_b, U_b]), sum w_b * max(|conf_b - L_b|, |conf_b - U_b|)]
    (w_b = n_b / n). So 40 of 40 right at confidence 99.9% has an ECE of 0.001, but anything up to
    0.09 cannot be ruled out: 40 examples cannot tell a model that is right 91% of the time apart.
    A per-bin bound, not a joint confidence interval: it states what the counts cannot exclude."""
    from .intervals import wilson_interval

    confidence, correct = _top_label(probs, targets)
    if confidence.size == 0:
        return [0.0, 1.0]
    bins = _bin_index(confidence, n_bins)
    low = high = 0.0
    for b in np.unique(bins):
        in_bin = bins == b
        count = int(in_bin.sum())
        conf = float(confidence[in_bin].mean())
        acc_low, acc_high = wilson_interval(int(correct[in_bin].sum()), count, level)
        weight = count / confidence.size
        low += weight * max(acc_low - conf, conf - acc_high, 0.0)
        high += weight * max(abs(conf - acc_low), abs(conf - acc_high))
    return [round(low, 4), round(min(high, 1.0), 4)]
