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
                         f"being surer than {_percent(cap)} on average, and at T = 1 the model is already at least that sure "
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


def _bootstrap_ece(confidence: np.ndarray, correct: np.ndarray, n_bins: int, n_resamples: int,
                   seed: int) -> np.ndarray:
    """ECE of each resample of the examples (with replacement), in blocks of bounded size."""
    from .intervals import _blocks

    n = confidence.size
    bins = _bin_index(confidence, n_bins)
    rng = np.random.default_rng(seed)
    scores = np.empty(n_resamples)
    for block in _blocks(n_resamples, n):
        rows = block.stop - block.start
        picked = rng.integers(0, n, size=(rows, n))
        cells = (np.arange(rows)[:, None] * n_bins + bins[picked]).ravel()
        size = rows * n_bins
        conf_sum = np.bincount(cells, weights=confidence[picked].ravel(), minlength=size).reshape(rows, n_bins)
        right_sum = np.bincount(cells, weights=correct[picked].ravel().astype(np.float64),
                                minlength=size).reshape(rows, n_bins)
        scores[block] = np.abs(right_sum - conf_sum).sum(axis=1) / n
    return scores


def ece_interval(probs, targets, n_bins: int = 15, level: float = 0.95, n_resamples: int = 2000,
                 seed: int = 0) -> list[float]:
    """[low, high]: the expected calibration errors these examples cannot rule out.

    A percentile bootstrap over the examples, widened the way trust.floors widens any interval that
    resampling cannot stretch: the ECE is never below the gap between overall accuracy and mean
    confidence, and the counts (k right of n) know the accuracy only up to its Wilson interval
    [L, U]. So the upper end is at least max(|L - c|, |U - c|) and the lower end at most the distance
    from the mean confidence c to [L, U]. On 40 of 40 right at confidence 99.9% every resample gives
    an ECE of 0.001, but a model that is right 91% of the time (Wilson's L) gives 40 of 40 too: the
    range is 0 to 0.09."""
    from .intervals import _percentile_interval
    from .proportions import wilson_interval

    confidence, correct = _top_label(probs, targets)
    if confidence.size == 0:
        return [0.0, 1.0]
    measured = expected_calibration_error(probs, targets)
    low, high = _percentile_interval(_bootstrap_ece(confidence, correct, n_bins, n_resamples, seed), level)
    acc_low, acc_high = wilson_interval(int(correct.sum()), confidence.size, level)
    mean_confidence = float(confidence.mean())
    low = min(low, measured, max(acc_low - mean_confidence, mean_confidence - acc_high, 0.0))
    high = max(high, measured, abs(mean_confidence - acc_low), abs(mean_confidence - acc_high))
    return [round(max(low, 0.0), 4), round(min(high, 1.0), 4)]
