"""1. The cached-embedding linear probe vs the naive loop (frozen backbone forward every epoch) and vs
one plain forward pass over the same images (the physical floor).

Fair by construction: both loops train and validate at the run's batch size, run the same number of
rounds, alternate which goes first, exclude model loading, and have early stopping off; the ratio is
the median of the per-round ratios with its spread."""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from bench.data import IMAGE_MODEL, default_batch, engine_split, image_tensor, load, sample_dataset
from bench.harness import Clock, alternating, cpu_s, log, paired_ratios, require_finished, rnd, summary


def run(cfg: dict) -> dict:
    import torch

    from tl_ui.core.config import RunConfig

    ds = sample_dataset("image")
    n, epochs, seed, batch = cfg["n"], cfg["epochs"], 0, default_batch()
    config = RunConfig(model_id=IMAGE_MODEL, strategy="linear_probe", epochs=epochs, batch_size=batch,
                       early_stopping_patience=0, max_examples=n, seed=seed)
    split = engine_split(ds, n, config.val_fraction, seed)
    # the order the engine embeds in: training, validation (choose), test (report) examples
    all_items = split["train"][0] + split["choose"][0] + split["report"][0]
    loaded = load("image", split["classes"])
    floor_model = loaded.model.eval()
    pixels = image_tensor(loaded, all_items)  # ready-made tensors for the floor
    with torch.no_grad():  # warm-up (first-call allocations), not timed
        floor_model(pixels[:batch])

    pipe = [_pipeline(loaded, all_items, batch)]
    runs: dict[str, list[dict]] = {"ours": [], "naive": []}
    for order in alternating(cfg["rounds"], "ours", "naive"):
        for side in order:
            r = _ours(config, ds, floor_model, pixels) if side == "ours" else _naive(config, split)
            runs[side].append(r)
            log(f"probe {side}: " + ", ".join(f"{k}={v:.2f}" for k, v in r.items() if isinstance(v, float)))
    pipe.append(_pipeline(loaded, all_items, batch))

    ours, naive = runs["ours"], runs["naive"]
    out = {
        "settings": {"model": IMAGE_MODEL, "n_images": len(all_items), "n_train": len(split["train"][0]),
                     "n_choose": len(split["choose"][0]), "n_report": len(split["report"][0]),
                     "epochs": epochs, "batch_size": batch, "naive_batch_size": batch,
                     "embedding_batch": ours[0]["embedding_batch"], "rounds": cfg["rounds"],
                     "early_stopping": "off (same work on both sides)", "threads": torch.get_num_threads(),
                     "estimator": "median of per-round ratios (rounds alternate which side goes first)",
                     "timing": "wall and process CPU seconds; model loading excluded on both sides; the forward-"
                               "pass floor is measured batch by batch inside each of our runs"},
        "runs": runs,
        "target_naive_over_ours": rnd(0.8 * epochs, 2),
        "data_pipeline_s": rnd(statistics.median(pipe)),
    }
    for label, side, wall, cpu in (("ours_fit", ours, "fit_s", "fit_cpu_s"), ("ours_embed", ours, "embed_s", "embed_cpu_s"),
                                   ("ours_head", ours, "head_s", "head_cpu_s"),
                                   ("ours_train_run", ours, "train_run_wall_s", "train_run_cpu_s"),
                                   ("naive", naive, "total_s", "total_cpu_s"),
                                   ("naive_without_per_epoch_val", naive, "no_val_s", "no_val_cpu_s"),
                                   ("forward", ours, "floor_s", "floor_cpu_s")):
        out[f"{label}_s"] = summary(r[wall] for r in side)
        out[f"{label}_cpu_s"] = summary(r[cpu] for r in side)
    for tag, wall in (("", True), ("_cpu", False)):
        k = "" if wall else "_cpu"
        out[f"ratio_naive_over_ours{tag}"] = paired_ratios([r[f"total{k}_s"] for r in naive],
                                                           [r[f"fit{k}_s"] for r in ours], 2)
        out[f"ratio_naive_no_val_over_ours{tag}"] = paired_ratios([r[f"no_val{k}_s"] for r in naive],
                                                                  [r[f"fit{k}_s"] for r in ours], 2)
        # each of our runs against the floor measured inside it
        out[f"ratio_ours_over_forward{tag}"] = paired_ratios([r[f"fit{k}_s"] for r in ours],
                                                             [r[f"floor{k}_s"] for r in ours])
    out["embedding_batch_ratio_median"] = rnd(statistics.median(
        e / f for r in ours for _, e, f in r["batch_pairs"] if e is not None), 3)
    return out


