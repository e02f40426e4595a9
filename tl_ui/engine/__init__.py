"""The transfer engine: UI-free (never imports gradio). See docs/contracts.md."""
import os as _os
import warnings as _warnings

# The engine reports its own progress through events; library progress bars only clutter logs.
_os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
_os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
_warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")  # raised inside peft, not ours
from tl_ui.engine.planning import describe_strategy, estimate_seconds
from tl_ui.engine.predict import Predictor, PredictError
from tl_ui.engine.train import RunResult, train_run

__all__ = ["train_run", "RunResult", "Predictor", "PredictError", "describe_strategy", "estimate_seconds"]
