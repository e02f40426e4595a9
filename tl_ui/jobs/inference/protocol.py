"""What crosses the pipes between the web process and an inference worker: JSON lines, nothing pickled.

The web process writes one request per line on the worker's stdin, the worker answers on its
reply pipe (tl_ui/jobs/supervisor.py), any number of requests at once, matched by `id`:

    -> {"id": "r7", "verb": "predict", "args": {"run_dir": "/runs/u-alice/runs/20261206-…", "items": ["/tmp/x.png"]}}
    <- {"id": "r7", "kind": "started"}
    <- {"id": "r7", "kind": "progress", "done": 2, "total": 6, "message": "…"}      (long requests)
    <- {"id": "r7", "kind": "result", "value": {...}}
       or {"id": "r7", "kind": "error", "code": "user", "message": "…"}
    -> {"id": "r7", "verb": "cancel"}                    (Stop, or the wall-clock cap: honoured between steps)

The first line a worker reads is its configuration ({"runs_root", "memory_gb", "models_mb",
"threads", "parent_pid", "env", "sys_path", "nice"}); the first it writes is {"ready": true, "pid"}
once torch and the engine are imported. Binary results (a Grad-CAM overlay) travel as base64 PNG.
No torch here: the web process imports this.
"""
from __future__ import annotations

from typing import Optional

# Quick verbs: a kept-model worker answers them, each within TL_INFERENCE_MAX_SECONDS.
QUICK_VERBS = ("load", "predict", "explain", "mistake_maps", "stats")
# Long verbs: a worker of their own each, with progress and Stop: the model advisor, external validation
# and batch scoring, recalibration for a new site (issue 34), the ONNX / Space export (issue 39).
LONG_VERBS = ("advise", "validate", "score_batch", "recalibrate", "export_onnx")
CANCEL = "cancel"


class Code:
    """Why a request got no answer (an error reply's `code`)."""
    USER = "user"                    # the input or the run: the message says what to do
    MISSING_EXTRA = "missing_extra"  # an optional package (grad-cam, captum) is not installed; `missing` names it
    TOO_BIG = "too_big"              # the model would not fit the worker's memory cap (checked before loading)
    REFUSED = "refused"              # a model path outside the runs folder
    MEMORY = "memory"                # an allocation failed under the memory cap
    TIME = "time"                    # the wall-clock cap
    CRASHED = "crashed"              # the worker died while answering
    CANCELLED = "cancelled"          # Stop
    BUSY = "busy"                    # the caps on requests in flight
    INTERNAL = "internal"            # a bug: details in the server log


OUTSIDE_RUNS = "This model is not in this Transfer Lab's runs folder, so it is not loaded."


class InferenceError(RuntimeError):
    """A request that got no answer; the message is one plain sentence for the person who asked."""

    def __init__(self, code: str, message: str, missing: Optional[str] = None):
        super().__init__(message)
        self.code, self.missing = code, missing


def json_default(value):
    """numpy scalars and arrays (and anything with `tolist`/`item`) as plain JSON."""
    for attr in ("tolist", "item"):
        if hasattr(value, attr):
            return getattr(value, attr)()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)
