"""Typed events the engine emits while a run goes on (events.jsonl, one `to_dict()` per line).

The engine calls `on_event(event)` and appends `event.to_dict()` as one JSON line to the run's
`events.jsonl`; whoever reads that file back (the run folder, the executors following a worker)
gets these classes again through `event_from_dict` / `read_event`. The UI and CLI turn them into
plot rows and status text; nothing here knows who listens.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional


@dataclass
class Event:
    kind: ClassVar[str] = "event"
    time: float = field(default_factory=time.time, kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **dataclasses.asdict(self)}


@dataclass
class RunStarted(Event):
    kind: ClassVar[str] = "started"
    run_id: str
    model_id: str
    strategy: str
    modality: str
    classes: list[str]
    n_train: int
    n_val: int
    epochs: int
    total_steps: int
    trainable_params: int
    total_params: int
    device: str
    unit: str = "epoch"   # what `epochs` counts: "epoch", or "iteration" (the probe's full-batch solver)
    score: str = "accuracy"   # what `train_accuracy` / `val_accuracy` hold: "accuracy", or "micro_f1" (multi-label)


@dataclass
class Progress(Event):
    """A preparation stage with a count, e.g. computing embeddings for the probe cache."""
    kind: ClassVar[str] = "progress"
    stage: str
    done: int
    total: int
    message: str = ""


@dataclass
class StepEnd(Event):
    kind: ClassVar[str] = "step"
    epoch: int            # 1-based
    step: int             # optimisation steps done so far, all epochs
    total_steps: int
    train_loss: float
    learning_rate: float
    elapsed_s: float
    eta_s: Optional[float]


@dataclass
class EpochEnd(Event):
    kind: ClassVar[str] = "epoch"
    epoch: int
    epochs: int
    step: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    val_macro_f1: float
    elapsed_s: float
    eta_s: Optional[float]
    is_best: bool


@dataclass
class RunFinished(Event):
    kind: ClassVar[str] = "finished"
    run_id: str
    best_epoch: int
    accuracy: float
    macro_f1: float
    n_val: int
    elapsed_s: float
    run_dir: str


@dataclass
class RunStopped(Event):
    kind: ClassVar[str] = "stopped"
    run_id: str
    epoch: int
    step: int
    message: str


@dataclass
class RunFailed(Event):
    kind: ClassVar[str] = "failed"
    run_id: str
    message: str          # user-facing: what went wrong and what to do; never a traceback


@dataclass
class SearchTrial(Event):
    """One try of an `auto` run's search (tl_ui/engine/search/run.py), when it starts ("running") and when it
    ends; the page's trial table keeps the last event of each `number`. Scores are on the validation
    (choose) examples only."""
    kind: ClassVar[str] = "trial"
    number: int
    strategy: str
    settings: dict
    state: str                        # running | complete | pruned | stopped | skipped | failed
    name: str = ""                    # in words: "LoRA (rank 16, rate 0.001, 2 epochs)"
    val_score: Optional[float] = None
    val_score_ci: Optional[list] = None
    seconds: float = 0.0
    estimate_s: Optional[float] = None
    budget_left_s: Optional[float] = None
    note: str = ""                    # why it was pruned, stopped or skipped
    curve: list = field(default_factory=list)   # a fine-tuning try's validation accuracy after each of its epochs so far


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls for cls in (RunStarted, Progress, StepEnd, EpochEnd, RunFinished, RunStopped, RunFailed,
                              SearchTrial)
}
TERMINAL_KINDS = frozenset({RunFinished.kind, RunStopped.kind, RunFailed.kind})


class EventFormatError(ValueError):
    """A line of events.jsonl that is not one of the events above (unknown kind, a field missing)."""


def event_from_dict(data: dict[str, Any]) -> Event:
    """The event a `to_dict()` made. Keys the class does not know (written by a newer engine) are
    left out; an unknown kind or a missing field raises EventFormatError."""
    if not isinstance(data, dict):
        raise EventFormatError(f"an event is a JSON object, not {type(data).__name__}")
    cls = EVENT_TYPES.get(data.get("kind"))
    if cls is None:
        raise EventFormatError(f"unknown event kind {data.get('kind')!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    missing = sorted(f.name for f in dataclasses.fields(cls) if f.name not in data
                     and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
    if missing:
        raise EventFormatError(f"a '{cls.kind}' event without {', '.join(missing)}")
    return cls(**{k: v for k, v in data.items() if k in names})


def read_event(data: Any) -> Optional[Event]:
    """`event_from_dict`, or None for something that is not an event (readers skip it, as they skip a
    line cut by a crash)."""
    try:
        return event_from_dict(data)
    except EventFormatError:
        return None
