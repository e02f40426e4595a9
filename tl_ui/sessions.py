"""Who is asking, where their files live, and who may download what.

* **Owner**: an authenticated user (`user:<name>`) or, without login, a browser session identified
  by the `tl_sid` cookie that `tl_ui.server` sets on the first response (a gradio_client keeps it
  too). Without that cookie (e.g. the app launched with plain `demo.launch()`), Gradio's per-page
  `session_hash` is the fallback.
* **Workspace**: every owner has a working folder under the runs directory:
  `<runs_dir>/<owner_key>/runs/<run_id>/` (run folders as in docs/contracts.md) and
  `<runs_dir>/<owner_key>/uploads/`. Users' folders survive restarts; anonymous session folders are
  removed after `session_ttl_hours` of inactivity.
* **Private files**: files shown or offered for download (model zip, run.json, model card, image
  previews) are copied into `<gradio cache>/tl_private/<owner_hash>/...`. Gradio serves its cache
  to anyone who knows a URL; the `FileGuard` middleware in `tl_ui.server` refuses any request for a
  path under `tl_private/` unless the requester's owner hash matches the path's. The runs
  directory itself is never in `allowed_paths`.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

log = logging.getLogger(__name__)

SID_COOKIE = "tl_sid"
PRIVATE_DIRNAME = "tl_private"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,80}$")


# -- owners -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Owner:
    kind: str      # "user" | "session"
    name: str      # user name, or the session cookie / session hash

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.name}"

    @property
    def hash(self) -> str:
        """Stable, unguessable-from-outside id used in paths (never the raw cookie)."""
        return owner_hash(self.id)

    @property
    def key(self) -> str:
        """Folder name under the runs directory."""
        if self.kind == "user":
            slug = _SAFE.sub("_", self.name)[:40].strip("._") or "user"
            return f"u-{slug}-{self.hash[:10]}"
        return f"s-{self.hash[:24]}"

    @property
    def is_user(self) -> bool:
        return self.kind == "user"

    @property
    def display(self) -> str:
        return self.name if self.is_user else "this browser session"


def owner_hash(owner_id: str) -> str:
    return hashlib.sha256(("tl-owner\0" + owner_id).encode("utf-8")).hexdigest()[:32]


def owner_from_request(request) -> Owner:
    """The owner of a Gradio event (`gr.Request`), or of a raw Starlette request."""
    if request is None:
        return Owner("session", "anonymous-" + uuid.uuid4().hex)
    username = getattr(request, "username", None)
    if username:
        return Owner("user", str(username))
    cookies = {}
    try:
        cookies = dict(request.cookies or {})
    except Exception:  # gr.Request without an underlying request
        cookies = {}
    sid = cookies.get(SID_COOKIE)
    if sid and re.fullmatch(r"[A-Za-z0-9_-]{16,128}", sid):
        return Owner("session", "sid-" + sid)
    session_hash = getattr(request, "session_hash", None)
    return Owner("session", "hash-" + str(session_hash or uuid.uuid4().hex))


def valid_run_id(run_id: str) -> bool:
    return bool(run_id) and bool(_RUN_ID.match(run_id)) and ".." not in run_id


# -- run folders ------------------------------------------------------------------------------
def read_json(path: Path) -> Optional[dict]:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_json_atomic(path: Path, data: dict) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:6]}.tmp")
    tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
    tmp.replace(path)


@dataclass
class RunInfo:
    run_id: str
    run_dir: Path
    state: str
    message: str
    started: Optional[float]
    ended: Optional[float]
    model_id: str
    strategy: str
    accuracy: Optional[float]
    has_model: bool

    def label(self) -> str:
        when = time.strftime("%d %b %H:%M", time.localtime(self.started)) if self.started else self.run_id
        acc = f", accuracy {self.accuracy:.0%}" if self.accuracy is not None else ""
        return f"{when} · {self.model_id} · {self.strategy} · {self.state}{acc}"

    def to_dict(self) -> dict:
        return {
            "run_id": self.run_id, "state": self.state, "message": self.message,
            "started": self.started, "ended": self.ended, "model_id": self.model_id,
            "strategy": self.strategy, "accuracy": self.accuracy, "has_model": self.has_model,
        }


def run_info(run_dir: Path) -> Optional[RunInfo]:
    run_dir = Path(run_dir)
    status = read_json(run_dir / "status.json")
    config = read_json(run_dir / "run.json") or {}
    if status is None and not config:
        return None
    status = status or {}
    metrics = read_json(run_dir / "metrics.json") or {}
    acc = metrics.get("accuracy")
    return RunInfo(
        run_id=run_dir.name,
        run_dir=run_dir,
        state=str(status.get("state", "unknown")),
        message=str(status.get("message", "")),
        started=status.get("started"),
        ended=status.get("ended"),
        model_id=str(config.get("model_id", "?")),
        strategy=str(config.get("strategy", "?")),
        accuracy=float(acc) if isinstance(acc, (int, float)) else None,
        has_model=(run_dir / "model" / "config.json").exists(),
    )


class Workspace:
    """Per-owner folders under the runs directory."""

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

    def new_run_dir(self, owner: Owner, run_id: str) -> Path:
        return self.runs_dir(owner) / run_id

    def run_dir(self, owner: Owner, run_id: str) -> Optional[Path]:
        """The owner's run folder, or None if the id is malformed or not theirs."""
        if not valid_run_id(run_id or ""):
            return None
        d = self.root / owner.key / "runs" / run_id
        return d if d.is_dir() else None

    def list_runs(self, owner: Owner) -> list[RunInfo]:
        d = self.root / owner.key / "runs"
        if not d.is_dir():
            return []
        infos = [info for child in d.iterdir() if child.is_dir() and not child.name.startswith(".")
                 if (info := run_info(child)) is not None]
        return sorted(infos, key=lambda i: i.started or 0, reverse=True)

    # -- start-up recovery ------------------------------------------------------------------
    def recover_interrupted(self) -> list[Path]:
        """Mark runs that were running (or waiting) when the server stopped as `interrupted`,
        and remove half-written exports. Returns the run folders changed."""
        changed = []
        for status_path in self.root.glob("*/runs/*/status.json"):
            status = read_json(status_path) or {}
            run_dir = status_path.parent
            for partial in run_dir.glob(".model.partial-*"):
                shutil.rmtree(partial, ignore_errors=True)
            if status.get("state") in ("running", "queued"):
                status.update(state="interrupted", ended=status.get("ended") or time.time(),
                              message="The server stopped while this run was going on. "
                                      "Start it again to get a model.")
                write_json_atomic(status_path, status)
                changed.append(run_dir)
        if changed:
            log.info("marked %d run(s) as interrupted", len(changed))
        return changed

    # -- clean-up ---------------------------------------------------------------------------
    def cleanup(self, session_ttl_s: float, active_owner_keys: Iterable[str] = (),
                now: Optional[float] = None) -> list[Path]:
        """Remove anonymous session folders idle for longer than `session_ttl_s`, and uploads of
        any owner older than that. Never touches owners with an active job."""
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
            uploads = d / "uploads"
            if uploads.is_dir():
                for up in uploads.iterdir():
                    if now - _mtime(up) > session_ttl_s:
                        shutil.rmtree(up, ignore_errors=True) if up.is_dir() else up.unlink(missing_ok=True)
                        removed.append(up)
        return removed


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


