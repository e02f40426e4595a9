"""8. The figures the app's pages quote, measured: held-out accuracy of the linear probe and LoRA on the
sample reviews at the app's defaults (mean ± sd over seeds), and for every strategy x modality the
app's time estimate (`tl_ui.engine.estimate_seconds`) against the wall time of real runs.

Per seed, 50 reviews of each class (100 of the 400) are held out, drawn afresh for each seed, and the
other 300 go to the engine at the app's defaults (it keeps 20% for its own validation); the probe and
LoRA see the same split within a seed, in alternating order, so their difference is paired. Images:
6 digits per class (60 of the 300) held out, 240 to the engine. A run's wall time is what the app's
worker process takes, from spawning it to its exit (bench/sections/app_run.py: interpreter start,
imports, model loading, training, calibration, test examples, export; the estimate counts these
fixed costs too), after one small untimed run per modality (disk caches warm, as on a server that
has run something before). The page promises estimates "within about 2x": ratio = measured /
estimate in [0.5, 2]."""
from __future__ import annotations

import os
import statistics
import tempfile
from pathlib import Path

from bench.data import HELDOUT_SEED, MODEL_FOR, heldout_accuracy, heldout_split, sample_dataset
from bench.harness import OthersLoad, log, mean_sd, require_finished, rnd, summary, wait_for_quiet
from bench.sections import app_run

ACCURACY_STRATEGIES = ("linear_probe", "lora")
WITHIN = (0.5, 2.0)  # "within about 2x"
BUSY = 0.25  # other processes' CPU share above which a run's wall time says little about a quiet machine


def _train(modality: str, strategy: str, seed: int, split: dict) -> dict:
    """One run at the app's defaults (a RunConfig with only model, strategy and seed set), run the way the
    app runs it (bench/sections/app_run.py), scored on the held-out examples."""
    from tl_ui.core.config import RunConfig
    from tl_ui.engine import estimate_seconds

    config = RunConfig(model_id=MODEL_FOR[modality], strategy=strategy, seed=seed)
    pool = split["pool"]
    max_wait = float(os.environ.get("TLBENCH_MAX_WAIT", "300"))
    quiet = wait_for_quiet(timeout_s=min(max_wait, 300)) if max_wait > 0 else {}
    with tempfile.TemporaryDirectory(prefix="tlbench-claims-") as d:
        others = OthersLoad().start()
        res = app_run.run(config, pool, Path(d) / "run")
        others_share = others.share()
        require_finished(res, f"claims {modality}/{strategy} seed {seed}")
        held = heldout_accuracy(Path(d) / "run", split["heldout"])
    m = res["metrics"]
    return {"modality": modality, "strategy": strategy, "seed": seed, "n": len(pool), "wall_s": round(res["wall_s"], 2),
            "cpu_s": round(res["cpu_s"], 2), "engine_s": rnd(res["engine_s"], 2), "how": res["how"],
            "estimate_s": round(estimate_seconds(config, len(pool)), 2),
            "epochs_run": res["epochs_run"], "epochs": config.resolved_epochs, "batch_size": config.batch_size,
            "heldout_accuracy": held["accuracy"], "heldout_macro_f1": held["macro_f1"], "n_heldout": held["n"],
            "engine_val_accuracy": round(m["accuracy"], 4), "engine_n_val": m["n_val"],
            "others_share": others_share, "waited_s": quiet.get("waited_s")}


def _warm_up(modality: str) -> None:
    """One small untimed run first (disk caches, as on a server that has run something before)."""
    from tl_ui.core.config import RunConfig

    config = RunConfig(model_id=MODEL_FOR[modality], strategy="linear_probe", epochs=1, max_examples=60)
    with tempfile.TemporaryDirectory(prefix="tlbench-warm-") as d:
        require_finished(app_run.run(config, sample_dataset(modality), Path(d) / "run"), f"claims: {modality} warm-up run")


def run(cfg: dict, previous: dict | None = None) -> dict:
    """The whole section; with `previous` (a claims result), only the time comparisons whose runs were all
    disturbed by other processes are timed again (`--retime-busy`) and added to the earlier runs."""
    runs: list[dict] = list((previous or {}).get("runs", []))

    def record(r: dict) -> None:
        runs.append(r)
        log(f"claims {r['modality']}/{r['strategy']} seed {r['seed']}: held-out {r['heldout_accuracy']:.3f}, "
            f"{r['wall_s']:.1f} s (estimate {r['estimate_s']:.1f} s), {r['epochs_run']}/{r['epochs']} epochs; other "
            f"processes used {r['others_share']} of the CPU meanwhile")

    if previous:
        return _retime(previous, cfg, record, runs)
    _warm_up("text")
    reviews = sample_dataset("text")
    for i, seed in enumerate(cfg["seeds"]):
        split = heldout_split(reviews, cfg["text_heldout_per_class"], seed=HELDOUT_SEED + seed)
        for strategy in (ACCURACY_STRATEGIES if i % 2 == 0 else ACCURACY_STRATEGIES[::-1]):
            record(_train("text", strategy, seed, split))
    text_split = heldout_split(reviews, cfg["text_heldout_per_class"], seed=HELDOUT_SEED + cfg["seeds"][0])
    image_split = heldout_split(sample_dataset("image"), cfg["image_heldout_per_class"], seed=HELDOUT_SEED)
    _warm_up("image")
    for modality, strategy in cfg["time_runs"]:
        if modality == "text" and strategy in ACCURACY_STRATEGIES:
            continue  # timed already, once per seed
        for seed in cfg.get("time_seeds", [0]):
            for attempt in range(1 + cfg.get("busy_retries", 0)):  # again if other processes disturbed it
                record(_train(modality, strategy, seed, text_split if modality == "text" else image_split))
                if (runs[-1]["others_share"] or 0) <= BUSY:
                    break
    return summarise(runs, cfg)


