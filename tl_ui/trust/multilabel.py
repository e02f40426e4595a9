"""Multi-label numbers (issue 15): per-label thresholds, and per-label and overall scores with intervals.

Scores come from scikit-learn; the intervals from this package's Wilson interval (proportions of
examples: precision, recall, subset accuracy) and a bootstrap over examples (micro- and macro-F1,
Hamming loss, mean average precision), resampling whole examples so that labels of one case stay
together. Pure numpy / scikit-learn: no torch.
"""
from __future__ import annotations

from typing import Optional, Sequence

import warnings

import numpy as np
from sklearn.metrics import average_precision_score, f1_score, hamming_loss

from .floors import FloorLog, at_least_as_share
from .intervals import _percentile_interval
from .proportions import DEFAULT_LEVEL, wilson_interval
from .wording import _level_percent, _percent_range, floor_sentence

DEFAULT_THRESHOLD = 0.5
MIN_FOR_THRESHOLD = 5   # positives (and negatives) of a label among the choose examples to tune its threshold
N_RESAMPLES = 2000
METHOD = ("per label: Wilson score (precision, recall); over examples: bootstrap of whole examples, "
          f"{N_RESAMPLES} resamples (micro-/macro-F1, Hamming loss, mean average precision); "
          "Wilson score (subset accuracy); a bootstrap interval with no width or at 0 or 1 is widened to the "
          "Wilson interval of the score as a share of the test examples (floored_intervals)")


