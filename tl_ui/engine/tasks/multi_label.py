"""Several labels per example (issue 15): one sigmoid output per label, and everything that differs from
one label per example:

* loss: `BCEWithLogitsLoss` with a positive weight per label (negatives / positives among the
  training examples, at most `MAX_POS_WEIGHT`), so a rare label is not simply always switched off;
* the probe's full-batch head: one-vs-rest logistic regression (tl_ui/engine/probe/one_vs_rest.py);
* curves: micro-F1 at 0.5 where single-label runs show accuracy;
* chosen on the choose ("validation") examples: a threshold per label (`trust.multilabel.choose_thresholds`);
  every number measured on the report ("test") examples only: per-label and micro/macro scores with
  intervals, subset accuracy, Hamming loss (`build_multilabel_metrics`);
* the export: `problem_type="multi_label_classification"` and the thresholds in the model's config and
  in model/transfer_lab.json; a loaded model answers with every label's score and the labels at or above
  their thresholds.
No temperature is fitted (sigmoid scores are used as they are), so the exported model's scores are
the app's scores, and nothing fitted on the validation examples can sharpen them; a label's threshold
is tuned only with at least `trust.multilabel.MIN_FOR_THRESHOLD` positives and negatives there (else 0.5), and on
separable scores ties go to the cut nearest 0.5.
"""
from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from tl_ui.engine.export.multilabel_card import multilabel_card
from tl_ui.engine.probe.one_vs_rest import PROBE_METHOD, fit_ovr_head
from tl_ui.engine.probe.solver import Iteration
from tl_ui.engine.tasks.base import Evidence, FittedHead, Scored, Task, metrics_block
from tl_ui.trust.multilabel import choose_thresholds, multilabel_scores, sigmoid
from tl_ui.trust.operating_point import multilabel_operating_points

MAX_POS_WEIGHT = 10.0
TASK = "multi_label"
PROBLEM_TYPE = "multi_label_classification"   # transformers' name: sigmoid scores in pipeline()


def pos_weights(targets: np.ndarray) -> np.ndarray:
    y = np.asarray(targets, dtype=np.float64)
    positives = y.sum(axis=0)
    return np.clip((len(y) - positives) / np.maximum(positives, 1.0), 1.0, MAX_POS_WEIGHT)


def micro_f1_at(logits: torch.Tensor, targets: torch.Tensor) -> tuple[int, int, int]:
    """(tp, fp, fn) at score 0.5 (logit 0)."""
    pred, y = logits > 0, targets > 0.5
    return int((pred & y).sum()), int((pred & ~y).sum()), int((~pred & y).sum())


def _f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / max(2 * tp + fp + fn, 1)


def apply_thresholds(scores: dict, thresholds: dict) -> list[str]:
    """The labels whose score reaches their threshold, highest score first."""
    return [name for name, p in sorted(scores.items(), key=lambda kv: -kv[1]) if p >= float(thresholds.get(name, 0.5))]


