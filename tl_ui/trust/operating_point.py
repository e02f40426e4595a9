"""From a score to a decision (issue 33): a threshold chosen honestly, and every number at it.

The threshold is chosen on the choose ("validation") examples only (`choose_threshold`); everything
said about it is measured on the report ("test") examples only (`report_at_threshold`): sensitivity,
specificity, PPV and NPV with Wilson intervals, and the 2 x 2 counts. `operating_point_metrics` builds
metrics.json's `roc`, `operating_point` and `decision_curve` in one call. Pure numpy / scipy /
scikit-learn / statsmodels: no torch, no gradio.

A threshold t flags an example (calls it positive) when its probability of the positive class is
>= t, everywhere: here, in the export and in prediction.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from .decision_curve import decision_curve, decision_curve_sentence
from .proportions import DEFAULT_LEVEL, wilson_interval
from .roc import N_RESAMPLES, binary_roc, class_index, roc_block

RULES = ("sensitivity", "specificity", "youden", "threshold")
DEFAULT_RULE = "youden"
FALLBACK_THRESHOLD = 0.5
# Youden's J on fewer positives (or negatives) than this among the choose examples gets a note.
MIN_FOR_YOUDEN = 5
PREVALENCE_METHOD = ("Bayes' rule from sensitivity and specificity; interval from their Wilson intervals at "
                     "level sqrt(0.95) each (positives and negatives are separate examples, so both hold "
                     "together with 95%), combined at the corners (PPV and NPV rise with both)")


# -- the rule --------------------------------------------------------------------------------------------

def parse_rule(text: str) -> tuple[str, Optional[float]]:
    """'sensitivity:0.95' | 'specificity:0.9' | 'youden' | 'threshold:0.3' -> (rule, target).
    The CLI's `--operating-point` and the API's options use this form."""
    raw = str(text).strip().lower()
    rule, _, value = raw.partition(":")
    rule = rule.strip()
    if rule not in RULES:
        raise ValueError(f"unknown operating-point rule {text!r}: use sensitivity:0.95, specificity:0.9, "
                         f"youden or threshold:0.3")
    if rule == "youden":
        if value.strip():
            raise ValueError("youden takes no value: write just 'youden'")
        return rule, None
    try:
        target = float(value)
    except ValueError:
        raise ValueError(f"{rule} needs a value between 0 and 1 after a colon, e.g. {rule}:"
                         f"{'0.3' if rule == 'threshold' else '0.95'} (got {text!r})") from None
    check_target(rule, target)
    return rule, target


def check_target(rule: str, target: Optional[float]) -> None:
    if rule not in RULES:
        raise ValueError(f"unknown operating-point rule {rule!r}: one of {', '.join(RULES)}")
    if rule == "youden":
        return
    if target is None or not math.isfinite(float(target)):
        raise ValueError(f"the {rule} rule needs a target value")
    if rule == "threshold" and not 0.0 <= target <= 1.0:
        raise ValueError(f"a fixed threshold is a probability between 0 and 1 (got {target})")
    if rule != "threshold" and not 0.0 < target <= 1.0:
        raise ValueError(f"a target {rule} is a share above 0 and at most 1, e.g. 0.95 for 95% (got {target})")


def examples_needed(target: float) -> int:
    """How many positives (for a sensitivity target; negatives for specificity) the choose set needs for
    the target to mean more than 'miss none': with n of them the smallest miss rate above zero is 1/n,
    so one miss is allowed only when (n - 1)/n >= target, i.e. n >= 1/(1 - target) (20 for 0.95,
    10 for 0.90, 100 for 0.99). A target of 1 always means 'miss none'."""
    if target >= 1.0:
        return math.inf
    return int(math.ceil(round(1.0 / (1.0 - target), 9)))


def _as_binary(scores, truth) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    truth = np.asarray(truth).reshape(-1).astype(bool)
    if len(scores) != len(truth):
        raise ValueError(f"scores and truth have different lengths: {len(scores)} and {len(truth)}")
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite numbers")
    return scores, truth


def candidate_thresholds(scores: np.ndarray) -> np.ndarray:
    """Every distinct way to cut the scores, each as the midpoint between neighbouring distinct scores
    (a threshold halfway between two examples, not on one), plus one below all (flag everyone) and one
    above all (flag no one). For probabilities the outer ends are 0 and 1."""
    distinct = np.unique(scores)
    if distinct.size == 0:
        return np.array([FALLBACK_THRESHOLD])
    low = 0.0 if distinct[0] >= 0.0 else distinct[0] - 1.0
    high = 1.0 if distinct[-1] < 1.0 else distinct[-1] + 1.0
    edges = np.concatenate([[low], distinct, [high]])
    cuts = (edges[1:] + edges[:-1]) / 2
    cuts[0] = min(cuts[0], distinct[0])            # at or below the lowest score: everyone flagged
    if cuts[-1] <= distinct[-1]:
        cuts[-1] = np.nextafter(distinct[-1], np.inf)
    return cuts


def _rates(scores: np.ndarray, truth: np.ndarray, cuts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sensitivity and specificity of flagging score >= cut, for each cut (nan where undefined)."""
    positives, negatives = np.sort(scores[truth]), np.sort(scores[~truth])
    with np.errstate(invalid="ignore", divide="ignore"):
        sensitivity = (len(positives) - np.searchsorted(positives, cuts, side="left")) / len(positives)
        specificity = np.searchsorted(negatives, cuts, side="left") / len(negatives)
    return sensitivity, specificity


