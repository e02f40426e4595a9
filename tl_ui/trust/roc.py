"""ROC and precision-recall curves, AUROC and AUPRC with their intervals (issue 33).

Pure numpy / scipy / scikit-learn (no torch, no gradio): the engine computes these on the report
("test") examples; the page and the report read the dicts back from metrics.json.

* Curves: scikit-learn's `roc_curve` and `precision_recall_curve`, thinned to at most 200 points
  (`thin_curve`) without losing their shape, with a pointwise band from a seeded stratified bootstrap.
* AUROC: the DeLong variance (fast algorithm of Sun & Xu 2014) with the interval on the logit scale.
  DeLong's variance is 0 when every positive outscores every negative (AUROC 1.0), so alone it would
  claim certainty from a handful of examples; there the interval is Newcombe's (2006) score interval,
  which evaluates the variance at the candidate bound instead of at the observed value (as Wilson's
  interval does for a proportion), and no interval comes closer to 1 than that bound.
* AUPRC: average precision (scikit-learn's definition); its interval comes from a seeded stratified
  bootstrap (2,000 resamples), as a normal interval on the empirical-logit scale with the bootstrap's
  spread (`empirical_logit_interval`). On separable data every resample is separable too
  and the bootstrap interval collapses to [1, 1]; AUPRC is a mean over the P positives of the
  precision at each, so with all of them observed at 1 the data show no more than a proportion seen
  at P of P: the lower bound is never above that proportion's Wilson bound.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from scipy import optimize, stats
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_curve
from statsmodels.stats.proportion import proportion_confint

from .proportions import DEFAULT_LEVEL, wilson_interval

N_RESAMPLES = 2000
MAX_CURVE_POINTS = 200
# The pointwise bands are drawn on fixed grids: TPR at FPR 0, 0.01, ..., 1; precision at recall 0.01, ..., 1.
FPR_GRID = np.round(np.linspace(0.0, 1.0, 101), 2)
RECALL_GRID = np.round(np.linspace(0.01, 1.0, 100), 2)
# Resamples are processed in blocks of at most this many (resample x score-group) cells (~16 MB of float64).
_MAX_BLOCK_CELLS = 2_000_000

AUROC_METHOD = ("AUROC: DeLong variance (fast algorithm, Sun & Xu 2014), interval on the logit scale, never "
                "closer to 1 or 0 than perfect separation allows (Newcombe 2006 score bound)")
AUROC_FLOOR_METHOD = ("AUROC: Newcombe's (2006) score interval (DeLong's variance is 0 here: AUROC 1.0 or 0.0, "
                      "all scores tied, or a single positive or negative)")
AUPRC_METHOD = (f"AUPRC: average precision; stratified bootstrap ({N_RESAMPLES} resamples, seeded), normal "
                "interval on the empirical-logit scale, never closer to 1 than perfect separation allows "
                "(Wilson bound for positives of positives)")
BAND_METHOD = (f"pointwise {N_RESAMPLES}-resample stratified bootstrap percentile band (TPR at each FPR, "
               "precision at each recall), never narrower than the Wilson interval at that point")


# -- AUROC ------------------------------------------------------------------------------------------

def _binary(scores, truth) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    truth = np.asarray(truth).reshape(-1).astype(bool)
    if len(scores) != len(truth):
        raise ValueError(f"scores and truth have different lengths: {len(scores)} and {len(truth)}")
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite numbers")
    return scores, truth


def delong_auroc(scores, truth) -> tuple[float, float]:
    """(AUROC, its DeLong variance) of `scores` against binary `truth`, by the fast algorithm of
    Sun & Xu (2014, IEEE Signal Processing Letters 21:1389): midranks instead of the m x n pair table.

    DeLong et al. (1988): V10_i = share of negatives that positive i outscores (ties count half),
    V01_j = share of positives that outscore negative j; AUROC = mean(V10) = mean(V01) and
    Var = var(V10)/m + var(V01)/n (sample variances). With midranks: V10_i = (rank of positive i among
    all - its rank among positives) / n, V01_j = 1 - (rank of negative j among all - its rank among
    negatives) / m. Needs at least one positive and one negative; with one of either the variance of
    that side is taken as 0 (a single component has no spread to measure: see auroc_interval).
    """
    scores, truth = _binary(scores, truth)
    positives, negatives = scores[truth], scores[~truth]
    m, n = len(positives), len(negatives)
    if m == 0 or n == 0:
        raise ValueError("AUROC needs at least one positive and one negative example")
    ranks_all = stats.rankdata(np.concatenate([positives, negatives]))   # midranks: ties share their mean rank
    v10 = (ranks_all[:m] - stats.rankdata(positives)) / n
    v01 = 1.0 - (ranks_all[m:] - stats.rankdata(negatives)) / m
    auc = float(v10.mean())
    s10 = float(v10.var(ddof=1)) if m > 1 else 0.0
    s01 = float(v01.var(ddof=1)) if n > 1 else 0.0
    return auc, s10 / m + s01 / n


def newcombe_variance(auc: float, n_pos: int, n_neg: int) -> float:
    """Newcombe's (2006, Statistics in Medicine 25:559, method 5) variance of the AUROC at `auc`:
    Hanley & McNeil's (1982) formula with both (m - 1) and (n - 1) replaced by N* = (m + n)/2 - 1,
    A(1-A)/(mn) * [1 + N*((1-A)/(2-A) + A/(1+A))]."""
    a = float(auc)
    n_star = (n_pos + n_neg) / 2.0 - 1.0
    return a * (1 - a) / (n_pos * n_neg) * (1 + n_star * ((1 - a) / (2 - a) + a / (1 + a)))


def newcombe_interval(auc: float, n_pos: int, n_neg: int, level: float = DEFAULT_LEVEL) -> tuple[float, float]:
    """Newcombe's score interval: the AUROC values A with (observed - A)^2 <= z^2 Var(A), the variance taken
    at A itself. Never of width 0 for finite counts: at an observed 1.0 the lower bound is about
    1 - z^2 (1 + N*/2)/(m n) (0.90 with 20 positives and 20 negatives)."""
    z2 = stats.norm.ppf(1 - (1 - level) / 2) ** 2
    observed = float(auc)

    def gap(a: float) -> float:
        return (observed - a) ** 2 - z2 * newcombe_variance(a, n_pos, n_neg)

    tiny = 1e-12
    low = 0.0 if observed <= tiny else optimize.brentq(gap, 0.0, min(observed, 1 - tiny), xtol=1e-10)
    high = 1.0 if observed >= 1 - tiny else optimize.brentq(gap, max(observed, tiny), 1.0, xtol=1e-10)
    return float(low), float(high)


def separable_bound(n_pos: int, n_neg: int, level: float = DEFAULT_LEVEL) -> float:
    """The lower bound Newcombe's score interval gives when every positive outscores every negative
    (observed AUROC 1.0): the most that n_pos positives and n_neg negatives can show."""
    return newcombe_interval(1.0, n_pos, n_neg, level)[0]


def auroc_interval(scores, truth, level: float = DEFAULT_LEVEL) -> dict:
    """{"auroc", "auroc_ci", "auroc_method"}.

    The DeLong variance, turned into an interval on the logit scale (logit(A) +- z SE / (A (1 - A))),
    which stays inside 0-1 and keeps its coverage near 1: on binormal test sets of 20 + 20 examples with
    a true AUROC of 0.98 the plain DeLong interval A +- z SE covered the truth in 74% of 400 data sets
    (57 of them of width 0), this one in 95%; over 7 settings from 20 + 20 to 100 + 100 examples, 93%-98%
    against 74%-96% (docs/benchmarks.md, "Operating point"). Where DeLong has
    nothing to measure a spread from (AUROC 1.0 or 0.0, every score tied, a single positive or
    negative) the interval is Newcombe's score interval at the observed AUROC. And no interval comes
    closer to 1 (or 0) than the one perfect separation gives for the same counts: one misordered pair
    can never make the interval narrower than none.
    """
    scores, truth = _binary(scores, truth)
    m, n = int(truth.sum()), int((~truth).sum())
    auc, variance = delong_auroc(scores, truth)
    z = stats.norm.ppf(1 - (1 - level) / 2)
    if variance <= 1e-15 or min(m, n) < 2 or not 0.0 < auc < 1.0:
        low, high = newcombe_interval(auc, m, n, level)
        method = AUROC_FLOOR_METHOD
    else:
        logit = np.log(auc / (1 - auc))
        half = z * np.sqrt(variance) / (auc * (1 - auc))
        low, high = 1 / (1 + np.exp(-(logit - half))), 1 / (1 + np.exp(-(logit + half)))
        method = AUROC_METHOD
    bound = separable_bound(m, n, level)
    low, high = min(low, bound), max(high, 1.0 - bound)
    return {"auroc": round(auc, 4), "auroc_ci": [_round_down(low), _round_up(high)], "auroc_method": method}


def _round_down(x: float, digits: int = 4) -> float:
    # Rounded outwards: a stored interval is never narrower than the computed one.
    return float(np.floor(round(x * 10 ** digits, 6)) / 10 ** digits)


def _round_up(x: float, digits: int = 4) -> float:
    return float(np.ceil(round(x * 10 ** digits, 6)) / 10 ** digits)


# -- the stratified bootstrap: AUPRC and the pointwise bands, from one set of resamples ----------------

def _score_groups(scores: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Each positive's and each negative's index among the distinct scores, highest score first."""
    distinct = np.unique(scores)[::-1]
    group = len(distinct) - 1 - np.searchsorted(distinct[::-1], scores)
    return group[truth], group[~truth], len(distinct)


