"""Calibration: does "90% sure" mean right 9 times in 10? Temperature scaling, ECE, reliability bins."""
from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
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


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """Temperature T > 0 minimising the NLL of softmax(logits / T); 1.0 for empty input.

    Works on log-probabilities too: softmax ignores a per-row constant, so log p / T behaves like z / T.
    """
    logits = np.asarray(logits, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.int64).reshape(-1)
    if logits.size == 0 or targets.size == 0:
        return 1.0
    logits = _finite_logits(logits.reshape(len(targets), -1))
    rows = np.arange(len(targets))

    def mean_nll(log_temperature: float) -> float:
        log_probs = log_softmax(logits / np.exp(log_temperature), axis=1)
        return float(-log_probs[rows, targets].mean())

    # Optimising log T keeps T positive and makes the search symmetric (T and 1/T equally far).
    result = minimize_scalar(mean_nll, bounds=(np.log(_MIN_TEMPERATURE), np.log(_MAX_TEMPERATURE)),
                             method="bounded", options={"xatol": 1e-5})
    return float(np.exp(result.x))


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
