"""Frozen-backbone embeddings, computed once per example and cached for the linear probe.

The cache holds what the model feeds its final classifier module (captured with a forward
pre-hook), so training the head on the cache is exactly training the head of the real model with
the backbone in eval mode: no re-implementation of any architecture's pooling.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
from torch import nn

from tl_ui.engine.fast_path import inference_autocast, length_order
from tl_ui.engine.inputs import forward_logits, make_dataset, make_loader
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
            with inference_autocast(device.type):
                forward_logits(model, batch)
            done += len(batch["labels"])
            if on_batch:
                on_batch(done)
    finally:
        hook.remove()
        model.train(was_training)
    return torch.cat(captured) if captured else torch.empty(0)


def embed_sets(loaded: LoadedModel, sets: Sequence[Sequence], *, batch_size: int, device: torch.device,
               max_length: int, window: Optional[str], on_progress: Callable[[int, int, str], None],
               should_stop: Callable[[], bool] = lambda: False, cache=None) -> list[torch.Tensor]:
    """The head's inputs for each list of items (train, choose, report), in order.

    With `cache` (an `embedding_cache.BoundCache`: the owner's cache for this model and every setting
    that changes its features), examples an earlier run embedded are read back and only the others
    go through the model; those are added to the cache."""
    flat = [item for items in sets for item in items]
    total = len(flat)
    rows: list[Optional[torch.Tensor]] = [None] * total
    keys = cache.keys_for(flat) if cache is not None else None
    if keys is not None:
        found = cache.lookup(keys)
        rows = [found.get(key) for key in keys]
    todo = [i for i, row in enumerate(rows) if row is None]
    reused = total - len(todo)
    message = ("Computing embeddings once (the model itself stays frozen)" if not reused else
               f"Reusing {reused} embeddings from earlier runs; computing the other {len(todo)}")
    if reused:
        on_progress(reused, total, message)
    if todo:
        todo = [todo[j] for j in length_order([flat[i] for i in todo])]   # texts of similar length together
        data = make_dataset(loaded, [flat[i] for i in todo], None, augment=False, max_length=max_length,
                            window=window)
        new = compute_head_inputs(loaded, make_loader(loaded, data, batch_size, shuffle=False), device=device,
                                  should_stop=should_stop,
                                  on_batch=lambda done: on_progress(reused + done, total, message))
        for j, i in enumerate(todo):
            rows[i] = new[j]
        if keys is not None:
            cache.store([keys[i] for i in todo], new)
    stacked = torch.stack(rows) if rows else torch.empty(0)
    return list(torch.split(stacked, [len(items) for items in sets]))
