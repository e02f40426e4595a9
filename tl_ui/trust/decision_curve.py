"""Decision-curve analysis (Vickers & Elkin 2006, Medical Decision Making 26:565), issue 33.

Net benefit at a threshold probability pt: the true positives per example, minus the false positives
per example weighted by the odds pt / (1 - pt) at which a clinician is indifferent between a missed
case and an unneeded intervention: NB(pt) = TP/N - FP/N x pt/(1 - pt), flagging probability >= pt.
"Treat all" flags everyone: NB = prevalence - (1 - prevalence) x pt/(1 - pt); "treat none" is 0.
The model's probabilities must be calibrated for pt to mean what it says (the app calibrates them on
the choose examples). Pure numpy.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .proportions import DEFAULT_LEVEL

# Threshold probabilities 1% ... 99%: the whole range; a clinic reads off its own stretch of it.
DEFAULT_THRESHOLDS = np.round(np.linspace(0.01, 0.99, 99), 2)
N_RESAMPLES = 2000
_MAX_BLOCK_CELLS = 2_000_000
METHOD = (f"net benefit (Vickers & Elkin 2006) on the test examples; band: pointwise percentile interval of "
          f"a bootstrap over examples ({N_RESAMPLES} resamples, seeded)")


def net_benefit(scores, truth, thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> np.ndarray:
    """NB of flagging score >= pt, for each threshold probability pt."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    truth = np.asarray(truth).reshape(-1).astype(bool)
    pt = np.asarray(thresholds, dtype=np.float64)
    flagged = scores[None, :] >= pt[:, None]                      # (thresholds, examples)
    tp, fp = (flagged & truth).sum(axis=1), (flagged & ~truth).sum(axis=1)
    return (tp - fp * pt / (1 - pt)) / max(len(scores), 1)


def treat_all(prevalence: float, thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> np.ndarray:
    pt = np.asarray(thresholds, dtype=np.float64)
    return prevalence - (1 - prevalence) * pt / (1 - pt)


def decision_curve(scores, truth, thresholds: Sequence[float] = DEFAULT_THRESHOLDS, *, level: float = DEFAULT_LEVEL,
                   seed: int = 0, n_resamples: int = N_RESAMPLES) -> dict:
    """metrics.json's `decision_curve` (without `positive_class`, which the caller adds), on the report
    ("test") examples: {thresholds, net_benefit, net_benefit_low, net_benefit_high, treat_all,
    treat_none (0), prevalence, n, method}. `scores`: the positive class's calibrated probability.

    The band resamples whole examples (not stratified: net benefit depends on the prevalence, which
    varies from sample to sample as it would in a new set of patients)."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    truth = np.asarray(truth).reshape(-1).astype(bool)
    if len(scores) != len(truth):
        raise ValueError(f"scores and truth have different lengths: {len(scores)} and {len(truth)}")
    pt = np.asarray(thresholds, dtype=np.float64)
    if pt.size == 0 or pt.min() <= 0 or pt.max() >= 1:
        raise ValueError("threshold probabilities must lie strictly between 0 and 1")
    n = len(scores)
    if n == 0:
        raise ValueError("a decision curve needs at least one test example")
    prevalence = float(truth.mean())
    flagged = (scores[None, :] >= pt[:, None]).astype(np.float64)    # (thresholds, examples)
    weight = pt / (1 - pt)
    # each example's contribution to NB at each threshold: +1 for a true positive, -odds for a false one
    per_example = flagged * np.where(truth[None, :], 1.0, -weight[:, None])
    observed = per_example.sum(axis=1) / n
    rng = np.random.default_rng(seed)
    samples = np.empty((n_resamples, len(pt)))
    block = max(1, _MAX_BLOCK_CELLS // n)
    for start in range(0, n_resamples, block):
        rows = min(block, n_resamples - start)
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=rows).astype(np.float64)
        samples[start:start + rows] = counts @ per_example.T / n
    alpha = 1 - level
    low, high = np.quantile(samples, [alpha / 2, 1 - alpha / 2], axis=0)
    return {"thresholds": pt.round(4).tolist(), "net_benefit": _rounded(observed),
            "net_benefit_low": _rounded(low), "net_benefit_high": _rounded(high),
            "treat_all": _rounded(treat_all(prevalence, pt)), "treat_none": 0.0,
            "prevalence": round(prevalence, 4), "n": int(n), "method": METHOD}


def _rounded(values) -> list:
    return [round(float(v), 4) for v in values]


def useful_range(curve: dict) -> list[tuple[float, float]]:
    """The stretches of threshold probability where the model's net benefit is above both treat-all and
    treat-none, as (first, last) threshold pairs, widest first."""
    pt = np.asarray(curve["thresholds"])
    better = np.asarray(curve["net_benefit"]) > np.maximum(np.asarray(curve["treat_all"]), 0.0) + 1e-12
    runs, start = [], None
    for i, ok in enumerate(better):
        if ok and start is None:
            start = i
        if start is not None and (not ok or i == len(better) - 1):
            end = i if ok else i - 1
            runs.append((float(pt[start]), float(pt[end])))
            start = None
    return sorted(runs, key=lambda r: r[1] - r[0], reverse=True)


def decision_curve_sentence(curve: dict, positive_name: str) -> str:
    """One plain sentence for the plot's text alternative."""
    runs = useful_range(curve)
    n = curve["n"]
    if not runs:
        return (f"On the {n} test examples, acting on the model's probability of {positive_name} does no better "
                f"than flagging everyone or no one at any threshold probability from "
                f"{curve['thresholds'][0]:.0%} to {curve['thresholds'][-1]:.0%}.")
    first, last = runs[0]
    more = f" (and over {len(runs) - 1} shorter stretch{'es' if len(runs) > 2 else ''})" if len(runs) > 1 else ""
    sentence = (f"On the {n} test examples, acting on the model's probability of {positive_name} does more good "
                f"than flagging everyone or no one for threshold probabilities from {first:.0%} to {last:.0%}{more}.")
    if n < 200:
        sentence = sentence[:-1] + "; with this few examples the shaded band shows how far that could move."
    return sentence
