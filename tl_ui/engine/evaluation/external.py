"""A finished model on another site's labelled data (issue 34): which examples can be scored (class
matching) and every number of `validation.json` (docs/contracts.md, "validation.json"), from the
model's calibrated probabilities on them. numpy, scikit-learn and tl_ui.trust only: no torch, no model
(the worker's `engine/inference/validation.py` streams the data through the model and calls this).

Every share has its Wilson interval; macro-F1 a stratified bootstrap floored to what its n allows
(trust/floors.py); ECE its bootstrap range widened as trust.calibration does; the difference internal −
external Newcombe's interval for two independent samples (trust/two_samples.py).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
from sklearn.metrics import precision_recall_fscore_support

from tl_ui import trust
from tl_ui.engine.evaluation.evaluate import quick_scores
from tl_ui.trust.floors import FloorLog
from tl_ui.trust.two_samples import DIFFERENCE_METHOD, difference_sentence, newcombe_difference

CI_METHOD = ("Wilson score (accuracy, recall, coverage, flagged and unflagged accuracy); stratified bootstrap, 2000 "
             "resamples (macro-F1), never narrower than the Wilson interval of macro-F1 as a share; ECE: bootstrap "
             "range widened to what the accuracy's Wilson interval allows; difference internal − external: "
             + DIFFERENCE_METHOD)


def _norm(name: str) -> str:
    return " ".join(str(name).split()).casefold()


@dataclass
class ClassMatch:
    """How the new data's labels map onto the model's classes."""
    keep: list[int]                      # rows of the new data that can be scored
    targets: np.ndarray                  # their class index in the model's classes
    excluded_classes: dict[str, int]     # labels the model does not know -> rows left out
    missing_classes: list[str]           # model classes with no example in the new data
    renamed: dict[str, str] = field(default_factory=dict)   # label as written -> model class (case, spaces)

    @property
    def n_excluded(self) -> int:
        return int(sum(self.excluded_classes.values()))

    def sentences(self) -> list[str]:
        out = []
        if self.excluded_classes:
            names = ", ".join(f"'{k}' ({v})" for k, v in sorted(self.excluded_classes.items()))
            out.append(f"{self.n_excluded} example{'s' if self.n_excluded != 1 else ''} with labels the model was "
                       f"never trained on were left out: {names}. The model can only answer with its own classes.")
        if self.missing_classes:
            out.append("The new data has no example of " + ", ".join(f"'{c}'" for c in self.missing_classes)
                       + ": nothing is known about the model on those classes there.")
        if self.renamed:
            out.append("Labels matched to the model's classes ignoring case and spaces: "
                       + ", ".join(f"'{a}' → '{b}'" for a, b in sorted(self.renamed.items())) + ".")
        return out


def match_classes(model_classes: Sequence[str], labels: Sequence[str]) -> ClassMatch:
    """Exact names first, then the same name ignoring case and spaces; anything else is excluded."""
    exact = {c: i for i, c in enumerate(model_classes)}
    loose = {_norm(c): i for i, c in enumerate(model_classes)}
    keep, targets, excluded, renamed = [], [], Counter(), {}
    for row, label in enumerate(labels):
        index = exact.get(label)
        if index is None and _norm(label) in loose:
            index = loose[_norm(label)]
            renamed[str(label)] = model_classes[index]
        if index is None:
            excluded[str(label)] += 1
            continue
        keep.append(row)
        targets.append(index)
    seen = set(targets)
    missing = [c for i, c in enumerate(model_classes) if i not in seen]
    return ClassMatch(keep, np.asarray(targets, dtype=np.int64), dict(excluded), missing, renamed)


def _share(k: int, n: int, level: float) -> tuple[Optional[float], list[float]]:
    return (round(k / n, 4) if n else None), list(trust.wilson_interval(int(k), int(n), level))


def internal_block(metrics: dict) -> dict:
    """The run's own test numbers (metrics.json), for the side-by-side; counts recovered from the shares."""
    n = int(metrics.get("n_val") or 0)
    calibration = metrics.get("calibration") or {}
    conformal = metrics.get("conformal") or {}
    familiarity = metrics.get("familiarity") or {}
    block = {"n": n, "accuracy": metrics.get("accuracy"), "accuracy_ci": metrics.get("accuracy_ci"),
             "correct": int(round(float(metrics.get("accuracy") or 0) * n)),
             "macro_f1": metrics.get("macro_f1"), "macro_f1_ci": metrics.get("macro_f1_ci"),
             "per_class": {c: {"recall": s.get("recall"), "recall_ci": s.get("recall_ci"), "support": s.get("support")}
                           for c, s in (metrics.get("per_class") or {}).items()},
             "ece": calibration.get("ece_after"), "ece_ci": calibration.get("ece_after_ci"),
             "coverage": conformal.get("coverage"), "coverage_ci": conformal.get("coverage_ci"),
             "mean_set_size": conformal.get("mean_set_size"),
             "flag_rate": familiarity.get("test_flag_rate"), "flag_rate_ci": familiarity.get("test_flag_rate_ci")}
    roc = metrics.get("roc") or {}
    if roc.get("auroc") is not None:
        block.update(auroc=roc.get("auroc"), auroc_ci=roc.get("auroc_ci"))
    point = metrics.get("operating_point") or {}
    for key in ("sensitivity", "sensitivity_ci", "specificity", "specificity_ci", "threshold"):
        if point.get(key) is not None:
            block[key] = point[key]
    return block


