"""What the page reads of a run folder, read-only: the folder itself (`open_run`: metrics, status, events,
files through tl_ui/core/runfolder.py) and a finished job's metrics. The page (tl_ui/ui) never opens a
run folder on its own (.importlinter, "page-is-light")."""
from __future__ import annotations

from pathlib import Path

from tl_ui.core.runfolder import RunFolder


def open_run(run_dir: str | Path) -> RunFolder:
    """The run folder at `run_dir`, to read (a folder that is gone reads as state 'unknown')."""
    return RunFolder(run_dir)


def run_metrics(run_dir: str | Path) -> dict:
    """metrics.json of the run at `run_dir` ({} before it finished)."""
    return RunFolder(run_dir).metrics() or {}
