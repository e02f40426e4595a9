"""One label per example: softmax outputs and cross-entropy (optionally class-weighted), the probe's
multinomial head (tl_ui/engine/probe/solver.py); chosen on the choose ("validation") examples: the
calibration temperature and the prediction-set thresholds (tl_ui/engine/evaluation/report.py); on the
report ("test") examples: accuracy, macro-F1 and per-class scores with intervals, calibration,
prediction sets, groups, and the probe's cross-validation when there are few test examples. The export
folds the temperature into the classifier layer and keeps the thresholds; a loaded model answers with
calibrated probabilities and a prediction set."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from torch import nn

from tl_ui import trust
from tl_ui.core.config import PROBE_MAX_ITER
from tl_ui.engine.evaluation.evaluate import quick_scores, write_predictions
from tl_ui.engine.evaluation.report import CV_BELOW_N, build_metrics, calibrate, cross_validate_probe
from tl_ui.engine.export.card import model_card
from tl_ui.engine.probe.solver import app_options, fit_head
from tl_ui.engine.tasks.base import Evidence, FittedHead, Scored, Task, metrics_block
from tl_ui.trust.operating_point import operating_point_metrics


class SingleLabelTask(Task):
    name = "single_label"
    score = "accuracy"
    keeps_mistake_images = True
    probe_max_iterations = PROBE_MAX_ITER

    def __init__(self, classes):
        super().__init__(classes)
        self.class_weights: Optional[torch.Tensor] = None   # the loss's, when config.class_weighted

    @classmethod
    def handles(cls, dataset) -> bool:
        return True   # the default: the registry asks it last

    @classmethod
    def reads_export(cls, manifest: dict) -> bool:
        return True   # the default: the registry asks it last

    def check(self, config) -> None:
        """The positive class (issue 33) must be one of the data's classes."""
        config.check_positive_class(self.classes)

    # -- training ----------------------------------------------------------------------------------
    def criterion(self, loaded, train_targets: np.ndarray, config, device) -> nn.Module:
        if config.class_weighted:
            from sklearn.utils.class_weight import compute_class_weight

            weights = compute_class_weight("balanced", classes=np.arange(len(self.classes)), y=train_targets)
            self.class_weights = torch.tensor(weights, dtype=torch.float32, device=device)
        return nn.CrossEntropyLoss(weight=self.class_weights)

    def step_counts(self, logits: torch.Tensor, labels: torch.Tensor):
        return (logits.argmax(-1) == labels).sum().item()   # the number right

    def epoch_score(self, counts, seen: int) -> float:
        return counts / max(seen, 1)                         # accuracy

    def outputs(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.log_softmax(-1)   # logits up to a per-row constant: what temperature scaling needs

    def validation_scores(self, outputs: np.ndarray, targets: np.ndarray) -> tuple[float, float, float]:
        weight = None if self.class_weights is None else self.class_weights.cpu()
        loss = nn.functional.nll_loss(torch.as_tensor(outputs), torch.as_tensor(targets), weight=weight)
        accuracy, macro_f1 = quick_scores(targets, outputs.argmax(axis=1))
        return float(loss), accuracy, macro_f1

    def fit_probe_head(self, train_x, train_y, choose_x, choose_y, *, config, should_stop: Callable[[], bool],
                       on_iteration) -> FittedHead:
        weights = None if self.class_weights is None else self.class_weights.cpu().numpy()
        fitted = fit_head(train_x, train_y, len(self.classes), choose_x=choose_x, choose_y=choose_y,
                          class_weights=weights, seed=config.seed, on_iteration=on_iteration,
                          should_stop=should_stop, **app_options(config))
        return FittedHead(fitted.weight, fitted.bias, fitted.iterations, fitted.record())

    # -- chosen on the choose examples, measured on the report examples ---------------------------------
    def choose(self, choose: Scored, config) -> dict:
        return {"calibration": calibrate(choose.outputs, choose.targets)}

    def probabilities(self, scored: Scored, chosen: dict) -> np.ndarray:
        """The calibrated class probabilities of `scored` (the temperature chosen on the choose examples)."""
        return trust.softmax(scored.outputs, chosen["calibration"]["temperature"])

    def core_metrics(self, evidence: Evidence) -> dict:
        report, config = evidence.report, evidence.config
        return build_metrics(report.outputs, report.targets, evidence.classes, report.items,
                             evidence.chosen["calibration"], set_level=config.set_level, seed=config.seed,
                             groups=evidence.groups, group_column=evidence.group_column)

    @metrics_block
    def cross_validation(self, evidence: Evidence) -> Optional[dict]:
        """A steadier estimate than a small test set: only where each fold refits the whole recipe (a head on
        frozen embeddings). SetFit tuned the encoder on the training labels, so a head-only CV on its
        embeddings would let the test folds shape the features (docs/contracts.md, "cross_validation")."""
        if (evidence.features is None or len(evidence.report.items) >= CV_BELOW_N
                or evidence.config.strategy == "setfit"):
            return None
        features, targets = evidence.features
        cv = cross_validate_probe(torch.cat(features).numpy(), np.concatenate(targets), len(evidence.classes),
                                  evidence.config.seed)
        return None if cv is None else {"cross_validation": {**cv, "scope": "whole_recipe"}}

    @metrics_block
    def operating_point(self, evidence: Evidence) -> Optional[dict]:
        """From a score to a decision (issue 33): `roc` (every class one-vs-rest until a positive class is
        named; then that class, and every class too when K > 2), and with a positive class
        `operating_point` (the threshold chosen on the choose examples by the run's rule, every number at
        it measured on the report examples) and `decision_curve`, all inside
        `trust.operating_point.operating_point_metrics`, seeded by the run's seed (a replay gets the same)."""
        if not len(evidence.report.targets):
            return None
        config, chosen = evidence.config, evidence.chosen
        rule, target = config.operating_rule
        blocks = operating_point_metrics(
            self.probabilities(evidence.choose, chosen), evidence.choose.targets,
            self.probabilities(evidence.report, chosen), evidence.report.targets, evidence.classes,
            positive_class=config.positive_class, rule=rule, target=target, prevalence=config.prevalence,
            seed=config.seed)
        return {key: value for key, value in blocks.items() if value is not None}

    def write_predictions(self, path: Path, report: Scored, chosen: dict) -> None:
        write_predictions(path, self.probabilities(report, chosen), report.targets, self.classes, report.items)

    # -- the export and a loaded model ------------------------------------------------------------------
    def export_calibration(self, chosen: dict) -> dict:
        return chosen["calibration"]

    @staticmethod
    def saved_operating_point(metrics: dict) -> Optional[dict]:
        """What the export keeps of the operating point: {positive_class, threshold, rule, target, chosen_on}."""
        op = metrics.get("operating_point")
        if not op:
            return None
        return {key: op.get(key) for key in ("positive_class", "threshold", "rule", "target", "chosen_on")}

    def mark_model(self, model: nn.Module, chosen: dict, metrics: dict) -> None:
        """transformers: `config.decision_threshold` and `config.positive_label` when an operating point was saved."""
        saved, config = self.saved_operating_point(metrics), getattr(model, "config", None)
        if saved is None or config is None or not hasattr(config, "to_dict"):
            return
        config.decision_threshold = float(saved["threshold"])
        config.positive_label = str(saved["positive_class"])

    def timm_config(self, chosen: dict, metrics: dict) -> dict:
        saved = self.saved_operating_point(metrics)
        if saved is None:
            return {}
        return {"decision_threshold": float(saved["threshold"]), "positive_label": str(saved["positive_class"])}

    def manifest_additions(self, chosen: dict, metrics: dict) -> dict:
        saved = self.saved_operating_point(metrics)
        return {} if saved is None else {"operating_point": saved}

    def model_card(self, loaded, config, data_summary: dict, metrics: dict) -> str:
        return model_card(loaded, config, data_summary, metrics)

    def activation(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.softmax(-1)

    def answers(self, probs: np.ndarray, manifest: dict, level: Optional[float]) -> list[dict]:
        """{"probabilities": {class: p} (calibrated, most likely first), "prediction_set": the classes that
        hold the right one with probability `level` (split conformal, thresholds from the run's validation
        examples) or None when there were too few of those, "set_level", "set_sentence"}."""
        from tl_ui.trust import min_calibration_size, prediction_sets, set_sentence

        conformal = manifest.get("conformal") or {}
        level = float(level or conformal.get("default_level") or 0.9)
        qhat = (conformal.get("thresholds") or {}).get(str(level))
        sets = prediction_sets(probs, qhat) if qhat is not None else [None] * len(probs)
        out = []
        for row, chosen in zip(probs, sets):
            pairs = sorted(zip(self.classes, row.tolist()), key=lambda kv: -kv[1])
            names = None if chosen is None else [self.classes[k] for k in sorted(chosen, key=lambda k: -row[k])]
            sentence = set_sentence(names, level) if names else (
                f"No prediction set: this model kept too few validation examples for the {level:.0%} level "
                f"(at least {min_calibration_size(level)} needed).")
            out.append({"probabilities": {c: float(p) for c, p in pairs}, "prediction_set": names,
                        "set_level": level, "set_sentence": sentence,
                        **decision(row, self.classes, manifest.get("operating_point"))})
        return out


def decision(probs: np.ndarray, classes: list[str], saved: Optional[dict]) -> dict:
    """At the export's operating point: {"decision": "positive" | "negative" (probability of the positive class
    >= threshold), "threshold", "positive_class", "decision_sentence"}; {} for an export without one."""
    if not saved:
        return {}
    name, threshold = str(saved["positive_class"]), float(saved["threshold"])
    p = float(probs[classes.index(name)])
    flagged = p >= threshold
    sentence = (f"Decision: {'positive' if flagged else 'negative'} for {name} — its probability {p:.3f} is "
                f"{'at or above' if flagged else 'below'} the saved threshold {threshold:.4g} (chosen on the "
                f"validation examples).")
    return {"decision": "positive" if flagged else "negative", "threshold": threshold, "positive_class": name,
            "decision_sentence": sentence}
