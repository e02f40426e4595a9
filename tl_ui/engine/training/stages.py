"""Two stages the loop (loop.py) runs with its RunContext: the linear probe's full-batch head (the
task fits it; this stage turns its iterations into the live curves) and, at the end, the "unlike your
training data" reference (tl_ui/engine/inference/familiarity.py) that travels with the export."""
from __future__ import annotations

import logging
import time
from typing import Optional

import torch

from tl_ui.contracts.events import EpochEnd, StepEnd
from tl_ui.engine.inference.familiarity import FamiliarityReference, reference_for_run
from tl_ui.engine.training.context import RunContext

log = logging.getLogger(__name__)


def fit_probe_head(ctx: RunContext, head: torch.nn.Module, features: list[torch.Tensor]) -> int:
    """Fit `head` (the model's last linear layer) on the probe's embeddings (train, choose, report) with the
    run's task: each iteration becomes a StepEnd and an EpochEnd (training loss; loss and score on the
    validation examples, which are watched, never chosen on); the last one is the kept head. Sets the
    clock and `records["probe_fit"]`; returns the number of iterations."""
    examples, clock, task = ctx.examples, ctx.clock, ctx.task
    clock.fit_started = time.time()
    before = clock.steps_before_head   # SetFit's contrastive steps come first on the curve
    pending: list = []

    def planned(it) -> int:
        return task.probe_max_iterations or it.iteration

    def emit_pending(is_best: bool) -> None:
        if pending:
            it = pending.pop()
            ctx.recorder.emit(EpochEnd(
                epoch=it.iteration, epochs=planned(it), step=before + it.iteration, train_loss=it.train_loss,
                train_accuracy=it.train_accuracy, val_loss=it.val_loss, val_accuracy=it.val_accuracy,
                val_macro_f1=it.val_macro_f1, elapsed_s=time.time() - clock.fit_started, eta_s=None, is_best=is_best))

    def on_iteration(it) -> None:
        emit_pending(False)            # an iteration followed by another is not the one kept
        clock.epoch, clock.step = it.iteration, before + it.iteration
        ctx.recorder.emit(StepEnd(epoch=it.iteration, step=before + it.iteration, total_steps=before + planned(it),
                                  train_loss=it.train_loss, learning_rate=0.0,
                                  elapsed_s=time.time() - clock.fit_started, eta_s=None))
        pending.append(it)

    fitted = task.fit_probe_head(features[0].numpy(), examples.train_targets, features[1].numpy(),
                                 examples.val_targets, config=ctx.config, should_stop=ctx.should_stop,
                                 on_iteration=on_iteration)
    emit_pending(True)
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(fitted.weight))
        head.bias.copy_(torch.from_numpy(fitted.bias))
    setfit = ctx.records.get("setfit")
    ctx.records["probe_fit"] = {**fitted.record, **({"setfit": setfit} if setfit else {})}
    return fitted.iterations


def familiarity_reference(ctx: RunContext, metrics: dict) -> Optional[FamiliarityReference]:
    """The reference for the finished run (metrics gain its `familiarity` record), or None if it could not
    be made: the trained model stays usable without it. Not stoppable: training is over."""
    examples = ctx.examples
    try:
        reference, metrics["familiarity"] = reference_for_run(
            ctx.loaded, (examples.train_items, examples.val_items, examples.report_items),
            ctx.features[0] if ctx.features else None, batch_size=ctx.inference_batch, device=ctx.device,
            max_length=ctx.config.max_length, window=ctx.window, seed=ctx.config.seed)
        return reference
    except Exception as exc:
        log.exception("no familiarity reference for run %s", ctx.run_dir.name)
        metrics["familiarity"] = {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
        return None
