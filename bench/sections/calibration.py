"""Calibration that cannot sharpen beyond the data (issue 32, item 2).

Data: the shipped samples, split as in the roles section (digits: 10 per class held out, the 200
others in the pool; reviews: 50 per class held out, 300 in the pool). Per seed, the default linear
probe trains on the whole pool (the app's three-way split inside it: the temperature is chosen on its
validation examples). Then, on the untouched held-out examples, through the exported model as a user
loads it (`Predictor`, the temperature folded into its last layer):

* ECE after calibration (the export's probabilities) against before (the temperature taken back out),
  with the range the per-bin counts cannot rule out (`trust.ece_interval`);
* the temperature, how it was chosen (`fit`: fitted / limited / kept at 1) and what the plain,
  unbounded fit would have given (`nll_optimum`).

A separable set: digits "0" and "1" only (the pool's 40), where every validation example is right.
There the plain fit drove T to its floor (the faces run in the issue: T = 0.07, "100.0%" for
anything). Recorded: the temperature, and the exported model's top probability on a 50/50 blend of
a held-out "0" and a held-out "1" (an input between the classes), beside what the plain fit's
temperature would have made of the same answer.

A run that does not finish stops the section with its message (no figure from a failed run).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from bench.data import MODEL_FOR, sample_split
from bench.harness import log, mean_sd, require_finished

PROFILE = {
    "quick": {"seeds": [0, 1, 2], "modalities": ["image"], "image_heldout_per_class": 10,
              "text_heldout_per_class": 50, "separable": ["0", "1"]},
    "full": {"seeds": [0, 1, 2], "modalities": ["image", "text"], "image_heldout_per_class": 10,
             "text_heldout_per_class": 50, "separable": ["0", "1"]},
}


def run(cfg: dict, checkpoint=lambda partial: None) -> dict:
    out: dict = {"settings": dict(cfg)}
    for modality in cfg["modalities"]:
        data = sample_split(modality, cfg[f"{modality}_heldout_per_class"])
        rows = []
        for seed in cfg["seeds"]:
            rows.append(one_run(modality, data["pool"], data["heldout"], seed))
            log(f"calibration {modality} seed {seed}: {rows[-1]}")
            out[modality] = summarise(rows)
            checkpoint(out)
    if cfg.get("separable"):
        data = sample_split("image", cfg["image_heldout_per_class"])
        rows = []
        for seed in cfg["seeds"]:
            rows.append(separable_run(data, cfg["separable"], seed))
            log(f"calibration separable seed {seed}: {rows[-1]}")
            out["separable"] = summarise(rows)
            checkpoint(out)
    return out


def summarise(rows: list[dict]) -> dict:
    keys = ("ece_before", "ece_after", "ece_change", "ece_plain_fit", "temperature", "nll_optimum",
            "top_probability_between", "top_probability_between_plain_fit")
    summary = {k: mean_sd(r[k] for r in rows if r.get(k) is not None) for k in keys
               if any(r.get(k) is not None for r in rows)}
    if any("ece_change" in r for r in rows):
        summary["not_worse"] = f"{sum(r['ece_change'] <= 1e-9 for r in rows)}/{len(rows)}"
    summary["fits"] = [r["fit"] for r in rows]
    summary["runs"] = rows
    return summary


def _train(modality: str, dataset, seed: int, folder: Path):
    from tl_ui.core.config import RunConfig
    from tl_ui.engine import train_run

    config = RunConfig(model_id=MODEL_FOR[modality], strategy="linear_probe", seed=seed)
    return require_finished(train_run(config, folder / "run", dataset=dataset), f"calibration {modality} seed {seed}")


def _held_out_probs(folder: Path, held) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from tl_ui.engine import Predictor

    predictor = Predictor.load(folder / "run")
    probs = predictor.predict_proba(held.items).numpy().astype(np.float64)   # calibrated: T in the export
    targets = np.array([predictor.classes.index(label) for label in held.labels])
    return probs, targets, predictor.classes


def _rescaled(probs: np.ndarray, factor: float) -> np.ndarray:
    """softmax(log p * factor): the export's answer at another temperature (T_new = T / factor)."""
    from tl_ui.trust import softmax

    return softmax(np.log(np.clip(probs, 1e-300, None)) * factor)