class MultiLabelTask(Task):
    name = TASK
    score = "micro_f1"

    def __init__(self, classes):
        super().__init__(classes)
        self.pos_weight: Optional[np.ndarray] = None   # the loss's, from the training examples

    @classmethod
    def handles(cls, dataset) -> bool:
        return bool(dataset.multilabel)

    @classmethod
    def reads_export(cls, manifest: dict) -> bool:
        return bool(manifest.get("multilabel"))

    def check(self, config) -> None:
        if config.strategy == "setfit":
            from tl_ui.core.config import ConfigError

            raise ConfigError("SetFit learns from pairs with the same or a different label, so it needs one label "
                              "per example. For multi-label data pick the linear probe, partial, full or LoRA.")
        config.check_positive_class(self.classes, multilabel=True)

    # -- training ----------------------------------------------------------------------------------
    def criterion(self, loaded, train_targets: np.ndarray, config, device) -> nn.Module:
        model_config = getattr(loaded.model, "config", None)
        if model_config is not None and hasattr(model_config, "problem_type"):   # transformers: sigmoid in pipeline()
            model_config.problem_type = PROBLEM_TYPE
        self.pos_weight = pos_weights(train_targets)
        return nn.BCEWithLogitsLoss(pos_weight=torch.tensor(self.pos_weight, dtype=torch.float32, device=device))

    def batch_targets(self, batch) -> torch.Tensor:
        return super().batch_targets(batch).float()

    def step_counts(self, logits: torch.Tensor, labels: torch.Tensor):
        return np.array(micro_f1_at(logits, labels), dtype=np.int64)

    def epoch_score(self, counts, seen: int) -> float:
        return _f1(*counts) if seen else 0.0

    def outputs(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits, one per label (sigmoid scores after `trust.multilabel.sigmoid`)."""
        return logits

    def validation_scores(self, outputs: np.ndarray, targets: np.ndarray) -> tuple[float, float, float]:
        """(loss, micro-F1, macro-F1), scores cut at 0.5."""
        return self._scores(torch.as_tensor(outputs), torch.as_tensor(targets))

    def _scores(self, logits: torch.Tensor, targets: torch.Tensor) -> tuple[float, float, float]:
        loss = nn.functional.binary_cross_entropy_with_logits(
            logits, targets, pos_weight=torch.as_tensor(self.pos_weight, dtype=torch.float32))
        per = [_f1(*micro_f1_at(logits[:, k], targets[:, k])) for k in range(targets.shape[1])]
        return float(loss), _f1(*micro_f1_at(logits, targets)), float(np.mean(per)) if per else 0.0

    def fit_probe_head(self, train_x, train_y, choose_x, choose_y, *, config, should_stop, on_iteration) -> FittedHead:
        started = time.time()
        fitted = fit_ovr_head(train_x, train_y, self.pos_weight, config.seed, should_stop)
        iterations = max(fitted["iterations"], 1)
        z = lambda x: torch.from_numpy(x @ fitted["weight"].T + fitted["bias"]).float()   # noqa: E731
        train = self._scores(z(train_x), torch.as_tensor(train_y))
        val = self._scores(z(choose_x), torch.as_tensor(choose_y))
        on_iteration(Iteration(iterations, train[0], train[1], val[0], val[1], val[2]))   # one point: the fit
        record = {"method": PROBE_METHOD, "C": fitted["C"], "iterations": iterations,
                  "fit_seconds": round(time.time() - started, 4)}
        return FittedHead(fitted["weight"], fitted["bias"], iterations, record)

    # -- chosen on the choose examples, measured on the report examples ---------------------------------
    def choose(self, choose: Scored, config) -> dict:
        thresholds, how = choose_thresholds(sigmoid(choose.outputs), choose.targets)
        return {"thresholds": thresholds, "threshold_choice": how}

    def core_metrics(self, evidence: Evidence) -> dict:
        report, chosen = evidence.report, evidence.chosen
        return build_multilabel_metrics(sigmoid(report.outputs), report.targets, evidence.classes, report.items,
                                        chosen["thresholds"], chosen["threshold_choice"], seed=evidence.config.seed)

    @metrics_block
    def label_operating_points(self, evidence: Evidence) -> Optional[dict]:
        """Per label (issue 33): its ROC and PR curves on the test examples, and the sensitivity and
        specificity at the threshold it already has (chosen on the validation examples)."""
        report, chosen = evidence.report, evidence.chosen
        if not len(report.targets):
            return None
        return {"label_operating_points": multilabel_operating_points(
            sigmoid(report.outputs), report.targets, evidence.classes, chosen["thresholds"],
            chosen["threshold_choice"], seed=evidence.config.seed)}

    def evaluation_record(self, roles) -> dict:
        record = roles.describe()
        record["chosen"] = ["epoch (early stopping)", "a score threshold per label"]
        record["sentence"] = (
            f"The numbers below come from {len(roles.report)} test examples that took no part in training "
            f"or in any choice; the epoch and each label's threshold were chosen on {len(roles.choose)} other "
            "validation examples.")
        return record

    def run_fields(self) -> dict:
        return {"pos_weight": {n: round(float(w), 4) for n, w in zip(self.classes, self.pos_weight)}}

    def write_predictions(self, path: Path, report: Scored, chosen: dict) -> None:
        write_multilabel_predictions(path, sigmoid(report.outputs), report.targets, self.classes, report.items,
                                     chosen["thresholds"])

    # -- the export and a loaded model ------------------------------------------------------------------
    def _label_thresholds(self, chosen: dict) -> dict:
        return dict(zip(self.classes, chosen["thresholds"]))

    def mark_model(self, model: nn.Module, chosen: dict, metrics: dict) -> None:
        """transformers: `config.problem_type` (so `pipeline("text-classification", top_k=None,
        function_to_apply="sigmoid")` gives every label's score) and `config.label_thresholds`."""
        config = getattr(model, "config", None)
        if config is None or not hasattr(config, "to_dict"):
            return   # timm / sentence-transformers exports: timm_config and the manifest carry it
        config.problem_type = PROBLEM_TYPE
        config.label_thresholds = {str(k): float(v) for k, v in self._label_thresholds(chosen).items()}

    def timm_config(self, chosen: dict, metrics: dict) -> dict:
        return {"problem_type": PROBLEM_TYPE, "label_thresholds": self._label_thresholds(chosen)}

    def manifest_additions(self, chosen: dict, metrics: dict) -> dict:
        return {"multilabel": {"problem_type": PROBLEM_TYPE, "activation": "sigmoid",
                               "thresholds": self._label_thresholds(chosen),
                               "threshold_choice": chosen["threshold_choice"]}}

    def model_card(self, loaded, config, data_summary: dict, metrics: dict) -> str:
        return multilabel_card(loaded, config, data_summary, metrics)

    def activation(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.sigmoid()

    def answers(self, probs: np.ndarray, manifest: dict, level: Optional[float]) -> list[dict]:
        """{"probabilities": every label's sigmoid score (highest first), "labels": those at or above their
        threshold, "thresholds", "set_sentence": the labels in words, "prediction_set": None, "set_level": None}."""
        thresholds = {str(k): float(v) for k, v in ((manifest.get("multilabel") or {}).get("thresholds") or {}).items()}
        out = []
        for row in probs:
            scores = {c: float(p) for c, p in sorted(zip(self.classes, row.tolist()), key=lambda kv: -kv[1])}
            labels = apply_thresholds(scores, thresholds)
            sentence = (f"Labels: {', '.join(labels)} (each score at or above its threshold)." if labels else
                        "None of the labels: no score reached its threshold.")
            out.append({"probabilities": scores, "labels": labels, "thresholds": thresholds, "prediction_set": None,
                        "set_level": None, "set_sentence": sentence})
        return out


def build_multilabel_metrics(probs: np.ndarray, targets: np.ndarray, classes: Sequence[str], items: Sequence[str],
                             thresholds: Sequence[float], how: Sequence[str], *, seed: int, n_mistakes: int = 12) -> dict:
    """metrics.json for a multi-label run (docs/contracts.md, "multi-label"): the `multilabel` block,
    and the top-level keys every run has, each meaning the nearest thing: `accuracy` is subset
    accuracy (all labels right), `per_class` the per-label scores."""
    from tl_ui.trust import accuracy_sentence

    block = multilabel_scores(probs, targets, classes, thresholds, seed=seed)
    for name, choice in zip(classes, how):
        block["per_label"][name]["threshold_choice"] = choice
    y, pred = np.asarray(targets) > 0.5, probs >= np.asarray(thresholds)
    n = len(y)
    sets = [tuple(map(tuple, y[i:i + 1].astype(int)))[0] for i in range(n)]
    common = max(set(sets), key=sets.count) if sets else ()
    wrong = np.abs(probs - y).max(axis=1) * ((pred != y).any(axis=1))
    order = [i for i in np.argsort(-wrong, kind="stable") if wrong[i] > 0][:n_mistakes]
    mistakes = [{"item": str(items[i]), "true": _names(y[i], classes), "predicted": _names(pred[i], classes),
                 "confidence": float(wrong[i])} for i in order]
    exact = round(block["subset_accuracy"] * n)
    return {
        "task": TASK, "multilabel": block,
        "accuracy": block["subset_accuracy"], "accuracy_ci": block["subset_accuracy_ci"],
        "macro_f1": block["macro_f1"], "macro_f1_ci": block["macro_f1_ci"],
        "micro_f1": block["micro_f1"], "micro_f1_ci": block["micro_f1_ci"],
        # the top-level copies of the block's intervals that were widened to what n allows (trust.floors)
        "floored_intervals": [k for k in block.get("floored_intervals", []) if k in ("macro_f1_ci", "micro_f1_ci")],
        "majority_baseline_accuracy": sets.count(common) / n if n else 0.0,
        "n_val": n, "classes": list(classes), "ci_level": block["ci_level"], "ci_method": block["ci_method"],
        "accuracy_sentence": accuracy_sentence(exact, n, block["subset_accuracy_ci"],
                                               noun="test examples (all labels right)"),
        "per_class": {name: {k: row[k] for k in ("precision", "precision_ci", "recall", "recall_ci", "f1", "support")}
                      for name, row in block["per_label"].items()},
        "mistakes": mistakes,
    }


def _names(row: np.ndarray, classes: Sequence[str]) -> str:
    return "; ".join(c for c, on in zip(classes, row) if on) or "(none of these)"


def write_multilabel_predictions(path: Path, probs: np.ndarray, targets: np.ndarray, classes: Sequence[str],
                                 items: Sequence[str], thresholds: Sequence[float]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["item", "true", "predicted", *[f"p_{c}" for c in classes]])
        for item, target, row in zip(items, np.asarray(targets) > 0.5, probs):
            writer.writerow([item, _names(target, classes), _names(row >= np.asarray(thresholds), classes),
                             *[f"{p:.6f}" for p in row]])
