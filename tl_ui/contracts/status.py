"""`RunStatus`: status.json, where a run stands (tl_ui/core/runfolder.py writes it on every change)."""
from __future__ import annotations

from typing import Annotated, Optional

from pydantic import Field, WithJsonSchema, field_validator

from tl_ui.contracts.base import Block
from tl_ui.contracts.states import RunState


RECORDED_STATES = [s.value for s in RunState if s is not RunState.UNKNOWN]


class RunStatus(Block):
    state: Annotated[RunState, WithJsonSchema({"type": "string", "enum": RECORDED_STATES,
                                               "description": "where the run stands"})]
    message: str = Field("", description="for people: why it stopped or failed, what to do")
    submitted: Optional[float] = Field(None, description="Unix time it was queued")
    started: Optional[float] = Field(None, description="Unix time training began")
    ended: Optional[float] = Field(None, description="Unix time it reached a final state")
    worker_pid: Optional[int] = None
    worker_host: Optional[str] = None
    executor: Optional[str] = Field(None, description="'process', 'ray' or 'inline'")
    exit_code: Optional[int] = Field(None, description="a worker that died: its exit code")
    error: Optional[str] = Field(None, description="an internal error's type (details in the server log)")
    scratch_run: Optional[str] = Field(None, description="the from-scratch companion queued with it")

    @field_validator("state")
    @classmethod
    def _recorded_state(cls, state: RunState) -> RunState:
        if state is RunState.UNKNOWN:
            raise ValueError("'unknown' is what a reader says about a missing status, never a recorded state")
        return state
