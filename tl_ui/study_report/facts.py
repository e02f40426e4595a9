"""Gathering one run folder's facts into a `RunReport` (tl_ui/study_report/context.py).

Every file is read through its reader: `RunFolder.read_metrics()` (RunMetrics), `run_config()`
(RunConfig), `read_status()` (RunStatus), `read_manifest()` (ExportManifest); the quotes point into
the same files as they are written (`to_dict()`), so a test can read each printed number back. No
model is loaded and torch is never imported: the report runs in the web process.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from tl_ui.contracts import RunState
from tl_ui.core.runfolder import RunFolder
from tl_ui.study_report import figures, limitations, tables
from tl_ui.study_report.context import ModelInfo, Name, RunReport
from tl_ui.study_report.data_summary import DataFile, read_data_file
from tl_ui.study_report.quote import Quoter

# metrics.json blocks a section may depend on (each section appears when its block exists)
BLOCKS = ("calibration", "conformal", "cross_validation", "groups", "probe_fit", "familiarity", "multilabel",
          "roc", "operating_point", "decision_curve", "pretraining_gain", "evaluation", "confusion_matrix")


class ReportError(ValueError):
    """A report that cannot be made (no run folder, or no results yet): the message says why."""


def gather_run(path: str | Path, read_data: bool = True) -> RunReport:
    """The facts of one run folder. Raises ReportError when it holds no results."""
    run = RunFolder(path)
    if not run.path.is_dir():
        raise ReportError(f"There is no run folder at '{run.path}'.")
    metrics = run.read_metrics()
    status = run.read_status()
    state = str(status.state.value) if status is not None else "unknown"
    if metrics is None:
        why = {"running": "it is still training", "queued": "it is still waiting to train",
               "failed": "it failed", "stopped": "it was stopped before it finished",
               "interrupted": "it was interrupted"}.get(state, "it has no metrics.json")
        raise ReportError(f"The run '{run.id}' has no results to report: {why}.")
    config = run.run_config()
    manifest = run.read_manifest()
    data = read_data_file(config) if read_data else DataFile(name=Path(config.data_path).name if config else "",
                                                              sha256=config.data_sha256 if config else None,
                                                              state="not read")
    report = RunReport(
        run_id=run.id, path=str(run.path),
        m=Quoter(metrics.to_dict(), "metrics.json", run.id),
        r=Quoter(config.to_dict() if config else None, "run.json", run.id),
        s=Quoter(status.to_dict() if status else None, "status.json", run.id),
        x=Quoter(manifest.to_dict() if manifest else None, "model/transfer_lab.json", run.id),
        d=Quoter(data.summary, "data", run.id),
        state=state, finished=state == RunState.FINISHED, multilabel=bool(metrics.multilabel) or metrics.task == "multi_label",
        model=_model_info(config, manifest, run), data=data,
        classes=[Name(c) for c in metrics.classes],
    )
    report.blocks = {block for block in BLOCKS if report.m.get("/" + block) is not None}
    if report.m.get("/scratch_accuracy") is not None:
        report.blocks.add("scratch")
    tables.fill(report)
    figures.fill(report)
    limitations.fill(report)
    return report


def _model_info(config, manifest, run: RunFolder) -> Optional[ModelInfo]:
    from tl_ui.core.catalog import get_model
    from tl_ui.core.config import STRATEGY_HELP

    if config is None:
        return None
    modality = (manifest.modality if manifest else None) or run.modality() or "image"
    try:
        entry = get_model(config.model_id, modality)
        display, licence = entry.display_name, entry.licence
    except Exception:   # noqa: BLE001 - a Hub id the shelf does not know: its id is its name
        display, licence = config.model_id, None
    return ModelInfo(model_id=Name(config.model_id), display_name=display, licence=licence, modality=modality,
                     strategy=config.strategy, strategy_help=STRATEGY_HELP.get(config.strategy, ""),
                     random_init=bool(config.random_init))
