"""The web process's side of inference: the workers that hold the models, the caps, the queue.

`InferencePool.call(owner, verb, args)` answers a quick request (try-it, `/predict`, an
explanation, mistake maps) in one of `workers` long-lived worker processes
(tl_ui/jobs/inference/worker.py), chosen by the run (each run's model is kept in one worker only);
`call_long` runs a long request (the model advisor; batch scoring next) in a worker of its own,
streaming its progress and honouring Stop. Both go through the one supervisor
(tl_ui/jobs/supervisor.py: `WorkerProcess` starts, stops and reaps every worker, `watch` follows
every request: cancel → grace → the worker is ended), and a request that gets no answer raises
`InferenceError` with one plain sentence.

Caps, checked here before anything is sent:
* requests in flight per owner (`max_per_owner`) and in all (`max_in_flight`): a request over a cap
  waits up to `BUSY_WAIT_S` for room, then is refused with "busy, try again in a moment";
* wall clock per request (`max_seconds`; long requests `long_max_minutes`): the request is asked to
  stop, and its worker is ended when it does not within `CANCEL_GRACE_S`;
* memory: each worker caps itself at `memory_gb` (RLIMIT_AS beyond its libraries, as a training worker
  does) and keeps models up to `models_mb` (least recently used out first); a model too big for the
  cap is refused before any worker loads it (its size read from its files' headers).

A worker that dies (killed, a native crash) fails the requests it was answering with one sentence;
the next request starts a fresh worker. Nothing here imports torch.
"""
from __future__ import annotations

import itertools
import logging
import os
import queue
import sys
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from tl_ui.jobs.inference.protocol import CANCEL, OUTSIDE_RUNS, Code, InferenceError
from tl_ui.jobs.inference.sizes import model_footprint, too_big_message
from tl_ui.jobs.supervisor import Ending, Handle, WorkerProcess, ended_message, ending_of, watch

log = logging.getLogger(__name__)

WORKER_MODULE = "tl_ui.jobs.inference.worker"
BUSY_WAIT_S = 10.0      # a request over a cap waits this long for room before "busy"
WORKER_START_S = 180.0  # a fresh worker imports torch and the engine (seconds here); a request's own clock starts after
RESTART_AFTER_S = 10.0  # a kept-model worker that died after living this long is replaced at once
CANCEL_GRACE_S = 3.0    # a request asked to stop (Stop, its time cap) may take this long before its worker is ended
LONG_CANCEL_GRACE_S = 10.0
# Each answer computes on one core: the worker answers several at once on its threads instead. Measured on
# this 2-core machine while others used it (docs/benchmarks.md, "Inference under load"): one image and one
# text answer took p50 37 ms / p95 42 ms with one torch thread and p50 191-2964 ms / p95 3.0-3.3 s with two,
# whose OpenMP threads wait for each other whenever one of them is descheduled.
REQUEST_TORCH_THREADS = 1
ENV_KEYS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "TL_OFFLINE", "HF_HUB_DISABLE_TELEMETRY",
            "TOKENIZERS_PARALLELISM", "HF_HUB_DISABLE_PROGRESS_BARS", "TL_FAST_PATH")


@dataclass(frozen=True)
class InferenceCaps:
    workers: int = 1                 # kept-model workers (one on a 2-core machine)
    memory_gb: float = 8.0           # each worker's memory cap beyond its libraries (0: none)
    models_mb: float = 2048.0        # kept models' parameters and buffers, per worker
    max_seconds: float = 60.0        # wall clock of one quick request
    max_per_owner: int = 3           # quick requests in flight per owner
    max_in_flight: int = 8           # quick requests in flight, all owners together
    threads: int = 4                 # requests one worker answers at once (different models in parallel)
    long_memory_gb: float = 8.0      # a long request's worker (the advisor: the training worker's cap)
    long_max_minutes: float = 120.0
    long_at_once: int = 1

    @classmethod
    def from_settings(cls, settings) -> "InferenceCaps":
        return cls(workers=settings.inference_workers, memory_gb=settings.inference_memory_gb,
                   models_mb=settings.inference_models_mb, max_seconds=settings.inference_max_seconds,
                   max_per_owner=settings.inference_max_per_user, max_in_flight=settings.inference_max_in_flight,
                   threads=max(1, min(4, settings.inference_max_in_flight)),
                   long_memory_gb=settings.job_memory_gb, long_max_minutes=settings.job_max_minutes,
                   long_at_once=max(1, int(settings.max_jobs)))


