"""Uncertainty intervals for the headline numbers: accuracy, macro-F1 and model comparisons.

Every function is seeded and deterministic, so the same run always reports the same interval.
"""
from __future__ import annotations

import warnings
from typing import Optional

import numpy as np
from threadpoolctl import threadpool_limits
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import RepeatedStratifiedKFold
from sklearn.preprocessing import StandardScaler

from .floors import FloorLog, at_least_as_share, at_least_wilson, paired_floor
from .proportions import DEFAULT_LEVEL


# Resampled index matrices are built in blocks of at most this many cells (~16 MB of int64).
_MAX_BLOCK_CELLS = 2_000_000

CV_METHOD = "repeated stratified k-fold, Nadeau-Bengio corrected t interval"


def _labels(values) -> np.ndarray:
    return np.asarray(values, dtype=np.int64).reshape(-1)


def _check_same_length(*arrays: np.ndarray) -> int:
    lengths = {len(a) for a in arrays}
    if len(lengths) != 1:
        raise ValueError(f"inputs have different lengths: {sorted(lengths)}")
    return lengths.pop()


def _percentile_interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    alpha = 1.0 - level
    low, high = np.quantile(samples, [alpha / 2, 1 - alpha / 2])
    return round(float(low), 4), round(float(high), 4)