def choose_threshold(choose_scores, choose_truth, rule: str = DEFAULT_RULE, target: Optional[float] = None) -> dict:
    """The threshold for `rule`, chosen on the choose ("validation") examples ONLY.

    `choose_scores`: the positive class's probability; `choose_truth`: True for the positive class.
    Rules: `sensitivity` (target: the highest threshold whose validation sensitivity is >= target, which
    maximises specificity under it), `specificity` (the lowest threshold with validation specificity
    >= target, maximising sensitivity), `youden` (maximise sensitivity + specificity - 1; ties to the
    threshold nearest 0.5), `threshold` (target is the probability itself; nothing is chosen).

    Returns {rule, target, threshold, chosen_on ("validation", or "fixed" for a fixed threshold),
    n_chosen, n_positive, n_negative, sensitivity_on_choose, specificity_on_choose, fallback, note}:
    `note` is a plain sentence when the choose set is too small for the target (fewer positives than
    `examples_needed(target)` for a sensitivity target, negatives for specificity, fewer than 5 of either
    for Youden) or has none of a class; a threshold is returned all the same, and `fallback` says how
    it was set then ("catch every positive", "clear every negative", or "fixed 0.5")."""
    check_target(rule, target)
    scores, truth = _as_binary(choose_scores, choose_truth)
    m, n = int(truth.sum()), int((~truth).sum())
    out = {"rule": rule, "target": None if target is None else float(target), "chosen_on": "validation",
           "n_chosen": int(len(scores)), "n_positive": m, "n_negative": n, "fallback": None, "note": None}
    if rule == "threshold":
        out.update(threshold=float(target), chosen_on="fixed", n_chosen=0, n_positive=0, n_negative=0,
                   sensitivity_on_choose=None, specificity_on_choose=None)
        return out
    needs = {"sensitivity": ("positive", m), "specificity": ("negative", n)}
    missing = [kind for kind, count in (("positive", m), ("negative", n)) if count == 0
               and (rule == "youden" or needs[rule][0] == kind)]
    if missing:
        out.update(threshold=FALLBACK_THRESHOLD, fallback=f"fixed {FALLBACK_THRESHOLD}",
                   sensitivity_on_choose=None, specificity_on_choose=None,
                   note=f"The validation examples include no {missing[0]} example, so no threshold can be "
                        f"chosen by {_rule_words(rule, target)}; the threshold is the fixed "
                        f"{FALLBACK_THRESHOLD} instead.")
        return out
    cuts = candidate_thresholds(scores)
    sensitivity, specificity = _rates(scores, truth, cuts)
    if rule == "sensitivity":
        index = int(np.flatnonzero(sensitivity >= target - 1e-12).max())
    elif rule == "specificity":
        index = int(np.flatnonzero(specificity >= target - 1e-12).min())
    else:
        j = np.nan_to_num(sensitivity + specificity - 1.0, nan=-np.inf)
        best = np.flatnonzero(j >= j.max() - 1e-12)
        index = int(best[np.argmin(np.abs(cuts[best] - 0.5))])
    out.update(threshold=float(cuts[index]), sensitivity_on_choose=_round(sensitivity[index]),
               specificity_on_choose=_round(specificity[index]))
    out["fallback"], out["note"] = _small_set_note(rule, target, m, n)
    return out