class _Request(Handle):
    """One request in flight, as the supervisor's watch loop sees it: it has ended when its answer
    (or its worker's death) arrived; ending it for sure means ending its worker."""

    def __init__(self, rid: str, slot: "_Slot"):
        self.id, self.slot = rid, slot
        self.events: queue.Queue = queue.Queue()
        self.begun = threading.Event()      # the worker has begun answering it
        self.done = threading.Event()
        self.outcome: Optional[dict] = None

    def deliver(self, message: dict) -> None:
        if message.get("kind") in ("result", "error"):
            self.outcome = message
            self.done.set()
        elif message.get("kind") == "started":
            self.begun.set()
        else:
            self.events.put(message)

    def wait(self, timeout: float) -> bool:
        return self.done.wait(timeout if timeout > 0 else 0)

    def terminate(self) -> None:
        self.slot.end_worker(self)

    kill = terminate


class _Worker(WorkerProcess):
    """An inference worker process; `ready` once it has imported torch and the engine."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.ready = threading.Event()
        self.began = time.monotonic()


class _Slot:
    """One worker process (kept models) and the requests it is answering; a dead worker is replaced
    by the next request. Its reader thread dispatches the worker's replies by request id."""

    def __init__(self, name: str, config: dict, kind: str = "inference", caps_words: Optional[dict] = None,
                 restart: bool = False):
        self.name, self.config, self.kind, self.restart = name, config, kind, restart
        self.words = caps_words or {}
        self.worker: Optional[_Worker] = None
        self.pending: dict[str, _Request] = {}
        self.lock = threading.Lock()
        self.ended_for: dict[int, str] = {}     # pid -> why we ended it ("time", "stop", "shutdown")
        self.started = 0
        self.closing = False

    def _start(self) -> _Worker:
        worker = _Worker.start(self.kind, WORKER_MODULE, stdout=None, replies=True)
        worker.send({**self.config, "parent_pid": os.getpid()})
        self.started += 1
        threading.Thread(target=self._read, args=(worker,), name=f"tl-{self.name}-replies", daemon=True).start()
        return worker

    def ensure(self) -> _Worker:
        with self.lock:
            if self.worker is None:
                self.worker = self._start()
            return self.worker

    def submit(self, rid: str, verb: str, args: dict) -> _Request:
        """Send a request once the worker is ready (a fresh worker's imports are not the request's time)."""
        request = _Request(rid, self)
        worker = self.ensure()
        worker.ready.wait(WORKER_START_S)
        with self.lock:
            if self.worker is not worker or not worker.ready.is_set():   # it died (or hung) while starting
                raise InferenceError(Code.CRASHED, ended_message(self.kind, Ending.CRASHED, **self.words))
            self.pending[rid] = request
        try:
            worker.send({"id": rid, "verb": verb, "args": args})
        except (BrokenPipeError, OSError):   # it is dying: its reader fails the request
            pass
        return request

    def cancel(self, request: _Request) -> None:
        with self.lock:
            worker = self.worker if request.id in self.pending else None
        if worker is not None:
            try:
                worker.send({"id": request.id, "verb": CANCEL})
            except (BrokenPipeError, OSError):
                pass

    def end_worker(self, request: _Request, why: str = "time") -> None:
        """The request did not stop when asked: end the worker answering it (the next request gets a fresh one)."""
        with self.lock:
            worker = self.worker if request.id in self.pending else None
            if worker is not None:
                self.ended_for.setdefault(worker.pid, why)
        if worker is not None:
            log.warning("%s: ending worker %d (a request did not stop when asked)", self.name, worker.pid)
            worker.kill()

    def _read(self, worker: _Worker) -> None:
        while True:
            message = worker.read_reply(None)
            if message is None:
                if worker.at_eof:
                    break
                continue
            if message.get("ready"):
                worker.ready.set()
                continue
            with self.lock:
                request = self.pending.get(str(message.get("id")))
                if request is not None and message.get("kind") in ("result", "error"):
                    del self.pending[request.id]
            if request is not None:
                request.deliver(message)
        code = worker.reap()
        with self.lock:
            orphans, self.pending = list(self.pending.values()), {}
            if self.worker is worker:
                self.worker = None
            asked = self.ended_for.pop(worker.pid, None)
        worker.ready.set()   # wakes requests waiting for it to start: they see it gone
        ending = ending_of(code, asked)
        if orphans or code not in (0, None):
            log.warning("%s: worker %d ended (exit code %s, %s) with %d request(s) unanswered", self.name,
                        worker.pid, code, ending.value, len(orphans))
        if ending in (Ending.TIME, Ending.STOPPED):   # ended for another request: these ones it just cut off
            ending = Ending.CRASHED
        for request in orphans:
            request.deliver({"id": request.id, "kind": "error", "code": Code.CRASHED,
                             "message": ended_message(self.kind, ending, **self.words)})
        # a kept-model worker that lived a while is replaced at once, so that the next click finds torch imported
        # (one that died young is started again by the next request only: no restart loop)
        lived = time.monotonic() - worker.began
        if self.restart and not self.closing and asked != "shutdown" and lived > RESTART_AFTER_S:
            self.ensure()

    def in_flight(self) -> int:
        with self.lock:
            return len(self.pending)

    def answering(self) -> int:
        """Requests the worker has begun to answer (and not finished)."""
        with self.lock:
            return sum(1 for r in self.pending.values() if r.begun.is_set())

    def pid(self) -> Optional[int]:
        with self.lock:
            return self.worker.pid if self.worker is not None else None

    def close(self, grace_s: float = 2.0) -> None:
        with self.lock:
            self.closing = True
            worker = self.worker
            if worker is not None:
                self.ended_for.setdefault(worker.pid, "shutdown")
        if worker is not None:
            worker.stop(grace_s=grace_s, kill_after_s=2.0)


