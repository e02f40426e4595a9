"""Continue a finished run: "train N more epochs" from its best weights with the same recipe.

The new run is a run of its own (its own folder, metrics and export) that records its parent in
`run.json` (`extra["continue_from"]`, a sibling run id). It starts from the parent's exported (best)
weights, with the parent's temperature taken back out of the classifier layer, on the same data split
(the same seed and data give the same train / choose / report examples), and numbers its epochs after
the parent's so that the curves continue where the parent stopped. What it cannot carry over: the
optimiser's moments and the learning-rate schedule (exports do not keep them); the new run warms up
and decays over its own epochs.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from tl_ui.core.config import ConfigError, RunConfig
from tl_ui.core.runfolder import RunFolder

if TYPE_CHECKING:   # torch only when weights are loaded: the service builds a continued run's config
    from torch import nn

    from tl_ui.engine.training.context import RunContext

PARENT_KEY = "continue_from"
PROBE_CONVERGED = ("This probe's last layer was fitted to convergence in one go: more epochs would change nothing. "
                   "To adapt the model further, pick Partial unfreezing or LoRA in step 3 and train again.")

AUTO_NOT_CONTINUED = ("This run's strategy was chosen by a search ('auto'); to train the winner further, start a run "
                      "with the winner's strategy and settings (Results names them).")


def parent_folder(config: RunConfig, run_dir: Path) -> Optional[RunFolder]:
    """The finished run this one continues (a sibling folder), or None for an ordinary run."""
    parent_id = (config.extra or {}).get(PARENT_KEY)
    if not parent_id:
        return None
    if "/" in str(parent_id) or "\\" in str(parent_id) or str(parent_id).startswith("."):
        raise ConfigError(f"'{parent_id}' is not a run id.")
    parent = RunFolder(Path(run_dir).parent / str(parent_id))
    if not parent.has_model:
        raise ConfigError(f"Run {parent_id} has no finished model to continue from. Pick a run that finished.")
    return parent


def epochs_done(parent: RunFolder) -> int:
    return int((parent.metrics() or {}).get("epochs_run") or 0)


def load_parent_weights(model: nn.Module, head_names: list[str], parent: RunFolder, strategy: str) -> None:
    """Put the parent's best weights into `model` (the plan's model: a PeftModel for LoRA)."""
    import torch
    from safetensors.torch import load_file

    from tl_ui.engine.export.folder import fold_temperature, read_manifest

    folder = parent.model_dir
    manifest = read_manifest(folder) or {}
    if manifest.get("strategy") != strategy:
        raise ConfigError(f"Run {parent.id} was trained with '{manifest.get('strategy')}'; a continued run keeps "
                          "its parent's strategy.")
    if strategy == "lora":
        from peft import set_peft_model_state_dict

        state = load_file(str(folder / "adapter" / "adapter_model.safetensors"))
        result = set_peft_model_state_dict(model, state)
        unexpected = list(getattr(result, "unexpected_keys", None) or [])
        if unexpected:
            raise ConfigError(f"Run {parent.id}'s adapter does not fit this model ({unexpected[:3]}).")
    else:
        model.load_state_dict(load_file(str(folder / "model.safetensors")), strict=True)
    # the export divided the classifier layer by the calibration temperature: multiply it back
    temperature = float(manifest.get("temperature") or 1.0)
    with torch.no_grad():
        fold_temperature(model, head_names, 1.0 / temperature)


def why_not(parent: RunFolder) -> Optional[str]:
    """Why this finished run cannot be continued, in plain words (None: it can)."""
    if (parent.metrics() or {}).get("search"):
        return AUTO_NOT_CONTINUED
    if (parent.metrics() or {}).get("probe_fit"):
        return PROBE_CONVERGED
    if (parent.manifest() or {}).get("format") not in ("timm", "transformers"):
        return ("Runs of this strategy are exported as a sentence encoder and a separate head, which cannot be "
                "trained further here. Start a new run instead.")
    return None


def continue_config(parent_config: dict, parent_id: str, epochs: int) -> RunConfig:
    """The child's config: the parent's recipe and data, `epochs` more, linked to its parent."""
    record = json.loads(json.dumps(parent_config))   # a deep copy
    extra = {k: v for k, v in (record.get("extra") or {}).items() if k != "scratch_of"}
    extra[PARENT_KEY] = parent_id
    if record.get("strategy") == "auto":
        raise ConfigError(AUTO_NOT_CONTINUED)
    record.update(epochs=int(epochs), compare_scratch=False, extra=extra)
    if record.get("strategy") == "linear_probe" and extra.get("probe_head") != "minibatch":
        raise ConfigError(PROBE_CONVERGED)
    return RunConfig.from_dict(record)


def resume(ctx: "RunContext", train_plan) -> bool:
    """When the run continues a parent: the parent's weights into the plan's model and the clock's epoch
    after the parent's epochs. False for an ordinary run."""
    parent = parent_folder(ctx.config, ctx.run_dir)
    if parent is None:
        return False
    load_parent_weights(train_plan.model, ctx.loaded.head_names, parent, ctx.config.strategy)
    ctx.clock.epoch = epochs_done(parent)
    return True
