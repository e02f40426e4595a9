"""The linear probe's head, fitted full batch in milliseconds (issue 14).

Multinomial logistic regression on the cached embeddings, centred on the training examples' mean,
divided by their one common spread (per-feature spreads on request) and minimised by L-BFGS (scipy's
L-BFGS-B, the solver behind scikit-learn's `LogisticRegression`; the loss and its gradient are
computed with torch in float32). The L2 strength is chosen by stratified k-fold cross-validation
*inside the training examples*: the choose ("validation") and report ("test") examples take no part
in that choice. All folds of one strength are solved as one stacked problem (one matrix product per
evaluation), the strengths walked from the grid's middle, each fit warm-started from its neighbour's.
The standardisation is folded into the exported linear layer, so the saved model stays an ordinary
timm / transformers classifier.

Why not the minibatch loop the other strategies use: on cached features a full-batch solver is both
faster and at least as accurate on every benchmark set, pretrained or random-init (docs/benchmarks.md,
section "iterate"); the minibatch head stays reachable as `RunConfig.extra["probe_head"] = "minibatch"`
and per-feature scaling as `extra["probe_scale"] = "per_feature"`, for that comparison only.
"""
from __future__ import annotations

import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch

from tl_ui.core.config import PROBE_MAX_ITER

# Per-example L2 strength, strongest first, one per decade (as scikit-learn's LogisticRegressionCV spaces
# its Cs); for N training examples, l2 = 1 / (C * N).
L2_GRID = (1.0, 1e-1, 1e-2, 1e-3, 1e-4)
# Sentence embeddings (unit length, cosine geometry): one scale for all features and stronger
# strengths too, as scikit-learn's default C = 1 on unit vectors is; matched it within 0.01 on
# 16-300 sample reviews where the grid above, per-feature scaled, trailed by up to 0.013.
SENTENCE_L2_GRID = (10.0, 3.0, 1.0, 0.3, 0.1, 0.03, 0.01, 1e-3, 1e-4)
# What the app fits with, for every model (see app_options); the benchmark times these options.
APP_OPTIONS = {"isotropic": True, "grid": SENTENCE_L2_GRID}
CV_FOLDS = 3
CV_MAX_ITER = 30
CV_FTOL = 1e-4          # the inner fits only rank the strengths: a looser tolerance ranks them alike
METHOD = ("multinomial logistic regression, full-batch L-BFGS on centred embeddings divided by one common "
          "spread; L2 strength chosen by stratified k-fold cross-validation within the "
          "training examples")


@dataclass
class Iteration:
    """One L-BFGS iteration of the final fit, with its loss on the held-aside (choose) examples."""
    iteration: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    val_macro_f1: float


@dataclass
class HeadFit:
    weight: np.ndarray      # (classes, features) in the raw feature space: the standardisation folded in
    bias: np.ndarray        # (classes,)
    l2: float               # the chosen strength (per-example scale: mean loss + l2/2 |W|^2)
    iterations: int
    cv: Optional[dict]      # {"folds", "grid", "loss"}; None when a class had too few examples to fold
    seconds: float

    def record(self) -> dict:
        """metrics.json's `probe_fit`."""
        return {"method": METHOD, "l2": self.l2, "iterations": self.iterations, "inner_cv": self.cv,
                "fit_seconds": round(self.seconds, 4)}


