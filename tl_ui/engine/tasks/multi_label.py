"""Training runs on multi-label data (issue 15): one sigmoid output per label, binary cross-entropy.

`MultiLabelRun` is the ordinary run (`train._Run`: the same strategies, loop, roles, export) with
what differs for several labels per example:

* loss: `BCEWithLogitsLoss` with a positive weight per label (negatives / positives among the
  training examples, at most `MAX_POS_WEIGHT`), so a rare label is not simply always switched off;
* the probe's full-batch head: one-vs-rest logistic regression (scikit-learn) on the cached
  embeddings, its L2 strength cross-validated within the training examples;
* curves: micro-F1 at 0.5 where single-label runs show accuracy;
* the end: a threshold per label chosen on the choose ("validation") examples
  (`trust.multilabel.choose_thresholds`), every number measured on the report ("test") examples only.
No temperature is fitted (sigmoid scores are used as they are), so the exported model's scores are
the app's scores, and nothing fitted on the validation examples can sharpen them; a label's threshold
is tuned only with at least `trust.multilabel.MIN_FOR_THRESHOLD` positives and negatives there (else 0.5), and on
separable scores ties go to the cut nearest 0.5.
"""
from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from tl_ui.contracts.events import EpochEnd, RunFinished, StepEnd
from tl_ui.engine.export.folder import export_model
from tl_ui.engine.inference.familiarity import familiarity_for_run
from tl_ui.engine.training.loop import RunResult, _Run
from tl_ui.core.runfolder import RunFolder
from tl_ui.trust.multilabel import choose_thresholds, multilabel_scores, sigmoid

MAX_POS_WEIGHT = 10.0
PROBE_CS = (0.01, 0.1, 1.0, 10.0, 100.0)   # scikit-learn's C for the one-vs-rest probe, cross-validated
PROBE_METHOD = ("one-vs-rest logistic regression (scikit-learn, L-BFGS) on the embeddings, one scale for all "
                "features; C cross-validated within the training examples per label; positives weighted")
TASK = "multi_label"


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