def one_run(modality: str, pool, held, seed: int) -> dict:
    from tl_ui.trust import ece_interval, expected_calibration_error

    with tempfile.TemporaryDirectory(prefix="tlbench-calibration-") as d:
        result = _train(modality, pool, seed, Path(d))
        probs, targets, _ = _held_out_probs(Path(d), held)
    calibration = result.metrics["calibration"]
    temperature = float(calibration["temperature"])
    before = _rescaled(probs, temperature)   # the temperature taken back out: the model's own probabilities
    ece_before, ece_after = expected_calibration_error(before, targets), expected_calibration_error(probs, targets)
    plain = calibration.get("nll_optimum")      # the unbounded fit, as before issue 32
    ece_plain = expected_calibration_error(_rescaled(probs, temperature / plain), targets) if plain else None
    return {"seed": seed, "n_heldout": len(targets), "accuracy_heldout": round(float((probs.argmax(1) == targets).mean()), 4),
            "temperature": round(temperature, 4), "fit": calibration.get("fit"),
            "nll_optimum": calibration.get("nll_optimum"), "n_validation": result.metrics["evaluation"].get("n_chosen"),
            "ece_before": round(ece_before, 4), "ece_after": round(ece_after, 4),
            "ece_change": round(ece_after - ece_before, 4),
            "ece_plain_fit": None if ece_plain is None else round(ece_plain, 4),
            "ece_before_range": ece_interval(before, targets), "ece_after_range": ece_interval(probs, targets)}


def _blend(a: str, b: str, folder: Path) -> str:
    from PIL import Image

    first, second = Image.open(a).convert("RGB"), Image.open(b).convert("RGB")
    path = folder / "between.png"
    Image.blend(first, second.resize(first.size), 0.5).save(path)
    return str(path)


def separable_run(data: dict, classes: list[str], seed: int) -> dict:
    from tl_ui.engine import Predictor

    pool, held = data["pool"], data["heldout"]
    pick = lambda ds: ds.subset([i for i, label in enumerate(ds.labels) if label in classes])   # noqa: E731
    pool, held = pick(pool), pick(held)
    with tempfile.TemporaryDirectory(prefix="tlbench-separable-") as d:
        folder = Path(d)
        result = _train("image", pool, seed, folder)
        probs, targets, _ = _held_out_probs(folder, held)
        firsts = [item for item, label in zip(held.items, held.labels) if label == classes[0]]
        seconds = [item for item, label in zip(held.items, held.labels) if label == classes[1]]
        between = _blend(firsts[seed % len(firsts)], seconds[seed % len(seconds)], folder)
        answer = Predictor.load(folder / "run").predict_proba([between]).numpy().astype(np.float64)
    calibration = result.metrics["calibration"]
    temperature = float(calibration["temperature"])
    plain = calibration.get("nll_optimum")
    row = {"seed": seed, "n_pool": len(pool), "n_validation": result.metrics["evaluation"].get("n_chosen"),
           "validation_all_right": calibration.get("fit") == "kept at 1",
           "accuracy_heldout": round(float((probs.argmax(1) == targets).mean()), 4),
           "temperature": round(temperature, 4), "fit": calibration.get("fit"), "nll_optimum": plain,
           "top_probability_between": round(float(answer.max()), 6),
           "other_probability_between": float(answer.min())}
    if plain:   # what the unbounded fit's temperature would have answered for the same input
        rescaled = _rescaled(answer, temperature / plain)
        row["top_probability_between_plain_fit"] = round(float(rescaled.max()), 6)
        row["other_probability_between_plain_fit"] = float(rescaled.min())
    return row


def main() -> None:
    """`python -m bench.sections.calibration [--quick]`: the section alone, into bench/calibration-results.json."""
    import json
    import sys
    import time

    mode = "quick" if "--quick" in sys.argv[1:] else "full"
    started = time.time()
    command = "python -m bench.sections.calibration" + (" --quick" if mode == "quick" else "")

    def save(partial: dict) -> None:
        from bench.harness import git_state, machine_info

        Path("bench/calibration-results.json").write_text(json.dumps(
            {"calibration": partial, "command": command, "seconds": round(time.time() - started),
             "machine": machine_info(), **git_state()}, indent=1))

    save(run(PROFILE[mode], checkpoint=save))


if __name__ == "__main__":
    main()