def train_shares(metrics: dict) -> dict[str, float]:
    """The run's class proportions, from its test examples' supports: the split is stratified, so these are the
    training data's proportions up to rounding."""
    support = {c: int(s.get("support") or 0) for c, s in (metrics.get("per_class") or {}).items()}
    total = sum(support.values())
    return {c: round(v / total, 4) for c, v in support.items()} if total else {}


def validation_report(*, run_id: str, data_sha256: str, classes: Sequence[str], probs: np.ndarray,
                      match: ClassMatch, prediction_sets: Sequence[Optional[Sequence[str]]],
                      unlike: Sequence[Optional[bool]], internal_metrics: dict, set_level: Optional[float],
                      groups: Optional[Sequence[str]] = None, group_column: Optional[str] = None,
                      decisions: Optional[Sequence[Optional[str]]] = None, positive_scores: Optional[np.ndarray] = None,
                      operating_point: Optional[dict] = None, source: str = "", seed: int = 0,
                      level: float = trust.DEFAULT_LEVEL) -> dict:
    """validation.json from the kept rows' probabilities (n, K), prediction sets (class names, or None when the
    run has no sets), "unlike" flags (None: the run has no reference) and the run's own metrics.json."""
    classes = list(classes)
    probs = np.asarray(probs, dtype=np.float64).reshape(-1, len(classes))
    targets = match.targets
    n = int(len(targets))
    predicted = probs.argmax(axis=1) if n else np.zeros(0, dtype=np.int64)
    correct = int((predicted == targets).sum())
    floors = FloorLog()
    accuracy, accuracy_ci = _share(correct, n, level)
    macro_f1 = quick_scores(targets, predicted)[1] if n else None
    macro_f1_ci = floors.keep("macro_f1_ci", trust.at_least_as_share(
        macro_f1, trust.bootstrap_macro_f1_ci(targets, predicted, len(classes), level, seed=seed), n, level)) if n else [0.0, 1.0]
    per_class = {}
    if n:
        precision, recall, f1, support = precision_recall_fscore_support(targets, predicted, labels=list(range(len(classes))),
                                                                         zero_division=0)
    for i, name in enumerate(classes):
        n_true = int((targets == i).sum())
        hits = int(((predicted == i) & (targets == i)).sum())
        per_class[name] = ({"support": 0, "recall": None, "recall_ci": None, "precision": None, "f1": None} if not n_true
                           else {"support": n_true, "recall": round(float(recall[i]), 4),
                                 "recall_ci": list(trust.wilson_interval(hits, n_true, level)),
                                 "precision": round(float(precision[i]), 4), "f1": round(float(f1[i]), 4)})

    internal = internal_block(internal_metrics)
    out = {"run_id": run_id, "data_sha256": data_sha256, "source": source, "n": n, "n_excluded": match.n_excluded,
           "excluded_classes": match.excluded_classes, "missing_classes": match.missing_classes,
           "classes": classes, "accuracy": accuracy, "accuracy_ci": accuracy_ci,
           "macro_f1": None if macro_f1 is None else round(float(macro_f1), 4), "macro_f1_ci": macro_f1_ci,
           "per_class": per_class, "ci_level": level, "ci_method": CI_METHOD,
           "calibration": _calibration(probs, targets, level, seed),
           "conformal": _conformal(prediction_sets, targets, classes, set_level, level),
           "familiarity": _familiarity(unlike, predicted == targets, level, internal),
           "label_shift": _label_shift(train_shares(internal_metrics), targets, classes),
           "internal": internal, "floored_intervals": floors.field()}
    if n:
        out["accuracy_sentence"] = trust.accuracy_sentence(correct, n, accuracy_ci, noun="new examples")
    difference, ci = newcombe_difference(internal["correct"], internal["n"], correct, n, level)
    out["difference"] = {"accuracy": difference, "accuracy_ci": ci, "method": DIFFERENCE_METHOD,
                         "sentence": difference_sentence(difference, ci) if internal["n"] and n else
                         "There is nothing to compare: one of the two sets has no examples."}
    if groups is not None and n:
        out["groups"] = {"column": group_column, **trust.group_metrics(targets, predicted, list(groups), classes, level)}
    if operating_point and positive_scores is not None and decisions is not None:
        out["operating_point"] = _operating_point(operating_point, positive_scores, targets, classes, level)
    out["sentences"] = match.sentences()
    return out


