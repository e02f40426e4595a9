"""What every executor shares: a run's outcome, the stop file, following `events.jsonl`, the
supervision loop (stop → grace → terminate → kill, wall-clock cap) and settling a run whose worker
ended without recording how. No torch, no ray here: the web process imports this.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from tl_ui.contracts import DONE_STATES, RunState  # noqa: F401  (DONE_STATES: re-exported for the executors)
from tl_ui.contracts.events import Event, RunFailed, RunStopped, read_event
from tl_ui.core.runfolder import FAILED, FINISHED, STOPPED, RunFolder

log = logging.getLogger(__name__)
STOP_FILE = ".stop-requested"   # in the run folder: the worker's should_stop() looks for it

UNEXPECTED_END = ("The training process ended unexpectedly (it ran out of memory or was stopped by the system). "
                  "Try a smaller batch or image size.")
INTERNAL_ERROR = ("Training stopped because of an internal error. The details are in the server log; please try "
                  "again or choose another model or strategy.")


def memory_message(gb: float) -> str:
    return (f"The training process ran out of memory (each run may use {gb:g} GB here, setting TL_JOB_MEMORY_GB). "
            "Try a smaller batch or image size.")


def time_limit_message(minutes: float) -> str:
    return (f"The run reached the time limit of {minutes:g} minutes per run (setting TL_JOB_MAX_MINUTES) and was "
            "stopped; no model was saved. Try fewer epochs, fewer examples or a smaller model.")


SHUTDOWN_MESSAGE = "Stopped because the server was shut down. No model was saved; start the run again to get one."


def forced_stop_message(grace_s: float) -> str:
    return (f"Stopped by you. The training process did not stop by itself within {grace_s:g} s and was ended. "
            "No model was saved.")


@dataclass
class WorkerResult:
    """The fields of the engine's `RunResult`, read from the run folder (no torch needed)."""
    run_id: str
    run_dir: Path
    status: RunState                # FINISHED | STOPPED | FAILED
    metrics: Optional[dict] = None
    message: str = ""


class StopFile:
    """The stop request of one run, as a file in its folder: works for a local worker process and for
    a Ray task on another node (the runs folder is shared). `is_set` is cheap (one stat at most
    every `min_interval` s) and stays true once seen."""

    def __init__(self, run_dir: str | Path, min_interval: float = 0.2):
        self.path = Path(run_dir) / STOP_FILE
        self.min_interval = min_interval
        self._seen = False
        self._checked = 0.0

    def request(self) -> None:
        try:
            self.path.touch()
        except OSError:  # the run folder vanished: nothing left to stop
            log.warning("cannot write %s", self.path)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
        self._seen = False

    def is_set(self) -> bool:
        if self._seen:
            return True
        now = time.monotonic()
        if now - self._checked >= self.min_interval:
            self._checked = now
            self._seen = self.path.exists()
        return self._seen


class EventFollower:
    """The complete lines appended to `events.jsonl` since the last `read()` (a line still being
    written waits for its newline), as the engine's event classes. A JSON object that is no event
    (a stand-in train function's own record) is passed on as the dict it is. The file may not
    exist yet."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.offset = 0
        self._partial = b""

    def read(self) -> list[Event | dict]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except OSError:
            return []
        if not data:
            return []
        self.offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        events = []
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                events.append(read_event(event) or event)
        return events


def append_event(run: RunFolder, event: Event) -> None:
    """Add one line to the run's events.jsonl (only once its worker has ended: one writer at a time)."""
    try:
        with run.open_event_log() as fh:
            fh.write(json.dumps(event.to_dict()) + "\n")
    except OSError:
        log.warning("cannot append to %s", run.events_jsonl)


class Handle:
    """A started worker, as the supervision loop sees it."""

    def wait(self, timeout: float) -> bool:
        """True once the worker has ended (waits up to `timeout` s)."""
        raise NotImplementedError

    def started(self) -> bool:
        """False while the worker has not begun (a Ray task waiting for a node): Stop cancels it at once."""
        return True

    def terminate(self) -> None:
        """Ask the operating system (or Ray) to end the worker."""

    def kill(self) -> None:
        """End it for sure."""