# -- private copies inside Gradio's cache -----------------------------------------------------
def gradio_cache_dir() -> Path:
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder()).resolve()


class PrivateFiles:
    """Owner-tagged copies under `<gradio cache>/tl_private/<owner_hash>/`.

    Files returned from handlers from inside Gradio's cache are served as they are (not re-copied),
    so their URL contains the owner hash, which the server middleware checks on every request.
    """

    def __init__(self, cache_dir: Optional[Path] = None):
        self._cache_dir = Path(cache_dir).resolve() if cache_dir else None
        self._lock = threading.Lock()

    @property
    def root(self) -> Path:
        base = self._cache_dir or gradio_cache_dir()
        return base / PRIVATE_DIRNAME

    def owner_root(self, owner: Owner) -> Path:
        d = self.root / owner.hash
        d.mkdir(parents=True, exist_ok=True)
        return d

    def new_folder(self, owner: Owner, prefix: str = "f") -> Path:
        d = self.owner_root(owner) / f"{prefix}-{uuid.uuid4().hex[:12]}"
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
        run_dir = Path(run_dir)
        folder = self.owner_root(owner) / f"run-{run_dir.name}"
        folder.mkdir(parents=True, exist_ok=True)
        out: dict[str, Optional[Path]] = {"model": None, "run_json": None, "card": None}
        model_dir = run_dir / "model"
        if (model_dir / "config.json").exists():
            zip_path = folder / f"model-{run_dir.name}.zip"
            with self._lock:
                if not zip_path.exists() or _mtime(zip_path) < _mtime(model_dir):
                    zip_folder(model_dir, zip_path, arc_root=f"model-{run_dir.name}")
            out["model"] = zip_path
        if (run_dir / "run.json").exists():
            out["run_json"] = self.copy(owner, run_dir / "run.json", "run.json", folder)
        if (model_dir / "README.md").exists():
            out["card"] = self.copy(owner, model_dir / "README.md", "README.md", folder)
        return out

    def cleanup(self, max_age_s: float, now: Optional[float] = None) -> int:
        now = time.time() if now is None else now
        removed = 0
        if not self.root.is_dir():
            return 0
        for owner_dir in self.root.iterdir():
            for item in owner_dir.iterdir() if owner_dir.is_dir() else []:
                if now - _mtime(item) > max_age_s:
                    shutil.rmtree(item, ignore_errors=True) if item.is_dir() else item.unlink(missing_ok=True)
                    removed += 1
            try:
                owner_dir.rmdir()  # only if empty
            except OSError:
                pass
        return removed


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


def private_path_owner(path_text: str) -> Optional[str]:
    """For a requested file path: the owner hash if it lies under a `tl_private/` folder, '' if it
    does but names no owner, None if it is not a private path."""
    norm = os.path.normpath(path_text.replace("\\", "/"))
    parts = [p for p in norm.split("/") if p]
    if PRIVATE_DIRNAME not in parts:
        return None
    i = parts.index(PRIVATE_DIRNAME)
    return parts[i + 1] if i + 1 < len(parts) else ""
