"""The fair FIFO queue of training jobs, its caps, and the slots that hand jobs to an executor.

A `Job` is one submitted run. Slots (at most `max_concurrent` threads) take jobs in submission
order and hand each to the executor (tl_ui/executors): a worker process per run (the default),
a Ray task per run, or, for an injected train function only, this thread itself. Every event of
the run is appended to the job's event list, which any number of readers (the page's poll timer,
an API stream, a reopened tab) follow with their own cursor; the list keeps every event but only
the last `max_step_events` step events (the full log stays in events.jsonl). A closed browser tab
only stops a reader, never the job. Stop sets the job's flag; the executor asks the worker to
stop before its next step, then ends it after a grace period.

Caps on submission (each refusal is a `QueueFull` whose message names the setting): all jobs
waiting or running (`max_queued`), per owner (`max_per_owner`), per client address for callers
without a login (`max_per_address`; the service passes the address only for them).
"""
from __future__ import annotations

import bisect
import itertools
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from tl_ui.contracts import ACTIVE_STATES, DONE_STATES, RunState, run_state
from tl_ui.contracts.events import RunFailed, RunStopped
from tl_ui.core.runfolder import FAILED, FINISHED, QUEUED, RUNNING, STOPPED, RunFolder

log = logging.getLogger(__name__)

TrainFn = Callable[..., Any]


MAX_STEP_EVENTS = 2000


class QueueFull(RuntimeError):
    """A cap on waiting + running jobs is reached; the message is user-facing and names the setting."""


