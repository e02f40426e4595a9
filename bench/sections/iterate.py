"""Iterate in seconds (issue 14): the ratios side by side in one run.

* **head fit**: the probe's full-batch head (tl_ui/engine/probe/solver.py: L-BFGS, L2 strength by inner
  cross-validation, live curve included) on 1,000 x 1,280 real EfficientNet-Lite0 embeddings (the 300
  sample digits, plain and in augmented views), with the app's options (one common scale, the finer
  L2 grid) and with per-feature scaling, beside scikit-learn's default LogisticRegression;
* **accuracy**: held-out accuracy (through `Predictor.load`) of the full-batch head (the app's default)
  and of the minibatch head it replaced (`extra={"probe_head": "minibatch"}`: 30 AdamW epochs, early
  stopping), same seeds, same subsets, on every benchmark dataset: digits and reviews, pretrained and random weights;
* **app**: two linear-probe runs with the defaults on the sample digits through the service
  (`Lab.start_run`: runner, warm worker process, engine), each from Start until its results are on disk.
  Each round is a new Lab started as the server starts it (its warm worker imports torch and the engine
  before the first run; the model is built by the first run) and a new owner (empty embedding cache);
  the second run, 10 s later, is served by the same worker: the kept model, the cached embeddings.
  The first is also compared with one plain forward pass over the same images plus loading the model
  (the floor); each run's time is split by its events (worker and model, embeddings, head, the end);
* **try-it**: `Lab.predict` on a run's model: the first answer (loads the model) and the second (kept).

    python -m bench.sections.iterate [--quick]     # writes bench/iterate-results.json
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.data import MODEL_FOR, heldout_accuracy, load, sample_dataset, sample_split
from bench.harness import ROOT, Clock, OthersLoad, log, mean_sd, require_finished, rnd, summary
from bench.profiles import PROFILES

TARGETS = {"second_over_first": 0.25, "first_over_floor": 1.5, "head_fit_s": 0.5, "try_it_second_over_first": 0.2}


def run(cfg: dict) -> dict:
    out: dict = {"settings": dict(cfg)}
    others = OthersLoad().start()
    out["head_fit"] = head_fit(cfg)
    out["accuracy"] = accuracy(cfg)
    out["app"] = app_runs(cfg)
    out["others_share"] = others.share()
    app, fit = out["app"], out["head_fit"]
    out["ratios"] = {
        "second_over_first": app["second_over_first"]["median"],
        "first_over_floor": app["first_over_floor"]["median"],
        "head_fit_s": fit["ours_s"]["median"],
        "try_it_second_over_first": app["try_it"]["second_over_first"]["median"],
        "accuracy_not_worse_everywhere": all(r["full_batch_minus_minibatch"] >= -1e-9
                                             for r in out["accuracy"]["rows"]),
    }
    out["targets"] = TARGETS
    out["met"] = {k: out["ratios"][k] is not None and out["ratios"][k] <= v for k, v in TARGETS.items()}
    return out


# -- the head fit -----------------------------------------------------------------------------------
def head_fit(cfg: dict) -> dict:
    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from tl_ui.engine.probe.features import compute_head_inputs
    from tl_ui.engine.models.inputs import make_dataset, make_loader
    from tl_ui.engine.probe.solver import APP_OPTIONS, fit_head

    ds = sample_dataset("image")
    loaded = load("image", ds.classes, image_size=cfg.get("fit_image_size", 96))   # 1,280 features at any size
    rows, targets = [], []
    torch.manual_seed(0)
    need = cfg["fit_rows"] + 200
    augment = False
    while sum(len(r) for r in rows) < need:   # the digits as they are, then augmented views of them
        data = make_dataset(loaded, ds.items, None, augment=augment)
        rows.append(compute_head_inputs(loaded, make_loader(loaded, data, 8, shuffle=False), device=torch.device("cpu")))
        targets.append(ds.targets)
        augment = True
    x, y = torch.cat(rows).numpy()[:need], np.concatenate(targets)[:need]
    order = np.random.default_rng(0).permutation(need)
    x, y = x[order], y[order]
    n = cfg["fit_rows"]
    train_x, train_y, watch_x, watch_y = x[:n], y[:n], x[n:], y[n:]
    k = len(ds.classes)
    ours, per_feature, curve_points, fitted = [], [], [], None
    for _ in range(cfg["fit_repeats"]):   # the app's options, and per-feature scaling beside them
        points = []
        with Clock() as c:
            fitted = fit_head(train_x, train_y, k, choose_x=watch_x, choose_y=watch_y, on_iteration=points.append,
                              **APP_OPTIONS)
        ours.append(c.wall)
        curve_points.append(len(points))
        with Clock() as c:
            fit_head(train_x, train_y, k, choose_x=watch_x, choose_y=watch_y)
        per_feature.append(c.wall)
    sk = []
    for _ in range(max(3, cfg["fit_repeats"] // 3)):
        with Clock() as c:
            scaler = StandardScaler().fit(train_x)
            ref = LogisticRegression(max_iter=1000).fit(scaler.transform(train_x), train_y)
        sk.append(c.wall)
    ours_acc = float(((watch_x @ fitted.weight.T + fitted.bias).argmax(1) == watch_y).mean())
    sk_acc = float((ref.predict(scaler.transform(watch_x)) == watch_y).mean())
    log(f"head fit {n}x{x.shape[1]}: ours {statistics.median(ours):.3f} s ({fitted.iterations} iterations, "
        f"l2 {fitted.l2:g}), per-feature scaling {statistics.median(per_feature):.3f} s, "
        f"scikit-learn C=1 {statistics.median(sk):.3f} s")
    return {"rows": n, "features": int(x.shape[1]), "classes": k, "threads": torch.get_num_threads(),
            "ours_s": summary(ours), "per_feature_s": summary(per_feature), "sklearn_default_s": summary(sk),
            "options": "one common scale, the finer L2 grid (the app's)", "iterations": fitted.iterations,
            "curve_points": curve_points[0], "l2": fitted.l2, "inner_cv": fitted.cv,
            "watched_accuracy": {"ours": rnd(ours_acc, 4), "sklearn_default": rnd(sk_acc, 4)},
            "data": f"EfficientNet-Lite0 embeddings ({cfg.get('fit_image_size', 96)} px) of the 300 sample digits, "
                    "plain then augmented views; "
                    "200 further rows watched (the live curve's held-out loss)"}


# -- accuracy: the full-batch head against the minibatch head ------------------------------------------
def accuracy(cfg: dict) -> dict:
    from tl_ui.core.config import RunConfig
    from tl_ui.data import stratified_subset
    from tl_ui.engine import train_run
    from tl_ui.engine.probe.embedding_cache import EmbeddingCache

    data = {"image": sample_split("image", cfg["image_heldout_per_class"]),
            "text": sample_split("text", cfg["text_heldout_per_class"])}
    rows = []
    with tempfile.TemporaryDirectory(prefix="tlbench-iter-acc-") as d:
        cache = EmbeddingCache(Path(d) / "cache", max_bytes=2 * 1024 ** 3)  # both heads read the same embeddings
        for modality in ("image", "text"):
            for random_init in (False, True):
                for n in cfg["sizes"]:
                    if n > len(data[modality]["pool"]):
                        continue
                    cell = {"full_batch": [], "minibatch": []}
                    for seed in cfg["seeds"]:
                        subset = stratified_subset(data[modality]["pool"], n, seed)
                        for head in ("minibatch", "full_batch"):   # minibatch first: it fills the cache
                            extra = {"probe_head": head}
                            config = RunConfig(model_id=MODEL_FOR[modality], strategy="linear_probe", seed=seed,
                                               random_init=random_init, extra=extra)
                            run_dir = Path(d) / f"{modality}-{random_init}-{n}-{seed}-{head}"
                            res = train_run(config, run_dir, dataset=subset, embedding_cache=cache)
                            require_finished(res, f"iterate {modality} n={n} seed {seed} {head}")
                            acc = heldout_accuracy(run_dir, data[modality]["heldout"])["accuracy"]
                            cell[head].append(acc)
                    row = {"modality": modality, "weights": "random" if random_init else "pretrained", "n": n,
                           "full_batch": mean_sd(cell["full_batch"]), "minibatch": mean_sd(cell["minibatch"]),
                           "runs": cell}
                    row["full_batch_minus_minibatch"] = rnd(row["full_batch"]["mean"] - row["minibatch"]["mean"], 4)
                    log(f"accuracy {modality} {row['weights']} N={n}: full-batch {row['full_batch']['mean']}, "
                        f"minibatch {row['minibatch']['mean']}")
                    rows.append(row)
    return {"rows": rows, "heldout": {m: len(v["heldout"]) for m, v in data.items()},
            "note": "held-out accuracy through Predictor.load, mean ± sd over seeds; both heads on the same "
                    "embeddings, subsets and roles"}


# -- through the app -----------------------------------------------------------------------------------
def app_runs(cfg: dict) -> dict:
    """Each round is a new server (a new Lab, started as the server starts it: its warm worker imports
    torch and the engine before the first run) and a new owner (an empty embedding cache): the first
    run builds the model in the worker and computes the embeddings; after a pause (a user reading the
    results) the second run, in the same warm worker, copies the kept model and reads the cache."""
    from tl_ui.service.lab import Lab
    from tl_ui.service.owners import Owner
    from tl_ui.core.settings import Settings

    rounds = []
    for r in range(cfg["app_rounds"]):
        with tempfile.TemporaryDirectory(prefix="tlbench-iter-app-") as d:
            lab = Lab(Settings(runs_dir=Path(d) / "runs", max_images=1000))
            try:
                lab.start_background()
                executor = lab.runner.executor
                ready = executor.idle_ready(timeout=180) if hasattr(executor, "idle_ready") else False
                owner = Owner("user", f"bench{r}")
                outcome = lab.load_sample(owner, "image")
                walls, jobs, queued = [], [], []
                for i in range(2):
                    if i:
                        time.sleep(cfg.get("pause_s", 10.0))   # reading the first run's results
                    with Clock() as c:
                        job = lab.start_run(owner, outcome.dataset, outcome.data_path, MODEL_FOR["image"], {})
                        queued.append(len([j for j in lab.runner.jobs() if not j.done]))   # a scratch companion?
                        job = lab.runner.wait(job.id, timeout=1800)
                    require_finished(job, f"iterate app round {r}, run {i + 1}")
                    walls.append(c.wall)
                    jobs.append(job)
                metrics = [_metrics(j.run_dir) for j in jobs]
                same = all(metrics[0].get(k) == metrics[1].get(k) for k in
                           ("accuracy", "accuracy_ci", "macro_f1", "confusion_matrix", "cross_validation", "calibration"))
                reused = "Reusing" in (jobs[1].run_dir / "events.jsonl").read_text()
                status = [_status(j.run_dir) for j in jobs]
                floor = _floor(outcome.dataset)
                try_it = _try_it(lab, owner, jobs[0].id, outcome.dataset.items)
                phases = [_phases(j) for j in jobs]
            finally:
                lab.close()
        rounds.append({"first_s": rnd(walls[0]), "second_s": rnd(walls[1]), "identical_metrics": same,
                       "worker_ready_before_first": ready, "jobs_queued_per_start": queued,
                       "same_worker": status[0].get("worker_pid") == status[1].get("worker_pid"),
                       "model_cache_after_second": status[1].get("model_cache"),
                       "second_reused_embeddings": reused, "accuracy": metrics[0].get("accuracy"),
                       "strategy": metrics[0].get("strategy"),
                       "phases_first": phases[0], "phases_second": phases[1], **floor, **try_it})
        log(f"app round {r}: first {walls[0]:.1f} s, second {walls[1]:.1f} s, floor {floor['floor_s']:.1f} s, "
            f"identical metrics {same}; try-it {try_it['try_first_s']:.3f} s then {try_it['try_second_s']:.3f} s")
    return {"rounds": rounds, "n_images": len(sample_dataset("image")), "settings": "the defaults (no options)",
            "second_over_first": summary(r["second_s"] / r["first_s"] for r in rounds),
            "first_over_floor": summary(r["first_s"] / r["floor_s"] for r in rounds),
            "try_it": {"second_over_first": summary(r["try_second_s"] / r["try_first_s"] for r in rounds),
                       "after_warm_s": summary(r["try_after_warm_s"] for r in rounds)},
            "how": "a new Lab per round (its warm worker started as the server starts it) -> Lab.start_run -> "
                   "runner -> warm worker process -> engine, timed from Start until the job is done (results on "
                   "disk); the floor (model load + one plain forward pass) is measured in this process"}


def _status(run_dir: Path) -> dict:
    import json

    return json.loads((run_dir / "status.json").read_text())


def _phases(job) -> dict:
    """Where a run's time went, from its events' timestamps: until the engine started (worker, model),
    the embeddings, the head, and the end (cross-validation, calibration, export)."""
    import json

    events = [json.loads(line) for line in (job.run_dir / "events.jsonl").read_text().splitlines() if line.strip()]
    t = {}
    for e in events:
        kind, when = e.get("kind"), e.get("time")
        if when is None:
            continue
        t.setdefault(kind, when)
        if kind == "progress":
            t["progress_last"] = when
        if kind in ("epoch", "step"):
            t["fit_last"] = when
    start = job.started or job.submitted
    out = {"to_started_s": t.get("started", start) - start}
    out["embeddings_s"] = t.get("progress_last", t.get("started", start)) - t.get("started", start)
    out["head_s"] = t.get("fit_last", t.get("progress_last", start)) - t.get("progress_last", t.get("started", start))
    out["finish_s"] = (job.ended or time.time()) - t.get("fit_last", start)
    return {k: rnd(v) for k, v in out.items()}


def _metrics(run_dir: Path) -> dict:
    import json

    return json.loads((run_dir / "metrics.json").read_text())


def _floor(dataset) -> dict:
    """Loading the model plus one plain forward pass over the same images (ready tensors, batch 8)."""
    import torch

    from bench.data import image_tensor

    with Clock() as loading:
        loaded = load("image", dataset.classes)
    pixels = image_tensor(loaded, dataset.items)
    model = loaded.model.eval()
    with torch.no_grad():
        model(pixels[:8])   # first-call allocations, not timed
        with Clock() as forward:
            for start in range(0, len(pixels), 8):
                model(pixels[start:start + 8])
    return {"load_s": rnd(loading.wall), "forward_s": rnd(forward.wall), "floor_s": rnd(loading.wall + forward.wall)}


def _try_it(lab, owner, run_id: str, items) -> dict:
    """First and second answer of the try-it box for one run, then the first after Results warmed another."""
    with Clock() as first:
        lab.predict(owner, run_id, image=items[0])
    seconds = []
    for item in items[1:4]:
        with Clock() as c:
            lab.predict(owner, run_id, image=item)
        seconds.append(c.wall)
    return {"try_first_s": rnd(first.wall, 4), "try_second_s": rnd(statistics.median(seconds), 4),
            "try_after_warm_s": _after_warm(lab, owner, items)}


def _after_warm(lab, owner, items) -> float:
    """A second run's model preloaded as the Results page does (warm_predictor), then the first answer."""
    runs = [r.run_id for r in lab.list_runs(owner) if r.state == "finished"]
    run_id = runs[0] if runs else None
    key = str(lab.run(owner, run_id).path.resolve())
    lab.warm_predictor(owner, run_id)
    deadline = time.time() + 120
    while not any(key in worker["kept"] for worker in lab.inference.stats()) and time.time() < deadline:
        time.sleep(0.05)
    with Clock() as c:
        lab.predict(owner, run_id, image=items[5])
    return rnd(c.wall, 4)


