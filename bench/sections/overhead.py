"""2. The engine's training steps vs a minimal hand-written loop's, interleaved step by step.

The engine calls its event listener synchronously after every optimisation step; the listener runs
steps of the hand-written loop (on its own copy of the model) and times them. An engine step is the
time from the end of the listener's previous call to the start of its next one: fetching and collating
the batch, forward, backward, optimiser and scheduler, the event and its events.jsonl line, and nothing
of the hand loop. Pairs alternate which side goes first (E1 H1 | H2 E2 | E3 H3 | H4 E4 ...: after an
odd engine step the listener runs two hand steps, after an even one none), so neither side always
runs on the cache the other left behind. Validation is excluded on both sides; the first pair (both
sides' first step) is warm-up and not counted."""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from bench.data import MODEL_FOR, default_batch, engine_split, image_tensor, load, reviews_at_least, sample_dataset
from bench.harness import Clock, cpu_s, log, require_finished, rnd, summary

MAX_LENGTH = 24  # text: reviews of >= 24 tokens truncated to 24, so every batch has the same shape


def run(cfg: dict) -> dict:
    out = {}
    for modality, strategy, n_train in cfg["cases"]:
        key = f"{strategy}_{modality}"
        log(f"overhead {key}: {n_train} training examples, {cfg['epochs']} epochs")
        out[key] = case(modality, strategy, n_train, cfg["epochs"])
        o = out[key]
        log(f"overhead {key}: engine/hand, median of paired steps: wall {o['ratio']}, cpu {o['ratio_cpu']} "
            f"(engine first {o['ratio_by_order']['engine_first']}, hand first {o['ratio_by_order']['hand_first']}); "
            f"sums: wall {o['ratio_sum']}, cpu {o['ratio_sum_cpu']}")
    return out


def _hand_loop(modality: str, strategy: str, config, train_items, train_t, classes):
    """The hand-written loop: same model from load_model, same tensors, batch size, AdamW and threads;
    returns (generator of steps, number of BatchNorm layers kept frozen)."""
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from tl_ui.engine.models.inputs import TextItems

    loaded = load(modality, classes)
    model = loaded.model
    if strategy == "lora":
        from peft import LoraConfig, get_peft_model

        targets = loaded.entry.lora_targets
        model = get_peft_model(model, LoraConfig(
            r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
            target_modules=targets if isinstance(targets, str) else list(targets),
            modules_to_save=list(loaded.head_names) + list(getattr(loaded, "lora_fully_trained", []))))
    generator = torch.Generator().manual_seed(config.seed)
    batch = config.batch_size
    if modality == "image":
        loader = DataLoader(TensorDataset(image_tensor(loaded, train_items), torch.as_tensor(train_t)),
                            batch_size=batch, shuffle=True, generator=generator)
    else:
        from transformers import DataCollatorWithPadding

        loader = DataLoader(TextItems(train_items, train_t, loaded.tokenizer, MAX_LENGTH), batch_size=batch,
                            shuffle=True, generator=generator, collate_fn=DataCollatorWithPadding(loaded.tokenizer))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.resolved_learning_rate,
                            weight_decay=config.weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    # BatchNorm layers whose statistics the engine keeps frozen run in eval mode here too (same computation):
    # every one under LoRA; under full fine-tuning whatever the engine's plan says
    if strategy == "lora":
        frozen_norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    else:
        from tl_ui.engine.training.strategies import plan as engine_plan

        frozen_norms = engine_plan(loaded, config).frozen_norm_modules
    for m in frozen_norms:
        m.eval()

    def steps():
        while True:  # as many epochs as the engine runs
            for b in loader:
                if modality == "image":
                    xb, yb = b
                    logits = model(xb)
                else:
                    yb = b.pop("labels")
                    logits = model(**b).logits
                loss_fn(logits, yb).backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
                yield

    return steps(), len(frozen_norms), loaded