def _counts_per_group(groups: np.ndarray, draws: np.ndarray, n_groups: int) -> np.ndarray:
    """(resamples, groups) counts: how many of each resample's draws fall in each score group."""
    rows = draws.shape[0]
    flat = (np.arange(rows)[:, None] * n_groups + groups[draws]).ravel()
    return np.bincount(flat, minlength=rows * n_groups).reshape(rows, n_groups).astype(np.float64)


def _average_precision_rows(pos: np.ndarray, tp: np.ndarray, fp: np.ndarray, m: int) -> np.ndarray:
    """Average precision per row: sum over score groups of (new positives / m) x precision there
    (scikit-learn's definition: sum_n (R_n - R_{n-1}) P_n, ties as one threshold)."""
    flagged = tp + fp
    precision = np.divide(tp, flagged, out=np.zeros_like(tp), where=flagged > 0)
    return (pos * precision).sum(axis=1) / m


def _tpr_at_fpr(tp: np.ndarray, fp: np.ndarray, m: int, n: int, grid: np.ndarray) -> np.ndarray:
    """(rows, grid) TPR of the highest-TPR threshold whose FPR is at most each grid value."""
    rows = tp.shape[0]
    tp0 = np.concatenate([np.zeros((rows, 1)), tp], axis=1)       # the origin: nothing flagged
    fp0 = np.concatenate([np.zeros((rows, 1)), fp], axis=1)
    width = n + 1
    keys = (np.arange(rows)[:, None] * width + fp0).ravel()        # non-decreasing: rows in turn, FP rising
    allowed = np.floor(grid * n + 1e-9)
    targets = (np.arange(rows)[:, None] * width + allowed[None, :]).ravel()
    last = np.searchsorted(keys, targets, side="right") - 1
    return (tp0.ravel()[last] / m).reshape(rows, len(grid))


