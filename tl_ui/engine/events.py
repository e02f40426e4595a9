"""The engine's events (their classes live in tl_ui/contracts/events.py: the run folder and the
executors read events.jsonl back without importing the engine) and what `train_run` returns."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from tl_ui.contracts.events import (EVENT_TYPES, TERMINAL_KINDS, EpochEnd, Event, EventFormatError,  # noqa: F401
                                    Progress, RunFailed, RunFinished, RunStarted, RunStopped, StepEnd,
                                    event_from_dict, read_event)


@dataclass
class RunResult:
    """What `train_run` returns (the run folder holds everything else)."""
    run_id: str
    run_dir: Any                    # Path
    status: str                     # a RunState: FINISHED | STOPPED | FAILED
    metrics: Optional[dict] = None
    message: str = ""
