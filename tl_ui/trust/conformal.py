"""Split-conformal prediction sets with the LAC score (score = 1 - probability of the true class).

Given held-out calibration examples, a set {k : 1 - p_k <= qhat} holds the true class for at least
`level` of new examples from the same distribution, whatever the model.
"""
from __future__ import annotations

import math

import numpy as np


def _ceil(value: float) -> int:
    # Round first so float noise (1 / (1 - 0.9) == 10.000000000000002) does not bump the ceiling.
    return math.ceil(round(value, 9))


def _check_level(level: float) -> float:
    level = float(level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    return level


def min_calibration_size(level: float) -> int:
    """Smallest calibration size with a finite conformal quantile at this level: ceil(1/alpha - 1)."""
    alpha = 1.0 - _check_level(level)
    return _ceil(1.0 / alpha - 1.0)


def conformal_threshold(cal_probs, cal_targets, level: float = 0.9) -> float | None:
    """Score threshold qhat, or None when there are too few calibration examples for this level."""
    level = _check_level(level)
    targets = np.asarray(cal_targets, dtype=np.int64).reshape(-1)
    n = len(targets)
    if n == 0 or n < min_calibration_size(level):
        return None
    probs = np.asarray(cal_probs, dtype=np.float64).reshape(n, -1)
    scores = np.sort(1.0 - probs[np.arange(n), targets])
    # The k-th smallest score with k = ceil((n + 1) * level): the finite-sample-corrected quantile.
    # (This is np.quantile(scores, k / n, method="inverted_cdf"); method="higher" would pick one
    # order statistic too far whenever k < n, giving needlessly large sets.)
    rank = min(_ceil((n + 1) * level), n)
    return float(scores[rank - 1])


def _set_mask(probs: np.ndarray, qhat: float) -> np.ndarray:
    mask = (1.0 - probs) <= qhat
    empty = ~mask.any(axis=1)
    mask[empty, probs[empty].argmax(axis=1)] = True  # never hand back an empty set
    return mask


def _as_probs(probs) -> np.ndarray:
    probs = np.asarray(probs, dtype=np.float64)
    return probs.reshape(1, -1) if probs.ndim == 1 else probs


def prediction_sets(probs, qhat: float) -> list[list[int]]:
    """Class indices {k : 1 - p_k <= qhat} per row; the argmax alone if that would be empty."""
    probs = _as_probs(probs)
    if probs.size == 0:
        return []
    return [np.flatnonzero(row).tolist() for row in _set_mask(probs, qhat)]


def set_coverage_and_size(probs, targets, qhat: float) -> tuple[float, float]:
    """(share of rows whose set holds the true class, mean set size)."""
    probs = _as_probs(probs)
    targets = np.asarray(targets, dtype=np.int64).reshape(-1)
    if targets.size == 0:
        return 0.0, 0.0
    mask = _set_mask(probs, qhat)
    coverage = mask[np.arange(len(targets)), targets].mean()
    return round(float(coverage), 4), round(float(mask.sum(axis=1).mean()), 4)