def _blocks(n_resamples: int, n: int):
    """Yield slices over the resamples so that one block holds at most _MAX_BLOCK_CELLS indices."""
    size = max(1, _MAX_BLOCK_CELLS // max(n, 1))
    for start in range(0, n_resamples, size):
        yield slice(start, min(start + size, n_resamples))


def macro_f1_rows(true: np.ndarray, preds: np.ndarray, n_classes: int) -> np.ndarray:
    """Macro-F1 of each row of `preds` (shape (b, n)) against the same `true` (shape (n,)).

    Same definition as sklearn's f1_score(labels=range(n_classes), average="macro", zero_division=0).
    """
    rows = preds.shape[0]
    in_range = (preds >= 0) & (preds < n_classes)
    cell = np.arange(rows)[:, None] * n_classes + preds
    pred_counts = np.bincount(cell[in_range], minlength=rows * n_classes).reshape(rows, n_classes)
    hits = in_range & (preds == true[None, :])
    true_pos = np.bincount(cell[hits], minlength=rows * n_classes).reshape(rows, n_classes)
    true_counts = np.bincount(true[(true >= 0) & (true < n_classes)], minlength=n_classes)
    denominator = pred_counts + true_counts[None, :]
    f1 = np.divide(2.0 * true_pos, denominator, out=np.zeros(denominator.shape), where=denominator > 0)
    return f1.mean(axis=1)


def bootstrap_macro_f1_ci(y_true, y_pred, n_classes: int, level: float = DEFAULT_LEVEL,
                          n_resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of macro-F1 from a stratified bootstrap (class sizes kept fixed)."""
    y_true, y_pred = _labels(y_true), _labels(y_pred)
    n = _check_same_length(y_true, y_pred)
    if n == 0:
        return 0.0, 1.0
    rng = np.random.default_rng(seed)
    # Sorting by true class lets every resample share one `true` vector: position j always holds
    # a draw from the same class, so only the predictions need to be gathered.
    order = np.argsort(y_true, kind="stable")
    sorted_true = y_true[order]
    _, starts, counts = np.unique(sorted_true, return_index=True, return_counts=True)
    scores = np.empty(n_resamples)
    for block in _blocks(n_resamples, n):
        rows = block.stop - block.start
        columns = [start + rng.integers(0, count, size=(rows, count)) for start, count in zip(starts, counts)]
        positions = order[np.concatenate(columns, axis=1)]
        scores[block] = macro_f1_rows(sorted_true, y_pred[positions], n_classes)
    return _percentile_interval(scores, level)


def paired_bootstrap_accuracy_diff(y_true, pred_a, pred_b, level: float = DEFAULT_LEVEL,
                                   n_resamples: int = 2000, seed: int = 0) -> dict:
    """Accuracy of A minus accuracy of B, with a paired bootstrap interval (same rows for both).

    When no example was right for one model only in one of the two directions, resampling cannot
    show that direction: the interval is widened to the counts' floor (floors.paired_floor) and
    `floored` says so."""
    y_true, pred_a, pred_b = _labels(y_true), _labels(pred_a), _labels(pred_b)
    n = _check_same_length(y_true, pred_a, pred_b)
    if n == 0:
        return {"difference": 0.0, "ci": [-1.0, 1.0], "n": 0, "floored": False}
    # Per-example difference in correctness (-1, 0 or +1): resampling it resamples both sides together.
    per_example = (pred_a == y_true).astype(np.float64) - (pred_b == y_true).astype(np.float64)
    rng = np.random.default_rng(seed)
    diffs = np.empty(n_resamples)
    for block in _blocks(n_resamples, n):
        positions = rng.integers(0, n, size=(block.stop - block.start, n))
        diffs[block] = per_example[positions].mean(axis=1)
    ci, floored = paired_floor(_percentile_interval(diffs, level), int((per_example > 0).sum()),
                               int((per_example < 0).sum()), n, level)
    return {"difference": round(float(per_example.mean()), 4), "ci": ci, "n": int(n), "floored": floored}


def _corrected_t_interval(scores: np.ndarray, test_over_train: float, level: float) -> tuple[float, float]:
    """Nadeau & Bengio (2003) corrected resampled t interval, clipped to [0, 1].

    Folds share training data, so the plain 1/J variance term is far too small; the extra
    n_test/n_train term accounts for that overlap.
    """
    mean = float(np.mean(scores))
    count = len(scores)
    if count < 2:
        return round(mean, 4), round(mean, 4)
    variance = float(np.var(scores, ddof=1))
    half_width = stats.t.ppf(1 - (1 - level) / 2, count - 1) * np.sqrt((1 / count + test_over_train) * variance)
    return round(max(mean - half_width, 0.0), 4), round(min(mean + half_width, 1.0), 4)


def corrected_t_interval(scores, test_over_train: float, level: float = DEFAULT_LEVEL,
                         n_examples: Optional[int] = None) -> tuple[float, float]:
    """The interval of a mean over resampled folds (public name for other cross-validated scores).

    With `n_examples` (how many distinct examples the folds tested) the scores are accuracies, and
    the interval is at least the Wilson interval of the mean as a share of those examples: when
    every fold scores the same, the fold spread is 0 but the n examples still bound what is known
    (floors.at_least_wilson)."""
    scores = np.asarray(scores, dtype=np.float64)
    interval = _corrected_t_interval(scores, test_over_train, level)
    if n_examples:
        correct = int(round(float(np.mean(scores)) * n_examples))
        interval = tuple(at_least_wilson(interval, correct, int(n_examples), level)[0])
    return interval


def _fit_probe_and_predict(train_x, train_y, test_x) -> np.ndarray:
    if len(np.unique(train_y)) < 2:  # a training fold with one class: the only possible answer
        return np.full(len(test_x), train_y[0])
    scaler = StandardScaler().fit(train_x)
    train_z, test_z = scaler.transform(train_x), scaler.transform(test_x)
    if train_z.shape[1] > train_z.shape[0]:
        # With more features than examples, an L2-penalised linear model's weights lie in the span
        # of the training rows: fitting on their coordinates in that span (rank <= n) gives the same
        # classifier several times faster (1280-d embeddings, 240 training rows). The coordinates come
        # from the n x n Gram matrix (Z = U S V^T: Z Z^T = U S^2 U^T, Z V = U S, a new row's z V =
        # z Z^T U / S): its eigh costs a tenth of the SVD of Z (the repeat run's largest cost).
        eigenvalues, vectors = np.linalg.eigh(train_z @ train_z.T)
        keep = eigenvalues > eigenvalues.max() * 1e-10   # directions the rounding cannot resolve are left out
        singular, vectors = np.sqrt(eigenvalues[keep]), vectors[:, keep]
        train_z, test_z = vectors * singular, (test_z @ train_z.T) @ vectors / singular
    probe = LogisticRegression(max_iter=1000, C=1.0).fit(train_z, train_y)
    return probe.predict(test_z)


def cv_probe_estimate(features: np.ndarray, targets: np.ndarray, n_classes: int, folds: int = 5,
                      repeats: int = 3, seed: int = 0, level: float = DEFAULT_LEVEL) -> dict:
    """Cross-validated accuracy and macro-F1 of a fixed linear probe, with corrected t intervals.

    Each example is tested once per repeat, so the folds together measured `n` examples: the
    accuracy's interval is at least the Wilson interval of its mean as a share of n, and macro-F1's
    is widened the same way where the fold spread says nothing (every fold scored the same, or the
    score is at 0 or 1); `floored_intervals` names what was widened (floors.py)."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim == 1:
        features = features.reshape(-1, 1)
    targets = _labels(targets)
    _check_same_length(features, targets)
    _, class_counts = np.unique(targets, return_counts=True)
    if len(class_counts) < 2:
        raise ValueError("cross-validation needs examples from at least two classes")
    if class_counts.max() < 2:
        raise ValueError("cross-validation needs at least two examples of some class")
    folds = int(max(2, min(folds, class_counts.min())))
    splitter = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    accuracies, macro_f1s, test_over_train = [], [], []
    with warnings.catch_warnings():
        # A class with a single example cannot be in every fold; sklearn warns, we accept it.
        warnings.filterwarnings("ignore", message=".*least populated class.*")
        for train_idx, test_idx in splitter.split(features, targets):
            with threadpool_limits(1):   # small matrices: BLAS threads only contend (100x slower under load)
                predicted = _fit_probe_and_predict(features[train_idx], targets[train_idx], features[test_idx])
            # what accuracy_score and f1_score(labels=range(n_classes), average="macro", zero_division=0) give,
            # without their input checks (14 ms a fold)
            accuracies.append(float(np.mean(predicted == targets[test_idx])))
            macro_f1s.append(float(macro_f1_rows(targets[test_idx], np.asarray(predicted)[None, :], n_classes)[0]))
            test_over_train.append(len(test_idx) / len(train_idx))
    ratio = float(np.mean(test_over_train))
    accuracies, macro_f1s = np.asarray(accuracies), np.asarray(macro_f1s)
    n = len(targets)
    accuracy, macro_f1 = round(float(accuracies.mean()), 4), round(float(macro_f1s.mean()), 4)
    log = FloorLog()
    accuracy_ci = log.keep("accuracy_ci", at_least_wilson(
        _corrected_t_interval(accuracies, ratio, level), int(round(float(accuracies.mean()) * n)), n, level))
    macro_f1_ci = log.keep("macro_f1_ci", at_least_as_share(
        macro_f1, _corrected_t_interval(macro_f1s, ratio, level), n, level))
    return {
        "folds": folds,
        "repeats": int(repeats),
        "n": int(n),
        "accuracy": accuracy,
        "accuracy_ci": accuracy_ci,
        "macro_f1": macro_f1,
        "macro_f1_ci": macro_f1_ci,
        "method": CV_METHOD,
        "floored_intervals": log.field(),
    }
