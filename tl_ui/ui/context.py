"""`AppContext`: everything one app instance shares between sessions, created in `build_app`.

Nothing here is module-level: two apps in one process (as in the tests) never share a runner, a
workspace or a cache.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Optional

from tl_ui.runner import Runner
from tl_ui.sessions import Owner, PrivateFiles, Workspace, owner_from_request
from tl_ui.settings import Settings

log = logging.getLogger(__name__)


class AppContext:
    def __init__(self, settings: Settings, train_fn=None, cache_dir: Optional[Path] = None):
        self.settings = settings
        self.workspace = Workspace(settings.runs_dir)
        self.private = PrivateFiles(cache_dir)
        self.runner = Runner(settings.max_jobs, train_fn=train_fn, max_per_owner=settings.max_queued_per_user)
        self.recovered = self.workspace.recover_interrupted()
        self._predictors: OrderedDict[str, object] = OrderedDict()
        self._predictor_lock = threading.Lock()
        self._strategy_cache: dict[tuple, dict] = {}
        self._cleanup_thread: Optional[threading.Thread] = None
        self._stop_cleanup = threading.Event()

    # -- owners -------------------------------------------------------------------------------
    def owner(self, request) -> Owner:
        return owner_from_request(request)

    # -- predictors (loaded once per run, a few kept in memory) ---------------------------------
    def predictor(self, run_dir: Path):
        key = str(Path(run_dir).resolve())
        with self._predictor_lock:
            if key in self._predictors:
                self._predictors.move_to_end(key)
                return self._predictors[key]
        from tl_ui.engine import Predictor  # lazy: torch

        predictor = Predictor.load(run_dir)
        with self._predictor_lock:
            self._predictors[key] = predictor
            while len(self._predictors) > 4:
                self._predictors.popitem(last=False)
        return predictor

    def strategy_numbers(self, model_id: str, strategy: str, num_classes: int, config) -> dict:
        key = (model_id, strategy, num_classes, config.unfreeze_groups, config.lora_rank)
        if key not in self._strategy_cache:
            from tl_ui.engine import describe_strategy

            self._strategy_cache[key] = describe_strategy(model_id, strategy, num_classes, config)
        return self._strategy_cache[key]

    # -- clean-up -------------------------------------------------------------------------------
    def cleanup_once(self) -> None:
        ttl = self.settings.session_ttl_hours * 3600
        active = {Owner(*j.owner.split(":", 1)).key for j in self.runner.jobs() if not j.done and ":" in j.owner}
        removed = self.workspace.cleanup(ttl, active_owner_keys=active)
        n_private = self.private.cleanup(ttl)
        if removed or n_private:
            log.info("clean-up removed %d folder(s) and %d private cache item(s)", len(removed), n_private)

    def start_background(self) -> None:
        if self._cleanup_thread and self._cleanup_thread.is_alive():
            return

        def loop():
            interval = self.settings.cleanup_minutes * 60
            while not self._stop_cleanup.wait(interval):
                try:
                    self.cleanup_once()
                except Exception:  # never let the clean-up thread die
                    log.exception("clean-up failed")

        self._cleanup_thread = threading.Thread(target=loop, name="tl-cleanup", daemon=True)
        self._cleanup_thread.start()

    def close(self) -> None:
        self._stop_cleanup.set()
        self.runner.shutdown(stop_jobs=True, timeout=15)


def apply_process_env(settings: Settings) -> None:
    """Environment a server needs before gradio/transformers start talking to the network."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if settings.offline:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        os.environ["TL_OFFLINE"] = "1"


def now() -> float:
    return time.time()
