"""Single-label scores a careful person would trust, from the report ("test") examples' probabilities
(scikit-learn does the maths); the curves' quick scores; predictions.csv."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from tl_ui.trust.intervals import macro_f1_rows


def quick_scores(targets: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    """(accuracy, macro-F1): scikit-learn's `accuracy_score` and `f1_score(average="macro",
    zero_division=0)` over the labels present in either, from the counts. The per-epoch curves ask
    for these every epoch, and scikit-learn's input checks took 7 ms a call, a tenth of a repeat probe
    run (tests/unit/test_trust_stats.py checks both agree)."""
    targets, predicted = np.asarray(targets).ravel(), np.asarray(predicted).ravel()
    if len(targets) == 0 or len(targets) != len(predicted):   # scikit-learn says what is wrong
        return (float(accuracy_score(targets, predicted)),
                float(f1_score(targets, predicted, average="macro", zero_division=0)))
    labels, codes = np.unique(np.concatenate([targets, predicted]), return_inverse=True)   # the union
    true, guess = codes[:len(targets)], codes[len(targets):]
    return float(np.mean(true == guess)), float(macro_f1_rows(true, guess[None, :], len(labels))[0])


def evaluate(probs: np.ndarray, targets: np.ndarray, classes: Sequence[str], items: Sequence[str], *,
             n_mistakes: int = 12) -> dict:
    """Full evaluation on the validation set.

    `probs` is (n, n_classes) softmax output; `items` are the validation examples (paths or texts)
    so the UI can show the most confident mistakes.
    """
    labels = list(range(len(classes)))
    predicted = probs.argmax(axis=1)
    accuracy, macro_f1 = quick_scores(targets, predicted)
    precision, recall, f1, support = precision_recall_fscore_support(
        targets, predicted, labels=labels, zero_division=0)
    per_class = {
        name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
               "support": int(support[i])}
        for i, name in enumerate(classes)
    }
    confidence = probs.max(axis=1)
    wrong = np.flatnonzero(predicted != targets)
    wrong = wrong[np.argsort(-confidence[wrong], kind="stable")][:n_mistakes]
    mistakes = [
        {"item": str(items[i]), "true": classes[targets[i]], "predicted": classes[predicted[i]],
         "confidence": float(confidence[i])}
        for i in wrong
    ]
    majority = float(np.bincount(targets, minlength=len(classes)).max() / max(len(targets), 1))
    return {
        "accuracy": accuracy,
        "macro_f1": macro_f1,
        "majority_baseline_accuracy": majority,  # what always guessing the largest class scores
        "n_val": int(len(targets)),
        "classes": list(classes),
        "per_class": per_class,
        "confusion_matrix": confusion_matrix(targets, predicted, labels=labels).tolist(),
        "mistakes": mistakes,
    }


def write_predictions(path: Path, probs: np.ndarray, targets: np.ndarray, classes: Sequence[str],
                      items: Sequence[str]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["item", "true", "predicted", "confidence", *[f"p_{c}" for c in classes]])
        for item, target, row in zip(items, targets, probs):
            writer.writerow([item, classes[target], classes[int(row.argmax())], f"{row.max():.6f}",
                             *[f"{p:.6f}" for p in row]])
