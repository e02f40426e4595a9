"""Labels given in Transfer Lab (issue 41): one owner's `labels.csv` (`item,label,labelled_at,by`).

The file is rewritten whole, atomically (a temporary file beside it, flushed to disk, then renamed
over it), each time a label is given or undone: a crash of the browser, the server or the machine
loses nothing that was confirmed, and a half-written file is never read.

* `item` is a name of the pool (its path inside the upload, or "row N" of a table); a name is
  checked against the pool before it is stored, and a stored name is only ever compared with the
  pool's names, never opened as a path.
* `label` is one of the classes; an empty label means "not sure": the item is set aside (never
  asked again, never trained on, not exported), and Undo can take it back. Skip is not recorded:
  it only moves the item to the back of this session's queue.
* `labelled_at` is UTC in ISO 8601; `by` is the signed-in user's name, or "" for an anonymous session.
* Labelling an item again replaces its earlier label (its row moves to the end: the order of the
  file is the order of labelling, which the learning curve follows).
"""
from __future__ import annotations

import csv
import io
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

from .dataset import DataError

COLUMNS = ("item", "label", "labelled_at", "by")
MAX_NAME = 1024
MAX_LABEL = 200
NOT_SURE = ""


@dataclass(frozen=True)
class Label:
    item: str
    label: str          # "" = not sure
    labelled_at: str
    by: str = ""

    @property
    def not_sure(self) -> bool:
        return self.label == NOT_SURE


def check_name(name: str, what: str = "item name") -> str:
    """A pool name or class name as stored: printable, not too long (what a file of labels may hold)."""
    name = str(name)
    if not name.strip():
        raise DataError(f"An empty {what} cannot be stored.")
    limit = MAX_NAME if what == "item name" else MAX_LABEL
    if len(name) > limit:
        raise DataError(f"The {what} '{name[:40]}…' is longer than {limit} characters; shorten it.")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise DataError(f"The {what} '{name[:40]}' holds a control character (a line break or tab); remove it.")
    return name


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class LabelStore:
    """One labels.csv. Not shared between processes: the service keeps one store per owner."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._labels: list[Label] = self._read()

    # -- reading ------------------------------------------------------------------------------------
    def _read(self) -> list[Label]:
        if not self.path.is_file():
            return []
        with open(self.path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        out: dict[str, Label] = {}
        for row in rows:
            item = (row.get("item") or "").strip()
            if item:
                out.pop(item, None)
                out[item] = Label(item, (row.get("label") or "").strip(), row.get("labelled_at") or "",
                                  row.get("by") or "")
        return list(out.values())

    def labels(self) -> list[Label]:
        """Every stored label (not-sure rows included), in labelling order."""
        return list(self._labels)

    def given(self) -> dict[str, str]:
        """{item: label} of the confirmed labels, in labelling order (not-sure items left out)."""
        return {x.item: x.label for x in self._labels if not x.not_sure}

    def set_aside(self) -> list[str]:
        return [x.item for x in self._labels if x.not_sure]

    def __len__(self) -> int:
        return len(self._labels)

    # -- writing ------------------------------------------------------------------------------------
    def add(self, item: str, label: str, by: str = "", *, pool: Optional[Iterable[str]] = None,
            classes: Optional[Iterable[str]] = None, at: Optional[str] = None) -> Label:
        """Store one label (`label` "": not sure) and write the file. `pool`/`classes`: the names it
        must be one of (DataError otherwise)."""
        item = check_name(item)
        if pool is not None and item not in set(pool):
            raise DataError(f"'{item[:80]}' is not an item of the pool being labelled; nothing was stored.")
        if label != NOT_SURE:
            label = check_name(label, "class name")
            if classes is not None and label not in set(classes):
                raise DataError(f"'{label}' is not one of the classes ({', '.join(classes)}); nothing was stored.")
        entry = Label(item, label, at or now_iso(), str(by or ""))
        kept = [x for x in self._labels if x.item != item] + [entry]
        self._write(kept)
        self._labels = kept
        return entry

    def undo(self) -> Optional[Label]:
        """Remove the last label given (None when there is none)."""
        if not self._labels:
            return None
        last = self._labels[-1]
        self._write(self._labels[:-1])
        self._labels = self._labels[:-1]
        return last

    def clear(self) -> None:
        self._write([])
        self._labels = []

    def _write(self, labels: list[Label]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            with open(tmp, "w", newline="", encoding="utf-8") as fh:
                fh.write(to_csv(labels, COLUMNS))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)

    # -- export ---------------------------------------------------------------------------------------
    def export_csv(self) -> str:
        """`item,label` of the confirmed labels (what a training table or another tool reads)."""
        return to_csv([x for x in self._labels if not x.not_sure], ("item", "label"), for_spreadsheets=True)


def _cell(value: str) -> str:
    """A spreadsheet must not run a cell as a formula (a name or class starting with = + - @)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value


def to_csv(labels: list[Label], columns: tuple[str, ...], *, for_spreadsheets: bool = False) -> str:
    """The rows as CSV; `for_spreadsheets` (the export): cells that would start a formula are quoted."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for x in labels:
        row = {"item": x.item, "label": x.label, "labelled_at": x.labelled_at, "by": x.by}
        writer.writerow([_cell(row[c]) if for_spreadsheets else row[c] for c in columns])
    return buffer.getvalue()


def read_labels_table(path: str | Path, *, pool: Optional[Iterable[str]] = None) -> tuple[dict[str, str], list[str]]:
    """A labels CSV a person brings (`item,label[,labelled_at,by]`): ({item: label} in file order,
    warnings). Items not in `pool` are left out with a warning; DataError when the file cannot be used."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Could not find the labels file '{path.name}'. Check the path and try again.")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            fields = [f.strip().lower() for f in (reader.fieldnames or [])]
            if "item" not in fields or "label" not in fields:
                raise DataError(f"The labels file '{path.name}' needs the columns 'item' and 'label' (it has: "
                                f"{', '.join(reader.fieldnames or []) or 'none'}).")
            rows = [{(k or "").strip().lower(): (v or "") for k, v in row.items()} for row in reader]
    except UnicodeDecodeError:
        raise DataError(f"The labels file '{path.name}' is not UTF-8 text. Save it as CSV (UTF-8).") from None
    known = set(pool) if pool is not None else None
    labels: dict[str, str] = {}
    unknown: list[str] = []
    for row in rows:
        item, label = row.get("item", "").strip(), row.get("label", "").strip()
        if not item:
            continue
        if known is not None and item not in known:
            unknown.append(item)
            continue
        labels.pop(item, None)
        labels[item] = label
    warnings = []
    if unknown:
        shown = ", ".join(f"'{u}'" for u in unknown[:3]) + (" …" if len(unknown) > 3 else "")
        warnings.append(f"{len(unknown)} labelled item(s) are not in the pool and were left out ({shown}).")
    return labels, warnings
