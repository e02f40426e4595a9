"""Labelling in Transfer Lab (issue 41): an unlabelled pool, the labels a person gives, and the model
asking for what it learns most from.

The page, the API and the CLI call `Labelling.suggest`; the pool's embeddings and the probe are
computed in an inference worker of its own (`InferencePool.call_long`, verb "suggest": no model in the
web process), through the owner's embedding cache, so a second call embeds nothing and answers in
seconds. Each owner has one labelling session in their own folder:

    <owner>/labelling/pool/...      the pool as uploaded (and unpacked)
    <owner>/labelling/session.json  where the pool is, its kind, the class names
    <owner>/labelling/labels.csv    item,label,labelled_at,by (tl_ui/data/label_store.py), written as each
                                    label is given
    <owner>/labelling/export/       the labelled set as a training file (a zip of class folders, or a
                                    CSV of text,label) and labels.csv's item,label export
"""
from __future__ import annotations

import csv
import json
import logging
import shutil
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

from tl_ui.data import DataError
from tl_ui.data.label_store import LabelStore, check_name
from tl_ui.jobs.inference import InferenceError
from tl_ui.service.errors import UserError

log = logging.getLogger(__name__)

MAX_SUGGESTIONS = 1000
MAX_CLASSES = 50
BUSY_MESSAGE = "Another request of yours is being answered. Try again in a moment."
FOLDER = "labelling"
REFRESH_EVERY = 5       # labels between two rankings of the pool
QUEUE = 20              # suggestions kept at once


def check_classes(classes: Sequence[str]) -> list[str]:
    out: list[str] = []
    for name in classes:
        name = str(name).strip()
        if name and name not in out:
            try:
                out.append(check_name(name, "class name"))
            except DataError as exc:
                raise UserError(str(exc)) from None
    if len(out) > MAX_CLASSES:
        raise UserError(f"{len(out)} class names were given; labelling takes at most {MAX_CLASSES}.")
    return out


@dataclass
class Session:
    """One owner's labelling: the pool (tl_ui.data.unlabelled.Inputs), the classes, the label store."""
    inputs: object
    classes: list[str]
    store: LabelStore
    folder: Path
    skipped: list[str] = field(default_factory=list)     # this session's skips (not stored)
    queue: list[dict] = field(default_factory=list)      # the model's current suggestions
    curve: Optional[dict] = None
    model_id: str = ""
    refreshing: bool = False
    refreshed_at: int = -1          # labels stored when the suggestions were last computed
    version: int = 0                # +1 each time new suggestions arrive
    error: str = ""                 # why the last refresh failed
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def names(self) -> list[str]:
        return list(self.inputs.names)

    def progress(self) -> str:
        given = len(self.store.given())
        aside = len(self.store.set_aside())
        left = len(self.inputs) - given - aside
        return f"{given} labelled · {left} to go" + (f" · {aside} set aside as not sure" if aside else "")

    def item_path(self, name: str) -> Optional[str]:
        """The file of a pool item (images), or its text."""
        try:
            return self.inputs.items[self.inputs.names.index(name)]
        except ValueError:
            return None


