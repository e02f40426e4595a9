"""Frozen-backbone embeddings, computed once per example and cached for the linear probe.

The cache holds what the model feeds its final classifier module (captured with a forward
pre-hook), so training the head on the cache is exactly training the head of the real model with
the backbone in eval mode: no re-implementation of any architecture's pooling.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
from torch import nn

from tl_ui.engine.models.fast_path import inference_autocast, length_order
from tl_ui.engine.models.inputs import forward_logits, make_dataset, make_loader
from tl_ui.engine.models.build import LoadedModel


class Stopped(Exception):
    """should_stop() turned true while computing embeddings."""


def probe_head(loaded: LoadedModel) -> nn.Module:
    """The module the probe trains: the last of the head modules (the final linear layer)."""
    return loaded.head_modules()[-1]


@torch.no_grad()
def compute_head_inputs(loaded: LoadedModel, loader, *, device: torch.device,
                        on_batch: Optional[Callable[[int], None]] = None,
                        should_stop: Callable[[], bool] = lambda: False,
                        full_precision: bool = False) -> torch.Tensor:
    """One eval-mode forward pass over `loader`; returns the head's inputs for every example, in order.
    `full_precision`: no bf16, whatever the CPU (the exported model's own arithmetic)."""
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
            with inference_autocast(device.type, full_precision=full_precision):
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
               should_stop: Callable[[], bool] = lambda: False, cache=None,
               full_precision: bool | Sequence[bool] = False) -> list[torch.Tensor]:
    """The head's inputs for each list of items (train, choose, report), in order.

    With `cache` (an `embedding_cache.BoundCache`: the owner's cache for this model and every setting
    that changes its features), examples an earlier run embedded are read back and only the others
    go through the model; those are added to the cache. `full_precision` (one flag, or one per set):
    those sets are computed without bf16; `cache` is then a pair (fast, exact), from
    embedding_cache.bind_probe_caches."""
    exact = [full_precision] * len(sets) if isinstance(full_precision, bool) else list(full_precision)
    caches = cache if isinstance(cache, tuple) else (cache, cache)
    flat = [(item, exact[s]) for s, items in enumerate(sets) for item in items]
    total = len(flat)
    rows: list[Optional[torch.Tensor]] = [None] * total
    keys: dict[bool, list] = {}
    for precise in set(exact):
        indices = [i for i, (_item, p) in enumerate(flat) if p == precise]
        bound = caches[precise]
        if bound is None:
            continue
        found_keys = bound.keys_for([flat[i][0] for i in indices])
        found = bound.lookup(found_keys)
        keys[precise] = dict(zip(indices, found_keys))
        for i, key in zip(indices, found_keys):
            rows[i] = found.get(key)
    todo = [i for i, row in enumerate(rows) if row is None]
    reused = total - len(todo)
    message = ("Computing embeddings once (the model itself stays frozen)" if not reused else
               f"Reusing {reused} embeddings from earlier runs; computing the other {len(todo)}")
    if reused:
        on_progress(reused, total, message)
    done_before = reused
    for precise in sorted(set(exact)):   # the fast pass first, then the exact one
        group = [i for i in todo if flat[i][1] == precise]
        if not group:
            continue
        group = [group[j] for j in length_order([flat[i][0] for i in group])]   # texts of similar length together
        data = make_dataset(loaded, [flat[i][0] for i in group], None, augment=False, max_length=max_length,
                            window=window)
        offset = done_before
        new = compute_head_inputs(loaded, make_loader(loaded, data, batch_size, shuffle=False), device=device,
                                  should_stop=should_stop, full_precision=precise,
                                  on_batch=lambda done, _o=offset: on_progress(_o + done, total, message))
        done_before += len(group)
        for j, i in enumerate(group):
            rows[i] = new[j]
        if precise in keys:
            caches[precise].store([keys[precise][i] for i in group], new)
    stacked = torch.stack(rows) if rows else torch.empty(0)
    return list(torch.split(stacked, [len(items) for items in sets]))
