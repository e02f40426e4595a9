"""The Task seam: what one kind of task (one label per example, several labels per example, ...) owns,
as the methods the one training loop (tl_ui/engine/training/loop.py), the export
(tl_ui/engine/export/folder.py) and `Predictor` (tl_ui/engine/inference/predict.py) call. Nothing
outside tl_ui/engine/tasks asks which task it has.

A run's task is made for its classes (`Task(classes)`) and lives as long as the run: `criterion` keeps
the loss's weights that `validation_scores` and the probe's head reuse. The order a run calls it in:

    check(config)                                 before any model loads
    criterion(...), batch_targets, step_counts, epoch_score, outputs, validation_scores
                                                  the loop and its curves
    fit_probe_head(...)                           the linear probe's full-batch head (and SetFit's)
    choose(choose examples)                       what is chosen on the choose ("validation") examples only
    metrics(Evidence)                             metrics.json, measured on the report ("test") examples
    evaluation_record, run_fields, write_predictions, keeps_mistake_images
    export_calibration, mark_model, timm_config, manifest_additions, model_card   (the export)
and, when a model is loaded back: activation(logits), answers(probabilities, ...).

`metrics` is `core_metrics` and then every method marked `@metrics_block`, each adding its keys:
a new metrics.json block that needs the choose and the report examples together (issue 33's operating
point: a threshold chosen on the choose examples, its sensitivity measured on the report ones) is one
such method on its task.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Optional, Sequence

import numpy as np

if TYPE_CHECKING:
    import torch
    from torch import nn

    from tl_ui.core.config import RunConfig
    from tl_ui.data import LabelledDataset
    from tl_ui.engine.evaluation.roles import Roles
    from tl_ui.engine.models.build import LoadedModel
    from tl_ui.engine.probe.solver import Iteration


@dataclass
class Scored:
    """One role's examples as the model scored them: `outputs` as the task keeps them (`Task.outputs`:
    log-probabilities, logits...), their targets, and their names (file paths or texts)."""
    outputs: np.ndarray
    targets: np.ndarray
    items: list[str]


@dataclass
class Evidence:
    """What a task measures on (`Task.metrics`): the choose and report examples as scored, what
    `choose` picked on the choose examples, and the run's settings. `features`: the probe's
    embeddings of every example, per role, with their targets (None when the run has none)."""
    choose: Scored
    report: Scored
    chosen: dict
    classes: list[str]
    config: "RunConfig"
    modality: str
    groups: Optional[list[str]] = None       # the report examples' groups (a group column), or None
    group_column: Optional[str] = None
    features: Optional[tuple] = None          # ((train, choose, report) tensors, (train, choose, report) targets)


@dataclass
class FittedHead:
    """A probe head fitted full batch: the linear layer's weight (classes, features) and bias in the raw
    feature space, its iterations, metrics.json's `probe_fit` record, and how many iterations it could
    have run (the live curve's x range; None: as many as it ran)."""
    weight: np.ndarray
    bias: np.ndarray
    iterations: int
    record: dict
    planned: Optional[int] = None


def metrics_block(method: Callable) -> Callable:
    """Mark a Task method `(self, evidence) -> dict | None` whose keys join metrics.json after
    `core_metrics` (in the order the class defines them)."""
    method.metrics_block = True
    return method


class Task:
    """The base of every task; the methods without a body here are the ones a task must define."""
    name: ClassVar[str]                   # registry key
    score: ClassVar[str]                  # what the curves' score is (RunStarted.score): "accuracy", "micro_f1"
    keeps_mistake_images: ClassVar[bool] = False   # image runs: previews of the shown mistakes in the run folder
    probe_max_iterations: ClassVar[Optional[int]] = None   # the probe head's live curve's x range (None: as run)

    def __init__(self, classes: Sequence[str]):
        self.classes = list(classes)

    # -- which data and which exports ------------------------------------------------------------
    @classmethod
    def handles(cls, dataset: "LabelledDataset") -> bool:
        """Whether this task trains on `dataset` (the registry asks in order, the default last)."""
        raise NotImplementedError

    @classmethod
    def reads_export(cls, manifest: dict) -> bool:
        """Whether an export's manifest (model/transfer_lab.json) is this task's."""
        raise NotImplementedError

    def check(self, config: "RunConfig") -> None:
        """Refuse, with a ConfigError in plain words, a setting this task cannot train."""

    # -- training ----------------------------------------------------------------------------------
    def criterion(self, loaded: "LoadedModel", train_targets: np.ndarray, config: "RunConfig",
                  device: "torch.device") -> "nn.Module":
        raise NotImplementedError

    def batch_targets(self, batch) -> "torch.Tensor":
        """A batch's targets as the loss wants them."""
        return batch[1] if isinstance(batch, (list, tuple)) else batch["labels"]

    def step_counts(self, logits: "torch.Tensor", labels: "torch.Tensor"):
        """What one optimisation step adds to the epoch's training score (summed over the epoch)."""
        raise NotImplementedError

    def epoch_score(self, counts, seen: int) -> float:
        """The training curve's score from the summed counts."""
        raise NotImplementedError

    def outputs(self, logits: "torch.Tensor") -> "torch.Tensor":
        """What the run keeps of a batch's logits (the `Scored.outputs` every later step reads)."""
        raise NotImplementedError

    def validation_scores(self, outputs: np.ndarray, targets: np.ndarray) -> tuple[float, float, float]:
        """(loss, score, macro-F1) on the choose examples: early stopping's loss and the curves."""
        raise NotImplementedError

    def fit_probe_head(self, train_x: np.ndarray, train_y: np.ndarray, choose_x: np.ndarray, choose_y: np.ndarray,
                       *, config: "RunConfig", should_stop: Callable[[], bool],
                       on_iteration: Callable[["Iteration"], None]) -> FittedHead:
        """The linear probe's head fitted full batch on the embeddings; `on_iteration` feeds the live
        curves (the last call is the kept head). The choose examples are watched, never chosen on."""
        raise NotImplementedError

    # -- chosen on the choose ("validation") examples ------------------------------------------------
    def choose(self, choose: Scored, config: "RunConfig") -> dict:
        """What is chosen on the choose examples, by name (a temperature, thresholds ...)."""
        raise NotImplementedError

    # -- measured on the report ("test") examples ------------------------------------------------------
    def core_metrics(self, evidence: Evidence) -> dict:
        raise NotImplementedError

    def metrics(self, evidence: Evidence) -> dict:
        """metrics.json's task part: `core_metrics`, then every `@metrics_block` method's keys."""
        metrics = self.core_metrics(evidence)
        for name in self._block_names():
            block = getattr(self, name)(evidence)
            if block:
                metrics.update(block)
        return metrics

    @classmethod
    def _block_names(cls) -> list[str]:
        names: list[str] = []
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                if getattr(value, "metrics_block", False) and name not in names:
                    names.append(name)
        return names

    def evaluation_record(self, roles: "Roles") -> dict:
        """metrics.json's `evaluation`: who trained, chose and reported, and what was chosen."""
        return roles.describe()

    def run_fields(self) -> dict:
        """Keys of metrics.json the task adds about its training (e.g. the loss's weights)."""
        return {}

    def write_predictions(self, path: Path, report: Scored, chosen: dict) -> None:
        """predictions.csv: one row per report example, with its scores."""
        raise NotImplementedError

    # -- the export --------------------------------------------------------------------------------
    def export_calibration(self, chosen: dict) -> Optional[dict]:
        """{"temperature" (folded into the classifier layer), "thresholds" (prediction sets), "n_calibration"}
        for the export, or None (nothing folded: temperature 1)."""
        return None

    def mark_model(self, model: "nn.Module", chosen: dict, metrics: dict) -> None:
        """What the model's own config carries (transformers exports), before it is saved; `metrics`:
        metrics.json as measured (e.g. the operating point chosen on the validation examples)."""

    def timm_config(self, chosen: dict, metrics: dict) -> dict:
        """Keys added to a timm export's config.json."""
        return {}

    def manifest_additions(self, chosen: dict, metrics: dict) -> dict:
        """Keys added to model/transfer_lab.json (an ExportManifest)."""
        return {}

    def model_card(self, loaded: "LoadedModel", config: "RunConfig", data_summary: dict, metrics: dict) -> str:
        """The export's README.md."""
        raise NotImplementedError

    # -- a loaded export -------------------------------------------------------------------------------
    def activation(self, logits: "torch.Tensor") -> "torch.Tensor":
        """Probabilities (or scores) from the exported model's logits, as the app shows them."""
        raise NotImplementedError

    def answers(self, probs: np.ndarray, manifest: dict, level: Optional[float]) -> list[dict[str, Any]]:
        """`Predictor.predict_with_set`'s answer for each row of `probs` (the "unlike your training data"
        keys are the Predictor's)."""
        raise NotImplementedError

