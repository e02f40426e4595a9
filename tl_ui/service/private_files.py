"""Private copies inside Gradio's cache: files shown or offered for download (model zip, run.json,
model card, image previews) are copied into `<gradio cache>/tl_private/<owner_hash>/...`. Gradio
serves its cache to anyone who knows a URL; the `FileGuard` middleware in `tl_ui.app.server` refuses
any request for a path under `tl_private/` unless the requester's owner hash matches the path's.
The runs directory itself is never in `allowed_paths`.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import uuid
import zipfile
from pathlib import Path
from typing import Optional

from tl_ui.core.runfolder import RunFolder
from tl_ui.service.owners import Owner

PRIVATE_DIRNAME = "tl_private"


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:
        return 0.0


def gradio_cache_dir() -> Path:
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder()).resolve()


class PrivateFiles:
    """Owner-tagged copies under `<gradio cache>/tl_private/<owner_hash>/<capability>/...`.

    Files returned from handlers from inside Gradio's cache are served as they are (not re-copied),
    so their URL holds the owner hash and a capability folder (signed owner + expiry, see
    identity.py), which the server middleware checks on every request: the link works for whoever
    the page gave it to, with or without cookies, until it expires.
    """

    def __init__(self, cache_dir: Optional[Path] = None, identity=None, link_ttl_s: float = 24 * 3600):
        self._cache_dir = Path(cache_dir).resolve() if cache_dir else None
        self._lock = threading.Lock()
        self.identity = identity
        self.link_ttl_s = link_ttl_s

    @property
    def root(self) -> Path:
        base = self._cache_dir or gradio_cache_dir()
        return base / PRIVATE_DIRNAME

    def owner_root(self, owner: Owner) -> Path:
        d = self.root / owner.hash
        d.mkdir(parents=True, exist_ok=True)
        return d

    def new_folder(self, owner: Owner, prefix: str = "f") -> Path:
        capability = (self.identity.capability_folder(owner.hash, self.link_ttl_s) if self.identity
                      else "shared")
        d = self.owner_root(owner) / capability / f"{prefix}-{uuid.uuid4().hex[:12]}"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def copy(self, owner: Owner, src: Path, name: Optional[str] = None, folder: Optional[Path] = None) -> Path:
        folder = folder or self.new_folder(owner)
        dst = folder / (name or Path(src).name)
        shutil.copy2(src, dst)
        return dst

    def run_downloads(self, owner: Owner, run_dir: Path) -> dict[str, Optional[Path]]:
        """Private copies of a run's downloads: model zip, run.json, model card (None if absent).

        The zip is built once per run and owner (under a temp name, then renamed)."""
        run = RunFolder(run_dir)
        run_dir = run.path
        cache = self.owner_root(owner) / "cache"
        cache.mkdir(exist_ok=True)
        folder = self.new_folder(owner, f"run-{run_dir.name}")
        out: dict[str, Optional[Path]] = {"model": None, "run_json": None, "card": None}
        model_dir = run.model_dir
        if run.has_model:
            cached = cache / f"model-{run_dir.name}.zip"
            with self._lock:
                if not cached.exists() or _mtime(cached) < _mtime(model_dir):
                    zip_folder(model_dir, cached, arc_root=f"model-{run_dir.name}")
            zip_path = folder / cached.name
            try:   # each page gets a fresh signed link; the zip itself is built once
                os.link(cached, zip_path)
            except OSError:
                shutil.copyfile(cached, zip_path)
            out["model"] = zip_path
        if run.run_json.exists():
            out["run_json"] = self.copy(owner, run.run_json, "run.json", folder)
        if (model_dir / "README.md").exists():
            out["card"] = self.copy(owner, model_dir / "README.md", "README.md", folder)
        return out

    def cleanup(self, max_age_s: float, now: Optional[float] = None) -> int:
        """Remove items older than `max_age_s` (inside each signed folder, and the owner's cache),
        then emptied folders. Returns how many items were removed."""
        now = time.time() if now is None else now
        removed = 0
        if not self.root.is_dir():
            return 0
        for owner_dir in (d for d in self.root.iterdir() if d.is_dir()):
            for group in (d for d in owner_dir.iterdir() if d.is_dir()):
                for item in list(group.iterdir()):
                    if now - _mtime(item) > max_age_s:
                        shutil.rmtree(item, ignore_errors=True) if item.is_dir() else item.unlink(missing_ok=True)
                        removed += 1
                _remove_if_empty(group)
            _remove_if_empty(owner_dir)
        return removed


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


def zip_folder(folder: Path, zip_path: Path, arc_root: str) -> Path:
    """Zip `folder` into `zip_path` atomically (temp file + rename). Weights are stored, not
    deflated: they do not compress and it is several times faster."""
    folder, zip_path = Path(folder), Path(zip_path)
    fd, tmp = tempfile.mkstemp(dir=zip_path.parent, prefix=".zip-", suffix=".tmp")
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w") as zf:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    compress = zipfile.ZIP_STORED if path.suffix in (".safetensors", ".bin", ".pth") \
                        else zipfile.ZIP_DEFLATED
                    zf.write(path, f"{arc_root}/{path.relative_to(folder).as_posix()}", compress_type=compress)
        os.replace(tmp, zip_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return zip_path


def private_path_parts(path_text: str) -> Optional[list[str]]:
    """For a requested file path: the parts after a `tl_private/` folder ([owner hash, capability
    folder, ...]; [] if none), or None if it is not a private path."""
    norm = os.path.normpath(path_text.replace("\\", "/"))
    parts = [p for p in norm.split("/") if p]
    if PRIVATE_DIRNAME not in parts:
        return None
    return parts[parts.index(PRIVATE_DIRNAME) + 1:]