def _rule_words(rule: str, target: Optional[float]) -> str:
    return {"sensitivity": f"a target sensitivity of {_pct(target)}",
            "specificity": f"a target specificity of {_pct(target)}",
            "youden": "Youden's J", "threshold": "a fixed threshold"}[rule]


def _small_set_note(rule: str, target: Optional[float], m: int, n: int) -> tuple[Optional[str], Optional[str]]:
    if rule == "youden":
        if min(m, n) >= MIN_FOR_YOUDEN:
            return None, None
        return None, (f"The threshold maximising Youden's J rests on only {m} positive and {n} negative "
                      f"validation examples, so it may move a lot with other examples.")
    kind, count = ("positive", m) if rule == "sensitivity" else ("negative", n)
    verb, fallback = ("catches every", "catch every positive") if rule == "sensitivity" else \
        ("clears every", "clear every negative")
    if target >= 1.0:
        return fallback, (f"A target {rule} of 100% sets the threshold by the single lowest-scoring "
                          f"{kind} validation example: it {verb} one of the {count}; on new examples "
                          f"it may well miss some.")
    needed = examples_needed(target)
    if count >= needed:
        return None, None
    return fallback, (f"With {count} {kind} validation examples a target {rule} of {_pct(target)} cannot be "
                      f"told apart from 100% (one miss would already give {_pct((count - 1) / count)}); it needs "
                      f"at least {needed}. The threshold {verb} one of the {count} {kind} validation examples "
                      f"instead, so it is set by a single example.")


def _pct(x: Optional[float]) -> str:
    return "–" if x is None else f"{100 * float(x):.3g}%"


def _round(x, digits: int = 4):
    return None if x is None or not np.isfinite(x) else round(float(x), digits)


# -- the numbers at the threshold, on the report examples ------------------------------------------------

def _share(k: int, n: int, level: float) -> tuple[Optional[float], list]:
    return (round(k / n, 4) if n else None), list(wilson_interval(k, n, level))


def report_at_threshold(report_scores, report_truth, threshold: float, level: float = DEFAULT_LEVEL) -> dict:
    """Every number at `threshold`, on the report ("test") examples ONLY: {threshold, reported_on,
    n_reported, tp, fp, fn, tn, sensitivity, sensitivity_ci, specificity, specificity_ci, ppv, ppv_ci,
    npv, npv_ci, prevalence} with Wilson intervals; a share with no examples to count (e.g. PPV when
    nothing is flagged) is None with the interval [0, 1]. `prevalence` is the test set's."""
    scores, truth = _as_binary(report_scores, report_truth)
    flagged = scores >= float(threshold)
    tp, fp = int((flagged & truth).sum()), int((flagged & ~truth).sum())
    fn, tn = int((~flagged & truth).sum()), int((~flagged & ~truth).sum())
    sensitivity, sensitivity_ci = _share(tp, tp + fn, level)
    specificity, specificity_ci = _share(tn, tn + fp, level)
    ppv, ppv_ci = _share(tp, tp + fp, level)
    npv, npv_ci = _share(tn, tn + fn, level)
    n = len(scores)
    return {"threshold": float(threshold), "reported_on": "test", "n_reported": n, "tp": tp, "fp": fp, "fn": fn,
            "tn": tn, "sensitivity": sensitivity, "sensitivity_ci": sensitivity_ci, "specificity": specificity,
            "specificity_ci": specificity_ci, "ppv": ppv, "ppv_ci": ppv_ci, "npv": npv, "npv_ci": npv_ci,
            "prevalence": round((tp + fn) / n, 4) if n else None}