class Labelling:
    def __init__(self, settings, inference, workspace=None):
        self.settings = settings
        self.inference = inference        # tl_ui.jobs.inference.InferencePool
        self.workspace = workspace        # tl_ui.service.workspace.Workspace (None: the CLI, no owners)
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    # -- the model asks ---------------------------------------------------------------------------------
    def suggest(self, inputs, labelled: dict[str, str], classes: Sequence[str] = (), *, n: int = 10,
                model_id: Optional[str] = None, embedding_cache: Optional[dict] = None, curve: bool = True,
                owner: str = "-labelling", on_progress: Callable[[int, int, str], None] = lambda *a: None,
                should_stop: Callable[[], bool] = lambda: False) -> dict:
        """{"suggestions": [{item, score, reason, guess}] best first, "curve": {...}, "model_id", "seconds"}.
        `labelled`: {pool name: class} in labelling order ("" = not sure). Raises UserError."""
        if inputs is None or not len(inputs):
            raise UserError("Upload a pool of unlabelled images or texts first.")
        if not 1 <= int(n) <= MAX_SUGGESTIONS:
            raise UserError(f"Ask for between 1 and {MAX_SUGGESTIONS} suggestions (got {n}).")
        classes = check_classes([*classes, *(v for v in labelled.values() if v)])
        known = set(inputs.names)
        labelled = {k: v for k, v in labelled.items() if k in known}
        args = {"pool": {"modality": inputs.modality, "items": list(inputs.items), "names": list(inputs.names)},
                "labelled": [[k, v] for k, v in labelled.items()], "classes": classes, "n": int(n),
                "model_id": model_id or None, "embedding_cache": embedding_cache, "curve": bool(curve),
                "max_image_pixels": self.settings.limits().max_image_pixels}
        try:
            return self.inference.call_long(owner, "suggest", args, kind="inference", busy_message=BUSY_MESSAGE,
                                            on_progress=on_progress, should_stop=should_stop)
        except InferenceError as exc:
            raise UserError(str(exc)) from None

    def suggest_upload(self, owner, pool: str | Path, labels: Optional[str | Path] = None, classes: Sequence[str] = (),
                       *, n: int = 10, model_id: Optional[str] = None, curve: bool = False) -> dict:
        """`suggest` for an uploaded pool and labels CSV (the API's /suggest; the CLI reads its files itself):
        read in the owner's uploads folder with the Data step's limits. Raises UserError."""
        from tl_ui.data.label_store import read_labels_table
        from tl_ui.data.unlabelled import load_inputs

        try:
            inputs = load_inputs(pool, self.workspace.uploads_dir(owner), limits=self.settings.limits())
            labelled, warnings = read_labels_table(labels, pool=inputs.names) if labels else ({}, [])
        except DataError as exc:
            raise UserError(str(exc)) from None
        answer = self.suggest(inputs, labelled, classes, n=n, model_id=model_id, curve=curve,
                              embedding_cache=self.cache_record(owner), owner=owner.id)
        return {**answer, "warnings": [*inputs.warnings, *warnings]}

    # -- one owner's session ------------------------------------------------------------------------------
    def folder(self, owner, *, create: bool = True) -> Path:
        """The owner's labelling folder (`create`: the owner's folder made if it is not there yet; reading
        never creates one, so a page that only looks keeps no empty folder alive)."""
        if not create:
            return self.workspace.root / owner.key / FOLDER
        return self.workspace.owner_dir(owner) / FOLDER

    def loaded(self, owner) -> Optional[Session]:
        """The owner's session if this process holds it (no disk access: the page's timer asks often)."""
        with self._lock:
            return self._sessions.get(owner.key)

    def start(self, owner, src: str | Path, name: str = "", classes: Sequence[str] = (), *,
              labels_src: Optional[str | Path] = None, text_column: Optional[str] = None) -> Session:
        """A new labelling session from an upload (a zip or folder of images, or a table of texts) and the
        class names (or a labels CSV of a few examples, item,label). The earlier session's labels are
        kept only when the same pool is uploaded again. Raises UserError."""
        from tl_ui.data.label_store import read_labels_table
        from tl_ui.data.unlabelled import load_inputs
        from tl_ui.service.workspace import data_sha256, safe_file_name

        src = Path(src)
        name = name or src.name
        folder = self.folder(owner)
        classes = check_classes(classes)
        size = src.stat().st_size if src.is_file() else 0
        if size > self.settings.max_upload_bytes:
            from tl_ui.data.limits import human_size

            raise UserError(f"The file '{name}' is {human_size(size)}; this Transfer Lab accepts uploads up to "
                            f"{human_size(self.settings.max_upload_bytes)} (setting TL_MAX_UPLOAD_MB).")
        sha = data_sha256(src) if src.exists() else ""
        previous = self._read_meta(folder)
        pool_dir = folder / "pool"
        with self._lock:
            self._sessions.pop(owner.key, None)
            if previous.get("sha256") != sha:   # another pool: its labels are kept aside, never deleted
                shutil.rmtree(pool_dir, ignore_errors=True)
                if (folder / "labels.csv").exists():
                    (folder / "export").mkdir(parents=True, exist_ok=True)
                    (folder / "labels.csv").replace(folder / "export" / f"labels-{time.strftime('%Y%m%d-%H%M%S')}-"
                                                    f"{_slug(str(previous.get('name') or 'earlier pool'))}.csv")
            pool_dir.mkdir(parents=True, exist_ok=True)
            kept = pool_dir / safe_file_name(name)
            if src.is_file() and not kept.exists():
                shutil.copyfile(src, kept)
            try:
                inputs = load_inputs(kept if src.is_file() else src, pool_dir / "unpacked",
                                     limits=self.settings.limits(), text_column=text_column or None)
            except DataError as exc:
                raise UserError(str(exc)) from None
            store = LabelStore(folder / "labels.csv")
            if labels_src:
                try:
                    given, warnings = read_labels_table(labels_src, pool=inputs.names)
                except DataError as exc:
                    raise UserError(str(exc)) from None
                inputs.warnings.extend(warnings)
                classes = check_classes([*classes, *(v for v in given.values() if v)])
                for item, label in given.items():
                    if label and item not in store.given():
                        store.add(item, label, "", pool=inputs.names)
            before = (previous.get("classes") or []) if previous.get("sha256") == sha else []
            classes = check_classes([*before, *classes, *store.given().values()])
            if len(classes) < 2:
                raise UserError("Name at least two classes (or bring a few labelled examples of two classes), "
                                "then upload the pool again.")
            meta = {"sha256": sha, "name": name, "pool": str(kept if src.is_file() else src), "classes": classes,
                    "modality": inputs.modality, "text_column": text_column or None, "started": time.time()}
            _write_json(folder / "session.json", meta)
            session = Session(inputs, classes, store, folder)
            self._sessions[owner.key] = session
            return session

    def session(self, owner) -> Optional[Session]:
        """The owner's session (read back from their folder after a restart), or None."""
        from tl_ui.data.unlabelled import load_inputs

        with self._lock:
            if owner.key in self._sessions:
                return self._sessions[owner.key]
            folder = self.folder(owner, create=False)
            meta = self._read_meta(folder)
            if not meta.get("pool") or not Path(meta["pool"]).exists():
                return None
            try:
                inputs = load_inputs(meta["pool"], folder / "pool" / "unpacked", limits=self.settings.limits(),
                                     text_column=meta.get("text_column"))
            except DataError:
                log.warning("the labelling pool in %s can no longer be read", folder, exc_info=True)
                return None
            session = Session(inputs, list(meta.get("classes") or []), LabelStore(folder / "labels.csv"), folder)
            self._sessions[owner.key] = session
            return session

    @staticmethod
    def _read_meta(folder: Path) -> dict:
        try:
            return json.loads((folder / "session.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def current(self, session: Session) -> Optional[dict]:
        """The item to show now: the first suggestion not labelled or set aside since; while the model is
        still choosing, the next unlabelled item in the pool's order (no guess); None when all are done."""
        done = set(session.store.given()) | set(session.store.set_aside())
        with session.lock:
            session.queue = [s for s in session.queue if s["item"] not in done]
            if session.queue:
                return session.queue[0]
        left = [name for name in session.names if name not in done]
        if not left:
            return None
        left.sort(key=lambda name: name in session.skipped)
        return {"item": left[0], "score": None, "guess": None,
                "reason": "The model is still choosing what to ask; meanwhile this is the next item of the pool."}

    def cache_record(self, owner) -> Optional[dict]:
        """The owner's embedding cache (as Lab._embedding_cache: the runs read the same embeddings)."""
        if self.workspace is None or self.settings.embedding_cache_mb <= 0:
            return None
        return {"dir": str(self.workspace.embeddings_dir(owner)),
                "max_bytes": int(self.settings.embedding_cache_mb * 1024 * 1024)}

    def keep_fresh(self, owner, session: Session, *, every: int = REFRESH_EVERY, wait: bool = False,
                   model_id: Optional[str] = None) -> None:
        """Ask the model again (in the background; `wait`: here) once `every` labels were given since its
        last answer, or when its suggestions run low. Labelling never waits for it."""
        with session.lock:
            stored = len(session.store)
            due = session.refreshed_at < 0 or stored - session.refreshed_at >= every or len(session.queue) < 3
            if session.refreshing or not due:
                return
            session.refreshing = True

        def work() -> None:
            try:
                answer = self.suggest(session.inputs, session.store.given() |
                                      {k: "" for k in session.store.set_aside()}, session.classes,
                                      n=min(QUEUE, len(session.inputs)), model_id=model_id,
                                      embedding_cache=self.cache_record(owner), owner=owner.id)
                done = set(session.store.given()) | set(session.store.set_aside())
                fresh = [s for s in answer.get("suggestions") or [] if s["item"] not in done]
                with session.lock:
                    session.queue = ([s for s in fresh if s["item"] not in session.skipped] +
                                     [s for s in fresh if s["item"] in session.skipped])
                    session.curve = answer.get("curve")
                    session.model_id = answer.get("model_id") or ""
                    session.refreshed_at = stored
                    session.error = ""
                    session.version += 1
            except UserError as exc:
                session.error = str(exc)
            except Exception:   # noqa: BLE001 - logged; the person keeps labelling in the pool's order
                log.exception("labelling suggestions failed")
                session.error = "The model could not choose the next items; the details are in the server log."
            finally:
                session.refreshing = False

        if wait:
            work()
        else:
            threading.Thread(target=work, name="tl-labelling-suggest", daemon=True).start()

    def label(self, owner, session: Session, item: str, label: str) -> None:
        """Store one confirmed label ("" = not sure). Raises UserError."""
        by = owner.name if getattr(owner, "is_user", False) else ""
        try:
            session.store.add(item, label, by, pool=session.inputs.names, classes=session.classes)
        except DataError as exc:
            raise UserError(str(exc)) from None

    def skip(self, session: Session, item: str) -> None:
        if item not in session.skipped:
            session.skipped.append(item)
        moved = [s for s in session.queue if s["item"] == item]
        session.queue = [s for s in session.queue if s["item"] != item] + moved

    def sample_pool(self, owner, n: int = 100) -> Path:
        """A pool made of the shipped sample digits, n of them spread over the ten classes, in one flat folder
        (the file names say nothing of the class), as a zip in the owner's labelling folder."""
        from tl_ui.data import sample_dataset_path

        out = self.folder(owner) / f"sample-digits-{n}.zip"
        if out.exists():
            return out
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(sample_dataset_path("image")) as source:
            by_class: dict[str, list[str]] = {}
            for name in sorted(source.namelist()):
                parts = name.split("/")
                if len(parts) == 3 and parts[2]:
                    by_class.setdefault(parts[1], []).append(name)
            chosen = [name for names in zip(*[by_class[c] for c in sorted(by_class)]) for name in names][:n]
            tmp = out.with_name(f".{out.name}.tmp")
            with zipfile.ZipFile(tmp, "w") as target:
                for name in sorted(chosen, key=lambda x: x.split("/")[-1]):
                    target.writestr(name.split("/")[-1], source.read(name))
            tmp.replace(out)
        return out

    def export(self, session: Session) -> Path:
        """labels.csv's item,label export, in the owner's folder."""
        out = session.folder / "export" / "labels-item-label.csv"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(session.store.export_csv(), encoding="utf-8")
        return out

    def training_file(self, session: Session) -> Path:
        """The labelled set as a file the Data step reads: a zip of class folders (images) or a CSV of
        text,label (texts), in the owner's folder, with its provenance beside it (`<file>.provenance.json`,
        tl_ui.contracts.LabelProvenance). Raises UserError when it cannot train yet."""
        out = self._training_file(session)
        _write_json(provenance_path(out), self.provenance(session).to_dict())
        return out

    def provenance(self, session: Session):
        import hashlib

        from tl_ui.contracts import LabelProvenance
        from tl_ui.contracts.labelling import LABELLED_HERE

        labels = session.store.labels()
        kept = self.trainable(session)[0]
        given = [x for x in labels if not x.not_sure and x.item in kept]
        counts: dict[str, int] = {}
        for x in given:
            counts[x.label] = counts.get(x.label, 0) + 1
        times = sorted(x.labelled_at for x in given if x.labelled_at)
        meta = self._read_meta(session.folder)
        return LabelProvenance(source=LABELLED_HERE, pool=str(meta.get("name") or ""), n_labels=len(given),
                               n_not_sure=sum(x.not_sure for x in labels), classes=counts,
                               first_labelled_at=times[0] if times else None,
                               last_labelled_at=times[-1] if times else None,
                               labelled_by=sorted({x.by for x in given if x.by}),
                               suggested_by=session.model_id or None,
                               labels_sha256=hashlib.sha256(session.store.export_csv().encode()).hexdigest(),
                               **({"left_out": self.trainable(session)[1]} if self.trainable(session)[1] else {}))

    def provenance_for(self, owner, data_path: str | Path) -> Optional[dict]:
        """The provenance of a training file this owner's labelling made (None for any other file)."""
        path = Path(data_path).resolve()
        if not path.is_relative_to((self.folder(owner, create=False) / "export").resolve()):
            return None
        try:
            return json.loads(provenance_path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    @staticmethod
    def trainable(session: Session) -> tuple[dict[str, str], dict[str, int]]:
        """({item: label} of the classes with 2 labels or more, {class: labels} of those left out)."""
        given = session.store.given()
        counts: dict[str, int] = {}
        for label in given.values():
            counts[label] = counts.get(label, 0) + 1
        left_out = {c: k for c, k in counts.items() if k < 2}
        return {item: label for item, label in given.items() if label not in left_out}, left_out

    def _training_file(self, session: Session) -> Path:
        given, left_out = self.trainable(session)
        counts: dict[str, int] = {}
        for label in given.values():
            counts[label] = counts.get(label, 0) + 1
        if len(counts) < 2:
            raise UserError("Training needs at least two classes with two labels each. Label a few more items.")
        out_dir = session.folder / "export"
        out_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        if session.inputs.modality == "text":
            out = out_dir / f"labelled-{stamp}.csv"
            with open(out, "w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                writer.writerow(["text", "label"])
                for item, label in given.items():
                    writer.writerow([session.item_path(item), label])
            return out
        folders: dict[str, str] = {}
        for label in counts:
            folders.setdefault(_folder_name(label), label)
        if len(folders) < len(counts):
            raise UserError("Two class names differ only in characters a folder name cannot hold ("
                            f"{', '.join(sorted(counts))}); rename one of them.")
        out = out_dir / f"labelled-{stamp}.zip"
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
            for number, (item, label) in enumerate(given.items()):
                path = session.item_path(item)
                if path is None:
                    continue
                stem = Path(item).name
                archive.write(path, f"labelled/{_folder_name(label)}/{number:05d}-{stem}")
        return out


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)[:60]


def provenance_path(training_file: Path) -> Path:
    return Path(training_file).with_name(Path(training_file).name + ".provenance.json")


def _folder_name(label: str) -> str:
    keep = "".join(ch if ch.isalnum() or ch in "._- " else "_" for ch in label).strip(". ")
    return keep or "class"


def _write_json(path: Path, data: dict) -> None:
    import os
    import uuid

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:6]}.tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, path)