def _retime(previous: dict, cfg: dict, record, runs: list[dict]) -> dict:
    busy = [k for k, t in summarise(list(previous["runs"]), cfg)["time_estimate"].items() if t["machine_busy"]]
    log(f"claims: timing again {busy or 'nothing'} (every earlier run of these was disturbed)")
    splits = {"text": heldout_split(sample_dataset("text"), cfg["text_heldout_per_class"], seed=HELDOUT_SEED
                                    + cfg["seeds"][0]),
              "image": heldout_split(sample_dataset("image"), cfg["image_heldout_per_class"], seed=HELDOUT_SEED)}
    for modality in sorted({k.split("/")[0] for k in busy}):
        _warm_up(modality)
    for key in busy:
        modality, strategy = key.split("/")
        for _ in range(1 + cfg.get("busy_retries", 0)):
            record({**_train(modality, strategy, cfg["seeds"][0], splits[modality]), "purpose": "time"})
            if (runs[-1]["others_share"] or 0) <= BUSY:
                break
    return {**summarise(runs, cfg), "retimed": busy}


def summarise(runs: list[dict], cfg: dict) -> dict:
    """Accuracy mean ± sd per strategy on the sample reviews, the paired LoRA - probe difference, and
    measured vs estimated seconds per modality/strategy."""
    text = {s: [r for r in runs if r["modality"] == "text" and r["strategy"] == s and r.get("purpose") != "time"]
            for s in ACCURACY_STRATEGIES}
    accuracy = {s: {**mean_sd(r["heldout_accuracy"] for r in rs), "seeds": [r["seed"] for r in rs],
                    "engine_val_accuracy": mean_sd(r["engine_val_accuracy"] for r in rs)} for s, rs in text.items()}
    by_seed = {s: {r["seed"]: r["heldout_accuracy"] for r in rs} for s, rs in text.items()}
    both = sorted(set(by_seed["lora"]) & set(by_seed["linear_probe"]))
    diff = mean_sd(by_seed["lora"][k] - by_seed["linear_probe"][k] for k in both)
    times = {}
    for key in sorted({f"{r['modality']}/{r['strategy']}" for r in runs}):
        every = [r for r in runs if f"{r['modality']}/{r['strategy']}" == key]
        # the estimate is for a machine doing nothing else: runs during which other processes used more than
        # BUSY of the CPU are left out of the comparison when there are undisturbed ones (all are listed)
        rs = [r for r in every if (r.get("others_share") or 0) <= BUSY] or every
        measured, estimate = statistics.median(r["wall_s"] for r in rs), rs[0]["estimate_s"]
        ratio = measured / estimate
        times[key] = {"n_examples": rs[0]["n"], "epochs": rs[0]["epochs"], "estimate_s": rnd(estimate, 1),
                      "measured_s": rnd(measured, 1), "measured_spread_s": summary([r["wall_s"] for r in rs], 1),
                      "engine_s": rnd(statistics.median(r.get("engine_s") or 0 for r in rs), 1),
                      "ratio": rnd(ratio, 2), "within_2x": WITHIN[0] <= ratio <= WITHIN[1],
                      "epochs_run": [r["epochs_run"] for r in rs], "others_share": [r.get("others_share") for r in rs],
                      "runs_used": len(rs), "runs_left_out_busy": len(every) - len(rs),
                      "machine_busy": all((r.get("others_share") or 0) > BUSY for r in rs)}
    return {
        "settings": {**cfg, "defaults": "RunConfig(model_id, strategy, seed): the app's defaults (batch 8, the "
                     "strategy's default epochs and rate, early stopping, the engine's own split)",
                     "text_data": f"sample_reviews.csv: per seed {2 * cfg['text_heldout_per_class']} reviews held out "
                                  "(drawn afresh per seed), the rest to the engine",
                     "image_data": f"sample_digits.zip: {10 * cfg['image_heldout_per_class']} digits held out, "
                                   "the rest to the engine",
                     "time": "the app's worker process, spawn to exit, after one untimed warm-up run per modality; "
                             f"measured = median over the runs during which other processes used at most {BUSY:.0%} of the CPU (all "
                             "runs when none was that quiet)", "within": list(WITHIN)},
        "text_sample": accuracy,
        "text_lora_minus_probe": {**diff, "seeds": both},
        "time_estimate": times,
        "all_within_2x": all(t["within_2x"] for t in times.values()),
        "runs": runs,
    }
