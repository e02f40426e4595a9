"""Per-browser-session state, held in a `gr.State` (one copy per session, never shared)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass
class SessionState:
    dataset: Any = None                 # the loaded LabelledDataset, or None
    data_path: str = ""                 # the file it came from (goes into RunConfig.data_path)
    data_name: str = ""                 # what the user calls it (upload name / "sample ...")
    columns: dict = field(default_factory=dict)   # text/label column choices for tables
    pending_path: str = ""              # last upload that could not be read (for "Reload")
    pending_name: str = ""
    job_id: str = ""                    # the run being trained / last started
    shown_run: str = ""                 # the run shown in Results
    plot_x_lim: Any = None              # the x range the page's training plots were last given
    plot_sent: Any = None               # what they were last given (run, rows, axes): an unchanged poll sends nothing
    announced: str = ""                 # the last sentence screen readers were given about the run
    announced_at: float = 0.0           # when (time.monotonic())
    notes: list[str] = field(default_factory=list)

    @property
    def modality(self) -> Optional[str]:
        return getattr(self.dataset, "modality", None)

    @property
    def num_classes(self) -> int:
        return len(self.dataset.classes) if self.dataset is not None else 0

    @property
    def n_examples(self) -> int:
        return len(self.dataset) if self.dataset is not None else 0
