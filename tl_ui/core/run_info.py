"""What the runs table, the API's /runs and the comparison show of one run (`RunFolder.info()` reads it from
the run folder): a summary row, kept apart from the folder's files so the pages can name it without the run
folder."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from tl_ui.contracts import RunState


@dataclass
class RunInfo:
    run_id: str
    run_dir: Path
    state: RunState
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
    recalibrated_from: Optional[str] = None  # the run this one recalibrates for a new site (issue 34)
    site: Optional[str] = None

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
        if self.recalibrated_from:
            parent += f" · recalibrated for {self.site or 'a new site'} from {self.recalibrated_from}"
        return f"{when} · {self.model_id} · {self.strategy}{scratch}{parent} · {self.state}{acc}"

    def to_dict(self) -> dict:
        return {
            "run_id": self.run_id, "state": self.state.value, "message": self.message,
            "started": self.started, "ended": self.ended, "model_id": self.model_id,
            "strategy": self.strategy, "accuracy": self.accuracy, "accuracy_ci": self.accuracy_ci,
            "macro_f1": self.macro_f1, "macro_f1_ci": self.macro_f1_ci, "n_reported": self.n_reported,
            "random_init": self.random_init, "has_model": self.has_model, "continued_from": self.continued_from,
            "recalibrated_from": self.recalibrated_from, "site": self.site,
        }
