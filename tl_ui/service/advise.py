"""The advisor verb: rank the offline models for a loaded dataset, in a worker process.

The page, the API and the CLI call `Advisor.advise`; the models run in a fresh interpreter
(tl_ui.jobs.advisor_worker), like a training run: torch never enters the web process, and a crash
or an out-of-memory there costs this answer only. At most `settings.max_jobs` advisors run at once;
the embeddings they compute land in the owner's embedding cache, where the next linear-probe run
of the same model finds them.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
import threading
import time
from typing import Callable, Optional

from tl_ui.core.config import ConfigError, RunConfig
from tl_ui.service.errors import NO_DATA_MESSAGE, UserError

log = logging.getLogger(__name__)

WORKER_COMMAND = [sys.executable, "-c", "from tl_ui.jobs.advisor_worker import main; main()"]
BUSY_WAIT_S = 5.0


class Advisor:
    def __init__(self, settings):
        self.settings = settings
        self._slots = threading.BoundedSemaphore(max(1, int(settings.max_jobs)))

    def advise(self, dataset, options: Optional[dict] = None, *, embedding_cache: Optional[dict] = None,
               on_progress: Callable[[int, int, str], None] = lambda done, total, message: None,
               should_stop: Callable[[], bool] = lambda: False) -> list[dict]:
        """The ranked rows (tl_ui.engine.advisor.ranking.advise). Raises UserError with a plain message."""
        return self.advise_and_map(dataset, options, embedding_cache=embedding_cache, on_progress=on_progress,
                                   should_stop=should_stop)[0]

    def advise_and_map(self, dataset, options: Optional[dict] = None, *, embedding_cache: Optional[dict] = None,
                       on_progress: Callable[[int, int, str], None] = lambda done, total, message: None,
                       should_stop: Callable[[], bool] = lambda: False) -> tuple[list[dict], Optional[dict]]:
        """(the ranked rows, the data map in the best model's embeddings or None)."""
        if dataset is None:
            raise UserError(NO_DATA_MESSAGE)
        if getattr(dataset, "multilabel", False):   # its ranking scores one label per example
            raise UserError("The model advisor ranks models for data with one label per example. For multi-label "
                            "data, train a linear probe in step 4 (seconds) with each model you want to compare.")
        try:
            config = self.settings.run_limits().check(
                RunConfig.from_options({**(options or {}), "strategy": "linear_probe"}, modality=dataset.modality))
        except ConfigError as exc:
            raise UserError(str(exc)) from None
        config.limits = {**config.limits, **self.settings.limits_record()}
        payload = {"dataset": dataclasses.asdict(dataset), "config": config.to_dict(),
                   "embedding_cache": embedding_cache, "max_examples": self.settings.advisor_max_examples,
                   "memory_gb": self.settings.job_memory_gb, "parent_pid": os.getpid(),
                   "sys_path": sys.path, "nice": 5}
        if not self._slots.acquire(timeout=BUSY_WAIT_S):
            raise UserError("The model advisor is busy with another dataset. Try again in a minute.")
        try:
            return self._run_worker(payload, on_progress, should_stop)
        finally:
            self._slots.release()

    def _run_worker(self, payload: dict, on_progress, should_stop) -> tuple[list[dict], Optional[dict]]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.setdefault("MALLOC_ARENA_MAX", "2")
        proc = subprocess.Popen(WORKER_COMMAND, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, env=env, close_fds=True, start_new_session=True)
        deadline = time.monotonic() + self.settings.job_max_minutes * 60
        ended = threading.Event()

        def guard():   # Stop, or the wall-clock cap: end the worker (it holds no state worth keeping)
            while not ended.wait(0.3):
                if should_stop() or time.monotonic() > deadline:
                    proc.kill()
                    return

        threading.Thread(target=guard, name="tl-advisor-guard", daemon=True).start()
        outcome: dict = {}
        try:
            try:
                proc.stdin.write(json.dumps(payload).encode("utf-8"))
                proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass
            for line in proc.stdout:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue   # a library's own print
                if not isinstance(event, dict):
                    continue
                if event.get("kind") == "progress":
                    on_progress(int(event.get("done", 0)), int(event.get("total", 0)), str(event.get("message", "")))
                elif event.get("kind") in ("result", "error"):
                    outcome = event
            code = proc.wait()
        finally:
            ended.set()
            if proc.poll() is None:
                proc.kill()
        if outcome.get("kind") == "result":
            return list(outcome.get("rows") or []), outcome.get("map")
        if outcome.get("kind") == "error":
            raise UserError(str(outcome.get("message")))
        if should_stop():
            raise UserError("Stopped: the models were not ranked.")
        if time.monotonic() > deadline:
            raise UserError(f"Ranking the models took longer than {self.settings.job_max_minutes:g} minutes "
                            "(setting TL_JOB_MAX_MINUTES) and was stopped.")
        log.warning("advisor worker ended without an answer (exit code %s)", code)
        raise UserError("Ranking the models stopped unexpectedly (it may have run out of memory). "
                        "Try again with fewer examples.")
