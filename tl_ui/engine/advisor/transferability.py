"""Scores of how well frozen features suit a labelled dataset, before any training.

* `knn_cv_accuracy`: cross-validated k-nearest-neighbour accuracy on the (L2-normalised) features,
  with a Nadeau-Bengio corrected t interval. Plain kNN beat 23 published transferability scores in
  Sorkhei et al. (TMLR 2025).
* `logme`: LogME (You et al., ICML 2021), the log marginal evidence of a Bayesian linear model from
  the features to each one-hot label column, per example, averaged over classes; its evidence
  maximisation is the paper's fixed-point iteration (MacKay), computed through one SVD.

numpy and scikit-learn only: no torch here.
"""
from __future__ import annotations

import warnings

import numpy as np
from sklearn.model_selection import RepeatedStratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from threadpoolctl import threadpool_limits

from tl_ui.trust.intervals import corrected_t_interval
from tl_ui.trust.proportions import DEFAULT_LEVEL

MAX_NEIGHBOURS = 10
LOGME_MAX_ITER = 11   # the paper's code: converges in two or three steps, at most ten


def knn_cv_accuracy(features, targets, *, folds: int = 5, repeats: int = 3, seed: int = 0,
                    level: float = DEFAULT_LEVEL) -> dict:
    """{"accuracy", "accuracy_ci", "k", "folds", "repeats"}: repeated stratified k-fold accuracy of a
    cosine kNN classifier. k is at most 10 and at most the smallest class's count in a training fold,
    so that a small class can still win a vote. Raises ValueError when some class has one example."""
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(targets, dtype=np.int64).reshape(-1)
    if len(x) != len(y):
        raise ValueError(f"features and targets differ in length: {len(x)} and {len(y)}")
    _, counts = np.unique(y, return_counts=True)
    if len(counts) < 2 or counts.min() < 2:
        raise ValueError("Ranking models needs at least two classes with two or more examples each.")
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)   # cosine distance as Euclidean
    folds = int(max(2, min(folds, counts.min())))
    k = int(max(1, min(MAX_NEIGHBOURS, counts.min() - int(np.ceil(counts.min() / folds)))))
    scores, test_over_train = [], []
    splitter = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.filterwarnings("ignore", message=".*least populated class.*")
        for train_idx, test_idx in splitter.split(x, y):
            knn = KNeighborsClassifier(n_neighbors=min(k, len(train_idx))).fit(x[train_idx], y[train_idx])
            scores.append(float((knn.predict(x[test_idx]) == y[test_idx]).mean()))
            test_over_train.append(len(test_idx) / len(train_idx))
    scores_arr = np.asarray(scores)
    return {"accuracy": round(float(scores_arr.mean()), 4),
            # never narrower than n examples allow (every fold right: Wilson on n, tl_ui/trust/floors.py)
            "accuracy_ci": [float(v) for v in corrected_t_interval(scores_arr, float(np.mean(test_over_train)), level,
                                                                   n_examples=len(y))],
            "k": k, "folds": folds, "repeats": int(repeats)}


def logme(features, targets) -> float:
    """LogME of `features` (n x d) for integer class `targets`: the mean over classes of the maximised
    log evidence per example of y_c = features @ w + noise, w ~ N(0, 1/alpha), noise ~ N(0, 1/beta).
    Higher is better; values compare models on the same data only."""
    f = np.asarray(features, dtype=np.float64)
    y = np.asarray(targets, dtype=np.int64).reshape(-1)
    n, d = f.shape
    # f = u diag(sigma) vt: the d x d matrix f.T f has eigenvalues sigma**2 (and d - r zeros)
    u, sigma, _ = np.linalg.svd(f, full_matrices=False)
    keep = sigma > sigma.max() * 1e-10 if len(sigma) else sigma > 0
    u, sigma = u[:, keep], sigma[keep]
    evidences = [_class_evidence((y == c).astype(np.float64), u, sigma, n, d) for c in np.unique(y)]
    return float(np.mean(evidences))


def _class_evidence(y: np.ndarray, u: np.ndarray, sigma: np.ndarray, n: int, d: int) -> float:
    """The paper's iteration step by step (its reference code), with f.T f's eigen-decomposition
    taken from the SVD of f: the d - r zero eigenvalues add nothing to gamma and log(alpha) each to
    the log-determinant."""
    s = sigma ** 2                        # the non-zero eigenvalues of f.T f
    z = u.T @ y                           # y's coordinates in the column space of f
    outside = float(y @ y - z @ z)        # the part of y no weights can fit
    alpha, beta, epsilon = 1.0, 1.0, 1e-5
    lam = alpha / beta
    for _ in range(LOGME_MAX_ITER):
        gamma = float((s / (s + lam)).sum())
        shrink = beta / (alpha + beta * s)
        alpha_de = float(((shrink * sigma * z) ** 2).sum())               # |m|^2, m the posterior mean
        alpha = gamma / (alpha_de + epsilon)
        beta_de = outside + float(((z - shrink * s * z) ** 2).sum())      # |y - f m|^2
        beta = (n - gamma) / (beta_de + epsilon)
        new_lam = alpha / beta
        if abs(new_lam - lam) / lam < 0.01:
            break
        lam = new_lam
    log_det = float(np.log(alpha + beta * s).sum()) + (d - len(s)) * np.log(alpha)
    evidence = (d / 2 * np.log(alpha) + n / 2 * np.log(beta) - log_det / 2 - beta / 2 * (beta_de + epsilon)
                - alpha / 2 * (alpha_de + epsilon) - n / 2 * np.log(2 * np.pi))
    return float(evidence / n)