def bayes_ppv(sensitivity: float, specificity: float, prevalence: float) -> Optional[float]:
    flagged = sensitivity * prevalence + (1 - specificity) * (1 - prevalence)
    return None if flagged <= 0 else sensitivity * prevalence / flagged


def bayes_npv(sensitivity: float, specificity: float, prevalence: float) -> Optional[float]:
    cleared = specificity * (1 - prevalence) + (1 - sensitivity) * prevalence
    return None if cleared <= 0 else specificity * (1 - prevalence) / cleared


def at_prevalence(tp: int, fp: int, fn: int, tn: int, prevalence: float, level: float = DEFAULT_LEVEL) -> dict:
    """PPV and NPV where the condition has `prevalence` (the clinic's, typed by the user; the test set's is
    rarely it), by Bayes' rule from the test set's sensitivity and specificity:
    PPV = sens p / (sens p + (1 - spec)(1 - p)), NPV = spec (1 - p) / (spec (1 - p) + (1 - sens) p).

    Interval: PPV and NPV both rise with sensitivity and with specificity, so their bounds are the values
    at the corners of the (sensitivity, specificity) box. Sensitivity and specificity are measured on
    separate examples (positives, negatives), hence independent: with each Wilson interval at level
    sqrt(level) (0.9747 for 95%) both hold together with probability `level`, and then so does the
    box's image. Conservative (the box is larger than the joint region). Cheap enough for the page to
    call it live as the user types. Returns {prevalence, ppv, ppv_ci, npv, npv_ci, method}; values None
    where sensitivity or specificity cannot be measured (no test positives or negatives)."""
    prevalence = float(prevalence)
    if not 0.0 < prevalence < 1.0:
        raise ValueError(f"prevalence is a share strictly between 0 and 1, e.g. 0.05 for 5% (got {prevalence})")
    out = {"prevalence": prevalence, "ppv": None, "ppv_ci": [0.0, 1.0], "npv": None, "npv_ci": [0.0, 1.0],
           "method": PREVALENCE_METHOD}
    if tp + fn == 0 or tn + fp == 0:
        return out
    each = math.sqrt(level)
    sens, spec = tp / (tp + fn), tn / (tn + fp)
    sens_low, sens_high = wilson_interval(tp, tp + fn, each)
    spec_low, spec_high = wilson_interval(tn, tn + fp, each)
    ppv = bayes_ppv(sens, spec, prevalence)
    npv = bayes_npv(sens, spec, prevalence)
    ppv_low, ppv_high = bayes_ppv(sens_low, spec_low, prevalence), bayes_ppv(sens_high, spec_high, prevalence)
    npv_low, npv_high = bayes_npv(sens_low, spec_low, prevalence), bayes_npv(sens_high, spec_high, prevalence)
    out.update(ppv=_round(ppv) if ppv is not None else None,
               ppv_ci=[_floor4(ppv_low if ppv_low is not None else 0.0), _ceil4(ppv_high if ppv_high is not None else 1.0)],
               npv=_round(npv) if npv is not None else None,
               npv_ci=[_floor4(npv_low if npv_low is not None else 0.0), _ceil4(npv_high if npv_high is not None else 1.0)])
    return out


def _floor4(x: float) -> float:
    return float(math.floor(round(x * 1e4, 6)) / 1e4)


def _ceil4(x: float) -> float:
    return float(math.ceil(round(x * 1e4, 6)) / 1e4)


# -- the plain sentence ------------------------------------------------------------------------------------