def case(modality: str, strategy: str, n_train: int, epochs: int) -> dict:
    import torch

    from tl_ui.core.config import RunConfig
    from tl_ui.engine import train_run
    from tl_ui.engine.models.inputs import make_dataset, make_loader

    ds = sample_dataset("image") if modality == "image" else reviews_at_least(MAX_LENGTH)
    val_fraction, seed, batch = 0.2, 0, default_batch()
    n = int(round(n_train / (1 - val_fraction)))
    config = RunConfig(model_id=MODEL_FOR[modality], strategy=strategy, epochs=epochs, batch_size=batch,
                       val_fraction=val_fraction, seed=seed, max_examples=n, head_only_epochs=0, augment=False,
                       early_stopping_patience=0, max_length=MAX_LENGTH)
    split = engine_split(ds, n, val_fraction, seed)
    (train_items, train_t), classes = split["train"], split["classes"]
    hand, n_frozen_norms, loaded = _hand_loop(modality, strategy, config, train_items, train_t, classes)

    pairs: list[dict] = []
    state = {"exit_wall": None, "exit_cpu": None, "k": 0, "pending": None}

    def hand_step() -> Clock:
        with Clock() as c:
            next(hand)
        return c

    def listener(event) -> None:
        enter_wall, enter_cpu = time.perf_counter(), cpu_s()
        if event.kind == "step":
            state["k"] += 1
            e_wall, e_cpu = enter_wall - state["exit_wall"], enter_cpu - state["exit_cpu"]
            if state["k"] % 2 == 1:  # engine went first: its partner runs now, then the next pair's hand step
                h, order = hand_step(), "engine_first"
                state["pending"] = hand_step()
            else:  # the hand step for this pair ran before the engine step
                h, order, state["pending"] = state["pending"], "hand_first", None
            pairs.append({"epoch": event.epoch, "step": event.step, "order": order, "engine_s": e_wall,
                          "engine_cpu_s": e_cpu, "hand_s": h.wall, "hand_cpu_s": h.cpu})
        state["exit_wall"], state["exit_cpu"] = time.perf_counter(), cpu_s()

    # the engine's data pipeline alone for one epoch (images decoded once, transform per access, collate)
    pipe_loader = make_loader(loaded, make_dataset(loaded, train_items, train_t, augment=False, max_length=MAX_LENGTH),
                              batch, shuffle=True, seed=seed)
    with Clock() as pipe:
        for _ in pipe_loader:
            pass
    state["exit_wall"], state["exit_cpu"] = time.perf_counter(), cpu_s()
    with tempfile.TemporaryDirectory(prefix="tlbench-ovh-") as d:
        res = train_run(config, Path(d) / "run", on_event=listener, dataset=ds)
    require_finished(res, f"overhead {config.strategy}")
    counted = pairs[1:]
    return _summarise(counted, pairs, len(train_items), batch, epochs, modality, n_frozen_norms, pipe,
                      torch.get_num_threads())


def _summarise(counted, pairs, n_train, batch, epochs, modality, n_frozen_norms, pipe, threads) -> dict:
    e_w, h_w = sum(p["engine_s"] for p in counted), sum(p["hand_s"] for p in counted)
    e_c, h_c = sum(p["engine_cpu_s"] for p in counted), sum(p["hand_cpu_s"] for p in counted)
    steps_per_epoch = -(-n_train // batch)

    def med(ps, cpu=False):
        k = "_cpu_s" if cpu else "_s"
        return rnd(statistics.median(p["engine" + k] / p["hand" + k] for p in ps), 3) if ps else None

    by_order = {o: [p for p in counted if p["order"] == o] for o in ("engine_first", "hand_first")}
    return {
        "settings": {"n_train": n_train, "batch_size": batch, "epochs": epochs, "steps_per_epoch": steps_per_epoch,
                     "counted_steps": len(counted), "augment": False, "validation": "excluded on both sides",
                     "threads": threads, "max_length_tokens": MAX_LENGTH if modality == "text" else None,
                     "interleaving": "step by step inside the engine's StepEnd listener, pairs alternating which "
                                     "side goes first (E H | H E | E H ...)",
                     "frozen_batchnorm_layers": n_frozen_norms},
        "pairs": [{k: (rnd(v, 4) if isinstance(v, float) else v) for k, v in p.items()} for p in pairs],
        "engine_s": rnd(e_w), "hand_s": rnd(h_w), "engine_cpu_s": rnd(e_c), "hand_cpu_s": rnd(h_c),
        "engine_epoch_equiv_s": rnd(e_w / len(counted) * steps_per_epoch),
        "hand_epoch_equiv_s": rnd(h_w / len(counted) * steps_per_epoch),
        "engine_data_pipeline_epoch_s": rnd(pipe.wall), "engine_data_pipeline_epoch_cpu_s": rnd(pipe.cpu),
        "engine_extra_ms_per_step": rnd((e_w - h_w) / len(counted) * 1000, 1),
        # headline: the median of paired step ratios (robust to the load spikes of a shared machine, which hit
        # single steps of either side by 5-10x), with its spread; sums are kept as well
        "ratio": med(counted), "ratio_cpu": med(counted, cpu=True),
        "ratio_spread": {k: v for k, v in summary([p["engine_s"] / p["hand_s"] for p in counted]).items() if k != "all"},
        "ratio_by_order": {o: med(ps) for o, ps in by_order.items()},
        "ratio_sum": rnd(e_w / h_w, 3), "ratio_sum_cpu": rnd(e_c / h_c, 3),
    }