class InferencePool:
    def __init__(self, caps: InferenceCaps, runs_root: str | Path):
        self.caps = caps
        self.runs_root = Path(runs_root).expanduser().resolve()
        self._ids = itertools.count(1)
        self._admission = threading.Condition()
        self._per_owner: dict[str, int] = {}
        self._total = 0
        self._long = threading.BoundedSemaphore(max(1, caps.long_at_once))
        self.closing = False
        self.slots = [_Slot(f"inference-{i + 1}", self._config(caps.memory_gb, caps.models_mb, caps.threads, nice=0,
                                                               torch_threads=REQUEST_TORCH_THREADS),
                            caps_words={"gb": caps.memory_gb, "seconds": caps.max_seconds}, restart=True)
                      for i in range(max(1, int(caps.workers)))]

    def _config(self, memory_gb: float, models_mb: float, threads: int, nice: int, torch_threads: int = 0) -> dict:
        return {"runs_root": str(self.runs_root), "memory_gb": float(memory_gb or 0), "models_mb": float(models_mb),
                "threads": int(threads), "torch_threads": torch_threads, "nice": nice, "sys_path": list(sys.path),
                "env": {k: os.environ[k] for k in ENV_KEYS if k in os.environ}}

    # -- quick requests -------------------------------------------------------------------------------
    def call(self, owner: str, verb: str, args: dict, *, route: Optional[str] = None,
             should_stop: Callable[[], bool] = lambda: False,
             on_progress: Callable[[int, int, str], None] = lambda done, total, message: None) -> dict:
        """Answer a quick request in a kept-model worker. `route`: what picks the worker (default: the
        run folder, so that each model is kept once). Raises InferenceError with a plain sentence."""
        if self.closing:
            raise InferenceError(Code.CRASHED, ended_message("inference", Ending.SHUTDOWN))
        if args.get("run_dir"):
            self._check_model(Path(args["run_dir"]))
        key = route or str(args.get("run_dir") or verb)
        slot = self.slots[zlib.crc32(key.encode("utf-8")) % len(self.slots)]
        with self._admitted(owner):
            request = slot.submit(f"r{next(self._ids)}", verb, args)
            return self._follow(request, slot, should_stop, on_progress, self.caps.max_seconds, CANCEL_GRACE_S,
                                "inference", {"gb": self.caps.memory_gb, "seconds": self.caps.max_seconds})

    def _check_model(self, run_dir: Path) -> None:
        """Before anything is sent: the model lies inside the runs folder (the worker checks it again) and
        fits the workers' memory cap (its size from its files' headers)."""
        path = run_dir.resolve()
        if not path.is_relative_to(self.runs_root):
            raise InferenceError(Code.REFUSED, OUTSIDE_RUNS)
        if (path / "model").is_dir():
            refusal = too_big_message(model_footprint(path), self.caps.memory_gb)
            if refusal:
                raise InferenceError(Code.TOO_BIG, refusal)

    def _admitted(self, owner: str):
        pool = self

        class Admission:
            def __enter__(self):
                pool._admit(owner)

            def __exit__(self, *exc):
                pool._release(owner)

        return Admission()

    def _admit(self, owner: str) -> None:
        deadline = time.monotonic() + BUSY_WAIT_S
        with self._admission:
            while True:
                mine = self._per_owner.get(owner, 0)
                if mine < self.caps.max_per_owner and self._total < self.caps.max_in_flight:
                    self._per_owner[owner] = mine + 1
                    self._total += 1
                    return
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._admission.wait(left)
        if mine >= self.caps.max_per_owner:
            raise InferenceError(Code.BUSY, (
                f"You already have {mine} answers being computed (at most {self.caps.max_per_owner} at once per "
                "person, setting TL_INFERENCE_MAX_PER_USER). Wait for them, then try again."))
        raise InferenceError(Code.BUSY, (
            f"The model server is busy: {self._total} answers are being computed (at most "
            f"{self.caps.max_in_flight} at once, setting TL_INFERENCE_MAX_IN_FLIGHT). Try again in a moment."))

    def _release(self, owner: str) -> None:
        with self._admission:
            left = self._per_owner.get(owner, 1) - 1
            if left > 0:
                self._per_owner[owner] = left
            else:
                self._per_owner.pop(owner, None)
            self._total -= 1
            self._admission.notify_all()

    def _follow(self, request: _Request, slot: _Slot, should_stop, on_progress, deadline_s: float,
                grace_s: float, kind: str, words: dict) -> dict:
        """Watch one request to its end (the supervisor's loop); its value, or InferenceError."""
        def tick() -> None:
            while True:
                try:
                    event = request.events.get_nowait()
                except queue.Empty:
                    return
                if event.get("kind") == "progress":
                    on_progress(int(event.get("done", 0)), int(event.get("total", 0)), str(event.get("message", "")))

        def stop_reason() -> Optional[str]:
            return "shutdown" if self.closing else "stop" if should_stop() else None

        reason = watch(request, stop_reason=stop_reason, ask_stop=lambda why: slot.cancel(request), tick=tick,
                       deadline_s=deadline_s, grace_s=lambda why: grace_s, kill_after_s=1.0, poll_s=0.1,
                       idle=request.done.wait)
        outcome = request.outcome or {}
        if outcome.get("kind") == "result":
            return outcome.get("value") or {}
        if reason is not None:   # asked to stop (Stop, the time cap, the shutdown): say why, not how it ended
            raise InferenceError({"time": Code.TIME, "stop": Code.CANCELLED}.get(reason, Code.CRASHED),
                                 ended_message(kind, ending_of(None, reason), **words))
        raise InferenceError(outcome.get("code") or Code.CRASHED,
                             outcome.get("message") or ended_message(kind, Ending.CRASHED, **words),
                             outcome.get("missing"))

    # -- long requests ------------------------------------------------------------------------------
    def call_long(self, owner: str, verb: str, args: dict, *, kind: str = "advisor", busy_message: str = "",
                  should_stop: Callable[[], bool] = lambda: False,
                  on_progress: Callable[[int, int, str], None] = lambda done, total, message: None,
                  busy_wait_s: float = 5.0) -> dict:
        """A long request in a worker of its own (at most `long_at_once` at a time), capped at the
        training worker's memory and minutes, lowered in priority; its progress streams to
        `on_progress`, Stop (`should_stop`) cancels it. Raises InferenceError with a plain sentence."""
        if not self._long.acquire(timeout=busy_wait_s):
            raise InferenceError(Code.BUSY, busy_message or "Busy with another long request. Try again in a minute.")
        words = {"gb": self.caps.long_memory_gb, "minutes": self.caps.long_max_minutes}
        slot = _Slot(f"{kind}-{next(self._ids)}", self._config(self.caps.long_memory_gb, 0, 1, nice=5), kind=kind,
                     caps_words=words)
        try:   # one request; its worker is stopped (stdin closed) once it has answered
            request = slot.submit(f"r{next(self._ids)}", verb, args)
            return self._follow(request, slot, should_stop, on_progress, self.caps.long_max_minutes * 60,
                                LONG_CANCEL_GRACE_S, kind, words)
        finally:
            slot.close(grace_s=5.0)
            self._long.release()

    # -- the server's start and end, and what tests and benchmarks read ----------------------------------
    def prestart(self) -> None:
        """Start the kept-model workers now (the server's start): the first answer finds torch imported."""
        for slot in self.slots:
            slot.ensure()

    def close(self) -> None:
        self.closing = True
        for slot in self.slots:
            slot.close()

    def worker_pids(self) -> list[int]:
        return [pid for pid in (slot.pid() for slot in self.slots) if pid is not None]

    def ready(self) -> bool:
        """Every kept-model worker is running and has its imports done."""
        return all(slot.worker is not None and slot.worker.ready.is_set() for slot in self.slots)

    def describe(self) -> dict:
        with self._admission:
            in_flight = self._total
        return {"workers": [{"pid": slot.pid(), "in_flight": slot.in_flight(), "answering": slot.answering(),
                             "started": slot.started}
                            for slot in self.slots], "in_flight": in_flight}

    def stats(self, owner: str = "-stats") -> list[dict]:
        """Each worker's own account (kept models, loads, memory), starting none that is not running."""
        out = []
        for index, slot in enumerate(self.slots):
            if slot.pid() is None:
                continue
            with self._admitted(owner):
                request = slot.submit(f"r{next(self._ids)}", "stats", {})
                out.append(self._follow(request, slot, lambda: False, lambda *a: None, self.caps.max_seconds,
                                        CANCEL_GRACE_S, "inference", {}))
        return out
