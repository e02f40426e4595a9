"""What a run's stages may read and set: `RunContext`. The stages are the probe's full-batch head and
the familiarity reference (stages.py), SetFit's contrastive stage (setfit.py) and continuing a parent
run (continuation.py); the loop (loop.py) builds the context once the model is loaded and owns
everything else (the optimiser, the loaders, early stopping, the end)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

import numpy as np

if TYPE_CHECKING:
    import torch

    from tl_ui.core.config import RunConfig
    from tl_ui.engine.models.build import LoadedModel
    from tl_ui.engine.tasks.base import Task
    from tl_ui.engine.training.recorder import EventRecorder


@dataclass(frozen=True)
class Examples:
    """The run's examples in their roles (tl_ui/engine/evaluation/roles.py): train; val = the choose
    ("validation") examples; report = the test examples."""
    classes: list[str]
    train_items: list
    val_items: list
    report_items: list
    train_targets: np.ndarray
    val_targets: np.ndarray
    report_targets: np.ndarray


@dataclass
class Clock:
    """Where the run is. Stages advance it; the events, the time left and the stop message read it."""
    epoch: int = 0               # a continued run starts after its parent's epochs (continuation.resume)
    step: int = 0
    total_steps: int = 0
    fit_started: float = 0.0     # time.time() when the fit began: train_seconds and the time left count from it
    steps_before_head: int = 0   # SetFit's contrastive steps, shown before the probe head's on the curves


@dataclass
class RunContext:
    """Read: the run's settings, examples, task, model and means of reporting. Set by stages: `clock`,
    `records` (what they add to metrics.json: "probe_fit", "setfit") and, by the probe, `features`."""
    config: "RunConfig"
    run_dir: Path
    examples: Examples
    task: "Task"
    loaded: "LoadedModel"
    window: Optional[str]                   # the DICOM window images are read with (None: each file's own)
    device: "torch.device"
    inference_batch: int                    # batch size for passes without gradients
    recorder: "EventRecorder"
    should_stop: Callable[[], bool]
    clock: Clock = field(default_factory=Clock)
    records: dict[str, Any] = field(default_factory=dict)
    # the probe's embeddings of every example ((train, choose, report) tensors, their targets): for the
    # cross-validation and the familiarity reference; None for fine-tuned runs
    features: Optional[tuple] = None
