"""The one place that knows about threads: a fair FIFO queue of training jobs and their workers.

A `Job` is one submitted run. Workers (at most `max_concurrent` at once) take jobs in submission
order and call the engine's `train_run` with the job's stop flag; every event the engine emits is
appended to the job's event log, which any number of readers (the page's poll timer, an API
stream, a reopened tab) follow with their own cursor. A closed browser tab only stops a reader,
never the job. Stop sets the flag; the engine honours it before its next step.

The train function is injected (default: `tl_ui.engine.train_run`, imported lazily so that
importing the UI does not import torch).
"""
from __future__ import annotations

import itertools
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from tl_ui.runfolder import ACTIVE_STATES, FAILED, FINISHED, QUEUED, RUNNING, STOPPED, RunFolder

log = logging.getLogger(__name__)

DONE_STATES = frozenset({FINISHED, STOPPED, FAILED})

TrainFn = Callable[..., Any]


class QueueFull(RuntimeError):
    """The owner already has as many jobs waiting or running as allowed; message is user-facing."""


def _default_train_fn(*args, **kwargs):
    from tl_ui.engine import train_run  # lazy: torch is imported only when a job runs

    return train_run(*args, **kwargs)


@dataclass(eq=False)
class Job:
    id: str
    owner: str
    config: Any                       # RunConfig
    run_dir: Path
    dataset: Any = None               # an already-loaded LabelledDataset, or None
    label: str = ""                   # short human description for logs
    log_name: str = ""                # the owner as logs may show it (never a raw cookie)
    seq: int = 0                      # submission order
    state: str = QUEUED
    submitted: float = field(default_factory=time.time)
    started: Optional[float] = None
    ended: Optional[float] = None
    result: Any = None                # RunResult once done
    message: str = ""                 # last user-facing message (failure / stop reason)
    stop_flag: threading.Event = field(default_factory=threading.Event)
    _events: list = field(default_factory=list, repr=False)
    _cond: threading.Condition = field(default_factory=threading.Condition, repr=False)

    # -- events -------------------------------------------------------------------------------
    def add_event(self, event: Any) -> None:
        """Called from the worker thread for each engine event (an Event or a plain dict)."""
        data = event.to_dict() if hasattr(event, "to_dict") else dict(event)
        with self._cond:
            self._events.append(data)
            self._cond.notify_all()

    def events_since(self, cursor: int = 0) -> tuple[list[dict], int]:
        """Events after position `cursor` and the new cursor. Safe from any thread."""
        with self._cond:
            return list(self._events[cursor:]), len(self._events)

    def wait_events(self, cursor: int, timeout: float) -> tuple[list[dict], int]:
        """Like `events_since`, but waits up to `timeout` s for something new (or the job's end)."""
        with self._cond:
            if len(self._events) <= cursor and self.state in ACTIVE_STATES:
                self._cond.wait(timeout)
            return list(self._events[cursor:]), len(self._events)

    @property
    def events(self) -> list[dict]:
        return self.events_since(0)[0]

    def _touch(self) -> None:
        with self._cond:
            self._cond.notify_all()

    @property
    def done(self) -> bool:
        return self.state in DONE_STATES

    def stop(self) -> None:
        self.stop_flag.set()
        self._touch()


