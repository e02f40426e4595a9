"""Each run in a worker process of its own, on this machine.

The worker is a fresh interpreter (`WORKER_COMMAND`): the spawn start method, without
multiprocessing re-importing the server's `__main__` (app.py → gradio) into every worker.
It gets its payload (config, dataset, caps) on stdin and writes its output (and any native
crash report) to `worker.log` in the run folder. The server never imports torch for a run: it
follows the run's events.jsonl into the job's event list and reads status.json at the end.

A spare worker (`spare=True`, the default) is started when a run ends: it imports torch and the
engine while nobody waits, then blocks on stdin until the next run's payload arrives. Each worker
still trains exactly one run and exits, so a crash or a memory cap takes only its own run; what the
spare saves is the interpreter start and the imports (2-6 s of every run after the first here; it
holds about 0.6 GB (resident) while it waits; docs/benchmarks.md, "Iterate in seconds").
"""
from __future__ import annotations

import logging
import os
import json
import subprocess
import sys
import threading
from typing import Optional

from tl_ui.executors.base import EventFollower, Executor, Handle, StopFile, WorkerResult, worker_env
from tl_ui.executors.worker import ENGINE, SPARE_ENV, SPARE_NICE_ENV, SPARE_PARENT_ENV, make_payload
from tl_ui.runfolder import RunFolder

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


class ProcessExecutor(Executor):
    """`target`: the train function as "module:name", run in the worker (default: the engine's
    `train_run`; tests point it at small stand-ins that need no torch). `nice`: the worker's
    lower CPU priority, so that the page stays quick on the cores it shares with training."""

    name = "process"

    def __init__(self, *, target: str = ENGINE, nice: int = 5, spare: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.target = target
        self.nice = nice
        self.spare = spare
        self._procs: dict[str, subprocess.Popen] = {}
        self._spare: Optional[subprocess.Popen] = None
        self._lock = threading.Lock()

    def _spawn(self, stdout, warm: bool) -> subprocess.Popen:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.setdefault("MALLOC_ARENA_MAX", "2")   # fewer 64 MB malloc arenas: less address space per thread
        if warm:   # what the spare imports and how it lowers its priority while it waits
            env.update({SPARE_ENV: self.target, SPARE_NICE_ENV: str(self.nice), SPARE_PARENT_ENV: str(os.getpid())})
        return subprocess.Popen(WORKER_COMMAND, stdin=subprocess.PIPE, stdout=stdout, stderr=subprocess.STDOUT,
                                env=env, close_fds=True,
                                start_new_session=True)  # Ctrl+C reaches the server, which stops jobs itself

    def _take_spare(self) -> Optional[subprocess.Popen]:
        with self._lock:
            proc, self._spare = self._spare, None
        if proc is not None and proc.poll() is not None:   # it died while waiting: start afresh
            return None
        return proc

    def _start_spare(self) -> None:
        if not self.spare:
            return
        with self._lock:   # `closing` is set under the same lock: no spare starts after close()
            if self.closing or (self._spare is not None and self._spare.poll() is None):
                return
            # its output goes to the run's worker.log once it has a run (tl_ui.executors.worker.main)
            self._spare = self._spawn(subprocess.DEVNULL, warm=True)

    def close(self) -> None:
        with self._lock:
            super().close()
            proc, self._spare = self._spare, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(5)

    def run(self, job) -> WorkerResult:
        run = RunFolder(job.run_dir).create()
        stop = StopFile(run.path)
        stop.clear()
        proc = self._take_spare()
        payload = make_payload(job, executor=self.name, target=self.target, memory_gb=self.memory_gb,
                               parent_pid=os.getpid(), sys_path=sys.path, env=worker_env(),   # a spare
                               nice=0 if proc is not None else self.nice)   # started earlier; it lowered itself
        if proc is None:
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
            self._start_spare()   # ready for the next run, importing while nobody waits
        return self.settle(job, reason, detail=f"exit code {code}", exit_code=code)

    def worker_pid(self, job_id: str) -> Optional[int]:
        with self._lock:
            proc = self._procs.get(job_id)
        return proc.pid if proc is not None else None