def operating_point_sentence(tp: int, fp: int, fn: int, tn: int, positive_name: str,
                             negative_name: Optional[str] = None, *, where: str = "the test set",
                             label: bool = False) -> str:
    """E.g. 'At this threshold the model finds 19 of 20 face examples in the test set; it would also flag
    9 of 31 non-face ones.' `negative_name` None (K > 2): '... of 31 examples of the other classes';
    `label` (multi-label): '... 19 of 20 examples labelled cat ...; ... 9 of 31 examples without it.'"""
    positives, negatives = tp + fn, fp + tn
    # a class named by a number would read as a count ("6 of 6 8 examples"): "class 8"
    positive_name, negative_name = _as_name(positive_name), (_as_name(negative_name) if negative_name else None)
    if label:
        pos_noun, neg_noun, neg_short = (f"examples labelled {positive_name}", "examples without that label",
                                         "examples without it")
    elif negative_name:
        pos_noun, neg_noun, neg_short = f"{positive_name} examples", f"{negative_name} examples", f"{negative_name} ones"
    else:
        pos_noun = f"{positive_name} examples"
        neg_noun = neg_short = "examples of the other classes"
    if positives == 0 and negatives == 0:
        return f"There are no examples in {where} to measure this threshold on."
    if positives == 0:
        return (f"{where[0].upper()}{where[1:]} has no {pos_noun}, so how many the model finds cannot be "
                f"measured; at this threshold it would flag {fp} of {negatives} {neg_noun}.")
    first = f"At this threshold the model finds {tp} of {positives} {pos_noun} in {where}"
    if negatives == 0:
        return f"{first}; {where} has no {neg_noun}."
    return f"{first}; it would also flag {fp} of {negatives} {neg_short}."


# -- metrics.json ---------------------------------------------------------------------------------------

def operating_point_block(choose_scores, choose_truth, report_scores, report_truth, *, positive_name: str,
                          negative_name: Optional[str], rule: str = DEFAULT_RULE, target: Optional[float] = None,
                          prevalence: Optional[float] = None, level: float = DEFAULT_LEVEL) -> dict:
    """metrics.json's `operating_point` for one positive class from its scores: chosen on `choose_*`,
    reported on `report_*`. {positive_class, rule, target, threshold, chosen_on, n_chosen, reported_on,
    n_reported, sensitivity, sensitivity_ci, specificity, specificity_ci, ppv, ppv_ci, npv, npv_ci,
    tp, fp, fn, tn, prevalence (the test set's), at_prevalence (None, or `at_prevalence(...)` for the
    typed one), sensitivity_on_choose, specificity_on_choose, fallback, note, sentence, level}."""
    choice = choose_threshold(choose_scores, choose_truth, rule, target)
    report = report_at_threshold(report_scores, report_truth, choice["threshold"], level)
    counts = {k: report[k] for k in ("tp", "fp", "fn", "tn")}
    return {
        "positive_class": positive_name, "rule": choice["rule"], "target": choice["target"],
        "threshold": choice["threshold"], "chosen_on": choice["chosen_on"], "n_chosen": choice["n_chosen"],
        **{k: v for k, v in report.items() if k != "threshold"},
        "at_prevalence": None if prevalence is None else at_prevalence(**counts, prevalence=prevalence, level=level),
        "sensitivity_on_choose": choice["sensitivity_on_choose"],
        "specificity_on_choose": choice["specificity_on_choose"],
        "fallback": choice["fallback"], "note": choice["note"],
        "sentence": operating_point_sentence(**counts, positive_name=positive_name, negative_name=negative_name),
        "level": level,
    }


