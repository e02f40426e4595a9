"""Per-group metrics (e.g. per hospital site or scanner), to show who the model works worse for."""
from __future__ import annotations

import numpy as np
from fairlearn.metrics import MetricFrame
from sklearn.metrics import f1_score

from .proportions import DEFAULT_LEVEL, wilson_interval


def _count(y_true, y_pred) -> int:
    return int(len(y_true))


def _correct(y_true, y_pred) -> int:
    return int(np.sum(np.asarray(y_true) == np.asarray(y_pred)))


def _class_support(label: int):
    return lambda y_true, y_pred: int(np.sum(np.asarray(y_true) == label))


def _class_hits(label: int):
    return lambda y_true, y_pred: int(np.sum((np.asarray(y_true) == label) & (np.asarray(y_pred) == label)))


def _macro_f1(n_classes: int):
    labels = list(range(n_classes))
    return lambda y_true, y_pred: f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def group_metrics(y_true, y_pred, groups: list[str], classes: list[str], level: float = DEFAULT_LEVEL,
                  min_n: int = 20) -> dict:
    """Accuracy (with Wilson interval), macro-F1 and per-class recall for each group.

    `max_gap` compares only groups with at least `min_n` examples when two or more such groups
    exist: a gap driven by a handful of examples would be noise presented as a finding.
    """
    y_true = np.asarray(y_true, dtype=np.int64).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=np.int64).reshape(-1)
    groups = [str(g) for g in groups]
    if not (len(y_true) == len(y_pred) == len(groups)):
        raise ValueError("y_true, y_pred and groups must have the same length")
    if len(y_true) == 0:
        return {"by_group": {}, "max_gap": {"accuracy": 0.0, "between": []}, "warnings": []}

    metrics = {"n": _count, "correct": _correct, "macro_f1": _macro_f1(len(classes))}
    for index in range(len(classes)):
        metrics[f"support_{index}"] = _class_support(index)
        metrics[f"hits_{index}"] = _class_hits(index)
    frame = MetricFrame(metrics=metrics, y_true=y_true, y_pred=y_pred,
                        sensitive_features=np.asarray(groups, dtype=object)).by_group

    by_group, warnings = {}, []
    for name, row in frame.iterrows():
        n, correct = int(row["n"]), int(row["correct"])
        recall = {}
        for index, class_name in enumerate(classes):
            support, hits = int(row[f"support_{index}"]), int(row[f"hits_{index}"])
            recall[class_name] = {
                "value": round(hits / support, 4) if support else None,  # no examples: unknown
                "ci": list(wilson_interval(hits, support, level)),
                "n": support,
            }
        by_group[str(name)] = {
            "n": n,
            "accuracy": round(correct / n, 4),
            "accuracy_ci": list(wilson_interval(correct, n, level)),
            "macro_f1": round(float(row["macro_f1"]), 4),
            "recall": recall,
            "few_examples": n < min_n,
        }
        if n < min_n:
            warnings.append(f"Group '{name}' has only {_plural(n, 'held-out example')}: "
                            "its numbers are very uncertain.")

    compared = [g for g, m in by_group.items() if not m["few_examples"]]
    if len(compared) < 2:
        compared = list(by_group)
    accuracies = {g: by_group[g]["accuracy"] for g in compared}
    best, worst = max(accuracies, key=accuracies.get), min(accuracies, key=accuracies.get)
    max_gap = {"accuracy": round(accuracies[best] - accuracies[worst], 4), "between": [best, worst]}
    return {"by_group": by_group, "max_gap": max_gap, "warnings": warnings}
