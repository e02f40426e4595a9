"""The one owner of a run folder's layout: paths, the one atomic JSON writer, status, events, metrics.

    <run_dir>/run.json        the RunConfig (replay: python -m tl_ui train --config run.json)
              status.json     {"state", "message", "started", "ended", ...}
              events.jsonl    one engine event per line
              metrics.json    what the Results step shows (docs/contracts.md)
              predictions.csv per held-out example
              mistakes/       metadata-free previews of the most confident mistakes
              model/          the export; present only when complete (written aside, then renamed)

Everything that reads or writes these files goes through `RunFolder`. No torch, no gradio here.
"""
from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

RUN_JSON, STATUS_JSON, EVENTS_JSONL = "run.json", "status.json", "events.jsonl"
METRICS_JSON, PREDICTIONS_CSV, MODEL_DIR, MISTAKES_DIR = "metrics.json", "predictions.csv", "model", "mistakes"
PARTIAL_PREFIX = ".model.partial-"

RUNNING, QUEUED = "running", "queued"
FINISHED, STOPPED, FAILED, INTERRUPTED = "finished", "stopped", "failed", "interrupted"
ACTIVE_STATES = frozenset({QUEUED, RUNNING})


def read_json(path: Path) -> Optional[Any]:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
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

    def partial_model_dir(self) -> Path:
        return self.path / f"{PARTIAL_PREFIX}{uuid.uuid4().hex[:8]}"

    def create(self) -> "RunFolder":
        self.path.mkdir(parents=True, exist_ok=True)
        return self

    # -- status ---------------------------------------------------------------------------------
    def status(self) -> dict:
        return read_json(self.path / STATUS_JSON) or {}

    def state(self) -> str:
        return str(self.status().get("state", "unknown"))

    def set_status(self, state: str, message: str = "", **extra) -> dict:
        """Record a state; `started` is kept from the first call, `ended` set for final states."""
        old = self.status()
        now = time.time()
        data = {**old, **extra, "state": state, "message": message}
        if state == QUEUED:
            data.setdefault("submitted", now)
        if state == RUNNING:
            data["started"] = old.get("started") if old.get("state") == RUNNING else now
            data["ended"] = None
        elif state not in ACTIVE_STATES:
            data.setdefault("started", old.get("started"))
            data["ended"] = now
        self.create()
        write_json_atomic(self.path / STATUS_JSON, data)
        return data

    # -- config and metrics -----------------------------------------------------------------------
    def config(self) -> dict:
        return read_json(self.run_json) or {}

    def metrics(self) -> Optional[dict]:
        return read_json(self.metrics_json)

    def write_metrics(self, metrics: dict) -> None:
        write_json_atomic(self.metrics_json, metrics)

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

    def iter_events(self) -> Iterator[dict]:
        try:
            with open(self.events_jsonl, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        yield json.loads(line)
                    except ValueError:  # a line cut by a crash: skip it
                        continue
        except OSError:
            return

    def events(self) -> list[dict]:
        return list(self.iter_events())

    def start_event(self) -> Optional[dict]:
        for event in self.iter_events():
            if event.get("kind") == "started":
                return event
        return None

    # -- the model --------------------------------------------------------------------------------
    @property
    def has_model(self) -> bool:
        # transfer_lab.json: a sentence-transformers export keeps its config.json under encoder/
        return (self.model_dir / "config.json").is_file() or (self.model_dir / "transfer_lab.json").is_file()

    def manifest(self) -> dict:
        return read_json(self.model_dir / "transfer_lab.json") or {}

    def modality(self) -> Optional[str]:
        found = self.manifest().get("modality")
        if found:
            return found
        started = self.start_event()
        return started.get("modality") if started else None

    def remove_partial_exports(self) -> None:
        for partial in self.path.glob(PARTIAL_PREFIX + "*"):
            shutil.rmtree(partial, ignore_errors=True)

    def mark_interrupted(self) -> bool:
        """After a restart: a run that was going on (or waiting) is marked interrupted. True if changed."""
        self.remove_partial_exports()
        if self.status().get("state") not in ACTIVE_STATES:
            return False
        self.set_status(INTERRUPTED, "The server stopped while this run was waiting or going on. "
                                     "Start it again to get a model.")
        return True

    def info(self) -> Optional["RunInfo"]:
        status, config = self.status(), self.config()
        if not status and not config:
            return None
        metrics = self.metrics() or {}
        acc = metrics.get("accuracy")
        return RunInfo(
            run_id=self.id, run_dir=self.path, state=str(status.get("state", "unknown")),
            message=str(status.get("message", "")), started=status.get("started") or status.get("submitted"),
            ended=status.get("ended"), model_id=str(config.get("model_id", "?")),
            strategy=str(config.get("strategy", "?")),
            accuracy=float(acc) if isinstance(acc, (int, float)) else None,
            accuracy_ci=metrics.get("accuracy_ci"), macro_f1=metrics.get("macro_f1"),
            macro_f1_ci=metrics.get("macro_f1_ci"), n_reported=metrics.get("n_val"),
            n_examples=(metrics.get("n_train") or 0) + (metrics.get("n_val") or 0)
            + ((metrics.get("evaluation") or {}).get("n_chosen") or 0) or None,
            random_init=bool(config.get("random_init")), has_model=self.has_model,
            continued_from=(config.get("extra") or {}).get("continue_from"),
        )


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
    accuracy_ci: Optional[list] = None
    macro_f1: Optional[float] = None
    macro_f1_ci: Optional[list] = None
    n_reported: Optional[int] = None
    n_examples: Optional[int] = None
    random_init: bool = False
    continued_from: Optional[str] = None     # the run this one continues ("train N more epochs")

    @property
    def seconds(self) -> Optional[float]:
        try:
            return float(self.ended) - float(self.started)
        except (TypeError, ValueError):
            return None

    def label(self) -> str:
        when = time.strftime("%d %b %H:%M", time.localtime(self.started)) if self.started else self.run_id
        acc = f", accuracy {self.accuracy:.0%}" if self.accuracy is not None else ""
        scratch = " (random init)" if self.random_init else ""
        parent = f" · continues {self.continued_from}" if self.continued_from else ""
        return f"{when} · {self.model_id} · {self.strategy}{scratch}{parent} · {self.state}{acc}"

    def to_dict(self) -> dict:
        return {
            "run_id": self.run_id, "state": self.state, "message": self.message,
            "started": self.started, "ended": self.ended, "model_id": self.model_id,
            "strategy": self.strategy, "accuracy": self.accuracy, "accuracy_ci": self.accuracy_ci,
            "macro_f1": self.macro_f1, "macro_f1_ci": self.macro_f1_ci, "n_reported": self.n_reported,
            "random_init": self.random_init, "has_model": self.has_model, "continued_from": self.continued_from,
        }
