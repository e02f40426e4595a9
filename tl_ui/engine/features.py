"""Frozen-backbone embeddings, computed once per example and cached for the linear probe.

The cache holds what the model feeds its final classifier module (captured with a forward
pre-hook), so training the head on the cache is exactly training the head of the real model with
the backbone in eval mode: no re-implementation of any architecture's pooling.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn

from tl_ui.engine.inputs import forward_logits
from tl_ui.engine.models import LoadedModel


class Stopped(Exception):
    """should_stop() turned true while computing embeddings."""


def probe_head(loaded: LoadedModel) -> nn.Module:
    """The module the probe trains: the last of the head modules (the final linear layer)."""
    return loaded.head_modules()[-1]


@torch.no_grad()
def compute_head_inputs(loaded: LoadedModel, loader, *, device: torch.device,
                        on_batch: Optional[Callable[[int], None]] = None,
                        should_stop: Callable[[], bool] = lambda: False) -> torch.Tensor:
    """One eval-mode forward pass over `loader`; returns the head's inputs for every example, in order."""
    head = probe_head(loaded)
    captured: list[torch.Tensor] = []
    hook = head.register_forward_pre_hook(lambda _module, args: captured.append(args[0].detach().float().cpu()))
    model = loaded.model.to(device)
    was_training = model.training
    model.eval()
    done = 0
    try:
        for batch in loader:
            if should_stop():
                raise Stopped()
            batch = {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}
            forward_logits(model, batch)
            done += len(batch["labels"])
            if on_batch:
                on_batch(done)
    finally:
        hook.remove()
        model.train(was_training)
    return torch.cat(captured) if captured else torch.empty(0)