class MultiLabelRun(_Run):
    SCORE = "micro_f1"

    def __init__(self, config, *args, **kwargs):
        if config.strategy == "setfit":   # before any model is loaded
            from tl_ui.core.config import ConfigError

            raise ConfigError("SetFit learns from pairs with the same or a different label, so it needs one label "
                              "per example. For multi-label data pick the linear probe, partial, full or LoRA.")
        super().__init__(config, *args, **kwargs)

    def _criterion(self) -> nn.Module:
        config = getattr(self.loaded.model, "config", None)
        if config is not None and hasattr(config, "problem_type"):   # transformers: sigmoid in pipeline()
            config.problem_type = "multi_label_classification"
        self.pos_weight = pos_weights(self.train_targets)
        return nn.BCEWithLogitsLoss(pos_weight=torch.tensor(self.pos_weight, dtype=torch.float32,
                                                            device=self.accelerator.device))

    def _targets(self, batch):
        return (batch[1] if isinstance(batch, (list, tuple)) else batch["labels"]).float()

    def _step_counts(self, logits: torch.Tensor, labels: torch.Tensor):
        return np.array(micro_f1_at(logits, labels), dtype=np.int64)

    def _epoch_score(self, counts, seen: int) -> float:
        return _f1(*counts) if seen else 0.0

    @torch.no_grad()
    def _validate(self, model, forward, loader) -> tuple[float, float, float]:
        """(loss, micro-F1, macro-F1) on the choose examples, scores cut at 0.5."""
        logits = torch.as_tensor(self._predict(model, forward, loader))
        return self._scores(logits, torch.as_tensor(self.val_targets))

    def _scores(self, logits: torch.Tensor, targets: torch.Tensor) -> tuple[float, float, float]:
        loss = nn.functional.binary_cross_entropy_with_logits(
            logits, targets, pos_weight=torch.as_tensor(self.pos_weight, dtype=torch.float32))
        per = [_f1(*micro_f1_at(logits[:, k], targets[:, k])) for k in range(targets.shape[1])]
        return float(loss), _f1(*micro_f1_at(logits, targets)), float(np.mean(per)) if per else 0.0

    def _outputs(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits, one per label (sigmoid scores after `trust.multilabel.sigmoid`)."""
        return logits

    # -- the probe's full-batch head ----------------------------------------------------------------
    def fit_full_batch(self, head: nn.Linear, features: list[torch.Tensor]) -> int:
        self.fit_started = time.time()
        fitted = fit_ovr_head(features[0].numpy(), self.train_targets, self.pos_weight, self.config.seed,
                              self.should_stop)
        with torch.no_grad():
            head.weight.copy_(torch.from_numpy(fitted["weight"]))
            head.bias.copy_(torch.from_numpy(fitted["bias"]))
        iterations = max(fitted["iterations"], 1)
        z = lambda x: torch.from_numpy(x.numpy() @ fitted["weight"].T + fitted["bias"]).float()   # noqa: E731
        train = self._scores(z(features[0]), torch.as_tensor(self.train_targets))
        val = self._scores(z(features[1]), torch.as_tensor(self.val_targets))
        self.epoch = self.step = iterations
        elapsed = time.time() - self.fit_started
        self.recorder.emit(StepEnd(epoch=iterations, step=iterations, total_steps=iterations, train_loss=train[0],
                                   learning_rate=0.0, elapsed_s=elapsed, eta_s=None))
        self.recorder.emit(EpochEnd(epoch=iterations, epochs=iterations, step=iterations, train_loss=train[0],
                                    train_accuracy=train[1], val_loss=val[0], val_accuracy=val[1],
                                    val_macro_f1=val[2], elapsed_s=elapsed, eta_s=None, is_best=True))
        self.probe_fit = {"method": PROBE_METHOD, "C": fitted["C"], "iterations": iterations,
                          "fit_seconds": round(elapsed, 4)}
        return iterations

    # -- the end -------------------------------------------------------------------------------------
    def _finish(self, train_plan, best_epoch: int, choose_logits: np.ndarray, report_logits: np.ndarray) -> RunResult:
        config = self.config
        report_items = [str(x) for x in self.report_items]
        thresholds, how = choose_thresholds(sigmoid(choose_logits), self.val_targets)   # chosen on "validation"
        probs = sigmoid(report_logits)
        metrics = build_multilabel_metrics(probs, self.report_targets, self.classes, report_items, thresholds,
                                           how, seed=config.seed)
        metrics.update({
            "n_train": len(self.train_items), "best_epoch": best_epoch, "epochs_run": self.epoch,
            "strategy": config.strategy, "model_id": config.model_id, "random_init": config.random_init,
            "trainable_params": train_plan.trainable_params, "total_params": train_plan.total_params,
            "train_seconds": round(time.time() - self.fit_started, 2), "evaluation": self._evaluation(),
            "pos_weight": {n: round(float(w), 4) for n, w in zip(self.classes, self.pos_weight)},
            **({"probe_fit": self.probe_fit} if self.probe_fit else {}),
        })
        model = self.accelerator.unwrap_model(train_plan.model)
        run = RunFolder(self.run_dir)
        familiarity = familiarity_for_run(self, metrics)
        if self.accelerator.is_main_process:
            write_multilabel_predictions(run.predictions_csv, probs, self.report_targets, self.classes,
                                         report_items, thresholds)
            export_model(self.loaded, model, run, config=config, data_summary=self._data_summary(),
                         metrics=metrics, familiarity=familiarity,
                         multilabel={"thresholds": dict(zip(self.classes, thresholds)), "threshold_choice": how})
            run.write_metrics(metrics)
        self.accelerator.wait_for_everyone()
        self.recorder.emit(RunFinished(
            run_id=self.run_dir.name, best_epoch=best_epoch, accuracy=metrics["accuracy"],
            macro_f1=metrics["macro_f1"], n_val=metrics["n_val"], elapsed_s=time.time() - self.recorder.started,
            run_dir=str(self.run_dir)))
        self.recorder.status("finished")
        return RunResult(self.run_dir.name, self.run_dir, "finished", metrics)

    def _evaluation(self) -> dict:
        record = self.roles.describe()
        record["chosen"] = ["epoch (early stopping)", "a score threshold per label"]
        record["sentence"] = (
            f"The numbers below come from {len(self.roles.report)} test examples that took no part in training "
            f"or in any choice; the epoch and each label's threshold were chosen on {len(self.roles.choose)} other "
            "validation examples.")
        return record


def fit_ovr_head(train_x: np.ndarray, train_y: np.ndarray, pos_weight: np.ndarray, seed: int,
                 should_stop=lambda: False) -> dict:
    """{"weight" (labels, features), "bias", "C", "iterations"}: one logistic regression per label on
    features centred and scaled by one spread (the standardisation folded back into the weights)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):   # tiny problems: BLAS threads beside torch's only spin (probe_solver.py)
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
            from tl_ui.engine.probe.features import Stopped

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
