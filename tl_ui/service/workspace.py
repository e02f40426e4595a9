"""Per-owner working folders under the runs directory, and the datasets runs were trained on.

    <runs_dir>/<owner_key>/runs/<run_id>/       run folders (layout: tl_ui.core.runfolder)
                          uploads/<random>/     uploads as received, and what they unpack to
                          datasets/<sha256>/    the exact data file each run trained on, kept while
                                                a run refers to it (run.json points here: faithful replays)
                          embeddings/<key>/     embeddings kept across runs (tl_ui.engine.probe.embedding_cache),
                                                bounded in size; unread ones go after the same time as uploads

Users' folders survive restarts; anonymous session folders are removed after `session_ttl_hours`
of inactivity, uploads of any owner after the same time.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Iterable, Optional

from tl_ui.core.runfolder import RunFolder, RunInfo, read_json, write_json_atomic
from tl_ui.service.owners import Owner

log = logging.getLogger(__name__)

EMBEDDINGS = "embeddings"
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,80}$")


def valid_run_id(run_id: str) -> bool:
    return bool(run_id) and bool(_RUN_ID.match(run_id)) and ".." not in run_id


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tree_sha256(folder: Path) -> str:
    """A folder's content hash: relative paths and file bytes, in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + file_sha256(path).encode())
    return digest.hexdigest()


def data_sha256(path: Path) -> str:
    path = Path(path)
    return tree_sha256(path) if path.is_dir() else file_sha256(path)


def safe_file_name(name: str) -> str:
    keep = "".join(ch if ch.isalnum() or ch in "._- " else "_" for ch in Path(name).name).strip()
    return keep or "upload"


class Workspace:
    def __init__(self, runs_dir: str | Path):
        self.root = Path(runs_dir).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def owner_dir(self, owner: Owner) -> Path:
        d = self.root / owner.key
        d.mkdir(parents=True, exist_ok=True)
        meta = d / "owner.json"
        if not meta.exists():
            write_json_atomic(meta, {"kind": owner.kind, "name": owner.name if owner.is_user else "",
                                     "created": time.time()})
        os.utime(d)  # last activity, for the clean-up
        return d

    def runs_dir(self, owner: Owner) -> Path:
        d = self.owner_dir(owner) / "runs"
        d.mkdir(exist_ok=True)
        return d

    def uploads_dir(self, owner: Owner) -> Path:
        d = self.owner_dir(owner) / "uploads" / uuid.uuid4().hex[:10]
        d.mkdir(parents=True, exist_ok=True)
        return d

    def embeddings_dir(self, owner: Owner) -> Path:
        """The owner's embeddings kept across runs (tl_ui/engine/probe/embedding_cache.py; created on first use)."""
        return self.owner_dir(owner) / EMBEDDINGS

    def new_run(self, owner: Owner) -> RunFolder:
        return RunFolder(self.runs_dir(owner) / new_run_id())

    def run(self, owner: Owner, run_id: str) -> Optional[RunFolder]:
        """The owner's run folder, or None if the id is malformed or not theirs."""
        if not valid_run_id(run_id or ""):
            return None
        d = self.root / owner.key / "runs" / run_id
        return RunFolder(d) if d.is_dir() else None

    def list_runs(self, owner: Owner) -> list[RunInfo]:
        d = self.root / owner.key / "runs"
        if not d.is_dir():
            return []
        infos = [info for child in d.iterdir() if child.is_dir() and not child.name.startswith(".")
                 if (info := RunFolder(child).info()) is not None]
        return sorted(infos, key=lambda i: i.started or 0, reverse=True)

    # -- datasets kept for replays --------------------------------------------------------------
    def keep_dataset(self, owner: Owner, data_path: str | Path) -> tuple[Path, str]:
        """(kept path, sha256): the data file (or folder) stored by content under `datasets/`.
        A hard link where the file system allows it, else a copy; the same content is kept once."""
        src = Path(data_path)
        sha = data_sha256(src)
        folder = self.owner_dir(owner) / "datasets" / sha[:24]
        kept = folder / safe_file_name(src.name)
        if not kept.exists():
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".{kept.name}.{uuid.uuid4().hex[:6]}.tmp"
            if src.is_dir():
                shutil.copytree(src, tmp)
            else:
                try:
                    os.link(src, tmp)
                except OSError:
                    shutil.copyfile(src, tmp)
            os.replace(tmp, kept)
        os.utime(folder)
        return kept, sha

    # -- start-up recovery ------------------------------------------------------------------
    def recover_interrupted(self) -> list[Path]:
        """Mark runs that were going on (or waiting) when the server stopped as `interrupted`, and
        remove half-written exports. Returns the run folders changed."""
        changed = [status.parent for status in self.root.glob("*/runs/*/status.json")
                   if RunFolder(status.parent).mark_interrupted()]
        if changed:
            log.info("marked %d run(s) as interrupted", len(changed))
        return changed

    # -- clean-up ---------------------------------------------------------------------------
    def cleanup(self, session_ttl_s: float, active_owner_keys: Iterable[str] = (),
                now: Optional[float] = None) -> list[Path]:
        """Remove anonymous session folders idle for longer than `session_ttl_s`, uploads of any
        owner older than that, and kept datasets no run refers to any more. Never touches owners
        with an active job."""
        now = time.time() if now is None else now
        active = set(active_owner_keys)
        removed = []
        for d in self.root.iterdir():
            if not d.is_dir() or d.name in active:
                continue
            if d.name.startswith("s-") and now - _last_activity(d) > session_ttl_s:
                shutil.rmtree(d, ignore_errors=True)
                removed.append(d)
                continue
            for old in _children(d / "uploads"):
                if now - _mtime(old) > session_ttl_s:
                    _remove(old)
                    removed.append(old)
            referenced = {Path(str((read_json(p) or {}).get("data_path", ""))).parent.name
                          for p in (d / "runs").glob("*/run.json")}
            for kept in _children(d / "datasets"):
                if kept.name not in referenced and now - _mtime(kept) > session_ttl_s:
                    _remove(kept)
                    removed.append(kept)
            if (d / EMBEDDINGS).is_dir():   # embeddings no run read for as long as an upload is kept
                from tl_ui.engine.probe.embedding_cache import EmbeddingCache

                removed += EmbeddingCache(d / EMBEDDINGS).prune(session_ttl_s, now)
        return removed


def _children(folder: Path) -> list[Path]:
    return list(folder.iterdir()) if folder.is_dir() else []


def _remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:
        return 0.0


def _last_activity(d: Path) -> float:
    latest = _mtime(d)
    for child in d.iterdir():
        latest = max(latest, _mtime(child))
        if child.name == "runs" and child.is_dir():
            for run in child.iterdir():
                latest = max(latest, _mtime(run))
    return latest