def operating_point_metrics(choose_probs, choose_targets, report_probs, report_targets, classes: Sequence[str],
                            positive_class=None, rule: Optional[str] = None, target: Optional[float] = None,
                            prevalence: Optional[float] = None, *, level: float = DEFAULT_LEVEL, seed: int = 0,
                            n_resamples: int = N_RESAMPLES) -> dict:
    """The single entry point for a single-label run: {"roc", "operating_point", "decision_curve"}, the
    three metrics.json blocks of issue 33.

    `choose_probs` / `report_probs`: (n, K) calibrated class probabilities of the choose ("validation")
    and report ("test") examples; `choose_targets` / `report_targets`: their class ids; `classes`: the K
    names; `positive_class`: the condition to find, by name or index; `rule` / `target`: as
    `choose_threshold` (rule None: Youden's J), or parse a CLI string with `parse_rule`; `prevalence`:
    the clinic's prevalence for `at_prevalence`, or None.

    Without a positive class: `roc` holds every class one-vs-rest and the other two blocks are None (no
    operating point is saved until the user names the condition to find). The threshold is chosen on the
    choose examples only; `roc`, `operating_point`'s numbers and `decision_curve` come from the report
    examples only, and the ROC / PR curves keep the operating point as one of their points."""
    classes = [str(c) for c in classes]
    choose_probs = _probability_matrix(choose_probs, choose_targets, classes, "choose")
    report_probs = _probability_matrix(report_probs, report_targets, classes, "report")
    choose_targets = np.asarray(choose_targets, dtype=np.int64).reshape(-1)
    report_targets = np.asarray(report_targets, dtype=np.int64).reshape(-1)
    if positive_class is None:
        return {"roc": roc_block(report_probs, report_targets, classes, None, level=level, seed=seed,
                                 n_resamples=n_resamples),
                "operating_point": None, "decision_curve": None}
    k = class_index(classes, positive_class)
    name = classes[k]
    negative_name = classes[1 - k] if len(classes) == 2 else None
    block = operating_point_block(choose_probs[:, k], choose_targets == k, report_probs[:, k], report_targets == k,
                                  positive_name=name, negative_name=negative_name, rule=rule or DEFAULT_RULE,
                                  target=target, prevalence=prevalence, level=level)
    roc = roc_block(report_probs, report_targets, classes, k, level=level, seed=seed, n_resamples=n_resamples,
                    keep_thresholds=[block["threshold"]])
    curve = None
    if len(report_targets):
        curve = decision_curve(report_probs[:, k], report_targets == k, level=level, seed=seed)
        curve["positive_class"] = name
        curve["sentence"] = decision_curve_sentence(curve, name)
    return {"roc": roc, "operating_point": block, "decision_curve": curve}


def _probability_matrix(probs, targets, classes: list, role: str) -> np.ndarray:
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != len(classes):
        raise ValueError(f"the {role} probabilities must be a matrix with one column per class "
                         f"({len(classes)}); got shape {probs.shape}")
    if len(probs) != len(np.asarray(targets).reshape(-1)):
        raise ValueError(f"{len(probs)} {role} probability rows but {len(np.asarray(targets).reshape(-1))} targets")
    return probs


# -- multi-label: each label has its threshold already --------------------------------------------------

def multilabel_operating_points(report_probs, report_targets, labels: Sequence[str], thresholds: Sequence[float],
                                how: Optional[Sequence[str]] = None, *, level: float = DEFAULT_LEVEL, seed: int = 0,
                                n_resamples: int = N_RESAMPLES) -> dict:
    """The per-label version for multi-label runs: {label: {"roc": binary_roc(...) on the report examples
    (the label's threshold kept on its curves), "operating_point": report_at_threshold(...) + rule ("the
    label's threshold", `how` it was chosen on validation), sentence}}. `report_probs` (n, L) sigmoid
    probabilities, `report_targets` (n, L) 0/1, `thresholds` one per label (chosen on the choose
    examples by trust.multilabel.choose_thresholds)."""
    probs = np.asarray(report_probs, dtype=np.float64)
    y = np.asarray(report_targets) > 0.5
    if probs.shape != y.shape or probs.ndim != 2 or probs.shape[1] != len(labels) or len(thresholds) != len(labels):
        raise ValueError(f"need (examples, {len(labels)}) probabilities and targets and one threshold per label; "
                         f"got {probs.shape}, {y.shape} and {len(thresholds)} thresholds")
    out = {}
    for j, name in enumerate(labels):
        t = float(thresholds[j])
        report = report_at_threshold(probs[:, j], y[:, j], t, level)
        counts = {k: report[k] for k in ("tp", "fp", "fn", "tn")}
        out[str(name)] = {
            "roc": binary_roc(probs[:, j], y[:, j], level=level, seed=seed + j, n_resamples=n_resamples,
                              keep_thresholds=[t], positive_name=str(name)),
            "operating_point": {"positive_class": str(name), "rule": "label threshold",
                                "chosen_on": "validation", "how": None if how is None else how[j], **report,
                                "sentence": operating_point_sentence(**counts, positive_name=str(name), label=True),
                                "level": level}}
    return out


def _as_name(name) -> str:
    text = str(name)
    return f"class {text}" if text[:1].isdigit() else text
