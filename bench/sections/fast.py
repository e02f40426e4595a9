"""The processor's fast path (issue 17; tl_ui/engine/fast_path.py) against today's eager float32.

Side by side in one process, rounds alternating which side goes first, the same inputs on both sides:
* image forward (embeddings and predictions), EfficientNet-Lite0, 224 px, batch 8: plain model and
  input vs channels-last model and input (+ bf16 autocast where the CPU has it natively);
* image training steps (full fine-tuning and LoRA, batch 8, the engine's own strategies): plain vs
  channels-last;
* text embedding of the sample reviews, MiniLM-L6, batch 8, the engine's `embed_sets`: the given order
  vs batches of similar length (the same dynamic padding on both sides);
* torch.compile (channels-last) once: compile seconds and the forward rate after it, i.e. how many
  images it takes to pay for the compile;
* accuracy: the default linear probe and a short full fine-tune trained with the switch off and on, on
  the same subsets and seeds, scored on held-out examples (the fast path must stay within the plain
  path's interval).

Run: `python -m bench.sections.fast [--quick]` (writes bench/fast-results.json).
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
from bench.harness import ROOT, Clock, alternating, log, paired_ratios, rnd, summary

PROFILES = {
    "quick": {"rounds": 3, "forward_images": 32, "train_images": 16, "text_n": 64, "compile": False,
              "accuracy_n": 100, "accuracy_seeds": [0], "finetune_epochs": 2, "image_heldout_per_class": 10,
              "text_heldout_per_class": 50},
    "full": {"rounds": 7, "forward_images": 64, "train_images": 32, "text_n": 200, "compile": True,
             "accuracy_n": 100, "accuracy_seeds": [0, 1, 2], "finetune_epochs": 3, "image_heldout_per_class": 10,
             "text_heldout_per_class": 50},
}


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

    from tl_ui.engine.fast_path import image_input, inference_autocast

    ds = sample_dataset("image")
    plain, fast = _two_models("image", ds.classes)
    x = image_tensor(plain, ds.items[: cfg["forward_images"]])

    def run(loaded):
        def go():
            model = loaded.model.eval()
            with torch.no_grad(), inference_autocast():
                for i in range(0, len(x), 8):
                    model(image_input(x[i:i + 8]))
        return go

    sides = {"plain": run(plain), "fast": run(fast)}
    for name in sides:   # warm-up
        with switch(name == "fast"):
            sides[name]()
    out = _rates(_side_by_side(sides, cfg["rounds"]), len(x))
    log(f"fast image forward: {out['plain_per_s']} -> {out['fast_per_s']} img/s (x{out['speedup']['median']})")
    if cfg["compile"]:
        out["compile"] = _compiled(fast.model, x)
    return out


def _compiled(model, x) -> dict:
    """torch.compile on the channels-last model: seconds to compile, then the forward rate."""
    import torch

    from tl_ui.engine.fast_path import image_input

    model = copy.deepcopy(model).eval()
    try:
        compiled = torch.compile(model)
        with switch(True), torch.no_grad():
            with Clock() as first:
                compiled(image_input(x[:8]))
            times = []
            for _ in range(5):
                with Clock() as c:
                    for i in range(0, len(x), 8):
                        compiled(image_input(x[i:i + 8]))
                times.append(c.wall)
    except Exception as exc:   # no compiler toolchain: say so
        return {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    return {"first_call_s": rnd(first.wall, 1), "per_s": rnd(len(x) / statistics.median(times), 1),
            "per_s_spread": summary((len(x) / t for t in times), 1)}


def image_training(cfg: dict) -> dict:
    import torch
    from torch import nn

    from tl_ui.config import RunConfig
    from tl_ui.engine.inputs import forward_logits
    from tl_ui.engine.strategies import plan

    ds = sample_dataset("image")
    out = {}
    for strategy in ("full", "lora"):
        plain, fast = _two_models("image", ds.classes)
        x = image_tensor(plain, ds.items[: cfg["train_images"]])
        y = torch.as_tensor(ds.targets[: cfg["train_images"]])
        steps = {}
        for name, loaded in (("plain", plain), ("fast", fast)):
            with switch(name == "fast"):
                model = plan(loaded, RunConfig(strategy=strategy)).model.train()
            # lr 0: the same work every round on both sides, weights unchanged
            opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.0)

            def go(model=model, opt=opt):
                for i in range(0, len(x), 8):
                    nn.functional.cross_entropy(forward_logits(model, {"pixel_values": x[i:i + 8]}), y[i:i + 8]).backward()
                    opt.step()
                    opt.zero_grad(set_to_none=True)
            steps[name] = go
        for name in steps:
            with switch(name == "fast"):
                steps[name]()
        out[strategy] = _rates(_side_by_side(steps, cfg["rounds"]), len(x))
        log(f"fast image {strategy} step: {out[strategy]['plain_per_s']} -> {out[strategy]['fast_per_s']} img/s")
    return out


def text_embedding(cfg: dict) -> dict:
    import torch

    from tl_ui.engine.features import embed_sets

    ds = sample_dataset("text")
    items = ds.items[: cfg["text_n"]]
    with switch(False):
        loaded = load("text", ds.classes)

    def go():
        embed_sets(loaded, [items], batch_size=8, device=torch.device("cpu"), max_length=128, window=None,
                   on_progress=lambda *_: None)

    go()
    out = _rates(_side_by_side({"plain": go, "fast": go}, cfg["rounds"]), len(items))
    log(f"fast text embedding: {out['plain_per_s']} -> {out['fast_per_s']} texts/s")
    return out


def accuracy(cfg: dict) -> dict:
    from bench.data import heldout_accuracy
    from tl_ui.config import RunConfig
    from tl_ui.data import stratified_subset
    from tl_ui.engine import train_run
    from tl_ui.trust.intervals import wilson_interval

    rows = {}
    cases = [("image", "linear_probe", {}), ("text", "linear_probe", {}),
             ("image", "full", {"epochs": cfg["finetune_epochs"]})]
    for modality, strategy, extra in cases:
        data = sample_split(modality, cfg[f"{modality}_heldout_per_class"])
        for on in (False, True):
            correct = total = 0
            runs = []
            for seed in cfg["accuracy_seeds"]:
                subset = stratified_subset(data["pool"], cfg["accuracy_n"], seed)
                config = RunConfig(model_id=MODEL_FOR[modality], strategy=strategy, seed=seed,
                                   **extra)
                with tempfile.TemporaryDirectory(prefix="tlbench-fast-") as d, switch(on):
                    t0 = time.perf_counter()
                    result = train_run(config, Path(d) / "run", dataset=subset)
                    held = heldout_accuracy(Path(d) / "run", data["heldout"]) if result.status == "finished" else None
                    runs.append({"seed": seed, "accuracy": held and held["accuracy"],
                                 "seconds": rnd(time.perf_counter() - t0, 1)})
                if held:
                    correct += round(held["accuracy"] * held["n"])
                    total += held["n"]
            interval = [rnd(v, 4) for v in wilson_interval(correct, total)] if total else None
            rows[f"{modality}/{strategy}/{'fast' if on else 'plain'}"] = {
                "accuracy": rnd(correct / total, 4) if total else None, "n": total, "interval": interval, "runs": runs}
            log(f"fast accuracy {modality}/{strategy} {'fast' if on else 'plain'}: {rows[list(rows)[-1]]['accuracy']}")
    return rows


def run(cfg: dict, timing_only: bool = False, previous: Optional[dict] = None) -> dict:
    """`timing_only`: the speed parts again (on a quiet machine), the accuracy rows kept from `previous`."""
    from tl_ui.engine.fast_path import cpu_has_native_bf16

    out = {"native_bf16": cpu_has_native_bf16(), "image_forward": image_forward(cfg),
           "image_training": image_training(cfg), "text_embedding": text_embedding(cfg)}
    if timing_only and previous and previous.get("accuracy"):
        out["accuracy"] = previous["accuracy"]
        out["accuracy_from"] = previous.get("code") or "an earlier run of this section"
    else:
        out["accuracy"] = accuracy(cfg)
    return out


def main(argv=None) -> None:
    import json

    for key, value in (("HF_HUB_OFFLINE", "1"), ("TOKENIZERS_PARALLELISM", "false")):
        os.environ.setdefault(key, value)
    argv = sys.argv[1:] if argv is None else argv
    mode = "quick" if "--quick" in argv else "full"
    started = time.time()
    from bench.harness import OthersLoad, git_state, machine_info

    others = OthersLoad().start()
    path = ROOT / "bench" / "fast-results.json"
    timing_only = "--timing-only" in argv
    previous = json.loads(path.read_text()) if timing_only and path.exists() else {}
    before = {**(previous.get("fast") or {}), "code": previous.get("code")}
    result = {"fast": run(PROFILES[mode], timing_only, before), "mode": mode, "machine": machine_info(), "code": git_state(),
              "others_cpu_share": others.share(),
              "command": "python -m bench.sections.fast" + (" --quick" if mode == "quick" else "")
              + (" --timing-only" if timing_only else ""),
              "seconds": round(time.time() - started)}
    path.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result["fast"].items() if k != "accuracy"}, indent=1, default=str)[:3000])


if __name__ == "__main__":
    main()