def _calibration(probs: np.ndarray, targets: np.ndarray, level: float, seed: int) -> dict:
    if not len(targets):
        return {"ece": None, "ece_ci": None, "bins": []}
    return {"ece": round(trust.expected_calibration_error(probs, targets), 4),
            "ece_ci": trust.ece_interval(probs, targets, level=level, seed=seed),
            "bins": trust.reliability_bins(probs, targets)}


def _conformal(sets, targets, classes, set_level, level) -> dict:
    usable = [(s, t) for s, t in zip(sets, targets) if s is not None]
    if set_level is None or not usable or len(usable) < len(targets):
        return {"level": set_level, "coverage": None, "coverage_ci": None, "mean_set_size": None,
                "note": "This run has no prediction sets (too few validation examples were kept to calibrate them)."}
    hits = sum(1 for s, t in usable if classes[int(t)] in s)
    coverage, ci = _share(hits, len(usable), level)
    return {"level": set_level, "coverage": coverage, "coverage_ci": ci,
            "mean_set_size": round(float(np.mean([len(s) for s, _ in usable])), 4),
            "sentence": (f"The {set_level:.0%} prediction sets held the right class for {hits} of {len(usable)} new "
                         f"examples ({coverage:.0%}); on the run's own data they were built to hold it "
                         f"{set_level:.0%} of the time.")}


def _familiarity(unlike, right: np.ndarray, level: float, internal: dict) -> dict:
    flags = [u for u in unlike]
    if not flags or any(u is None for u in flags):
        return {"n_flagged": None, "accuracy_flagged": None, "accuracy_unflagged": None,
                "note": "This run has no reference of its training data, so nothing is flagged."}
    flags = np.asarray(flags, dtype=bool)
    n_flagged = int(flags.sum())
    acc_f, ci_f = _share(int(right[flags].sum()), n_flagged, level)
    acc_u, ci_u = _share(int(right[~flags].sum()), int((~flags).sum()), level)
    rate, rate_ci = _share(n_flagged, len(flags), level)
    sentence = (f"{n_flagged} of {len(flags)} new examples ({rate:.0%}) look unlike the training data"
                + (f", against {internal['flag_rate']:.0%} of the run's own test examples" if internal.get("flag_rate")
                   is not None else "") + ".")
    if n_flagged and (~flags).sum():
        sentence += (f" The model was right on {acc_f:.0%} of the flagged ones and {acc_u:.0%} of the others"
                     + (": the flag points at the risky ones." if ci_f[1] < ci_u[0] else
                        " (the intervals overlap: these data cannot show that the flag separates them)."))
    return {"n_flagged": n_flagged, "flag_rate": rate, "flag_rate_ci": rate_ci,
            "accuracy_flagged": acc_f, "accuracy_flagged_ci": ci_f if n_flagged else None,
            "accuracy_unflagged": acc_u, "accuracy_unflagged_ci": ci_u if (~flags).sum() else None,
            "sentence": sentence}


def _label_shift(train: dict[str, float], targets: np.ndarray, classes: list[str]) -> dict:
    counts = np.bincount(targets, minlength=len(classes)) if len(targets) else np.zeros(len(classes))
    total = max(int(counts.sum()), 1)
    return {c: [train.get(c), round(float(counts[i]) / total, 4)] for i, c in enumerate(classes)}


def _operating_point(point: dict, positive_scores: np.ndarray, targets: np.ndarray, classes: list[str],
                     level: float) -> dict:
    """Sensitivity and specificity at the run's own threshold (not refitted), and AUROC, on the new data."""
    from tl_ui.trust.operating_point import report_at_threshold
    from tl_ui.trust.roc import auroc_interval

    positive = point.get("positive_class")
    if positive not in classes:
        return {"note": "The run's positive class is not among its classes."}
    truth = (targets == classes.index(positive)).astype(int)
    out = {"positive_class": positive, "threshold": point.get("threshold")}
    if 0 < truth.sum() < len(truth):
        out["auroc"] = auroc_interval(positive_scores, truth, level)
    if point.get("threshold") is not None:
        out["at_threshold"] = report_at_threshold(positive_scores, truth, float(point["threshold"]), level)
    return out
