"""Issue 40. Strategy `auto` against each fixed strategy, and the selection optimism the three-way split guards.

For each shipped sample (digits, reviews) and seed, on one split (the seed's: the same train / validation /
test examples for every run):

* `auto` within `budget_minutes` (tl_ui/engine/search/run.py): its test accuracy with its interval, the winner,
  the winner's validation accuracy, and **optimism** = the winner's validation accuracy − its test accuracy (what a
  tool that reports the number it chose on overstates; the three-way split reports the test one);
* each fixed strategy with the settings the search tries first (tl_ui/engine/planning/search_plan.first_tries):
  its test accuracy with its interval.

Per seed: whether auto's test accuracy lies within the interval of the best fixed strategy's, and the wall time
of the search against its budget. Quick: the digits at 64 px (150 of them), one seed, a two-minute budget.

Run:  python -m bench.sections.auto_search [--quick]     (writes bench/auto-search-results[-quick].json)
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from bench.data import MODEL_FOR, sample_dataset
from bench.harness import log, mean_sd, require_finished

PROFILE = {
    "quick": {"modalities": ["image"], "seeds": [0], "budget_minutes": 2.0, "image_size": 64, "max_examples": 150,
              "fixed": ["linear_probe", "partial"]},
    "full": {"modalities": ["image", "text"], "seeds": [0, 1, 2], "budget_minutes": 3.0, "image_size": None,
             "max_examples": None, "fixed": ["linear_probe", "partial", "full", "lora", "setfit"]},
}


def run(cfg: dict, checkpoint=lambda partial: None) -> dict:
    out: dict = {"settings": dict(cfg)}
    for modality in cfg["modalities"]:
        dataset = sample_dataset(modality)
        rows = []
        for seed in cfg["seeds"]:
            row = {"seed": seed, "auto": auto_run(modality, dataset, seed, cfg), "fixed": {}}
            for strategy in cfg["fixed"]:
                if strategy == "setfit" and modality != "text":
                    continue
                row["fixed"][strategy] = fixed_run(modality, dataset, seed, strategy, cfg)
            best = max(row["fixed"].values(), key=lambda r: r["accuracy"])
            row["best_fixed"] = best["strategy"]
            row["auto_within_best_interval"] = bool(best["accuracy_ci"][0] <= row["auto"]["accuracy"]
                                                    <= best["accuracy_ci"][1])
            log(f"auto_search {modality} seed {seed}: {json.dumps(row)}")
            rows.append(row)
            out[modality] = summarise(rows)
            checkpoint(out)
    return out


def summarise(rows: list[dict]) -> dict:
    strategies = sorted({s for r in rows for s in r["fixed"]})
    return {
        "auto_accuracy": mean_sd(r["auto"]["accuracy"] for r in rows),
        "fixed_accuracy": {s: mean_sd(r["fixed"][s]["accuracy"] for r in rows if s in r["fixed"]) for s in strategies},
        "optimism": mean_sd(r["auto"]["optimism"] for r in rows),
        "auto_within_best_interval": f"{sum(r['auto_within_best_interval'] for r in rows)}/{len(rows)}",
        "seconds_over_budget": mean_sd(r["auto"]["seconds"] - r["auto"]["budget_s"] for r in rows),
        "winners": [r["auto"]["winner"] for r in rows],
        "runs": rows,
    }


def _options(modality: str, seed: int, cfg: dict) -> dict:
    options = {"model_id": MODEL_FOR[modality], "seed": seed}
    if cfg.get("max_examples"):
        options["max_examples"] = cfg["max_examples"]
    if modality == "image" and cfg.get("image_size"):
        options["image_size"] = cfg["image_size"]
    return options


def auto_run(modality: str, dataset, seed: int, cfg: dict) -> dict:
    from tl_ui.core.config import RunConfig
    from tl_ui.engine import train_run

    config = RunConfig.from_options({**_options(modality, seed, cfg), "strategy": "auto",
                                     "budget_minutes": cfg["budget_minutes"]}, modality=modality)
    with tempfile.TemporaryDirectory(prefix="tlbench-auto-") as d:
        started = time.time()
        result = require_finished(train_run(config, Path(d) / "run", dataset=dataset), f"auto {modality} seed {seed}")
        seconds = time.time() - started
    metrics, search = result.metrics, result.metrics["search"]
    winner = next(t for t in search["trials"] if t["state"] == "complete" and
                  (t["strategy"], t["settings"]) == (search["winner"]["strategy"], search["winner"]["settings"]))
    return {"accuracy": metrics["accuracy"], "accuracy_ci": metrics["accuracy_ci"], "n_test": metrics["n_val"],
            "winner": winner["name"], "winner_val": winner["val_score"],
            "optimism": round(winner["val_score"] - metrics["accuracy"], 4), "seconds": round(seconds, 1),
            "budget_s": search["budget_s"], "sentence": search["sentence"],
            "trials": [(t["name"], t["state"], t["val_score"], t["seconds"]) for t in search["trials"]]}


def fixed_run(modality: str, dataset, seed: int, strategy: str, cfg: dict) -> dict:
    from tl_ui.core.config import RunConfig
    from tl_ui.engine import train_run
    from tl_ui.engine.planning.search_plan import first_tries

    candidate = next(c for c in first_tries(modality, lambda c: 0.0) if c.strategy == strategy)
    base = RunConfig.from_options({**_options(modality, seed, cfg), "strategy": "auto"}, modality=modality)
    config = candidate.config(base)
    with tempfile.TemporaryDirectory(prefix="tlbench-fixed-") as d:
        started = time.time()
        result = require_finished(train_run(config, Path(d) / "run", dataset=dataset),
                                  f"{strategy} {modality} seed {seed}")
        seconds = time.time() - started
    return {"strategy": strategy, "name": candidate.describe(), "accuracy": result.metrics["accuracy"],
            "accuracy_ci": result.metrics["accuracy_ci"], "seconds": round(seconds, 1)}


def markdown(results: dict) -> str:
    """The tables of docs/benchmarks.md."""
    lines = []
    for modality in ("image", "text"):
        block = results.get(modality)
        if not block:
            continue
        strategies = list(block["fixed_accuracy"])
        lines += [f"**{modality}** (seeds: {len(block['runs'])})", "",
                  "| seed | auto (winner) | " + " | ".join(strategies) + " | winner's validation − test | seconds (budget) |",
                  "|---|---|" + "---|" * len(strategies) + "---|---|"]
        for r in block["runs"]:
            a = r["auto"]
            cells = [f"{r['fixed'][s]['accuracy']:.1%} ({r['fixed'][s]['accuracy_ci'][0]:.0%}–"
                     f"{r['fixed'][s]['accuracy_ci'][1]:.0%})" if s in r["fixed"] else "–" for s in strategies]
            lines.append(f"| {r['seed']} | {a['accuracy']:.1%} ({a['accuracy_ci'][0]:.0%}–{a['accuracy_ci'][1]:.0%}; "
                         f"{a['winner']}) | " + " | ".join(cells) +
                         f" | {100 * a['optimism']:+.1f} points | {a['seconds']:.0f} ({a['budget_s']:.0f}) |")
        lines += ["", f"auto within the best fixed strategy's interval: {block['auto_within_best_interval']}; "
                      f"mean optimism {100 * block['optimism']['mean']:+.1f} points.", ""]
    return "\n".join(lines)


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if "--markdown" in argv:
        name = "bench/auto-search-results-quick.json" if "--quick" in argv else "bench/auto-search-results.json"
        print(markdown(json.loads(Path(name).read_text())["auto_search"]))
        return
    mode = "quick" if "--quick" in argv else "full"
    path = Path(f"bench/auto-search-results{'-quick' if mode == 'quick' else ''}.json")
    started = time.time()

    def save(partial: dict) -> None:
        path.write_text(json.dumps({"auto_search": partial, "command": f"python -m bench.sections.auto_search"
                                    f"{' --quick' if mode == 'quick' else ''}", "seconds": round(time.time() - started)},
                                   indent=1))

    save(run(PROFILE[mode], checkpoint=save))


if __name__ == "__main__":
    main()