def _ours(config, ds, floor_model, pixels) -> dict:
    """train_run, timed from RunStarted (model loaded) to the last EpochEnd (head trained and validated).

    The floor is measured inside the same run: after each embedding batch the engine reports Progress and
    the listener runs the plain forward pass of the same images (ready-made tensors, same batch) on a second
    copy of the model. Engine time is the time outside the listener."""
    import torch

    from tl_ui.engine import train_run

    rec = {"exit": None, "exit_cpu": None, "done": 0, "embed": [0.0, 0.0], "head": [0.0, 0.0],
           "floor": [0.0, 0.0], "pairs": []}

    def listener(event) -> None:
        enter, enter_cpu = time.perf_counter(), cpu_s()
        interval = None
        if rec["exit"] is not None and event.kind in ("progress", "step", "epoch"):
            phase = "embed" if event.kind == "progress" else "head"
            interval = enter - rec["exit"]
            rec[phase][0] += interval
            rec[phase][1] += enter_cpu - rec["exit_cpu"]
        if event.kind == "progress":
            chunk = pixels[rec["done"]:event.done]
            rec["done"] = event.done
            with Clock() as c, torch.no_grad():
                floor_model(chunk)
            rec["floor"][0] += c.wall
            rec["floor"][1] += c.cpu
            rec["pairs"].append((len(chunk), interval, c.wall))
        rec["exit"], rec["exit_cpu"] = time.perf_counter(), cpu_s()

    with tempfile.TemporaryDirectory(prefix="tlbench-probe-") as d, Clock() as whole:
        res = train_run(config, Path(d) / "run", on_event=listener, dataset=ds)
    require_finished(res, "probe: train_run")
    assert rec["done"] == len(pixels), (rec["done"], len(pixels))
    fit = [rec["embed"][i] + rec["head"][i] for i in (0, 1)]
    return {"fit_s": fit[0], "fit_cpu_s": fit[1], "embed_s": rec["embed"][0], "embed_cpu_s": rec["embed"][1],
            "head_s": rec["head"][0], "head_cpu_s": rec["head"][1], "floor_s": rec["floor"][0],
            "floor_cpu_s": rec["floor"][1], "train_run_wall_s": whole.wall - rec["floor"][0],
            "train_run_cpu_s": whole.cpu - rec["floor"][1], "accuracy": res.metrics["accuracy"],
            "batch_pairs": rec["pairs"], "embedding_batch": rec["pairs"][0][0]}


def _naive(config, split) -> dict:
    """The ordinary loop: frozen backbone (eval mode, no gradients), head trained, forward every epoch, and
    validation every epoch (as the engine does: it keeps the best epoch), then the test examples once (as the
    engine does), all at the run's batch size."""
    import torch
    from torch import nn

    from tl_ui.engine.models.inputs import forward_logits, make_dataset, make_loader

    (train_items, train_t), (val_items, val_t), (report_items, report_t) = split["train"], split["choose"], split["report"]
    epochs, batch = config.resolved_epochs, config.batch_size
    loaded = load("image", split["classes"])
    model = loaded.model.eval()
    head = loaded.head_modules()[-1]
    for p in model.parameters():
        p.requires_grad_(False)
    for p in head.parameters():
        p.requires_grad_(True)
    train_loader = make_loader(loaded, make_dataset(loaded, train_items, train_t), batch, shuffle=True,
                               seed=config.seed)
    val_loader = make_loader(loaded, make_dataset(loaded, val_items, val_t), batch, shuffle=False)
    report_loader = make_loader(loaded, make_dataset(loaded, report_items, report_t), batch, shuffle=False)
    opt = torch.optim.AdamW(head.parameters(), lr=config.resolved_learning_rate, weight_decay=config.weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    tr_w = tr_c = va_w = va_c = 0.0
    correct = 0
    with Clock() as total:
        for _ in range(epochs):
            with Clock() as c:
                for b in train_loader:
                    loss_fn(forward_logits(model, b), b["labels"]).backward()
                    opt.step()
                    opt.zero_grad(set_to_none=True)
            tr_w, tr_c = tr_w + c.wall, tr_c + c.cpu
            with Clock() as c, torch.no_grad():
                correct = sum((forward_logits(model, b).argmax(-1) == b["labels"]).sum().item() for b in val_loader)
            va_w, va_c = va_w + c.wall, va_c + c.cpu
        with Clock() as test, torch.no_grad():
            for b in report_loader:
                forward_logits(model, b)
    # Without per-epoch validation the naive loop would still validate once at the end.
    return {"total_s": total.wall, "total_cpu_s": total.cpu, "train_s": tr_w, "val_s": va_w, "test_s": test.wall,
            "no_val_s": tr_w + va_w / epochs + test.wall, "no_val_cpu_s": tr_c + va_c / epochs + test.cpu,
            "last_val_acc": correct / len(val_items)}


def _pipeline(loaded, items, batch: int) -> float:
    """The engine's data pipeline alone (decode the PNGs, transform, collate), for the record."""
    from tl_ui.engine.models.inputs import make_dataset, make_loader

    with Clock() as pipe:
        for _ in make_loader(loaded, make_dataset(loaded, items), batch, shuffle=False):
            pass
    return pipe.wall
