"""The one owner of a run folder's layout: paths, the one atomic JSON writer, status, events, metrics.

    <run_dir>/run.json        the RunConfig (replay: python -m tl_ui train --config run.json)
              status.json     RunStatus: {"state", "message", "started", "ended", ...}
              events.jsonl    one engine event per line (tl_ui/contracts/events.py)
              metrics.json    RunMetrics: what the Results step shows (docs/contracts.md)
              predictions.csv per held-out example
              mistakes/       metadata-free previews of the most confident mistakes
              model/          the export; present only when complete (written aside, then renamed);
                              model/transfer_lab.json is an ExportManifest
              report/         the study report (report.html, report.pdf: tl_ui/study_report), on request
              validation/<id>/ the model on another site's labelled data (issue 34): validation.json
                              (docs/contracts.md) and validation_predictions.csv, one folder per check;
                              validation/validation.json: a copy of the newest check
              scores/<id>/    a batch of unlabelled inputs scored: predictions.csv (+ predictions.xlsx)
              site_split.csv  a recalibrated version only (issue 34): which of the site's examples were
                              fitted on and which reported on

A recalibrated version of a run for a new site (`write_linked_model`) is a run folder of its own: run.json is
the parent's with `extra.recalibrated_from` and `extra.site`, metrics.json is measured on the site's held-back
half (with its `recalibration` block), and model/ shares the parent's weights (hard links, or copies where the
file system has none) with a transfer_lab.json, config.json and README.md of its own.

Status transitions go through one function, `RunFolder.set_status`, which reads, changes and writes
status.json while it holds an exclusive `fcntl.flock` on `<run_dir>/.status.lock`: the server (queue,
stop, settling a dead worker) and the worker (running, finished) may change a run's state at the same
moment, and neither loses the other's change (each change counts in `transitions`). Readers need no
lock: every write is atomic (written aside, then renamed).

Everything that reads or writes these files goes through `RunFolder`, and the JSON files through
their pydantic models (tl_ui/contracts): a write that does not fit its model raises; a file that
does not fit (hand-edited, or from a version that wrote something else) is still read, as the
plain dict it holds, with a warning in the log. No torch, no gradio here.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional, TypeVar

from pydantic import BaseModel, ValidationError

from tl_ui.contracts import ACTIVE_STATES, ExportManifest, RunMetrics, RunState, RunStatus, ValidationReport, run_state
from tl_ui.contracts.events import Event, RunStarted, read_event
from tl_ui.core.run_info import RunInfo

log = logging.getLogger(__name__)

RUN_JSON, STATUS_JSON, EVENTS_JSONL = "run.json", "status.json", "events.jsonl"
METRICS_JSON, PREDICTIONS_CSV, MODEL_DIR, MISTAKES_DIR = "metrics.json", "predictions.csv", "model", "mistakes"
MANIFEST_JSON = "transfer_lab.json"
STATUS_LOCK = ".status.lock"    # held (flock) while status.json is read, changed and written
REPORT_DIR, REPORT_HTML, REPORT_PDF = "report", "report.html", "report.pdf"
PARTIAL_PREFIX = ".model.partial-"
SITE_SPLIT_CSV = "site_split.csv"
VALIDATION_DIR, VALIDATION_JSON, VALIDATION_PREDICTIONS_CSV = "validation", "validation.json", "validation_predictions.csv"
SCORES_DIR, SCORES_CSV, SCORES_XLSX = "scores", "predictions.csv", "predictions.xlsx"
# issue 39: exports made from the page: exports/onnx/ (ONNX files, predict_onnx.py, onnx_report.json) and
# exports/space/ (a Gradio Space folder); each written under a temporary name and renamed into place
EXPORTS_DIR, ONNX_DIR, SPACE_DIR, ONNX_REPORT_JSON = "exports", "onnx", "space", "onnx_report.json"

# The states under their old names (RunState members: they equal the plain strings too).
QUEUED, RUNNING = RunState.QUEUED, RunState.RUNNING
FINISHED, STOPPED, FAILED, INTERRUPTED = RunState.FINISHED, RunState.STOPPED, RunState.FAILED, RunState.INTERRUPTED

Contract = TypeVar("Contract", bound=BaseModel)


def read_json(path: Path) -> Optional[Any]:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def parse_contract(model: type[Contract], data: Any, source: Path) -> Optional[Contract]:
    """`data` read through its model, or None (logged) when it does not fit."""
    if data is None:
        return None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        log.warning("%s does not fit %s: %s", source, model.__name__, str(exc).splitlines()[0])
        return None


def write_json_atomic(path: Path, data: Any) -> None:
    """Write to a temporary name beside `path`, then rename: readers never see half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class RunFolder:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    # -- paths ----------------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self.path.name

    @property
    def run_json(self) -> Path:
        return self.path / RUN_JSON

    @property
    def metrics_json(self) -> Path:
        return self.path / METRICS_JSON

    @property
    def predictions_csv(self) -> Path:
        return self.path / PREDICTIONS_CSV

    @property
    def events_jsonl(self) -> Path:
        return self.path / EVENTS_JSONL

    @property
    def model_dir(self) -> Path:
        return self.path / MODEL_DIR

    @property
    def mistakes_dir(self) -> Path:
        return self.path / MISTAKES_DIR

    @property
    def report_dir(self) -> Path:
        return self.path / REPORT_DIR

    @property
    def report_html(self) -> Path:
        return self.report_dir / REPORT_HTML

    @property
    def report_pdf(self) -> Path:
        return self.report_dir / REPORT_PDF

    @property
    def validations_dir(self) -> Path:
        return self.path / VALIDATION_DIR

    @property
    def scores_dir(self) -> Path:
        return self.path / SCORES_DIR

    @property
    def onnx_dir(self) -> Path:
        return self.path / EXPORTS_DIR / ONNX_DIR

    @property
    def space_dir(self) -> Path:
        return self.path / EXPORTS_DIR / SPACE_DIR

    def read_onnx_report(self) -> Optional[dict]:
        """exports/onnx/onnx_report.json (parity, int8 accuracy and its difference, size and speed), or None."""
        data = read_json(self.onnx_dir / ONNX_REPORT_JSON)
        return data if isinstance(data, dict) else None

    def new_validation_folder(self) -> Path:
        """A fresh `validation/<time>-<id>/` folder (newest sorts last)."""
        return _new_child(self.validations_dir)

    def new_scores_folder(self) -> Path:
        return _new_child(self.scores_dir)

    @property
    def latest_validation_json(self) -> Path:
        """validation/validation.json: the newest check's copy (what the study report looks for)."""
        return self.validations_dir / VALIDATION_JSON

    def write_validation(self, folder: Path, report: dict) -> None:
        """validation.json into `folder`, through ValidationReport (a dict that does not fit raises); a folder of
        this run's validation/ also becomes the latest (validation/validation.json)."""
        record = ValidationReport.model_validate(report).to_dict()
        write_json_atomic(Path(folder) / VALIDATION_JSON, record)
        if Path(folder).resolve().parent == self.validations_dir.resolve():
            write_json_atomic(self.latest_validation_json, record)

    def read_validation(self, folder: Path) -> Optional[dict]:
        path = Path(folder) / VALIDATION_JSON
        data = read_json(path)
        parsed = parse_contract(ValidationReport, data, path)
        return parsed.to_dict() if parsed is not None else data

    def validations(self) -> list[Path]:
        """The validation folders that hold a validation.json, newest first."""
        if not self.validations_dir.is_dir():
            return []
        return sorted((d for d in self.validations_dir.iterdir() if (d / VALIDATION_JSON).is_file()), reverse=True)

    # -- a recalibrated version (issue 34) ---------------------------------------------------------
    @property
    def site_split_csv(self) -> Path:
        return self.path / SITE_SPLIT_CSV

    def write_version_config(self, parent: "RunFolder", extra: dict) -> None:
        """run.json: the parent's recipe, with `extra` (recalibrated_from, site, ...) added to its bookkeeping."""
        self.create()
        config = dict(parent.config())
        config["extra"] = {**(config.get("extra") or {}), **extra}
        if config.get("data_path") and not Path(config["data_path"]).is_absolute():   # relative to the parent's folder
            config["data_path"] = str((parent.path / config["data_path"]).resolve())
        write_json_atomic(self.run_json, config)
        if parent.events_jsonl.is_file():   # the shared weights' training history (curves): the parent's
            shutil.copyfile(parent.events_jsonl, self.events_jsonl)

    def write_linked_model(self, parent: "RunFolder", manifest: dict, *, config_updates: Optional[dict] = None,
                           card_addendum: str = "") -> Path:
        """model/ sharing the parent's weights: every weight file hard-linked (copied where the file system cannot
        link), transfer_lab.json replaced by `manifest` (an ExportManifest: a dict that does not fit raises),
        config.json updated with `config_updates` where it already has those keys, `card_addendum` appended to
        README.md. Written aside, then renamed, like any export."""
        record = ExportManifest.model_validate(manifest).to_dict()
        source = parent.model_dir
        if not source.is_dir():
            raise FileNotFoundError(f"{parent.id} has no model to share")
        tmp = self.partial_model_dir()
        try:
            for path in sorted(source.rglob("*")):
                target = tmp / path.relative_to(source)
                if path.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                if path.suffix in (".json", ".md", ".txt"):   # small files: each version's own
                    shutil.copyfile(path, target)
                    continue
                try:
                    os.link(path, target)
                except OSError:
                    shutil.copy2(path, target)
            write_json_atomic(tmp / MANIFEST_JSON, record)
            config_json = tmp / "config.json"
            if config_updates and config_json.is_file():
                data = read_json(config_json)
                if isinstance(data, dict):
                    data.update({k: v for k, v in config_updates.items() if k in data})
                    write_json_atomic(config_json, data)
            if card_addendum and (tmp / "README.md").is_file():
                with open(tmp / "README.md", "a", encoding="utf-8") as handle:
                    handle.write("\n" + card_addendum.strip() + "\n")
            if self.model_dir.exists():
                shutil.rmtree(self.model_dir)
            tmp.rename(self.model_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return self.model_dir

    def partial_model_dir(self) -> Path:
        return self.path / f"{PARTIAL_PREFIX}{uuid.uuid4().hex[:8]}"

    def create(self) -> "RunFolder":
        self.path.mkdir(parents=True, exist_ok=True)
        return self

    # -- status ---------------------------------------------------------------------------------
    def read_status(self) -> Optional[RunStatus]:
        path = self.path / STATUS_JSON
        return parse_contract(RunStatus, read_json(path), path)

    def status(self) -> dict:
        """status.json as a dict (through RunStatus when it fits); {} when there is none."""
        data = read_json(self.path / STATUS_JSON)
        if not isinstance(data, dict):
            return {}
        parsed = parse_contract(RunStatus, data, self.path / STATUS_JSON)
        return parsed.to_dict() if parsed is not None else data

    def state(self) -> RunState:
        """The recorded state; RunState.UNKNOWN when status.json is missing or unreadable."""
        return run_state(self.status().get("state"))

    @contextmanager
    def status_lock(self) -> Iterator[None]:
        """Hold the run folder's status lock (another process's `set_status` waits for it)."""
        self.create()
        try:
            import fcntl
        except ImportError:   # no flock here (not Linux/macOS): one writer at a time is then up to the callers
            yield
            return
        fd = os.open(self.path / STATUS_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)   # closing the descriptor drops the lock

    def set_status(self, state: RunState | str, message: str = "", *, only_from=None, **extra) -> Optional[dict]:
        """Record a state: the one way a run's state changes, under the folder's status lock (see the
        module's note). `started` is kept from the first call, `ended` set for final states.
        `only_from`: states the run must be in for the change (checked under the same lock); None
        (nothing written) when it is in another."""
        state = RunState(state)
        with self.status_lock():
            if only_from is not None and self.state() not in {RunState(s) for s in only_from}:
                return None
            return self._write_status(state, message, extra)

    def _write_status(self, state: RunState, message: str, extra: dict) -> dict:
        old = self.status()
        now = time.time()
        data = {**old, **extra, "state": state, "message": message,
                "transitions": int(old.get("transitions") or 0) + 1}
        if state == QUEUED:
            data.setdefault("submitted", now)
        if state == RUNNING:
            data["started"] = old.get("started") if old.get("state") == RUNNING else now
            data["ended"] = None
        elif state not in ACTIVE_STATES:
            data.setdefault("started", old.get("started"))
            data["ended"] = now
        record = RunStatus.model_validate(data).to_dict()
        write_json_atomic(self.path / STATUS_JSON, record)
        return record

    # -- config and metrics -----------------------------------------------------------------------
    def config(self) -> dict:
        return read_json(self.run_json) or {}

    def run_config(self):
        """run.json as a RunConfig (a relative data path resolved), or None when it is missing or does not fit."""
        from tl_ui.core.config import ConfigError, RunConfig

        try:
            return RunConfig.load(self.run_json)
        except (OSError, ConfigError) as exc:
            log.warning("%s: %s", self.run_json, exc)
            return None

    def read_metrics(self) -> Optional[RunMetrics]:
        """metrics.json as RunMetrics; None when there is none (or it does not fit: logged)."""
        return parse_contract(RunMetrics, read_json(self.metrics_json), self.metrics_json)

    def metrics(self) -> Optional[dict]:
        """metrics.json as a dict (through RunMetrics when it fits), or None."""
        data = read_json(self.metrics_json)
        if not isinstance(data, dict):
            return None
        parsed = parse_contract(RunMetrics, data, self.metrics_json)
        return parsed.to_dict() if parsed is not None else data

    def write_metrics(self, metrics: RunMetrics | dict) -> None:
        """Through RunMetrics: a dict that does not fit raises pydantic's ValidationError."""
        if not isinstance(metrics, RunMetrics):
            metrics = RunMetrics.model_validate(metrics)
        write_json_atomic(self.metrics_json, metrics.to_dict())

    def update_metrics(self, **fields) -> Optional[dict]:
        metrics = self.metrics()
        if metrics is None:
            return None
        metrics.update(fields)
        self.write_metrics(metrics)
        return metrics

    # -- events -----------------------------------------------------------------------------------
    def open_event_log(self):
        self.create()
        return open(self.events_jsonl, "a", encoding="utf-8")

    def iter_events(self) -> Iterator[Event]:
        """The run's events as their classes (tl_ui/contracts/events.py); a line cut by a crash, or one
        that is no event, is skipped."""
        try:
            with open(self.events_jsonl, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        event = read_event(json.loads(line))
                    except ValueError:  # a line cut by a crash: skip it
                        continue
                    if event is not None:
                        yield event
        except OSError:
            return

    def events(self) -> list[Event]:
        return list(self.iter_events())

    def start_event(self) -> Optional[RunStarted]:
        for event in self.iter_events():
            if isinstance(event, RunStarted):
                return event
        return None

    # -- the model --------------------------------------------------------------------------------
    @property
    def has_model(self) -> bool:
        # transfer_lab.json: a sentence-transformers export keeps its config.json under encoder/
        return (self.model_dir / "config.json").is_file() or (self.model_dir / MANIFEST_JSON).is_file()

    def read_manifest(self) -> Optional[ExportManifest]:
        path = self.model_dir / MANIFEST_JSON
        return parse_contract(ExportManifest, read_json(path), path)

    def manifest(self) -> dict:
        """model/transfer_lab.json as a dict (through ExportManifest when it fits); {} without an export."""
        data = read_json(self.model_dir / MANIFEST_JSON)
        if not isinstance(data, dict):
            return {}
        parsed = parse_contract(ExportManifest, data, self.model_dir / MANIFEST_JSON)
        return parsed.to_dict() if parsed is not None else data

    def modality(self) -> Optional[str]:
        found = self.manifest().get("modality")
        if found:
            return found
        started = self.start_event()
        return started.modality if started else None

    def remove_partial_exports(self) -> None:
        for partial in self.path.glob(PARTIAL_PREFIX + "*"):
            shutil.rmtree(partial, ignore_errors=True)

    def mark_interrupted(self) -> bool:
        """After a restart: a run that was going on (or waiting) is marked interrupted. True if changed."""
        self.remove_partial_exports()
        return self.set_status(INTERRUPTED, "The server stopped while this run was waiting or going on. "
                                            "Start it again to get a model.", only_from=ACTIVE_STATES) is not None

    def info(self) -> Optional[RunInfo]:
        status, config = self.status(), self.config()
        if not status and not config:
            return None
        metrics = self.read_metrics()
        n_chosen = metrics.evaluation.n_chosen if metrics is not None and metrics.evaluation else 0
        return RunInfo(
            run_id=self.id, run_dir=self.path, state=run_state(status.get("state")),
            message=str(status.get("message", "")), started=status.get("started") or status.get("submitted"),
            ended=status.get("ended"), model_id=str(config.get("model_id", "?")),
            strategy=str(config.get("strategy", "?")),
            accuracy=metrics.accuracy if metrics is not None else None,
            accuracy_ci=metrics.accuracy_ci if metrics is not None else None,
            macro_f1=metrics.macro_f1 if metrics is not None else None,
            macro_f1_ci=metrics.macro_f1_ci if metrics is not None else None,
            n_reported=metrics.n_val if metrics is not None else None,
            n_examples=((metrics.n_train or 0) + metrics.n_val + (n_chosen or 0) or None) if metrics is not None else None,
            random_init=bool(config.get("random_init")), has_model=self.has_model,
            continued_from=(config.get("extra") or {}).get("continue_from"),
            recalibrated_from=(config.get("extra") or {}).get("recalibrated_from"),
            site=(config.get("extra") or {}).get("site"),
        )


def _new_child(parent: Path) -> Path:
    folder = parent / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    folder.mkdir(parents=True, exist_ok=False)
    return folder