class _Stacked:
    """Mean weighted cross-entropy + l2/2 |W|^2 of P independent problems on the same rows, each with
    its own row weights (the inner-CV folds: 0 outside a fold's training rows; P = 1 for the final fit),
    as scipy wants it: x (float64) -> (loss, gradient). One matrix product serves every problem (one
    wide product is faster here than P narrow ones, even with the rows a fold does not train on)."""

    def __init__(self, z: torch.Tensor, y: torch.Tensor, weights: torch.Tensor, n_classes: int,
                 should_stop: Callable[[], bool]):
        weights = weights if weights.dim() == 2 else weights.unsqueeze(0)
        self.z, self.zt, self.y, self.k = z, z.T.contiguous(), y, n_classes
        self.weights = (weights / weights.sum(dim=1, keepdim=True).clamp_min(1e-12)).T.unsqueeze(-1)  # (n, P, 1)
        self.p, self.d = weights.shape[0], z.shape[1]
        self.onehot = torch.nn.functional.one_hot(y, n_classes).float().unsqueeze(1)               # (n, 1, k)
        self.l2 = 0.0
        self.should_stop = should_stop
        self.last: Optional[tuple] = None    # (x, data loss, logits) of the last evaluation

    def unpack(self, x: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        t = torch.from_numpy(x).float()
        w = t[: self.p * self.d * self.k].view(self.p, self.d, self.k)
        return w, t[self.p * self.d * self.k:].view(self.p, self.k)

    def logits(self, z: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """(n, P, k)."""
        return (z @ w.permute(1, 0, 2).reshape(self.d, self.p * self.k)).view(len(z), self.p, self.k) + b

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        if self.should_stop():
            from tl_ui.engine.probe.features import Stopped

            raise Stopped()
        w, b = self.unpack(x)
        logits = self.logits(self.z, w, b)
        log_p = logits.log_softmax(-1)
        data_loss = -(log_p * self.onehot * self.weights).sum(dim=(0, 2))            # (P,)
        g = (log_p.exp() - self.onehot) * self.weights                              # (n, P, k)
        grad_w = (self.zt @ g.view(len(self.z), -1)).view(self.d, self.p, self.k).permute(1, 0, 2) + self.l2 * w
        loss = float(data_loss.sum()) + 0.5 * self.l2 * float((w * w).sum())
        self.last = (x.copy(), data_loss, logits)
        grad = torch.cat([grad_w.reshape(-1), g.sum(0).reshape(-1)])
        return loss, grad.double().numpy()


def _minimise(objective: _Stacked, x0: np.ndarray, max_iter: int, callback=None,
              ftol: float = 1e-7) -> tuple[np.ndarray, int]:
    from scipy.optimize import minimize

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = minimize(objective, x0, jac=True, method="L-BFGS-B", callback=callback,
                          options={"maxiter": max_iter, "ftol": ftol, "gtol": 1e-5})
    return result.x, int(result.nit)


@contextmanager
def _few_threads():
    """Small matrices: the BLAS scipy uses on one thread, torch on at most 4. Both libraries' thread
    pools spinning beside each other on a 2-core machine made this fit 10x slower (30 s instead of
    3 s for 1,000 x 1,280); torch alone on both cores is 1.4x faster than on one."""
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(min(before, 4))
    try:
        with threadpool_limits(1, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(before)


def standardise(features: np.ndarray, isotropic: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Mean and spread of each feature over the training examples, the spread floored at the median
    spread (a constant feature gets 1). Without the floor, a unit that barely fired on the training
    examples was blown up to unit spread, and one new example where it fired got a logit in the
    hundreds: confidently wrong, and a calibration temperature at its bound (digits at 64 px, 300
    examples: ECE 0.66; with the floor 0.09, and accuracy 0.60 -> 0.90 on 100 examples)."""
    mean = features.mean(axis=0)
    std = features.std(axis=0)
    if isotropic:   # one scale for all: sentence embeddings keep their cosine geometry (issue 13), and the
        # app's default for images too (no unit is blown up, the floor below is not needed)
        return mean, np.full_like(std, max(float(np.sqrt((std ** 2).mean())), 1e-12))
    std[std < 1e-6 * max(float(std.max()), 1e-12)] = 1.0
    return mean, np.maximum(std, np.median(std))


def fit_head(train_x: np.ndarray, train_y: np.ndarray, n_classes: int, *, choose_x: np.ndarray,
             choose_y: np.ndarray, class_weights: Optional[np.ndarray] = None, seed: int = 0,
             on_iteration: Optional[Callable[[Iteration], None]] = None,
             should_stop: Callable[[], bool] = lambda: False, l2: Optional[float] = None,
             isotropic: bool = False, grid: tuple = L2_GRID) -> HeadFit:
    """Fit the probe's head on the training examples' embeddings. `choose_x/choose_y` (the validation
    examples) are only *watched*: their loss per iteration feeds `on_iteration` (the live curve);
    nothing is chosen on them here (the run chooses the calibration there, as for every strategy).
    `l2`: a fixed strength instead of the cross-validated choice. `isotropic`: one scale for every
    feature (sentence embeddings) instead of each feature's own; `grid`: the strengths tried."""
    with _few_threads():
        return _fit_head(train_x, train_y, n_classes, choose_x, choose_y, class_weights, seed, on_iteration,
                         should_stop, l2, isotropic, tuple(grid))


def _fit_head(train_x, train_y, n_classes, choose_x, choose_y, class_weights, seed, on_iteration, should_stop,
              l2, isotropic=False, grid=L2_GRID) -> HeadFit:
    started = time.perf_counter()
    train_x = np.asarray(train_x, dtype=np.float32)
    mean, std = standardise(train_x, isotropic)
    used = np.flatnonzero(train_x.std(axis=0) > 0)     # a constant feature (a unit that never fires) gets weight 0
    z = torch.from_numpy(((train_x - mean) / std)[:, used]).float()
    y = torch.as_tensor(np.asarray(train_y), dtype=torch.long)
    sample_w = (torch.ones(len(y)) if class_weights is None
                else torch.as_tensor(np.asarray(class_weights), dtype=torch.float32)[y])
    basis = _row_span(z)
    if basis is not None:
        z = z @ basis
    l2, cv, start = ((float(l2), None, None) if l2 is not None else
                     _choose_l2(z, y, sample_w, n_classes, seed, should_stop, grid))

    final = _Stacked(z, y, sample_w, n_classes, should_stop)
    final.l2 = l2
    choose_z = torch.from_numpy(((np.asarray(choose_x, dtype=np.float32) - mean) / std)[:, used]).float()
    if basis is not None:
        choose_z = choose_z @ basis
    choose_t = torch.as_tensor(np.asarray(choose_y), dtype=torch.long)
    count = [0]

    def watch(xk: np.ndarray) -> None:
        count[0] += 1
        if on_iteration is None:
            return
        if final.last is None or not np.array_equal(final.last[0], xk):
            final(xk)
        _, data_loss, logits = final.last
        w, b = final.unpack(xk)
        train_acc = float((logits[:, 0].argmax(-1) == y).float().mean())
        on_iteration(Iteration(count[0], float(data_loss[0]), train_acc,
                               *_watched(choose_z @ w[0] + b[0], choose_t, n_classes, class_weights)))

    x0 = np.zeros(final.d * n_classes + n_classes) if start is None else start.double().numpy()
    x, _ = _minimise(final, x0, PROBE_MAX_ITER, watch)   # from the folds' mean at that strength: fewer iterations
    w, b = final.unpack(x)
    if basis is not None:
        w = basis @ w                                              # back from the rows' span to the features
    w_used, b = w[0].double().numpy(), b[0].double().numpy()
    w = np.zeros((len(mean), n_classes))                           # (d, k) and (k,) in standardised units
    w[used] = w_used
    weight = (w / std[:, None]).T                                 # x -> ((x - mean) / std) @ w + b
    bias = b - (mean / std) @ w
    return HeadFit(weight.astype(np.float32), bias.astype(np.float32), l2, max(count[0], 1), cv,
                   time.perf_counter() - started)


def _row_span(z: torch.Tensor) -> Optional[torch.Tensor]:
    """With clearly fewer examples than features, an orthonormal basis (features x rank) of the span of
    the training rows: an L2-penalised linear model's weights lie in that span (for every inner fold
    too, whose rows are a subset), so solving for their coordinates there gives the same classifier
    with far fewer unknowns (1,280-d embeddings, 200 training examples: 6x fewer)."""
    n, d = z.shape
    if n >= 0.75 * d:
        return None
    _, singular, vt = torch.linalg.svd(z, full_matrices=False)
    keep = singular > singular.max() * 1e-6
    return vt[keep].T.contiguous()


def _watched(logits: torch.Tensor, targets: torch.Tensor, n_classes: int, class_weights) -> tuple:
    """(loss, accuracy, macro-F1) on the watched examples, the loss weighted as the run's criterion is."""
    if len(targets) == 0:
        return float("nan"), float("nan"), float("nan")
    weight = None if class_weights is None else torch.as_tensor(np.asarray(class_weights), dtype=torch.float32)
    loss = torch.nn.functional.cross_entropy(logits, targets, weight=weight)
    predicted = logits.argmax(-1)
    # macro-F1 as scikit-learn's f1_score(average="macro") has it (labels seen in either), without its
    # per-call overhead: this runs once per iteration
    hits = torch.bincount(targets[predicted == targets], minlength=n_classes).float()
    both = (torch.bincount(predicted, minlength=n_classes) + torch.bincount(targets, minlength=n_classes)).float()
    seen = both > 0
    macro_f1 = float((2 * hits[seen] / both[seen]).mean())
    return float(loss), float((predicted == targets).float().mean()), macro_f1


def _choose_l2(z: torch.Tensor, y: torch.Tensor, sample_w: torch.Tensor, n_classes: int, seed: int,
               should_stop, grid: tuple = L2_GRID) -> tuple[float, Optional[dict], Optional[torch.Tensor]]:
    """The L2 strength with the lowest cross-validated log loss (stratified folds of the training
    examples), and the folds' mean weights there (the final fit starts from them). With a class of
    fewer than two examples there is nothing to fold: 1/n, which is scikit-learn's default (C = 1).

    The grid is walked from its middle towards the lower loss, each fit warm-started from its
    neighbour's, until the loss rises: where the loss has one minimum on the grid that
    is the strength a full walk finds, in about half the fits (1,000 x 1,280 digits: 3 of 5)."""
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(y.numpy(), minlength=n_classes)
    present = counts[counts > 0]
    if len(present) < 2 or present.min() < 2:
        return 1.0 / max(len(y), 1), None, None
    folds = int(min(CV_FOLDS, present.min()))
    splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y.numpy()))
    masks = torch.zeros(folds, len(y))
    for f, (train_idx, _) in enumerate(splits):
        masks[f, train_idx] = sample_w[train_idx]
    objective = _Stacked(z, y, masks, n_classes, should_stop)
    losses: dict[int, float] = {}
    solutions: dict[int, np.ndarray] = {}

    def fit(i: int, x0: np.ndarray) -> float:
        objective.l2 = grid[i]
        x, _ = _minimise(objective, x0, CV_MAX_ITER, ftol=CV_FTOL)
        w, b = objective.unpack(x)
        held = torch.zeros(len(y))
        for f, (_, test_idx) in enumerate(splits):
            logits = z[test_idx] @ w[f] + b[f]
            held[test_idx] = -logits.log_softmax(-1)[torch.arange(len(test_idx)), y[test_idx]]
        solutions[i], losses[i] = x, float((held * sample_w).sum() / sample_w.sum())
        return losses[i]

    middle = len(grid) // 2
    fit(middle, np.zeros(folds * (z.shape[1] * n_classes + n_classes)))
    for step in (1, -1):   # weaker first (the usual way down for embeddings), stronger only if that did not help
        i = middle
        while 0 <= i + step < len(grid) and fit(i + step, solutions[i]) < losses[i]:
            i += step
        if i != middle:
            break
    best = min(losses, key=losses.get)
    tried = sorted(losses)
    w, b = objective.unpack(solutions[best])
    start = torch.cat([w.mean(0).reshape(-1), b.mean(0).reshape(-1)])
    return grid[best], {"folds": folds, "grid": [grid[i] for i in tried], "loss": [round(losses[i], 5) for i in tried],
                        "chosen": grid[best]}, start


def sentence_options(sentence: Optional[dict]) -> dict:
    """fit_head's scaling and grid for sentence embeddings (None: per-feature scaling, default grid)."""
    return dict(APP_OPTIONS) if sentence else {}


def app_options(config) -> dict:
    """One common scale and the finer grid for every model: on images it scored at least the minibatch
    head's held-out accuracy in every benchmark cell, where per-feature scaling trailed it by 4 points
    on 100 pretrained digits (docs/benchmarks.md, "iterate"). `extra["probe_scale"] = "per_feature"` gives
    the per-feature scaling and default grid, for that comparison."""
    if (config.extra or {}).get("probe_scale") == "per_feature":
        return {}
    return dict(APP_OPTIONS)
