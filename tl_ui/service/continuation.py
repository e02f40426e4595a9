"""Whether a finished run can be trained further. The Results step says so before any click, in the
same words `Lab.continue_run` refuses with (tl_ui/engine/training/continuation.py decides; no torch here)."""
from __future__ import annotations

from typing import Optional

from tl_ui.contracts import RunState
from tl_ui.core.runfolder import RunFolder


def cannot_continue(run: RunFolder) -> Optional[str]:
    """Why this finished run cannot be continued, in plain words; None when it can (or is not finished:
    then the button's own message says what to do)."""
    from tl_ui.engine.training.continuation import why_not

    if run.state() != RunState.FINISHED or not run.has_model:
        return None
    return why_not(run)
