"""SetFit (Tunstall et al. 2022) for few-shot text: contrastive fine-tuning of the sentence encoder on
pairs of training texts (same class: cosine similarity 1, different classes: 0), then a linear head
on the tuned embeddings.

The `setfit` package is not used: it keeps its classification head with joblib (pickle), and its
trainer needs `datasets`; the method is small enough to run here on the same `SentenceClassifier`
the text probe uses, with sentence-transformers' own loss (CosineSimilarityLoss: the squared error
between the pair's cosine similarity and its label). The number of pairs is bounded
(tl_ui.core.config.SETFIT_MAX_PAIRS) so that a CPU run takes minutes.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch import nn

from tl_ui.core.config import SETFIT_CHECKS, SETFIT_MAX_PAIRS, SETFIT_PAIRS_PER_EXAMPLE
from tl_ui.engine.probe.features import Stopped
from tl_ui.engine.models.sentence import SentenceClassifier
from tl_ui.engine.training.context import RunContext

LEARNING_RATE = 2e-5        # SetFit's default body learning rate
PAIR_BATCH = 16



def make_pairs(targets: Sequence[int], max_pairs: int, seed: int) -> list[tuple[int, int, float]]:
    """Balanced (i, j, same-class) pairs as SetFit draws them: for each round and each example, one
    partner of its own class and one of another class; at most `max_pairs` in all."""
    targets = np.asarray(targets)
    rng = np.random.default_rng(seed)
    by_class = {c: np.flatnonzero(targets == c) for c in np.unique(targets)}
    pairs: list[tuple[int, int, float]] = []
    rounds = max(1, min(SETFIT_PAIRS_PER_EXAMPLE, math.ceil(max_pairs / max(2 * len(targets), 1))))
    for _ in range(rounds):
        for i in rng.permutation(len(targets)):
            same = by_class[targets[i]][by_class[targets[i]] != i]
            other = np.flatnonzero(targets != targets[i])
            if len(same):
                pairs.append((int(i), int(rng.choice(same)), 1.0))
            if len(other):
                pairs.append((int(i), int(rng.choice(other)), 0.0))
    order = rng.permutation(len(pairs))[:max_pairs]
    return [pairs[k] for k in order]


@dataclass
class ContrastiveStep:
    step: int
    steps: int
    loss: float
    elapsed_s: float


def contrastive_fit(model: SentenceClassifier, tokenizer, texts: Sequence[str], targets: Sequence[int], *,
                    max_pairs: int, max_length: int, seed: int = 0, learning_rate: float = LEARNING_RATE,
                    batch_size: int = PAIR_BATCH, device: torch.device = torch.device("cpu"),
                    on_step: Optional[Callable[[ContrastiveStep], None]] = None,
                    should_stop: Callable[[], bool] = lambda: False,
                    validate: Optional[Callable[[], float]] = None, patience: int = 0) -> dict:
    """Tune `model.encoder` in place on one pass over the pairs. With `validate` (the pair loss on
    held-aside examples), it is checked SETFIT_CHECKS times; after `patience` checks without improvement the
    stage stops early and the best check's weights are restored. Raises Stopped on request."""
    from transformers import get_linear_schedule_with_warmup

    pairs = make_pairs(targets, max_pairs, seed)
    steps = math.ceil(len(pairs) / batch_size)
    encoder = model.encoder.to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    for p in encoder.parameters():
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=learning_rate)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(0.1 * steps), steps)
    losses: list[float] = []
    checks: list[tuple[int, float]] = []
    every = max(1, math.ceil(steps / SETFIT_CHECKS))
    best: tuple[float, int, Optional[dict]] = (math.inf, 0, None)
    started = time.time()
    model.train()
    try:
        for step in range(steps):
            if should_stop():
                raise Stopped()
            batch = pairs[step * batch_size:(step + 1) * batch_size]
            left = _embed(model, tokenizer, [texts[i] for i, _, _ in batch], max_length, device)
            right = _embed(model, tokenizer, [texts[j] for _, j, _ in batch], max_length, device)
            labels = torch.tensor([same for _, _, same in batch], device=device)
            loss = nn.functional.mse_loss(nn.functional.cosine_similarity(left, right), labels)
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
            if on_step:
                on_step(ContrastiveStep(step + 1, steps, losses[-1], time.time() - started))
            if validate is not None and ((step + 1) % every == 0 or step + 1 == steps):
                model.eval()
                with torch.no_grad():
                    checks.append((step + 1, float(validate())))
                model.train()
                if checks[-1][1] < best[0] - 1e-6:
                    best = (checks[-1][1], step + 1, {k: v.detach().clone() for k, v in encoder.state_dict().items()})
                elif patience and len(checks) - 1 - [c[0] for c in checks].index(best[1]) >= patience:
                    break
    finally:
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
    if best[2] is not None:
        encoder.load_state_dict(best[2])
    return {"pairs": len(pairs), "steps": steps, "steps_run": len(losses), "best_step": best[1] or len(losses),
            "losses": losses, "checks": checks}


