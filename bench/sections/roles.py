"""9. Held-out roles: what the old design overstates, what the three-way split costs, and whether
the reported intervals, calibration and prediction sets hold on examples nobody touched.

Data: the shipped samples (digits: 10 per class held out, 200 in the pool; reviews: 50 per class
held out, 300 in the pool). For each size N and seed, a stratified N-example subset trains the
default image / text linear probe twice:

* `same_set` – the old design: the epoch (early stopping) is chosen on the examples the headline is
  reported on;
* `three_way` – the app's design (tl_ui/engine/evaluation/roles.py): train / choose / report, disjoint.

"true" is the exported model's accuracy on the untouched held-out set (through Predictor, as a user
loads it). optimism = reported − true; cost = true(three_way) − true(same_set) (fewer training
examples). For three_way it also records whether the true accuracy fell inside the reported 95%
interval, ECE before/after calibration on the held-out set, and the prediction sets' coverage and
size on the held-out set at the 90% level.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from bench.data import MODEL_FOR, sample_split
from bench.harness import log, mean_sd, require_finished

DESIGNS = ("same_set", "three_way")


def run(cfg: dict, checkpoint=lambda partial: None) -> dict:
    data = {"image": sample_split("image", cfg["image_heldout_per_class"]),
            "text": sample_split("text", cfg["text_heldout_per_class"])}
    out: dict = {"settings": dict(cfg), "image": {}, "text": {}, "recommended": {}}
    for n in cfg["sizes"]:
        for modality in cfg.get("modalities", ("image", "text")):
            if n > len(data[modality]["pool"]):
                continue
            cell = {}
            for design in DESIGNS:
                rows = [one_run(modality, design, n, seed, data[modality]) for seed in cfg["seeds"]]
                for row in rows:
                    log(f"roles {modality} {design} N={n}: {row}")
                cell[design] = summarise(rows)
            cell["cost"] = mean_sd(a["true"] - b["true"] for a, b in
                                   zip(cell["three_way"]["runs"], cell["same_set"]["runs"]))
            out[modality][str(n)] = cell
            checkpoint(out)
        out["recommended"][str(n)] = recommend(out, n)
    return out


def recommend(out: dict, n: int) -> str:
    """The design for N examples. Only an honest design may be the default; among honest designs
    (today: three_way) the one with the smaller cost. Recorded so that the engine's choice is
    checked against this table (tests/unit/test_roles_design.py)."""
    return "three_way"


def summarise(rows: list[dict]) -> dict:
    keys = ("reported", "true", "optimism", "ece_before", "ece_after", "set_coverage", "set_size")
    summary = {k: mean_sd(r[k] for r in rows if r.get(k) is not None) for k in keys
               if any(r.get(k) is not None for r in rows)}
    inside = [r["true_in_interval"] for r in rows if r.get("true_in_interval") is not None]
    summary["true_in_interval"] = f"{sum(inside)}/{len(inside)}" if inside else None
    summary["runs"] = rows
    return summary


def one_run(modality: str, design: str, n: int, seed: int, data: dict) -> dict:
    from tl_ui.core.config import RunConfig
    from tl_ui.data import stratified_subset
    from tl_ui.engine import Predictor, train_run
    from tl_ui.trust import expected_calibration_error, set_coverage_and_size, softmax

    subset = stratified_subset(data["pool"], n, seed)
    config = RunConfig(model_id=MODEL_FOR[modality], strategy="linear_probe", seed=seed, evaluation=design)
    with tempfile.TemporaryDirectory(prefix="tlbench-roles-") as d:
        result = train_run(config, Path(d) / "run", dataset=subset)
        require_finished(result, f"roles {modality} {design} n={n} seed {seed}")
        predictor = Predictor.load(Path(d) / "run")
        held = data["heldout"]
        probs = predictor.predict_proba(held.items).numpy()   # calibrated: T is folded into the export
        targets = np.array([predictor.classes.index(label) for label in held.labels])
        metrics = result.metrics
        true = float((probs.argmax(1) == targets).mean())
        row = {"seed": seed, "reported": metrics["accuracy"], "n_reported": metrics["n_val"], "true": round(true, 4),
               "optimism": round(metrics["accuracy"] - true, 4), "n_heldout": len(held)}
        if design == "three_way":
            low, high = metrics["accuracy_ci"]
            temperature = metrics["calibration"]["temperature"]
            uncalibrated = softmax(np.log(np.clip(probs, 1e-12, None)), 1.0 / temperature)
            qhat = predictor.conformal.get("thresholds", {}).get("0.9")
            coverage, size = set_coverage_and_size(probs, targets, qhat) if qhat is not None else (None, None)
            row.update(true_in_interval=bool(low <= true <= high), ci=[low, high],
                       ece_before=expected_calibration_error(uncalibrated, targets),
                       ece_after=expected_calibration_error(probs, targets),
                       set_coverage=coverage, set_size=size)
    return row


def main() -> None:
    """`python -m bench.sections.roles`: run the section alone and write bench/roles-results.json."""
    import json
    import time

    cfg = {"sizes": [50, 100, 200], "seeds": [0, 1, 2], "image_heldout_per_class": 10, "text_heldout_per_class": 50}
    started = time.time()

    def save(partial: dict) -> None:
        Path("bench/roles-results.json").write_text(json.dumps(
            {"roles": partial, "command": "python -m bench.sections.roles",
             "seconds": round(time.time() - started)}, indent=1))

    save(run(cfg, checkpoint=save))


if __name__ == "__main__":
    main()
