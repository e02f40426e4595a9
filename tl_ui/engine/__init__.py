"""The transfer engine's public entry points (`train_run`, `RunResult`, `Predictor`, `PredictError`,
`describe_strategy`, `estimate_seconds`), loaded on first use: importing `tl_ui.engine` imports no
torch. The engine never imports gradio; its stages are the subpackages (docs/architecture.md), its
contracts docs/contracts.md.
"""
import os as _os
import warnings as _warnings
from importlib import import_module as _import_module

# The engine reports its own progress through events; library progress bars only clutter logs.
_os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
_os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
_warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")  # raised inside peft, not ours

_LAZY = {
    "train_run": "tl_ui.engine.search.run", "RunResult": "tl_ui.engine.training.recorder",
    "Predictor": "tl_ui.engine.inference.predict", "PredictError": "tl_ui.engine.inference.predict",
    "describe_strategy": "tl_ui.engine.planning.estimate", "estimate_seconds": "tl_ui.engine.planning.estimate",
}
__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        value = getattr(_import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tl_ui.engine' has no attribute {name!r}")
