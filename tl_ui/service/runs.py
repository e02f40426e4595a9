"""What the page reads of a run folder, read-only: the folder itself (`open_run`: metrics, status, events,
files through tl_ui/core/runfolder.py) and a finished job's metrics. The page (tl_ui/ui) never opens a
run folder on its own (.importlinter, "page-is-light")."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

from tl_ui.core.runfolder import RunFolder

if TYPE_CHECKING:
    import numpy as np


def open_run(run_dir: str | Path) -> RunFolder:
    """The run folder at `run_dir`, to read (a folder that is gone reads as state 'unknown')."""
    return RunFolder(run_dir)


def run_metrics(run_dir: str | Path) -> dict:
    """metrics.json of the run at `run_dir` ({} before it finished)."""
    return RunFolder(run_dir).metrics() or {}


def report_probabilities(run: RunFolder) -> Optional[tuple[list[str], list[str], "np.ndarray"]]:
    """(classes, each test example's true class, their calibrated probabilities (examples x classes)) from a
    single-label run's predictions.csv, for the page's threshold slider (issue 33); None when the run has no
    such file (a multi-label run's has other columns)."""
    import csv

    import numpy as np

    path = run.predictions_csv
    if not path.is_file():
        return None
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows or rows[0][:4] != ["item", "true", "predicted", "confidence"]:
        return None
    classes = [name[2:] for name in rows[0][4:]]
    truth = [row[1] for row in rows[1:]]
    probs = np.array([[float(v) for v in row[4:]] for row in rows[1:]], dtype=np.float64).reshape(-1, len(classes))
    return classes, truth, probs
