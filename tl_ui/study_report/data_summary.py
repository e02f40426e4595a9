"""The data behind a run, read again from the file its run.json names (sha256 checked).

metrics.json counts the examples of each role (train / validation / test) and the test examples per
class; the whole data set's counts per class and per group, and what the reader left out and why,
are facts of the data file. The report reads that file again with the same reader and the same
limits the run used (tl_ui.data.load_dataset; no torch) and quotes the summary below, as source
"data". When the file is gone or has changed since the run, the report says so and shows only
what the run folder holds.

    {"source", "modality", "n_examples", "classes": {name: n}, "warnings": [...],
     "groups": {name: n} (with a group column), "multilabel": {...} (multi-label data)}
"""
from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

log = logging.getLogger(__name__)


@dataclass
class DataFile:
    """What became of the recorded data file: `state` is "read" (summary holds its facts), "missing",
    "changed" (its sha256 differs from run.json's), "unreadable" or "not recorded"."""
    name: str
    sha256: Optional[str]
    state: str
    problem: Optional[str] = None
    summary: Optional[dict[str, Any]] = None


def file_sha256(path: Path) -> str:
    """The sha256 the service records for a data file (a folder: its files' paths and bytes, sorted)."""
    def one(file: Path) -> str:
        digest = hashlib.sha256()
        with open(file, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    if not path.is_dir():
        return one(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode() + b"\0" + one(file).encode())
    return digest.hexdigest()


def read_data_file(config) -> DataFile:
    """The recorded data file's summary for a RunConfig (None config: nothing recorded)."""
    if config is None or not config.data_path:
        return DataFile(name="", sha256=None, state="not recorded",
                        problem="run.json names no data file.")
    path = Path(config.data_path)
    recorded = config.data_sha256
    out = DataFile(name=path.name, sha256=recorded, state="read")
    if not path.exists():
        out.state, out.problem = "missing", "The data file named in run.json is no longer where the run found it."
        return out
    try:
        found = file_sha256(path)
    except OSError as exc:
        out.state, out.problem = "unreadable", f"The data file could not be read ({type(exc).__name__})."
        return out
    if recorded and found != recorded:
        out.state, out.problem = "changed", "The data file has changed since the run (its sha256 differs)."
        return out
    try:
        out.summary = summarise(path, config)
    except Exception as exc:   # noqa: BLE001 - a report still comes out, saying what is missing
        log.warning("reading %s again for the report failed: %s", path, exc)
        out.state, out.problem = "unreadable", f"The data file could not be read again: {exc}"
    return out


def summarise(path: Path, config) -> dict[str, Any]:
    """load_dataset's summary of the file, with the run's column options and data limits, plus the
    examples per group when the run had a group column."""
    from tl_ui.data import Limits, load_dataset
    from tl_ui.data.load import dataset_options

    workdir = tempfile.mkdtemp(prefix="tl-report-data-")
    try:
        dataset = load_dataset(path, workdir, **dataset_options(config),
                               limits=Limits.from_record(config.limits or {}))
        summary = dataset.summary()
        summary["warnings"] = [str(w) for w in summary.get("warnings") or []]
        if dataset.groups is not None:
            summary["groups"] = dict(sorted(Counter(str(g) for g in dataset.groups).items()))
        return summary
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
