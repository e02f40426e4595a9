"""How big a run's exported model is, read from its files' headers before anything is loaded (no
torch): a safetensors file starts with an 8-byte length and a JSON header listing every tensor's
dtype, shape and byte range; a pickled `.bin` counts by its file size. The adapter folder of a LoRA
export is not loaded for answers (the merged model is) and does not count.

`too_big_message` says, before a worker loads anything, that a model would not fit its memory cap:
the worker is never ended for a model it could have refused.
"""
from __future__ import annotations

import json
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

GB = 1024 ** 3
MB = 1024 ** 2
# Loading copies the weights about twice over (the built model, the file's tensors, torch's own buffers),
# and one explanation's forward and backward passes add up to 0.8 GB of address space on the shelf models
# (measured: Grad-CAM on EfficientNet-Lite0, integrated gradients on MiniLM-L6).
LOAD_FACTOR = 3
WORKING_BYTES = 1 * GB


@dataclass(frozen=True)
class Footprint:
    weights: int    # numbers in the model's tensors
    bytes: int      # bytes of those tensors

    @property
    def needed_bytes(self) -> int:
        """Memory a worker needs to load this model and answer with it (see LOAD_FACTOR)."""
        return LOAD_FACTOR * self.bytes + WORKING_BYTES


_cache: dict[tuple, Footprint] = {}
_cache_lock = threading.Lock()


def model_footprint(run_or_model_dir: str | Path) -> Footprint:
    """The tensors of the export in `<run>/model/` (or a model folder itself)."""
    folder = Path(run_or_model_dir)
    if (folder / "model").is_dir():
        folder = folder / "model"
    files = sorted(p for p in folder.rglob("*") if p.is_file() and "adapter" not in p.relative_to(folder).parts
                   and p.suffix in (".safetensors", ".bin"))
    key = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    weights = size = 0
    for path in files:
        if path.suffix == ".bin":
            size += path.stat().st_size
            weights += path.stat().st_size // 4
            continue
        for numel, nbytes in _safetensors_tensors(path):
            weights += numel
            size += nbytes
    found = Footprint(weights, size)
    with _cache_lock:
        _cache[key] = found
    return found


def _safetensors_tensors(path: Path):
    with open(path, "rb") as fh:
        (length,) = struct.unpack("<Q", fh.read(8))
        if length > 100 * MB:   # not a safetensors header: count the file
            yield path.stat().st_size // 4, path.stat().st_size
            return
        header = json.loads(fh.read(length))
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        numel = 1
        for dim in entry.get("shape") or []:
            numel *= int(dim)
        start, end = entry.get("data_offsets") or (0, 0)
        yield numel, int(end) - int(start)


def describe_size(footprint: Footprint) -> str:
    weights = footprint.weights
    count = f"{weights / 1e9:.1f} billion" if weights >= 1e9 else f"{weights / 1e6:.1f} million"
    size = f"{footprint.bytes / GB:.1f} GB" if footprint.bytes >= GB else f"{footprint.bytes / MB:.0f} MB"
    return f"{count} weights ({size})"


def too_big_message(footprint: Footprint, cap_gb: float) -> Optional[str]:
    """One sentence when the model would not fit a worker capped at `cap_gb` (0: no cap), else None."""
    if not cap_gb or footprint.needed_bytes <= cap_gb * GB:
        return None
    return (f"This run's model has {describe_size(footprint)}; answering with it needs about "
            f"{footprint.needed_bytes / GB:.1f} GB, more than the {cap_gb:g} GB the model server may use here "
            "(setting TL_INFERENCE_MEMORY_GB). Ask whoever runs Transfer Lab to raise that limit, or use a smaller "
            "model.")
