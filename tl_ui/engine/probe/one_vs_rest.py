"""The multi-label probe's head: one logistic regression per label (scikit-learn, L-BFGS) on the cached
embeddings, one scale for all features, its L2 strength (C) cross-validated within the training
examples per label, positives weighted; the standardisation folded back into the weights, so the
export stays an ordinary linear layer (tl_ui/engine/tasks/multi_label.py fits it for a run)."""
from __future__ import annotations

import numpy as np

from tl_ui.engine.probe.features import Stopped

PROBE_CS = (0.01, 0.1, 1.0, 10.0, 100.0)   # scikit-learn's C, cross-validated
PROBE_METHOD = ("one-vs-rest logistic regression (scikit-learn, L-BFGS) on the embeddings, one scale for all "
                "features; C cross-validated within the training examples per label; positives weighted")


def fit_ovr_head(train_x: np.ndarray, train_y: np.ndarray, pos_weight: np.ndarray, seed: int,
                 should_stop=lambda: False) -> dict:
    """{"weight" (labels, features), "bias", "C", "iterations"}: one logistic regression per label on
    features centred and scaled by one spread (the standardisation folded back into the weights)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):   # tiny problems: BLAS threads beside torch's only spin (solver.py)
        return _fit_ovr_head(train_x, train_y, pos_weight, seed, should_stop)


def _fit_ovr_head(train_x, train_y, pos_weight, seed, should_stop) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    x = np.asarray(train_x, dtype=np.float64)
    mean = x.mean(axis=0)
    scale = max(float(np.sqrt(((x - mean) ** 2).mean())), 1e-12)
    z = (x - mean) / scale
    y = np.asarray(train_y) > 0.5
    weights, biases, chosen, iterations = [], [], [], 0
    for k in range(y.shape[1]):
        if should_stop():
            raise Stopped()
        yk = y[:, k].astype(int)
        weight = {0: 1.0, 1: float(pos_weight[k])}
        folds = int(min(3, yk.sum(), len(yk) - yk.sum()))
        best_c = 1.0
        if folds >= 2:
            cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
            scores = [cross_val_score(LogisticRegression(C=c, class_weight=weight, max_iter=500), z, yk, cv=cv,
                                      scoring="neg_log_loss").mean() for c in PROBE_CS]
            best_c = PROBE_CS[int(np.argmax(scores))]
        model = LogisticRegression(C=best_c, class_weight=weight, max_iter=1000).fit(z, yk)
        weights.append(model.coef_[0] / scale)
        biases.append(model.intercept_[0] - (mean / scale) @ model.coef_[0])
        chosen.append(best_c)
        iterations = max(iterations, int(np.max(model.n_iter_)))
    return {"weight": np.array(weights, dtype=np.float32), "bias": np.array(biases, dtype=np.float32),
            "C": chosen, "iterations": iterations}
