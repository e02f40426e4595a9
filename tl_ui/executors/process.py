"""Runs in worker processes on this machine.

A worker is a fresh interpreter (`WORKER_COMMAND`): the spawn start method, without
multiprocessing re-importing the server's `__main__` (app.py → gradio) into every worker.
It gets its payload (config, dataset, caps) on stdin and writes its output (and any native
crash report) to `worker.log` in the run folder. The server never imports torch for a run: it
follows the run's events.jsonl into the job's event list and reads status.json at the end.

Warm workers (`warm=True`, the default; setting TL_SPARE_WORKER): a worker serves runs one after
another and keeps pretrained models loaded between them (tl_ui/engine/models/model_cache.py: each run
gets its own copy of the untouched weights). The supervision is the same as for a one-run worker
(stop file → grace → SIGTERM → SIGKILL, memory and wall-clock caps, the server's death ends it):
a run that crashes, breaks a cap, fails or has to be killed ends its worker and takes only itself;
the next run gets a fresh worker, which is started as soon as the old one is gone, so that it has
imported torch and the engine before it is needed. At most one worker waits between runs; while
it waits it holds the interpreter, torch and the engine (about 1.0-1.2 GB resident) plus its kept
models (docs/benchmarks.md, "Iterate in seconds"). `warm=False`: a new process per run, as before.
"""
from __future__ import annotations

import logging
import os
import json
import select
import subprocess
import sys
import threading
from typing import Optional

from tl_ui.executors.base import EventFollower, Executor, Handle, StopFile, WorkerResult, worker_env
from tl_ui.executors.worker import (ENGINE, REPLY_FD_ENV, SPARE_ENV, SPARE_NICE_ENV, SPARE_PARENT_ENV, WARM_ENV,
                                    make_payload)
from tl_ui.core.runfolder import RunFolder

log = logging.getLogger(__name__)

WORKER_LOG = "worker.log"
WORKER_COMMAND = [sys.executable, "-c", "from tl_ui.executors.worker import main; main()"]


class _ProcessHandle(Handle):
    def __init__(self, proc: subprocess.Popen):
        self.proc = proc

    def wait(self, timeout: float) -> bool:
        try:
            self.proc.wait(timeout if timeout > 0 else 0.0001)
        except subprocess.TimeoutExpired:
            return False
        return True

    def terminate(self) -> None:
        self.proc.terminate()

    def kill(self) -> None:
        self.proc.kill()