@dataclass(eq=False)
class Job:
    id: str
    owner: str
    config: Any                       # RunConfig
    run_dir: Path
    dataset: Any = None               # an already-loaded LabelledDataset, or None
    label: str = ""                   # short human description for logs
    log_name: str = ""                # the owner as logs may show it (never a raw cookie)
    address: Optional[str] = None     # the client address of a caller without login (per-address cap)
    embedding_cache: Optional[dict] = None   # the owner's embeddings kept across runs ({"dir", "max_bytes"})
    seq: int = 0                      # submission order
    state: RunState = QUEUED
    submitted: float = field(default_factory=time.time)
    started: Optional[float] = None
    ended: Optional[float] = None
    result: Any = None                # RunResult once done
    message: str = ""                 # last user-facing message (failure / stop reason)
    stop_flag: threading.Event = field(default_factory=threading.Event)
    max_step_events: int = MAX_STEP_EVENTS
    _events: list = field(default_factory=list, repr=False)     # the kept events...
    _numbers: list = field(default_factory=list, repr=False)    # ...and each one's place among all events
    _count: int = 0                                             # events ever added (the cursor space)
    _steps: int = 0                                             # step events kept
    _cond: threading.Condition = field(default_factory=threading.Condition, repr=False)

    # -- events -------------------------------------------------------------------------------
    def add_event(self, event: Any) -> None:
        """Called by the executor for each event of the run (an Event or a plain dict)."""
        data = event.to_dict() if hasattr(event, "to_dict") else dict(event)
        with self._cond:
            self._events.append(data)
            self._numbers.append(self._count)
            self._count += 1
            if data.get("kind") == "step":
                self._steps += 1
                if self._steps > self.max_step_events + max(100, self.max_step_events // 4):
                    self._drop_old_steps()
            self._cond.notify_all()

    def _drop_old_steps(self) -> None:
        """Keep every non-step event and the last `max_step_events` step events (amortised O(1))."""
        drop = self._steps - self.max_step_events
        kept, numbers = [], []
        for event, number in zip(self._events, self._numbers):
            if drop and event.get("kind") == "step":
                drop -= 1
                continue
            kept.append(event)
            numbers.append(number)
        self._events, self._numbers, self._steps = kept, numbers, self.max_step_events

    def _since(self, cursor: int) -> tuple[list[dict], int]:
        start = bisect.bisect_left(self._numbers, cursor)
        return list(self._events[start:]), self._count

    def events_since(self, cursor: int = 0) -> tuple[list[dict], int]:
        """The kept events after position `cursor` and the new cursor. Safe from any thread."""
        with self._cond:
            return self._since(cursor)

    def wait_events(self, cursor: int, timeout: float) -> tuple[list[dict], int]:
        """Like `events_since`, but waits up to `timeout` s for something new (or the job's end)."""
        with self._cond:
            if self._count <= cursor and self.state in ACTIVE_STATES:
                self._cond.wait(timeout)
            return self._since(cursor)

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
    """Owns the FIFO queue and `max_concurrent` slot threads; one per app.

    `executor`: where runs train (tl_ui.executors); `train_fn`: an injected train function, run
    in the slot thread itself (the "inline" executor; tests). Neither: a worker process per run.
    """

    def __init__(
        self,
        max_concurrent: int = 1,
        train_fn: Optional[TrainFn] = None,
        max_per_owner: Optional[int] = None,
        keep_done: int = 500,
        on_done: Optional[Callable[[Job], None]] = None,
        executor=None,
        max_queued: Optional[int] = None,
        max_per_address: Optional[int] = None,
        max_step_events: int = MAX_STEP_EVENTS,
    ):
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        if train_fn is not None and executor is not None:
            raise ValueError("Give a train function or an executor, not both.")
        self.max_concurrent = max_concurrent
        self.max_per_owner = max_per_owner
        self.max_queued = max_queued
        self.max_per_address = max_per_address
        self.max_step_events = max_step_events
        self.keep_done = keep_done
        if executor is None:
            from tl_ui.executors import InlineExecutor, ProcessExecutor

            executor = InlineExecutor(train_fn) if train_fn is not None else ProcessExecutor()
        self.executor = executor
        self._on_done = on_done
        self._lock = threading.Condition()
        self._pending: list[Job] = []          # FIFO, in submission order
        self._jobs: dict[str, Job] = {}        # every known job by id (bounded: old done ones dropped)
        self._running: set[str] = set()
        self._workers: list[threading.Thread] = []
        self._seq = itertools.count(1)
        self._closed = False

    # -- submitting and querying --------------------------------------------------------------
    @property
    def executor_name(self) -> str:
        return self.executor.name

    def submit(self, config, run_dir: str | Path, owner: str = "", dataset=None,
               run_id: Optional[str] = None, label: str = "", log_name: str = "",
               address: Optional[str] = None, embedding_cache: Optional[dict] = None) -> Job:
        """Queue a run. `address`: the client address of a caller without login (None for a
        logged-in user or the CLI): such callers share the per-address cap."""
        run_dir = Path(run_dir)
        with self._lock:
            if self._closed:
                raise RuntimeError("The runner is shut down.")
            self._check_caps(owner, address)
            job = Job(id=run_id or run_dir.name, owner=owner, config=config, run_dir=run_dir,
                      dataset=dataset, label=label, log_name=log_name or "-", address=address,
                      seq=next(self._seq), max_step_events=self.max_step_events, embedding_cache=embedding_cache)
            if job.id in self._jobs and not self._jobs[job.id].done:
                raise ValueError(f"A job with id {job.id} is already active.")
            self._jobs[job.id] = job
            self._pending.append(job)
            self._ensure_workers()
            self._lock.notify_all()
            self._forget_old()
        log.info("queued job %s (%s) for %s", job.id, label, job.log_name)
        return job

    def _check_caps(self, owner: str, address: Optional[str]) -> None:
        """Raise QueueFull when a cap is reached (called with the lock held)."""
        active = [j for j in self._jobs.values() if j.state in ACTIVE_STATES]
        if self.max_queued is not None and len(active) >= self.max_queued:
            raise QueueFull(
                f"The training queue is full: {len(active)} runs are waiting or running "
                f"(the limit is {self.max_queued} for everyone together, setting TL_MAX_QUEUED). "
                "Try again when some have finished.")
        if self.max_per_owner is not None:
            mine = sum(1 for j in active if j.owner == owner)
            if mine >= self.max_per_owner:
                raise QueueFull(
                    f"You already have {mine} training run(s) waiting or running "
                    f"(the limit is {self.max_per_owner}, setting TL_MAX_QUEUED_PER_USER). "
                    "Wait for one to finish or stop one.")
        if address is not None and self.max_per_address is not None:
            same = sum(1 for j in active if j.address == address)
            if same >= self.max_per_address:
                raise QueueFull(
                    f"{same} training runs from your network address are already waiting or running "
                    f"(the limit is {self.max_per_address} per address without a login, setting "
                    "TL_MAX_QUEUED_PER_ADDRESS). Wait for one to finish, or sign in.")

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
                job.add_event(RunStopped(run_id=job.id, epoch=0, step=0, message=job.message, time=job.ended))
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
        """Stop accepting jobs; ask running ones to stop (their workers get a short grace, then
        are ended); wait a little for the slots; give back what the executor holds."""
        with self._lock:
            self._closed = True
            pending = list(self._pending)
        for job in pending:
            self.stop(job.id)
        if stop_jobs:
            for job in self.jobs():
                if job.state == RUNNING:
                    job.stop()
            self.executor.close()
        with self._lock:
            self._lock.notify_all()
        deadline = time.time() + timeout
        for worker in self._workers:
            worker.join(max(0.0, deadline - time.time()))
        if not any(w.is_alive() for w in self._workers):
            self.executor.release()

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
        log.info("starting job %s for %s (%s)", job.id, job.log_name, self.executor.name)
        try:
            result = self.executor.run(job)
        except Exception as exc:  # the executor and engine should not raise; if they do, the job fails cleanly
            log.exception("job %s crashed", job.id)
            job.message = ("Training stopped because of an internal error. The details are in the "
                           "server log; please try again or choose another model or strategy.")
            RunFolder(job.run_dir).set_status(FAILED, job.message, error=type(exc).__name__)
            job.add_event(RunFailed(run_id=job.id, message=job.message))
            job.ended = time.time()
            job.state = FAILED
            return
        finally:
            job.dataset = None  # free the memory of the dataset once the run is done
        job.result = result
        status = run_state(getattr(result, "status", None) or FINISHED)
        status = status if status in DONE_STATES else FAILED
        job.message = getattr(result, "message", "") or ""
        ended = (RunStopped.kind, RunFailed.kind)
        if status != FINISHED and not any(e.get("kind") in ended for e in job.events):
            message = job.message or str(status)
            job.add_event(RunStopped(run_id=job.id, epoch=0, step=0, message=message) if status == STOPPED
                          else RunFailed(run_id=job.id, message=message))
        job.ended = time.time()
        job.state = status
        log.info("job %s ended: %s", job.id, job.state)

    def _forget_old(self) -> None:
        done = [j for j in self._jobs.values() if j.done]
        if len(done) > self.keep_done:
            for job in sorted(done, key=lambda j: j.seq)[: len(done) - self.keep_done]:
                self._jobs.pop(job.id, None)