def main(argv=None) -> None:
    import json
    import os

    for key, value in (("HF_HUB_OFFLINE", "1"), ("GRADIO_ANALYTICS_ENABLED", "False"),
                       ("HF_HUB_DISABLE_TELEMETRY", "1"), ("TOKENIZERS_PARALLELISM", "false")):
        os.environ.setdefault(key, value)
    argv = sys.argv[1:] if argv is None else argv
    mode = "quick" if "--quick" in argv else "full"
    started = time.time()
    from bench.harness import git_state, machine_info

    if "--only-app" in argv:   # just the through-the-app ratios (the warm worker's effect); --rounds N
        cfg = dict(PROFILES[mode]["iterate"])
        if "--rounds" in argv:
            cfg["app_rounds"] = int(argv[argv.index("--rounds") + 1])
        out = app_runs(cfg)
        (ROOT / "bench" / "iterate-app-results.json").write_text(json.dumps(
            {"app": out, "mode": mode, "machine": machine_info(), "code": git_state(),
             "command": "python -m bench.sections.iterate " + " ".join(argv),
             "seconds": round(time.time() - started)}, indent=1))
        print(json.dumps({k: out[k] for k in ("second_over_first", "first_over_floor")}, indent=1))
        return
    result = {"iterate": run(PROFILES[mode]["iterate"]), "mode": mode, "machine": machine_info(), "code": git_state(),
              "command": "python -m bench.sections.iterate" + (" --quick" if mode == "quick" else ""),
              "seconds": round(time.time() - started)}
    (ROOT / "bench" / "iterate-results.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({"ratios": result["iterate"]["ratios"], "met": result["iterate"]["met"]}, indent=1))


if __name__ == "__main__":
    main()