class Executor:
    """Runs one job at a time per calling thread: `run(job)` blocks until the run has ended and
    returns its `WorkerResult`. The runner owns the queue; an executor only owns workers."""

    name = "?"

    def __init__(self, *, stop_grace_s: float = 30.0, kill_after_s: float = 5.0,
                 max_minutes: Optional[float] = None, memory_gb: float = 0.0, poll_s: float = 0.2):
        self.stop_grace_s = float(stop_grace_s)
        self.kill_after_s = float(kill_after_s)
        self.max_minutes = max_minutes
        self.memory_gb = float(memory_gb or 0.0)
        self.poll_s = poll_s
        self.closing = False

    def run(self, job) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        """The server is shutting down: running workers get a short grace, then are ended."""
        self.closing = True

    def release(self) -> None:
        """After the last run has ended: give back what the executor holds (a local Ray)."""

    def describe(self) -> dict:
        return {"executor": self.name}

    # -- shared by the process and Ray executors ---------------------------------------------------
    def supervise(self, job, handle: Handle, follower: EventFollower, stop: StopFile) -> Optional[str]:
        """Follow events until the worker ends; on Stop (or the wall-clock cap) ask it to stop,
        then terminate it after the grace period, then kill it. Returns why it was asked to stop
        ("stop" | "time" | "shutdown") or None."""
        started = time.monotonic()
        deadline = started + self.max_minutes * 60 if self.max_minutes else None
        reason: Optional[str] = None
        asked = terminated = killed = None
        while True:
            for event in follower.read():
                job.add_event(event)
            if handle.wait(0 if reason is None else self.poll_s):
                break
            now = time.monotonic()
            if reason is None:
                if self.closing:
                    reason = "shutdown"
                elif job.stop_flag.is_set():
                    reason = "stop"
                elif deadline is not None and now >= deadline:
                    reason = "time"
                if reason is None:
                    job.stop_flag.wait(self.poll_s)
                    continue
                log.info("asking job %s to stop (%s)", job.id, reason)
                stop.request()
                asked = now
            grace = self._grace(reason)
            if terminated is None and (now - asked >= grace or not handle.started()):
                if handle.started():
                    log.warning("job %s did not stop within %g s: terminating its worker", job.id, grace)
                handle.terminate()
                terminated = now
            elif terminated is not None and killed is None and now - terminated >= self.kill_after_s:
                log.warning("job %s did not end after terminate: killing its worker", job.id)
                handle.kill()
                killed = now
        for event in follower.read():
            job.add_event(event)
        return reason

    def _grace(self, reason: Optional[str]) -> float:
        return min(self.stop_grace_s, 3.0) if reason == "shutdown" else self.stop_grace_s

    def settle(self, job, reason: Optional[str], detail: str = "", **status_extra) -> WorkerResult:
        """The run's outcome once its worker has ended. A worker that recorded a final state is
        believed; one that died (out of memory, killed, a native crash, terminated after Stop)
        leaves its run failed (or stopped, if Stop was asked) with a plain message and no
        partial export."""
        run = RunFolder(job.run_dir)
        status = run.status()
        state, message = run.state(), str(status.get("message") or "")
        if state.done:
            if reason in ("time", "shutdown") and state == STOPPED:  # the engine honoured our stop: say why
                if reason == "time":
                    state, message = FAILED, time_limit_message(self.max_minutes or 0)
                else:
                    message = SHUTDOWN_MESSAGE
                run.set_status(state, message, **status_extra)
                self._announce(job, run, state, message)
            metrics = run.metrics() if state == FINISHED else None
            return WorkerResult(job.id, job.run_dir, state, metrics, message)
        run.remove_partial_exports()
        if reason == "stop" and "worker_pid" not in status:   # a Ray task still waiting for a node
            state, message = STOPPED, "Stopped before it started."
        elif reason == "stop":
            state, message = STOPPED, forced_stop_message(self._grace(reason))
        elif reason == "shutdown":
            state, message = STOPPED, SHUTDOWN_MESSAGE
        elif reason == "time":
            state, message = FAILED, time_limit_message(self.max_minutes or 0)
        else:
            state, message = FAILED, UNEXPECTED_END
        log.warning("job %s: worker ended without a result (%s)%s", job.id, reason or "died",
                    f": {detail}" if detail else "")
        run.set_status(state, message, **status_extra)
        self._announce(job, run, state, message)
        return WorkerResult(job.id, job.run_dir, state, None, message)

    @staticmethod
    def _announce(job, run: RunFolder, state: RunState, message: str) -> None:
        event = (RunStopped(run_id=job.id, epoch=0, step=0, message=message) if state == STOPPED
                 else RunFailed(run_id=job.id, message=message))
        append_event(run, event)
        job.add_event(event)


def worker_env() -> dict[str, str]:
    """What a worker elsewhere (a Ray node) must see as this server does: offline and quiet."""
    keys = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "TL_OFFLINE", "HF_HUB_DISABLE_TELEMETRY",
            "TOKENIZERS_PARALLELISM", "HF_HUB_DISABLE_PROGRESS_BARS", "TL_FAST_PATH")
    return {k: os.environ[k] for k in keys if k in os.environ}


def train_options(train_fn, job) -> dict[str, Any]:
    """Keyword arguments beyond the common ones that `train_fn` takes: the owner's embedding cache
    (the engine's train_run takes it; a test's stand-in train function need not)."""
    import inspect

    cache = getattr(job, "embedding_cache", None) if not isinstance(job, dict) else job.get("embedding_cache")
    if not cache:
        return {}
    try:
        params = inspect.signature(train_fn).parameters
    except (TypeError, ValueError):
        return {}
    takes = "embedding_cache" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
    return {"embedding_cache": cache} if takes else {}
