"""Embeddings kept across runs (issue 14): a second probe on the same data and model skips the forward passes.

One cache per owner (the workspace puts it in the owner's folder, so it goes with the owner's other
files). Its layout:

    <cache>/<feature key>/key.json            what the key stands for (model, weights, settings, versions)
    <cache>/<feature key>/<shard>.safetensors  one tensor `features` (rows x width) per run that added rows,
                                              its rows' example hashes in the file's metadata

The *feature key* covers everything that changes an example's embedding: the model and its weights
(a packaged file's size and date, a Hub name, or random weights with their seed), the input pipeline
(image size, normalisation, resize, DICOM window; or the tokenizer and text length), which module's
input is captured, the device kind and the library versions. An *example* is keyed by its content
(the bytes of an image file, the text itself), so a dataset with twenty more images embeds only
those twenty. Shards are touched when read; when the cache grows past its size, the least recently
used shards go first. Files are written atomically (safetensors + JSON only, never pickle).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any, Optional, Sequence

log = logging.getLogger(__name__)
FEATURES_VERSION = 1          # bump when the engine changes how embeddings are computed
DEFAULT_MAX_MB = 256.0
SHARD_SUFFIX = ".safetensors"


def feature_settings(loaded, config, window: Optional[str], device_type: str, *,
                     full_precision: bool = False) -> dict[str, Any]:
    """Everything that changes the head's inputs for a given example (`full_precision`: computed without
    bf16, as the exported model computes them; see features.embed_for_run)."""
    import torch

    from tl_ui.engine.models import fast_path

    entry = loaded.entry
    settings: dict[str, Any] = {
        "version": FEATURES_VERSION, "model": entry.id, "load_name": entry.load_name, "source": entry.source,
        "weights": _weights_identity(entry, config), "captured": loaded.head_names[-1],
        "device": device_type, "torch": torch.__version__,
        # the fast path changes features by float rounding only, but a run with it off must see exactly
        # the numbers of the plain path, so it is part of the key
        "fast_path": fast_path.describe(loaded.modality, device_type, full_precision=full_precision),
    }
    if len(loaded.head_names) > 1:
        # a newly initialised layer sits below the captured one (DistilBERT's pre_classifier):
        # its random weights depend on the seed and the number of classes
        settings.update(head_chain=list(loaded.head_names), seed=config.seed, n_classes=len(loaded.classes))
    if loaded.modality == "image":
        import timm

        cfg = loaded.data_config
        settings.update(timm=timm.__version__, input_size=list(cfg["input_size"]), mean=list(cfg["mean"]),
                        std=list(cfg["std"]), interpolation=cfg["interpolation"], crop_pct=cfg["crop_pct"],
                        window=window)
    else:
        import transformers

        settings.update(transformers=transformers.__version__, max_length=int(config.max_length),
                        tokenizer=type(loaded.tokenizer).__name__,
                        # mean-pooled sentence embeddings or BERT's [CLS] pooler (issue 13)
                        pooling=getattr(loaded, "sentence", None) or "classifier input of the transformers model")
    return settings


def bind_for_run(cache, loaded, config, window: Optional[str], device_type: str, *,
                 full_precision: bool = False) -> Optional["BoundCache"]:
    """The run's view of the owner's cache (`cache`: an EmbeddingCache, its record, or None), or None
    when there is none or it cannot be used: the cache only ever saves time, it never fails a run."""
    if isinstance(cache, dict):
        cache = EmbeddingCache.from_record(cache)
    if cache is None:
        return None
    try:
        return cache.bind(feature_settings(loaded, config, window, device_type, full_precision=full_precision))
    except Exception:
        log.warning("embedding cache unavailable for this run", exc_info=True)
        return None


def bind_probe_caches(cache, loaded, config, window: Optional[str], device_type: str) -> tuple:
    """(fast, exact): the probe's training examples are read from and added to the first, the examples
    that choose and report to the second (the same cache where the fast path has no bf16)."""
    return (bind_for_run(cache, loaded, config, window, device_type),
            bind_for_run(cache, loaded, config, window, device_type, full_precision=True))


def _weights_identity(entry, config) -> dict[str, Any]:
    if config.random_init:
        return {"random_init": True, "seed": int(config.seed)}
    if entry.source == "packaged":
        from tl_ui.core.catalog import packaged_path

        path = Path(packaged_path(entry))
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        return {"packaged": [[p.name, p.stat().st_size, int(p.stat().st_mtime)] for p in files]}
    return {"pretrained": entry.load_name, "revision": getattr(entry, "revision", None)}


def feature_key(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:32]


def item_hash(item: Any, modality: str) -> str:
    """An example's content hash: an image file's bytes, or a text's characters."""
    digest = hashlib.sha256()
    if modality == "text":
        digest.update(b"text\0" + str(item).encode("utf-8"))
    else:
        digest.update(b"file\0")
        with open(item, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


class EmbeddingCache:
    """One owner's cache folder, bounded to `max_bytes`."""

    def __init__(self, root: str | Path, max_bytes: int = int(DEFAULT_MAX_MB * 1024 * 1024)):
        self.root = Path(root)
        self.max_bytes = int(max_bytes)

    @classmethod
    def from_record(cls, record: Optional[dict]) -> Optional["EmbeddingCache"]:
        """{"dir", "max_bytes"} as a run's worker receives it; None: no cache."""
        if not record or not record.get("dir"):
            return None
        return cls(record["dir"], int(record.get("max_bytes") or DEFAULT_MAX_MB * 1024 * 1024))

    def record(self) -> dict:
        return {"dir": str(self.root), "max_bytes": self.max_bytes}

    def bind(self, settings: dict[str, Any]) -> "BoundCache":
        return BoundCache(self, feature_key(settings), settings)

    # -- size ---------------------------------------------------------------------------------------
    def shards(self) -> list[Path]:
        return sorted(self.root.glob(f"*/*{SHARD_SUFFIX}")) if self.root.is_dir() else []

    def size_bytes(self) -> int:
        return sum(_size(p) for p in self.shards())

    def evict(self, keep: Sequence[Path] = ()) -> list[Path]:
        """Remove least recently used shards until the cache fits its size (never those in `keep`,
        the ones this run just used, unless they alone exceed it)."""
        shards = sorted(self.shards(), key=lambda p: (p in keep, _mtime(p)))
        total = sum(_size(p) for p in shards)
        removed = []
        for shard in shards:
            if total <= self.max_bytes:
                break
            total -= _size(shard)
            shard.unlink(missing_ok=True)
            removed.append(shard)
        self._drop_empty()
        return removed

    def prune(self, max_age_s: float, now: Optional[float] = None) -> list[Path]:
        """Remove shards nobody read for `max_age_s` (the workspace's clean-up)."""
        now = time.time() if now is None else now
        removed = [p for p in self.shards() if now - _mtime(p) > max_age_s]
        for p in removed:
            p.unlink(missing_ok=True)
        self._drop_empty()
        return removed

    def _drop_empty(self) -> None:
        if not self.root.is_dir():
            return
        for folder in self.root.iterdir():
            if folder.is_dir() and not any(folder.glob(f"*{SHARD_SUFFIX}")):
                for leftover in folder.iterdir():
                    if leftover.name == "key.json" or leftover.name.endswith(".tmp"):
                        leftover.unlink(missing_ok=True)
                try:
                    folder.rmdir()
                except OSError:
                    pass


class BoundCache:
    """The cache of one feature key: what `features.embed_sets` reads and adds to."""

    def __init__(self, cache: EmbeddingCache, key: str, settings: dict[str, Any]):
        self.cache, self.key, self.settings = cache, key, settings
        self.folder = cache.root / key
        self.used: list[Path] = []

    def keys_for(self, items: Sequence[Any]) -> Optional[list[str]]:
        """Each example's content hash (None when an example cannot be read here: no reuse this time)."""
        modality = "image" if "input_size" in self.settings else "text"
        try:
            return [item_hash(item, modality) for item in items]
        except (OSError, TypeError):
            return None

    def lookup(self, keys: Sequence[str]) -> dict[str, Any]:
        """{example hash: embedding row} for the keys found; each shard read is marked as just used."""
        from safetensors import safe_open

        wanted, found = set(keys), {}
        for shard in sorted(self.folder.glob(f"*{SHARD_SUFFIX}"), key=_mtime, reverse=True):
            if not wanted - found.keys():
                break
            try:
                with safe_open(str(shard), framework="pt") as fh:
                    names = json.loads((fh.metadata() or {}).get("items", "[]"))
                    hits = [(i, k) for i, k in enumerate(names) if k in wanted and k not in found]
                    if not hits:
                        continue
                    rows = fh.get_tensor("features")
            except (OSError, ValueError, json.JSONDecodeError, RuntimeError):
                continue   # evicted or half-removed meanwhile: a miss
            for i, k in hits:
                found[k] = rows[i]
            _touch(shard)
            self.used.append(shard)
        return found

    def store(self, keys: Sequence[str], rows) -> Optional[Path]:
        """Add rows (one per key) as a new shard, then keep the cache under its size."""
        from safetensors.torch import save_file

        if not len(keys):
            return None
        shard = self.folder / f"{uuid.uuid4().hex[:16]}{SHARD_SUFFIX}"
        tmp = self.folder / f".{shard.name}.tmp"
        try:   # best effort: a full disk or a concurrent clean-up costs the reuse, never the run
            self.folder.mkdir(parents=True, exist_ok=True)
            meta = self.folder / "key.json"
            if not meta.exists():
                _write_atomic(meta, json.dumps(self.settings, indent=1, sort_keys=True, default=str).encode())
            save_file({"features": rows.contiguous().float().cpu()}, str(tmp),
                      metadata={"items": json.dumps(list(keys))})
            os.replace(tmp, shard)
            self.used.append(shard)
            self.cache.evict(keep=self.used)
        except OSError:
            log.warning("could not keep embeddings in %s", self.folder, exc_info=True)
            tmp.unlink(missing_ok=True)
            return None
        return shard


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:6]}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:
        pass


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