class Runner:
    """Owns worker threads and a FIFO queue; one per app."""

    def __init__(
        self,
        max_concurrent: int = 1,
        train_fn: Optional[TrainFn] = None,
        max_per_owner: Optional[int] = None,
        keep_done: int = 500,
        on_done: Optional[Callable[[Job], None]] = None,
    ):
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self.max_concurrent = max_concurrent
        self.max_per_owner = max_per_owner
        self.keep_done = keep_done
        self._train_fn = train_fn or _default_train_fn
        self._on_done = on_done
        self._lock = threading.Condition()
        self._pending: list[Job] = []          # FIFO, in submission order
        self._jobs: dict[str, Job] = {}        # every known job by id (bounded: old done ones dropped)
        self._running: set[str] = set()
        self._workers: list[threading.Thread] = []
        self._seq = itertools.count(1)
        self._closed = False

    # -- submitting and querying --------------------------------------------------------------
    def submit(self, config, run_dir: str | Path, owner: str = "", dataset=None,
               run_id: Optional[str] = None, label: str = "", log_name: str = "") -> Job:
        run_dir = Path(run_dir)
        with self._lock:
            if self._closed:
                raise RuntimeError("The runner is shut down.")
            if self.max_per_owner is not None:
                active = sum(1 for j in self._jobs.values() if j.owner == owner and j.state in ACTIVE_STATES)
                if active >= self.max_per_owner:
                    raise QueueFull(
                        f"You already have {active} training run(s) waiting or running "
                        f"(the limit is {self.max_per_owner}). Wait for one to finish or stop one."
                    )
            job = Job(id=run_id or run_dir.name, owner=owner, config=config, run_dir=run_dir,
                      dataset=dataset, label=label, log_name=log_name or "-", seq=next(self._seq))
            if job.id in self._jobs and not self._jobs[job.id].done:
                raise ValueError(f"A job with id {job.id} is already active.")
            self._jobs[job.id] = job
            self._pending.append(job)
            self._ensure_workers()
            self._lock.notify_all()
            self._forget_old()
        log.info("queued job %s (%s) for %s", job.id, label, job.log_name)
        return job

    def get(self, job_id: str, owner: Optional[str] = None) -> Optional[Job]:
        """The job, or None when unknown or (if `owner` is given) someone else's."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None or (owner is not None and job.owner != owner):
            return None
        return job

    def jobs(self, owner: Optional[str] = None) -> list[Job]:
        with self._lock:
            jobs = list(self._jobs.values())
        return sorted((j for j in jobs if owner is None or j.owner == owner), key=lambda j: j.seq)

    def active_job(self, owner: str) -> Optional[Job]:
        """The owner's most recent job that is waiting or running."""
        active = [j for j in self.jobs(owner) if j.state in ACTIVE_STATES]
        return active[-1] if active else None

    def position(self, job: Job | str) -> int:
        """1-based place in the waiting line; 0 when the job is not waiting."""
        job_id = job if isinstance(job, str) else job.id
        with self._lock:
            for i, pending in enumerate(self._pending, 1):
                if pending.id == job_id:
                    return i
        return 0

    def stop(self, job_id: str, owner: Optional[str] = None) -> bool:
        """Ask a job to stop. A waiting job leaves the queue at once. False if not found/owned."""
        job = self.get(job_id, owner)
        if job is None:
            return False
        job.stop_flag.set()
        with self._lock:
            if job in self._pending:
                self._pending.remove(job)
                job.state = STOPPED
                job.message = "Stopped before it started."
                job.ended = time.time()
                job.add_event({"kind": "stopped", "run_id": job.id, "epoch": 0, "step": 0,
                               "message": job.message, "time": job.ended})
                if job.run_dir.is_dir():
                    RunFolder(job.run_dir).set_status(STOPPED, job.message)
                self._lock.notify_all()
        job._touch()
        return True

    def wait(self, job_id: str, timeout: Optional[float] = None) -> Optional[Job]:
        """Block until the job is done (for tests and the CLI). Returns the job."""
        deadline = None if timeout is None else time.time() + timeout
        job = self.get(job_id)
        if job is None:
            return None
        with job._cond:
            while not job.done:
                remaining = None if deadline is None else deadline - time.time()
                if remaining is not None and remaining <= 0:
                    break
                job._cond.wait(0.2 if remaining is None else min(0.2, remaining))
        return job

    @property
    def busy(self) -> int:
        with self._lock:
            return len(self._running)

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._pending)

    def shutdown(self, stop_jobs: bool = True, timeout: float = 10.0) -> None:
        """Stop accepting jobs; ask running ones to stop; wait a little for workers."""
        with self._lock:
            self._closed = True
            pending = list(self._pending)
        for job in pending:
            self.stop(job.id)
        if stop_jobs:
            for job in self.jobs():
                if job.state == RUNNING:
                    job.stop()
        with self._lock:
            self._lock.notify_all()
        deadline = time.time() + timeout
        for worker in self._workers:
            worker.join(max(0.0, deadline - time.time()))

    # -- workers ------------------------------------------------------------------------------
    def _ensure_workers(self) -> None:
        self._workers = [w for w in self._workers if w.is_alive()]
        while len(self._workers) < self.max_concurrent:
            worker = threading.Thread(target=self._work, name=f"tl-runner-{len(self._workers) + 1}",
                                      daemon=True)
            self._workers.append(worker)
            worker.start()

    def _next_job(self) -> Optional[Job]:
        with self._lock:
            while not self._pending and not self._closed:
                self._lock.wait(1.0)
            if self._closed and not self._pending:
                return None
            job = self._pending.pop(0)
            job.state = RUNNING
            job.started = time.time()
            self._running.add(job.id)
            self._lock.notify_all()
        job._touch()
        return job

    def _work(self) -> None:
        while True:
            job = self._next_job()
            if job is None:
                return
            try:
                self._run(job)
                if self._on_done is not None:
                    self._on_done(job)
            except Exception:  # a failing hook must not kill the worker
                log.exception("after job %s", job.id)
            finally:
                with self._lock:
                    self._running.discard(job.id)
                    self._lock.notify_all()
                job._touch()

    def _run(self, job: Job) -> None:
        log.info("starting job %s for %s", job.id, job.log_name)
        try:
            result = self._train_fn(
                job.config, job.run_dir, on_event=job.add_event,
                should_stop=job.stop_flag.is_set, dataset=job.dataset,
            )
        except Exception as exc:  # the engine should not raise; if it does, the job fails cleanly
            log.exception("job %s crashed", job.id)
            job.message = ("Training stopped because of an internal error. The details are in the "
                           "server log; please try again or choose another model or strategy.")
            RunFolder(job.run_dir).set_status(FAILED, job.message, error=type(exc).__name__)
            job.add_event({"kind": "failed", "run_id": job.id, "message": job.message, "time": time.time()})
            job.ended = time.time()
            job.state = FAILED
            return
        finally:
            job.dataset = None  # free the memory of the dataset once the run is done
        job.result = result
        status = getattr(result, "status", None) or FINISHED
        status = status if status in DONE_STATES else FAILED
        job.message = getattr(result, "message", "") or ""
        if status != FINISHED and not any(e.get("kind") in ("failed", "stopped") for e in job.events):
            kind = "stopped" if status == STOPPED else "failed"
            job.add_event({"kind": kind, "run_id": job.id, "message": job.message or kind,
                           "epoch": 0, "step": 0, "time": time.time()})
        job.ended = time.time()
        job.state = status
        log.info("job %s ended: %s", job.id, job.state)

    def _forget_old(self) -> None:
        done = [j for j in self._jobs.values() if j.done]
        if len(done) > self.keep_done:
            for job in sorted(done, key=lambda j: j.seq)[: len(done) - self.keep_done]:
                self._jobs.pop(job.id, None)
