"""How many weights a strategy trains, for the Strategy step, read as numbers (no torch in this process).

The offline shelf's counts ship with the package (`tl_ui/engine/planning/shelf_facts.json`, written by
`python -m tl_ui.engine.planning.shelf_facts --write`); any class number, LoRA rank and number of retrained
layer groups follows from them exactly (tl_ui/engine/planning/shelf_facts.py says why). A model that is not in
that file (a Hub model, or a packaged one installed after it was written) is counted once by the same
code in a worker process, on PyTorch's `meta` device (nothing is allocated), and the result is kept in
`<runs dir>/shelf-facts.json` for every later request; only models whose files are already on this
computer are counted that way, never downloaded for it (a run downloads and size-checks them in the queue).
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Optional

from tl_ui.engine.planning.shelf_facts import FACTS_VERSION, counts_from_facts, shipped_facts
from tl_ui.core.runfolder import read_json, write_json_atomic

log = logging.getLogger(__name__)

CACHE_NAME = "shelf-facts.json"
COUNT_TIMEOUT_S = 120.0      # on the meta device a count takes seconds, mostly the interpreter and torch's import
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


class ShelfFacts:
    """Counts for the Strategy step: the shipped table, else this server's cache, else one worker count."""

    def __init__(self, cache_dir: Optional[Path], *, max_params_m: Optional[float] = None,
                 memory_gb: float = 0.0):
        self.cache_path = Path(cache_dir) / CACHE_NAME if cache_dir else None
        self.max_params_m = max_params_m
        self.memory_gb = memory_gb
        self._shipped = shipped_facts()
        self._lock = threading.Lock()                  # one writer of the cache file
        self._counting: dict[str, threading.Lock] = {}  # one worker per model at a time
        self._failed: set[str] = set()                 # counted once and failed: not again in this process

    def describe(self, entry, strategy: str, num_classes: int, unfreeze_groups: int, lora_rank: int) -> Optional[dict]:
        """{"trainable", "total", "share"}, or None when this model cannot be counted here without a download."""
        facts = self.facts(entry)
        if facts is None:
            return None
        return counts_from_facts(facts, strategy, num_classes, unfreeze_groups, lora_rank)

    def facts(self, entry) -> Optional[dict]:
        """One model's facts (tl_ui/engine/planning/shelf_facts.py), or None when they cannot be had without a download."""
        key = _key(entry)
        shipped = self._shipped.get(entry.id)
        if entry.source == "packaged" and shipped and shipped.get("load_name") == entry.load_name:
            return shipped
        cached = self._cached().get(key)
        if cached is not None:
            return cached
        if key in self._failed or not entry.offline:   # not on this computer: the run counts it in the queue
            return None
        with self._lock:
            lock = self._counting.setdefault(key, threading.Lock())
        with lock:
            cached = self._cached().get(key)
            if cached is None and key not in self._failed:
                cached = self._count_in_worker(entry)
                if cached is None:
                    self._failed.add(key)
                else:
                    self._store(key, cached)
        return cached

    # -- the worker ------------------------------------------------------------------------------
    def _count_in_worker(self, entry) -> Optional[dict]:
        command = [sys.executable, "-m", "tl_ui.jobs.shelf_facts_worker", "--count", entry.id,
                   "--modality", entry.modality]
        if self.max_params_m:
            command += ["--max-params-m", str(self.max_params_m)]
        if self.memory_gb > 0:
            command += ["--memory-gb", str(self.memory_gb)]
        env = {**os.environ, "HF_HUB_OFFLINE": "1",   # counted from the files on this computer only
               "PYTHONPATH": os.pathsep.join(p for p in (_PACKAGE_ROOT, os.environ.get("PYTHONPATH")) if p)}
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=COUNT_TIMEOUT_S,
                                  stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("counting the weights of %s failed: %s", entry.id, exc)
            return None
        answer = _last_json_line(done.stdout)
        if answer.get("kind") != "result":
            log.warning("counting the weights of %s failed: %s", entry.id,
                        answer.get("message") or done.stderr[-500:])
            return None
        return answer["facts"]

    # -- the cache ---------------------------------------------------------------------------------
    def _cached(self) -> dict:
        if self.cache_path is None:
            return {}
        data = read_json(self.cache_path) or {}
        return data.get("models", {}) if data.get("version") == FACTS_VERSION else {}

    def _store(self, key: str, facts: dict) -> None:
        if self.cache_path is None:
            return
        with self._lock:
            models = {**self._cached(), key: facts}
            write_json_atomic(self.cache_path, {"version": FACTS_VERSION, "models": models})


def _key(entry) -> str:
    return f"{entry.source}:{entry.load_name}"


def _last_json_line(text: str) -> dict:
    for line in reversed((text or "").splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return {}