def pair_loss(model: SentenceClassifier, tokenizer, texts: Sequence[str], targets: Sequence[int], *,
              max_length: int, max_pairs: int = 256, seed: int = 1, device=torch.device("cpu")) -> float:
    """The contrastive loss on pairs of held-aside examples (each text embedded once)."""
    pairs = make_pairs(targets, max_pairs, seed)
    if not pairs:
        return 0.0
    vectors = torch.cat([_embed(model, tokenizer, list(texts[k:k + 32]), max_length, device)
                         for k in range(0, len(texts), 32)])
    left = vectors[[i for i, _, _ in pairs]]
    right = vectors[[j for _, j, _ in pairs]]
    labels = torch.tensor([same for _, _, same in pairs], device=vectors.device)
    return float(nn.functional.mse_loss(nn.functional.cosine_similarity(left, right), labels))


def contrastive_stage(ctx: RunContext) -> None:
    """The contrastive stage of a SetFit run, before the probe's embeddings: live loss per step (StepEnd,
    Progress), early stopping on the validation examples' pair loss, Stop between steps. Sets the clock's
    steps and `records["setfit"]` (tl_ui/engine/training/context.py)."""
    from tl_ui.contracts.events import Progress, StepEnd

    config, loaded, examples = ctx.config, ctx.loaded, ctx.examples
    max_pairs = int(config.extra.get("setfit_max_pairs") or SETFIT_MAX_PAIRS)
    device = ctx.device
    steps_total = math.ceil(min(max_pairs, 2 * SETFIT_PAIRS_PER_EXAMPLE * len(examples.train_items)) / PAIR_BATCH)

    def on_step(s: ContrastiveStep) -> None:
        ctx.clock.step = s.step
        ctx.recorder.emit(StepEnd(epoch=1, step=s.step, total_steps=s.steps, train_loss=s.loss,
                                  learning_rate=config.resolved_learning_rate, elapsed_s=s.elapsed_s,
                                  eta_s=s.elapsed_s / s.step * (s.steps - s.step)))
        ctx.recorder.emit(Progress(stage="contrastive", done=s.step, total=s.steps,
                                   message=f"Learning from pairs of your texts: step {s.step} of {s.steps}, "
                                           f"pair loss {s.loss:.3f}"))

    ctx.recorder.emit(Progress(stage="contrastive", done=0, total=steps_total,
                               message=f"Learning from pairs of your texts ({steps_total} steps)"))
    record = contrastive_fit(
        loaded.model, loaded.tokenizer, examples.train_items, examples.train_targets, max_pairs=max_pairs,
        max_length=config.max_length, seed=config.seed, learning_rate=config.resolved_learning_rate,
        device=device, on_step=on_step, should_stop=ctx.should_stop, patience=int(config.early_stopping_patience),
        validate=lambda: pair_loss(loaded.model, loaded.tokenizer, examples.val_items, examples.val_targets,
                                   max_length=config.max_length, device=device))
    ctx.records["setfit"] = {k: v for k, v in record.items() if k != "losses"}
    ctx.clock.steps_before_head = record["steps_run"]


def _embed(model: SentenceClassifier, tokenizer, texts: list[str], max_length: int, device) -> torch.Tensor:
    encoded = tokenizer(texts, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
    encoded = {k: v.to(device) for k, v in encoded.items()}
    return model.embed(**encoded)
