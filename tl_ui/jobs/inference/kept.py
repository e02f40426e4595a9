"""The models an inference worker keeps loaded between requests (runs in the worker; torch).

Least recently used go first, counted by bytes (each model's parameters and buffers), not by number:
one 1.6 GB model and twenty 15 MB ones weigh what they weigh. A model larger than the whole budget
still answers, loaded for that request only. Models load only from run folders inside the runs
folder the worker was given (the service has already checked that the run is the asker's), and
only after their size, read from the files' headers, was found to fit the worker's memory cap.

Each kept model has a lock: one request at a time uses it (Grad-CAM hooks the model, and a
concurrent prediction's pass would be recorded into the explanation); different models answer
at the same time on the worker's threads.
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from tl_ui.jobs.inference.protocol import OUTSIDE_RUNS, Code, InferenceError
from tl_ui.jobs.inference.sizes import model_footprint, too_big_message

log = logging.getLogger(__name__)


@dataclass
class Kept:
    predictor: object      # tl_ui.engine.inference.predict.Predictor
    bytes: int
    lock: threading.Lock = field(default_factory=threading.Lock)


def model_bytes(model) -> int:
    return sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])


class KeptModels:
    def __init__(self, runs_root: str | Path, budget_bytes: int, memory_gb: float = 0.0):
        self.runs_root = Path(runs_root).resolve()
        self.budget_bytes = int(budget_bytes)
        self.memory_gb = float(memory_gb or 0)
        self.loads = 0        # models loaded from disk in this worker (tests and benchmarks read it)
        self._kept: OrderedDict[str, Kept] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    def resolve(self, run_dir: str) -> Path:
        """The run folder, if it lies inside the runs folder and has a model; refused otherwise."""
        path = Path(run_dir).resolve()
        if not path.is_relative_to(self.runs_root):
            log.warning("refused a model outside the runs folder: %s", path)
            raise InferenceError(Code.REFUSED, OUTSIDE_RUNS)
        if not (path / "model").is_dir():
            raise InferenceError(Code.USER, "This run has no finished model to predict with. Pick a run that finished.")
        return path

    def get(self, run_dir: str) -> Kept:
        """The run's model, loaded once and kept (two requests for one run while it loads share the load)."""
        path = self.resolve(run_dir)
        key = f"{path}:{(path / 'model').stat().st_mtime_ns}"
        with self._lock:
            if key in self._kept:
                self._kept.move_to_end(key)
                return self._kept[key]
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:
            with self._lock:
                if key in self._kept:
                    return self._kept[key]
            footprint = model_footprint(path)
            refusal = too_big_message(footprint, self.memory_gb)
            if refusal:
                raise InferenceError(Code.TOO_BIG, refusal)
            self._make_room(footprint.bytes)
            from tl_ui.engine.inference.predict import Predictor

            predictor = Predictor.load(path)
            kept = Kept(predictor, model_bytes(predictor.model))
            with self._lock:
                self.loads += 1
                self._loading.pop(key, None)
                if kept.bytes <= self.budget_bytes:
                    self._kept[key] = kept
                    self._trim()
                else:
                    log.info("%s: %d MB is more than the kept models' budget: answering without keeping it",
                             path.name, kept.bytes >> 20)
        return kept

    def _make_room(self, incoming: int) -> None:
        with self._lock:
            while self._kept and self.kept_bytes() + incoming > self.budget_bytes:
                self._kept.popitem(last=False)

    def _trim(self) -> None:
        while self._kept and self.kept_bytes() > self.budget_bytes:
            self._kept.popitem(last=False)

    def kept_bytes(self) -> int:
        return sum(k.bytes for k in self._kept.values())

    def describe(self) -> dict:
        with self._lock:
            return {"kept": [key.rsplit(":", 1)[0] for key in self._kept],
                    "kept_mb": round(self.kept_bytes() / 1024 ** 2, 1),
                    "budget_mb": round(self.budget_bytes / 1024 ** 2, 1), "loads": self.loads}

    def forget(self, run_dir: Optional[str] = None) -> None:
        with self._lock:
            if run_dir is None:
                self._kept.clear()
            else:
                prefix = f"{Path(run_dir).resolve()}:"
                for key in [k for k in self._kept if k.startswith(prefix)]:
                    del self._kept[key]
