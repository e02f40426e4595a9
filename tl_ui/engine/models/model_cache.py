"""Pretrained image backbones kept in a warm worker process between runs (tl_ui/jobs/executors/worker.py).

A warm worker serves runs one after another; building a timm model and reading its weights from disk
is the largest fixed cost of a repeat run. `pristine_image_model` keeps, per model, one untouched
copy of the model as built with its pretrained weights (before any run's head, layout or training)
and hands every run its own deep copy: training never sees another run's weights, and a copy shares
no storage with the kept one (tests/integration/test_warm_worker.py checks both).

Building is RNG-neutral (`torch.random.fork_rng`): the run's head is drawn from the same random
state whether the backbone was built now or copied, so a run served by a warm worker gives the same
numbers as one in a fresh process. Random-init models (the scratch baseline) are never kept: their
weights come from the run's seed.

Off unless `keep_models(True)` was called (the warm worker does): a one-off process keeps nothing.
Bounded: at most `MAX_MODELS` models and `MAX_BYTES` of weights, least recently used out first.
"""
from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from typing import Callable, Hashable

import torch
from torch import nn

MAX_MODELS = 2
MAX_BYTES = 600 * 1024 ** 2     # EfficientNet-Lite0 is 19 MB of weights, Lite2 24 MB, a ViT-B 350 MB


class ModelCache:
    def __init__(self, max_models: int = MAX_MODELS, max_bytes: int = MAX_BYTES):
        self.max_models, self.max_bytes = max_models, max_bytes
        self.enabled = False
        self.built = 0      # models built from their files in this process
        self.reused = 0     # runs served from a kept copy
        self._kept: OrderedDict[Hashable, tuple[nn.Module, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], nn.Module]) -> nn.Module:
        """A model no one else holds: a deep copy of the kept one, or a newly built one (kept too, if on)."""
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None:
                self._kept.move_to_end(key)
                self.reused += 1
                return copy.deepcopy(kept[0])
        with torch.random.fork_rng(devices=[]):   # as if nothing was built: see the module's note
            model = build()
        with self._lock:
            self.built += 1
            if self.enabled:
                size = _bytes(model)
                if size <= self.max_bytes:
                    self._kept[key] = (copy.deepcopy(model), size)
                    self._trim()
        return model

    def _trim(self) -> None:
        while self._kept and (len(self._kept) > self.max_models or
                              sum(size for _, size in self._kept.values()) > self.max_bytes):
            self._kept.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()

    def describe(self) -> dict:
        """What a worker records in each run's status.json (counts, not times: tests read them)."""
        with self._lock:
            return {"built": self.built, "reused": self.reused, "kept": [str(k[1]) for k in self._kept],
                    "kept_mb": round(sum(size for _, size in self._kept.values()) / 1024 ** 2, 1)}


def _bytes(model: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])


CACHE = ModelCache()


def keep_models(on: bool = True) -> None:
    CACHE.enabled = bool(on)
    if not on:
        CACHE.clear()


def pristine_image_model(entry, build: Callable[[], nn.Module]) -> nn.Module:
    """The shelf model `entry` with its pretrained weights, ImageNet head still on, for this run alone."""
    return CACHE.get(("image", entry.id, entry.load_name, str(getattr(entry, "weights_naming", ""))), build)
