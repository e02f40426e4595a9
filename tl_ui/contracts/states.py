"""`RunState`: where a run stands, as status.json, the runner's jobs and `RunResult.status` say it.

A `str` Enum: `RunState.FINISHED == "finished"`, it hashes like its value and JSON writes it as its
value, so code and files that compare plain strings keep working while they move to the enum.
"""
from __future__ import annotations

from enum import Enum


class RunState(str, Enum):
    QUEUED = "queued"            # accepted, waiting for a slot
    RUNNING = "running"          # a worker trains it
    FINISHED = "finished"        # metrics.json and model/ are complete
    STOPPED = "stopped"          # Stop (or a shutdown) ended it; no model
    FAILED = "failed"            # bad data, a cap, a crash; status.json's message says what to do
    INTERRUPTED = "interrupted"  # the server stopped while it waited or trained (found at the next start)
    UNKNOWN = "unknown"          # no readable status.json (a folder being made, or one that is gone); never written

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @property
    def active(self) -> bool:
        """Waiting or training: it may still change."""
        return self in ACTIVE_STATES

    @property
    def done(self) -> bool:
        """Ended by the engine or the executor (interrupted runs are found later, at a restart)."""
        return self in DONE_STATES


ACTIVE_STATES = frozenset({RunState.QUEUED, RunState.RUNNING})
DONE_STATES = frozenset({RunState.FINISHED, RunState.STOPPED, RunState.FAILED})


def run_state(value) -> RunState:
    """The RunState of a stored value; anything unreadable is UNKNOWN."""
    try:
        return RunState(value)
    except ValueError:
        return RunState.UNKNOWN