class _Worker:
    """A warm worker process and the pipe it replies on (one JSON line per run it served)."""

    def __init__(self, proc: subprocess.Popen, replies: int):
        self.proc, self.replies = proc, replies
        self._buffer = b""
        self._eof = False
        self.ready = False    # it has imported the engine and waits for a payload

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, payload: dict) -> None:
        self.proc.stdin.write((json.dumps(payload) + "\n").encode("utf-8"))
        self.proc.stdin.flush()

    def reply(self, timeout: float) -> Optional[dict]:
        """The next reply about a run, waiting up to `timeout` s; None if none came (or the worker is gone)."""
        while True:
            answer = self._line(timeout)
            if answer is None or not answer.get("ready"):
                return answer
            self.ready = True

    def _line(self, timeout: float) -> Optional[dict]:
        while b"\n" not in self._buffer and not self._eof:
            ready, _, _ = select.select([self.replies], [], [], max(timeout, 0))
            if not ready:
                return None
            chunk = os.read(self.replies, 65536)
            self._eof = not chunk
            self._buffer += chunk
        if b"\n" not in self._buffer:
            return None
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            return json.loads(line)
        except ValueError:
            return None

    def retire(self) -> None:
        """Close its stdin (it exits at EOF); kill it if it does not."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.close_pipe()

    def close_pipe(self) -> None:
        if self.replies >= 0:
            os.close(self.replies)
            self.replies = -1


class _WarmHandle(_ProcessHandle):
    """A run in a warm worker has ended when the worker replies for it, or when the worker is gone."""

    def __init__(self, worker: _Worker):
        super().__init__(worker.proc)
        self.worker = worker
        self.answer: Optional[dict] = None

    def wait(self, timeout: float) -> bool:
        if self.answer is not None or not self.worker.alive():
            return True
        self.answer = self.worker.reply(timeout)
        return self.answer is not None or not self.worker.alive()


class ProcessExecutor(Executor):
    """`target`: the train function as "module:name", run in the worker (default: the engine's
    `train_run`; tests point it at small stand-ins that need no torch). `nice`: the worker's
    lower CPU priority, so that the page stays quick on the cores it shares with training.
    `warm` (alias `spare`): workers serve runs one after another (see the module's note)."""

    name = "process"

    def __init__(self, *, target: str = ENGINE, nice: int = 5, warm: bool = True, spare: Optional[bool] = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.target = target
        self.nice = nice
        self.warm = bool(warm if spare is None else spare)
        self._procs: dict[str, subprocess.Popen] = {}
        self._idle: Optional[_Worker] = None     # the warm worker waiting for the next run
        self._lock = threading.Lock()
        self.started_workers = 0                  # processes started (tests count them)

    # -- starting workers --------------------------------------------------------------------------
    def _spawn(self, stdout, warm: bool, reply_fd: Optional[int] = None) -> subprocess.Popen:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.setdefault("MALLOC_ARENA_MAX", "2")   # fewer 64 MB malloc arenas: less address space per thread
        if warm:   # what the worker imports before its first payload and how it lowers its priority
            env.update({SPARE_ENV: self.target, SPARE_NICE_ENV: str(self.nice), SPARE_PARENT_ENV: str(os.getpid())})
        if reply_fd is not None:
            env.update({WARM_ENV: "1", REPLY_FD_ENV: str(reply_fd)})
        self.started_workers += 1
        return subprocess.Popen(WORKER_COMMAND, stdin=subprocess.PIPE, stdout=stdout, stderr=subprocess.STDOUT,
                                env=env, close_fds=True, pass_fds=() if reply_fd is None else (reply_fd,),
                                start_new_session=True)  # Ctrl+C reaches the server, which stops jobs itself

    def _new_worker(self, stdout) -> _Worker:
        read_fd, write_fd = os.pipe()
        try:
            proc = self._spawn(stdout, warm=True, reply_fd=write_fd)
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)   # the worker holds the only writing end: its death is EOF here
        return _Worker(proc, read_fd)

    def _take_idle(self) -> Optional[_Worker]:
        with self._lock:
            worker, self._idle = self._idle, None
        if worker is not None and not worker.alive():   # it died while waiting: start afresh
            worker.close_pipe()
            return None
        return worker

    def _keep_idle(self, worker: Optional[_Worker]) -> None:
        """After a run: keep its worker waiting, or start a fresh one (there is at most one waiting)."""
        if not self.warm:
            return
        with self._lock:   # `closing` is set under the same lock: nothing waits after close()
            if self.closing or (self._idle is not None and self._idle.alive()):
                surplus, worker = worker, None
            else:
                surplus = None
                if worker is None:
                    # its output goes to the run's worker.log once it has a run (tl_ui.executors.worker.serve)
                    worker = self._new_worker(subprocess.DEVNULL)
                self._idle = worker
        if surplus is not None:
            surplus.retire()

    def idle_ready(self, timeout: float = 0.0) -> bool:
        """Whether a worker waits with its imports done (waiting up to `timeout` s to find out)."""
        with self._lock:
            worker = self._idle
        if worker is None or not worker.alive():
            return False
        if not worker.ready:   # the one line a waiting worker sends is "ready"
            worker.ready = bool((worker._line(timeout) or {}).get("ready"))
        return worker.ready

    def prestart(self) -> None:
        """Start the waiting worker now (the server's start), so that even the first run finds torch imported."""
        if self.warm and self._idle is None:
            self._keep_idle(None)

    def close(self) -> None:
        with self._lock:
            super().close()
            worker, self._idle = self._idle, None
        if worker is not None:
            if worker.alive():
                worker.proc.kill()
                worker.proc.wait(5)
            worker.close_pipe()

    # -- one run -----------------------------------------------------------------------------------
    def run(self, job) -> WorkerResult:
        if not self.warm:
            return self._run_once(job)
        run = RunFolder(job.run_dir).create()
        stop = StopFile(run.path)
        stop.clear()
        worker = self._take_idle()
        if worker is None:
            with open(run.path / WORKER_LOG, "ab") as worker_log:
                worker = self._new_worker(worker_log)
        payload = make_payload(job, executor=self.name, target=self.target, memory_gb=self.memory_gb,
                               parent_pid=os.getpid(), sys_path=sys.path, env=worker_env(), nice=0)   # lowered
        log.info("job %s: warm worker process %d", job.id, worker.pid)
        with self._lock:
            self._procs[job.id] = worker.proc
        handle = _WarmHandle(worker)
        keep: Optional[_Worker] = None
        try:
            try:
                worker.send(payload)
            except (BrokenPipeError, OSError):  # it died; supervise() sees it end
                pass
            reason = self.supervise(job, handle, EventFollower(run.events_jsonl), stop)
            answer = handle.answer
            if answer is not None and answer.get("warm") and worker.alive() and reason != "shutdown":
                keep = worker
                log.info("job %s: worker %d stays warm (%s MB resident)", job.id, worker.pid, answer.get("idle_rss_mb"))
            else:
                if worker.alive():   # it replied that it is unfit, or the server is closing: it exits at EOF
                    worker.retire()
                worker.close_pipe()
        finally:
            with self._lock:
                self._procs.pop(job.id, None)
            stop.clear()
            self._keep_idle(keep)
        code = None if keep is not None else worker.proc.wait()
        return self.settle(job, reason, detail=f"exit code {code}", **({} if code is None else {"exit_code": code}))

    def _run_once(self, job) -> WorkerResult:
        """TL_SPARE_WORKER off: a new process for this run alone, started now."""
        run = RunFolder(job.run_dir).create()
        stop = StopFile(run.path)
        stop.clear()
        payload = make_payload(job, executor=self.name, target=self.target, memory_gb=self.memory_gb,
                               parent_pid=os.getpid(), sys_path=sys.path, env=worker_env(), nice=self.nice)
        with open(run.path / WORKER_LOG, "ab") as worker_log:
            proc = self._spawn(worker_log, warm=False)
        log.info("job %s: worker process %d", job.id, proc.pid)
        with self._lock:
            self._procs[job.id] = proc
        try:
            try:
                proc.stdin.write(json.dumps(payload).encode("utf-8"))
                proc.stdin.close()
            except (BrokenPipeError, OSError):  # it died at once; supervise() sees it end
                pass
            reason = self.supervise(job, _ProcessHandle(proc), EventFollower(run.events_jsonl), stop)
            code = proc.wait()
        finally:
            with self._lock:
                self._procs.pop(job.id, None)
            stop.clear()
        return self.settle(job, reason, detail=f"exit code {code}", exit_code=code)

    def worker_pid(self, job_id: str) -> Optional[int]:
        with self._lock:
            proc = self._procs.get(job_id)
        return proc.pid if proc is not None else None