def _counts_at_recall(tp: np.ndarray, fp: np.ndarray, m: int, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, grid) true and false positives at the highest threshold that reaches each recall on the grid."""
    rows = tp.shape[0]
    width = m + 1
    keys = (np.arange(rows)[:, None] * width + tp).ravel()
    needed = np.ceil(grid * m - 1e-9)
    first = np.searchsorted(keys, (np.arange(rows)[:, None] * width + needed[None, :]).ravel(), side="left")
    return tp.ravel()[first].reshape(rows, len(grid)), fp.ravel()[first].reshape(rows, len(grid))


def _observed_counts(pos_groups, neg_groups, n_groups) -> tuple[np.ndarray, np.ndarray]:
    pos = np.bincount(pos_groups, minlength=n_groups).astype(np.float64)[None, :]
    neg = np.bincount(neg_groups, minlength=n_groups).astype(np.float64)[None, :]
    return pos, neg


def empirical_logit_interval(samples: np.ndarray, observed: float, m: int, level: float) -> tuple[float, float]:
    """A normal interval on the empirical-logit scale g(a) = log((a m + 1/2) / ((1 - a) m + 1/2)) (m = positives),
    with the bootstrap's standard deviation there, mapped back. Average precision is skewed and biased
    in small samples: on binormal test sets (7 settings, 20 + 20 to 100 + 100 examples, true AUROC 0.76-0.98)
    the plain percentile interval covered the true AUPRC in 77%-96% of 400 data sets, this one in 89%-99%
    (89% with 20 + 20 examples at AUROC 0.76, where average precision itself runs 0.02 above the truth
    on average; docs/benchmarks.md, "Operating point"). The 1/2 keeps g finite
    where resamples reach AP 1 (the plain logit's spread is then infinite)."""
    def forward(a):
        return np.log((a * m + 0.5) / ((1 - a) * m + 0.5))

    def back(g):
        return float(np.clip((np.exp(g) * (m + 0.5) - 0.5) / (m * (1 + np.exp(g))), 0.0, 1.0))

    z = stats.norm.ppf(1 - (1 - level) / 2)
    spread = float(np.std(forward(np.asarray(samples)), ddof=1))
    centre = float(forward(observed))
    return back(centre - z * spread), back(centre + z * spread)


def _auprc_interval(aps: np.ndarray, observed: float, m: int, level: float) -> tuple[float, float]:
    if np.ptp(aps) <= 1e-12:
        # every resample gives the same AUPRC (all scores tied, or perfect separation): the bootstrap
        # has no spread to show; a proportion of the m positives does
        low, high = wilson_interval(int(round(observed * m)), m, level)
    else:
        low, high = empirical_logit_interval(aps, observed, m, level)
    # AUPRC is the mean over the m positives of the precision at each: with all of them observed at 1
    # (perfect separation) the data show no more than a proportion seen at m of m
    return min(low, wilson_interval(m, m, level)[0]), high


def stratified_bootstrap(scores, truth, level: float = DEFAULT_LEVEL, n_resamples: int = N_RESAMPLES,
                         seed: int = 0, keep_samples: bool = False) -> dict:
    """AUPRC with its interval and the pointwise ROC / PR bands, from one seeded stratified bootstrap
    (positives resampled among positives, negatives among negatives: each resample keeps the counts).

    Returns {"auprc", "auprc_ci", "auprc_method", "roc_band": {fpr, tpr, tpr_low, tpr_high},
    "pr_band": {recall, precision, precision_low, precision_high}, "band_method"} (and "auprc_samples", the
    resamples' AUPRCs, with `keep_samples`: the benchmark compares interval methods on them). Needs at
    least one positive and one negative.

    Every resample is a set of counts per distinct score: resampling never changes the order of the
    scores, so the curves of all resamples are cumulative sums over the same sorted groups (no sorting).
    """
    scores, truth = _binary(scores, truth)
    m, n = int(truth.sum()), int((~truth).sum())
    if m == 0 or n == 0:
        raise ValueError("AUPRC needs at least one positive and one negative example")
    pos_groups, neg_groups, n_groups = _score_groups(scores, truth)
    rng = np.random.default_rng(seed)
    aps = np.empty(n_resamples)
    tpr_rows = np.empty((n_resamples, len(FPR_GRID)))
    precision_rows = np.empty((n_resamples, len(RECALL_GRID)))
    block = max(1, _MAX_BLOCK_CELLS // max(n_groups, m, n))
    for start in range(0, n_resamples, block):
        rows = slice(start, min(start + block, n_resamples))
        size = rows.stop - rows.start
        pos = _counts_per_group(pos_groups, rng.integers(0, m, size=(size, m)), n_groups)
        neg = _counts_per_group(neg_groups, rng.integers(0, n, size=(size, n)), n_groups)
        tp, fp = np.cumsum(pos, axis=1), np.cumsum(neg, axis=1)
        aps[rows] = _average_precision_rows(pos, tp, fp, m)
        tpr_rows[rows] = _tpr_at_fpr(tp, fp, m, n, FPR_GRID)
        tp_at, fp_at = _counts_at_recall(tp, fp, m, RECALL_GRID)
        precision_rows[rows] = tp_at / (tp_at + fp_at)

    pos, neg = _observed_counts(pos_groups, neg_groups, n_groups)
    tp, fp = np.cumsum(pos, axis=1), np.cumsum(neg, axis=1)
    observed_ap = float(_average_precision_rows(pos, tp, fp, m)[0])
    observed_tpr = _tpr_at_fpr(tp, fp, m, n, FPR_GRID)[0]
    tp_at, fp_at = (counts[0] for counts in _counts_at_recall(tp, fp, m, RECALL_GRID))
    observed_precision = tp_at / (tp_at + fp_at)

    alpha = 1 - level
    auprc_low, auprc_high = _auprc_interval(aps, observed_ap, m, level)
    tpr_low, tpr_high = np.quantile(tpr_rows, [alpha / 2, 1 - alpha / 2], axis=0)
    tpr_wilson = _wilson_arrays(np.round(observed_tpr * m), np.full(len(observed_tpr), m), level)
    precision_low, precision_high = np.quantile(precision_rows, [alpha / 2, 1 - alpha / 2], axis=0)
    precision_wilson = _wilson_arrays(tp_at, tp_at + fp_at, level)
    return {
        "auprc": round(observed_ap, 4),
        "auprc_ci": [_round_down(auprc_low), _round_up(auprc_high)],
        "auprc_method": AUPRC_METHOD,
        "roc_band": {"fpr": FPR_GRID.tolist(), "tpr": _rounded(observed_tpr),
                     "tpr_low": _rounded(np.minimum(tpr_low, tpr_wilson[:, 0])),
                     "tpr_high": _rounded(np.maximum(tpr_high, tpr_wilson[:, 1]))},
        "pr_band": {"recall": RECALL_GRID.tolist(), "precision": _rounded(observed_precision),
                    "precision_low": _rounded(np.minimum(precision_low, precision_wilson[:, 0])),
                    "precision_high": _rounded(np.maximum(precision_high, precision_wilson[:, 1]))},
        "band_method": BAND_METHOD,
        **({"auprc_samples": aps} if keep_samples else {}),
    }


def _wilson_arrays(successes: np.ndarray, trials: np.ndarray, level: float) -> np.ndarray:
    """(points, 2) Wilson intervals at once: the method of intervals.wilson_interval, for a whole band."""
    low, high = proportion_confint(successes, np.maximum(trials, 1), alpha=1.0 - level, method="wilson")
    return np.column_stack([np.where(trials > 0, low, 0.0), np.where(trials > 0, high, 1.0)])


def _rounded(values, digits: int = 4) -> list:
    return [round(float(v), digits) for v in np.asarray(values, dtype=np.float64)]


# -- curves -----------------------------------------------------------------------------------------

def thin_curve(x, y, keep: Sequence[int] = (), max_points: int = MAX_CURVE_POINTS) -> np.ndarray:
    """Sorted indices of at most `max_points` points of the polyline (x, y) that keep its shape: both
    endpoints, every index in `keep` (e.g. the operating point), every corner when they fit, and
    otherwise points evenly spaced along the curve's length, so that no stretch of the curve longer
    than (length / budget) lies between two kept points (on a unit-square ROC curve, length <= 2:
    at most 0.011 between kept points with 200)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    count = len(x)
    required = np.unique(np.concatenate([[0, count - 1], np.asarray(list(keep), dtype=np.int64)])) \
        if count else np.empty(0, dtype=np.int64)
    if count <= max_points:
        return np.arange(count)
    if len(required) >= max_points:
        raise ValueError(f"{len(required)} points must be kept, more than max_points={max_points}")
    # corners only: a point on a straight run between its neighbours adds nothing to the drawing
    turn = np.ones(count, dtype=bool)
    turn[1:-1] = (np.abs(np.diff(x, 2)) > 1e-12) | (np.abs(np.diff(y, 2)) > 1e-12)
    corners = np.union1d(np.flatnonzero(turn), required)
    if len(corners) <= max_points:
        return corners
    length = np.concatenate([[0.0], np.cumsum(np.abs(np.diff(x)) + np.abs(np.diff(y)))])
    budget = max_points - len(required)
    while True:
        step = length[-1] / max(budget, 1)
        bins = np.floor(length[corners] / step + 1e-12)
        firsts = corners[np.r_[True, bins[1:] != bins[:-1]]]
        chosen = np.union1d(firsts, required)
        if len(chosen) <= max_points:
            return chosen
        budget -= len(chosen) - max_points


def _threshold_list(values) -> list:
    """Thresholds for JSON: a threshold above every score (scikit-learn's inf) becomes None."""
    return [None if not np.isfinite(v) else round(float(v), 6) for v in values]


def curves(scores, truth, keep_thresholds: Sequence[float] = (), max_points: int = MAX_CURVE_POINTS) -> dict:
    """{"curve": {fpr, tpr, thresholds}, "pr_curve": {precision, recall, thresholds}} from scikit-learn,
    each thinned to at most `max_points` points.

    A point flags the examples with score >= its threshold. ROC points run from (0, 0) (threshold None:
    above every score, nothing flagged) to (1, 1), thresholds falling. PR points follow scikit-learn:
    thresholds rising, recall falling, ending at (recall 0, precision 1) with threshold None; the
    curve starts where recall first reaches 1 (a lower threshold has recall 1 and lower precision).
    `keep_thresholds`: the points these thresholds give are always kept (the operating point)."""
    scores, truth = _binary(scores, truth)
    fpr, tpr, roc_thresholds = roc_curve(truth, scores, drop_intermediate=False)
    precision, recall, pr_thresholds = precision_recall_curve(truth, scores)
    roc_keep, pr_keep = [], []
    for t in keep_thresholds:
        roc_keep.append(int(np.sum(roc_thresholds >= t)) - 1)      # the last point that flags score >= t
        pr_keep.append(int(np.searchsorted(pr_thresholds, t, side="left")))
    roc_idx = thin_curve(fpr, tpr, roc_keep, max_points)
    pr_idx = thin_curve(recall, precision, pr_keep, max_points)
    pr_thresholds = np.concatenate([pr_thresholds, [np.inf]])
    return {"curve": {"fpr": _rounded(fpr[roc_idx]), "tpr": _rounded(tpr[roc_idx]),
                      "thresholds": _threshold_list(roc_thresholds[roc_idx])},
            "pr_curve": {"precision": _rounded(precision[pr_idx]), "recall": _rounded(recall[pr_idx]),
                         "thresholds": _threshold_list(pr_thresholds[pr_idx])}}


# -- one class against the rest, and the metrics.json block --------------------------------------------

def binary_roc(scores, truth, *, level: float = DEFAULT_LEVEL, seed: int = 0, n_resamples: int = N_RESAMPLES,
               keep_thresholds: Sequence[float] = (), positive_name: Optional[str] = None) -> dict:
    """Everything about one positive class against the rest: {n_positive, n_negative, auroc, auroc_ci,
    auprc, auprc_ci, method, curve, pr_curve, roc_band, pr_band, note}.

    With one class absent nothing can be estimated: auroc / auprc None, intervals [0, 1], curves empty,
    and `note` says which class is missing. `method` names the interval method of each number."""
    scores, truth = _binary(scores, truth)
    m, n = int(truth.sum()), int((~truth).sum())
    out: dict = {"n_positive": m, "n_negative": n}
    if m == 0 or n == 0:
        if positive_name is None:
            missing = "positive example" if m == 0 else "negative example"
        else:
            missing = f"example of {positive_name}" if m == 0 else f"example that is not {positive_name}"
        out.update(auroc=None, auroc_ci=[0.0, 1.0], auprc=None, auprc_ci=[0.0, 1.0], method=None,
                   curve={"fpr": [], "tpr": [], "thresholds": []},
                   pr_curve={"precision": [], "recall": [], "thresholds": []}, roc_band=None, pr_band=None,
                   note=f"The test examples include no {missing}, so neither curve nor area can be measured.")
        return out
    area = auroc_interval(scores, truth, level)
    boot = stratified_bootstrap(scores, truth, level, n_resamples, seed)
    # scikit-learn is the reference for the areas themselves
    out.update(auroc=area["auroc"], auroc_ci=area["auroc_ci"],
               auprc=round(float(average_precision_score(truth, scores)), 4), auprc_ci=boot["auprc_ci"],
               method=f"{area['auroc_method']}; {boot['auprc_method']}; bands: {boot['band_method']}",
               **curves(scores, truth, keep_thresholds), roc_band=boot["roc_band"], pr_band=boot["pr_band"],
               note=None)
    return out


def class_index(classes: Sequence[str], positive_class) -> int:
    """The index of the positive class, given by name or index; a clear error for an unknown one."""
    names = [str(c) for c in classes]
    if isinstance(positive_class, (int, np.integer)) and not isinstance(positive_class, bool):
        if 0 <= int(positive_class) < len(names):
            return int(positive_class)
    elif str(positive_class) in names:
        return names.index(str(positive_class))
    raise ValueError(f"positive class {positive_class!r} is not one of the classes: {', '.join(names)}")


def roc_block(probs, targets, classes: Sequence[str], positive_class=None, *, level: float = DEFAULT_LEVEL,
              seed: int = 0, n_resamples: int = N_RESAMPLES, keep_thresholds: Sequence[float] = ()) -> dict:
    """metrics.json's `roc`, on the report ("test") examples: `probs` (n, K) class probabilities, `targets`
    (n,) class ids, `classes` the K names.

    {positive_class, auroc, auroc_ci, auprc, auprc_ci, method, curve, pr_curve, roc_band, pr_band,
    n_positive, n_negative, note} for the named positive class (its probability against the rest;
    `keep_thresholds` are kept on its curves); and `one_vs_rest: {class name: the same fields}` for
    every class when K > 2, or when no positive class is named (then the top-level numbers are None:
    no class has been chosen as the condition to find). For K = 2 with a positive class named there
    is no `one_vs_rest` (the other class's curve is the mirror image)."""
    probs = np.asarray(probs, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.int64).reshape(-1)
    if probs.ndim != 2 or probs.shape[1] != len(classes) or len(probs) != len(targets):
        raise ValueError(f"probs must be (examples, {len(classes)} classes) with one target per row; got "
                         f"{probs.shape} and {len(targets)} targets")
    names = [str(c) for c in classes]
    out: dict = {"positive_class": None, "auroc": None, "auroc_ci": None, "auprc": None, "auprc_ci": None,
                 "method": None, "curve": None, "pr_curve": None, "n_positive": None, "n_negative": None,
                 "note": None}
    named = None
    if positive_class is not None:
        named = class_index(names, positive_class)
        out.update(binary_roc(probs[:, named], targets == named, level=level, seed=seed + named,
                              n_resamples=n_resamples, keep_thresholds=keep_thresholds, positive_name=names[named]),
                   positive_class=names[named])
    if len(names) > 2 or positive_class is None:
        # class k's resamples are seeded with seed + k: the named class's entry is the block above
        out["one_vs_rest"] = {
            name: {key: value for key, value in out.items() if key != "positive_class"} if k == named else
            binary_roc(probs[:, k], targets == k, level=level, seed=seed + k, n_resamples=n_resamples,
                       positive_name=name)
            for k, name in enumerate(names)}
        if positive_class is None:
            out["note"] = "No positive class is named yet: each class is shown against the rest."
    return out
