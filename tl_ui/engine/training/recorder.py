"""Each engine event goes to the listener and to the run folder's events.jsonl; status.json follows
the run; `RunResult` is what a run returns. The events' classes are tl_ui/contracts/events.py (the run
folder and the jobs read events.jsonl back without the engine); the run folder's layout belongs to
tl_ui/core/runfolder.py."""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from tl_ui.contracts import RunState
from tl_ui.contracts.events import Event, RunFailed
from tl_ui.core.runfolder import RunFolder

log = logging.getLogger(__name__)
EventCallback = Callable[[Event], None]


@dataclass
class RunResult:
    """What `train_run` returns (the run folder holds everything else)."""
    run_id: str
    run_dir: Any                    # Path
    status: str                     # a RunState: FINISHED | STOPPED | FAILED
    metrics: Optional[dict] = None
    message: str = ""


class EventRecorder:
    def __init__(self, run_dir: Path, on_event: Optional[EventCallback]):
        self.run = RunFolder(run_dir)
        self.on_event = on_event
        self.started = time.time()
        self.muted = False  # under `accelerate launch`, only the main process writes
        self._log = self.run.open_event_log()

    def emit(self, event: Event) -> None:
        if self.muted:
            return
        self._log.write(json.dumps(event.to_dict()) + "\n")
        self._log.flush()
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:  # a broken listener must not kill the run
                log.exception("event listener failed")

    def status(self, state: RunState | str, message: str = "") -> None:
        if self.muted:
            return
        self.run.set_status(state, message)
        if state != RunState.RUNNING:
            self._log.close()


def fail_run(recorder: EventRecorder, run_dir: Path, message: str):
    """A failed run: the event, the status and the result, with the user's message."""
    recorder.emit(RunFailed(run_id=run_dir.name, message=message))
    recorder.status(RunState.FAILED, message)
    return RunResult(run_dir.name, run_dir, RunState.FAILED, None, message)