def sigmoid(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    return 1.0 / (1.0 + np.exp(-np.clip(logits, -60, 60)))


def choose_thresholds(probs: np.ndarray, targets: np.ndarray, min_count: int = MIN_FOR_THRESHOLD) -> tuple[list, list]:
    """(threshold per label, how it was chosen per label), from the choose ("validation") examples:
    the score cut that maximises that label's F1 there; 0.5 when there are fewer than `min_count`
    positives or negatives of the label (too few to choose on). Ties go to the cut nearest 0.5."""
    probs, y = np.asarray(probs, dtype=np.float64), np.asarray(targets) > 0.5
    thresholds, how = [], []
    for k in range(y.shape[1]):
        positives = int(y[:, k].sum())
        if positives < min_count or len(y) - positives < min_count:
            thresholds.append(DEFAULT_THRESHOLD)
            how.append(f"default (only {positives} positive of {len(y)} validation examples)")
            continue
        p = probs[:, k]
        ordered = np.unique(p)
        cuts = np.concatenate([(ordered[1:] + ordered[:-1]) / 2, [DEFAULT_THRESHOLD]])
        best, best_f1 = DEFAULT_THRESHOLD, -1.0
        for cut in cuts:
            pred = p >= cut
            tp = int((pred & y[:, k]).sum())
            f1 = 2 * tp / max(int(pred.sum()) + positives, 1)
            if f1 > best_f1 + 1e-12 or (abs(f1 - best_f1) <= 1e-12 and abs(cut - 0.5) < abs(best - 0.5)):
                best, best_f1 = float(cut), f1
        thresholds.append(round(min(max(best, 0.01), 0.99), 6))
        how.append(f"best F1 on {len(y)} validation examples ({positives} positive)")
    return thresholds, how


def _f1_from_counts(tp, fp, fn):
    """Micro- and macro-F1 from counts of shape (..., labels)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        per = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        micro_den = (2 * tp + fp + fn).sum(-1)
        micro = np.where(micro_den > 0, 2 * tp.sum(-1) / micro_den, 0.0)
    return micro, per.mean(-1)


def _bootstrap(y: np.ndarray, pred: np.ndarray, probs: np.ndarray, level: float, seed: int) -> dict:
    n, k = y.shape
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=N_RESAMPLES).astype(np.float64)   # (B, n)
    yf, pf = y.astype(np.float64), pred.astype(np.float64)
    tp, fp, fn = counts @ (yf * pf), counts @ ((1 - yf) * pf), counts @ (yf * (1 - pf))
    micro, macro = _f1_from_counts(tp, fp, fn)
    hamming = (counts @ (yf != pf).sum(1)) / (n * k)
    aps = _weighted_mean_ap(y, probs, counts)
    aps = aps[~np.isnan(aps)]
    return {"micro_f1": _percentile_interval(micro, level), "macro_f1": _percentile_interval(macro, level),
            "hamming_loss": _percentile_interval(hamming, level),
            "mean_average_precision": _percentile_interval(aps, level) if len(aps) else None}


def _weighted_ap(y: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Average precision of one label under each row of `weights` (B, n) (bootstrap counts), as
    scikit-learn's `average_precision_score` defines it on the resampled rows (equal scores form one
    step); NaN where a resample holds no positive or no negative."""
    order = np.argsort(-scores, kind="stable")
    s, yy, w = scores[order], y[order].astype(np.float64), weights[:, order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])               # one group per distinct score
    pos, neg = np.add.reduceat(w * yy, starts, axis=1), np.add.reduceat(w * (1 - yy), starts, axis=1)
    tp, fp = np.cumsum(pos, axis=1), np.cumsum(neg, axis=1)
    total_pos, total_neg = tp[:, -1], fp[:, -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        ap = (pos * precision).sum(axis=1) / total_pos
    ap[(total_pos == 0) | (total_neg == 0)] = np.nan
    return ap


def _weighted_mean_ap(y: np.ndarray, probs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mean over labels (those with positives and negatives in the resample) of each resample's AP."""
    per = np.stack([_weighted_ap(y[:, k], probs[:, k], weights) for k in range(y.shape[1])], axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # a resample where no label has both kinds
        return np.nanmean(per, axis=1)


def _mean_ap(y: np.ndarray, probs: np.ndarray) -> Optional[float]:
    scores = [average_precision_score(y[:, k], probs[:, k]) for k in range(y.shape[1])
              if 0 < y[:, k].sum() < len(y)]
    return float(np.mean(scores)) if scores else None


def multilabel_scores(probs: np.ndarray, targets: np.ndarray, names: Sequence[str], thresholds: Sequence[float],
                      *, level: float = DEFAULT_LEVEL, seed: int = 0) -> dict:
    """metrics.json's `multilabel` block (docs/contracts.md) for the report ("test") examples."""
    probs, y = np.asarray(probs, dtype=np.float64), np.asarray(targets) > 0.5
    t = np.asarray(thresholds, dtype=np.float64)
    pred = probs >= t
    n, k = y.shape
    per_label = {}
    for j, name in enumerate(names):
        tp, fp = int((pred[:, j] & y[:, j]).sum()), int((pred[:, j] & ~y[:, j]).sum())
        fn, tn = int((~pred[:, j] & y[:, j]).sum()), int((~pred[:, j] & ~y[:, j]).sum())
        precision, recall = (tp / (tp + fp) if tp + fp else 0.0), (tp / (tp + fn) if tp + fn else 0.0)
        ap = average_precision_score(y[:, j], probs[:, j]) if 0 < tp + fn < n else None
        per_label[name] = {
            "precision": precision, "precision_ci": list(wilson_interval(tp, tp + fp, level)),
            "recall": recall, "recall_ci": list(wilson_interval(tp, tp + fn, level)),
            "f1": 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else 0.0,
            "support": tp + fn, "tp": tp, "fp": fp, "fn": fn, "tn": tn,
            "average_precision": None if ap is None else float(ap), "threshold": float(t[j]),
            "sentence": label_sentence(name, tp, fp, fn),
        }
    exact = int((pred == y).all(axis=1).sum())
    subset_ci = wilson_interval(exact, n, level)
    micro = float(f1_score(y, pred, average="micro", zero_division=0))
    macro = float(f1_score(y, pred, average="macro", zero_division=0))
    hamming = float(hamming_loss(y, pred))
    mean_ap = _mean_ap(y, probs)
    cis = _bootstrap(y, pred, probs, level, seed) if n else {}
    floors = FloorLog()

    def floored(key: str, value):   # the bootstrap's interval, widened where it says nothing (trust.floors)
        return floors.keep(f"{key}_ci", at_least_as_share(value, cis.get(key, (0.0, 1.0)), n, level))

    block = {
        "n": n, "labels": list(names), "thresholds": {name: float(v) for name, v in zip(names, t)},
        "micro_f1": micro, "micro_f1_ci": floored("micro_f1", micro),
        "macro_f1": macro, "macro_f1_ci": floored("macro_f1", macro),
        "subset_accuracy": exact / n if n else 0.0, "subset_accuracy_ci": list(subset_ci),
        "hamming_loss": hamming, "hamming_loss_ci": floored("hamming_loss", hamming),
        "mean_average_precision": mean_ap,
        "mean_average_precision_ci": (floored("mean_average_precision", mean_ap)
                                      if cis.get("mean_average_precision") and mean_ap is not None else None),
        "per_label": per_label, "ci_level": level, "ci_method": METHOD,
    }
    block["floored_intervals"] = floors.field()
    block["sentences"] = overall_sentences(block)
    return block


def label_sentence(name: str, tp: int, fp: int, fn: int) -> str:
    has = tp + fn
    if not has:
        return f"No test example has '{name}'; marked it on {fp} wrongly."
    return (f"Found {tp} of the {has} test example{'' if has == 1 else 's'} with '{name}'; marked it on {fp} "
            f"{'other' if fp == 1 else 'others'} wrongly.")


def overall_sentences(block: dict) -> dict:
    """One plain sentence per overall number."""
    n, k = block["n"], len(block["labels"])
    level = _level_percent(block["ci_level"])

    def rng(key):
        low, high = _percent_range(block[key + "_ci"])
        return f"{low}% and {high}%"

    exact = round(block["subset_accuracy"] * n)
    widened = set(block.get("floored_intervals") or [])

    def why(key: str, name: str) -> str:   # a widened interval says why it is not narrower
        return " " + floor_sentence(name, block[key], n, block[key + "_ci"]) if f"{key}_ci" in widened else ""

    return {
        "micro_f1": (f"Counting every label of every test example together, micro-F1 is "
                     f"{block['micro_f1']:.2f}: the true value is probably between {rng('micro_f1')} ({level} "
                     "interval). Common labels weigh most here." + why("micro_f1", "micro-F1")),
        "macro_f1": (f"Averaged over the {k} labels, each counting the same, macro-F1 is {block['macro_f1']:.2f} "
                     f"(probably between {rng('macro_f1')}). Rare labels weigh as much as common ones here."
                     + why("macro_f1", "macro-F1")),
        "subset_accuracy": (f"All labels exactly right on {exact} of {n} test examples "
                            f"(probably between {rng('subset_accuracy')} of such cases)."),
        "hamming_loss": (f"{block['hamming_loss']:.1%} of all label decisions ({n} examples × {k} labels) were "
                         f"wrong (probably between {rng('hamming_loss')})." + why("hamming_loss", "Hamming loss")),
    }
