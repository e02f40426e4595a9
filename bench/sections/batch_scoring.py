"""Batch scoring throughput (issue 34, item 5): N images (2,000; quick: 200) scored through the real
`score_batch` path — an inference worker of its own started by `InferencePool.call_long`, exactly what the
page, `/predict_batch` and the service use — against the fast-path embedding throughput measured in the same
run on the same images (the probe's `embed_sets`: decode, the eval transform, channels-last, bf16 autocast
where the CPU has it natively), and the worker's peak RSS (VmHWM, sampled while it runs). Then the table is
checked against `Predictor.predict_with_set` one input at a time on a sample (probabilities within 1e-5).

Scores come from the full-precision model (as for the test set and every answer the app shows), so on a CPU
with native bf16 the embeddings' bf16 forward is faster than scoring can be: the ratio says by how much.
Rounds alternate which side goes first; the scoring side is timed two ways: the whole request (worker start,
torch import, model load, N images, CSV + xlsx) and its steady rate (from the first batch's progress to the
last, i.e. images per second once the model is loaded).

    python -m bench.sections.batch_scoring           # bench/batch-scoring-results.json
    python -m bench.sections.batch_scoring --quick   # bench/batch-scoring-results-quick.json
    python bench/run.py --only batch_scoring [--quick]
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.harness import ROOT, Clock, alternating, git_state, load_avg, log, machine_info, require_finished, rnd, \
    summary, write_json

RESULTS = {"full": ROOT / "bench" / "batch-scoring-results.json",
           "quick": ROOT / "bench" / "batch-scoring-results-quick.json"}
PROFILE = {"quick": {"n_images": 200, "train_n": 100, "rounds": 2, "check_sample": 20, "seed": 0},
           "full": {"n_images": 2000, "train_n": 100, "rounds": 2, "check_sample": 50, "seed": 0}}
TARGET_RATIO, TARGET_RSS_MB, TOLERANCE = 0.8, 1536, 1e-5


def _images(folder: Path, sample, n: int) -> Path:
    """n inputs: the sample digits over and over (hard links, new names), in one folder."""
    folder.mkdir(parents=True)
    for i in range(n):
        source = Path(sample.items[i % len(sample.items)])
        target = folder / f"img_{i:05d}{source.suffix}"
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
    return folder


def _train(root: Path, sample, n: int, seed: int) -> Path:
    from tl_ui.core.config import RunConfig
    from tl_ui.data import stratified_subset
    from tl_ui.engine import train_run

    run_dir = root / "runs" / "probe"
    result = train_run(RunConfig(model_id="efficientnet_lite0", strategy="linear_probe", seed=seed), run_dir,
                       dataset=stratified_subset(sample, n, seed=seed))
    require_finished(result, "batch scoring: the linear probe to score with")
    return run_dir


class PeakRss:
    """The largest VmHWM of this process's children (the long request's worker) while it runs."""

    def __init__(self):
        self.peak_kb, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.is_set():
            for child in me.children(recursive=True):
                try:
                    with open(f"/proc/{child.pid}/status", encoding="utf-8") as handle:
                        for line in handle:
                            if line.startswith("VmHWM:"):
                                self.peak_kb = max(self.peak_kb, int(line.split()[1]))
                except OSError:
                    continue
            self._stop.wait(0.1)


def _score(pool, run_dir: Path, inputs, out_dir: Path) -> dict:
    stamps: list[tuple[float, int]] = []
    with PeakRss() as rss, Clock() as clock:
        written = pool.call_long("bench", "score_batch",
                                 {"run_dir": str(run_dir), "inputs": dataclasses.asdict(inputs), "out_dir": str(out_dir)},
                                 kind="inference", on_progress=lambda done, total, m: stamps.append((time.perf_counter(), done)))
    moving = [(t, d) for t, d in stamps if d > 0]
    steady = None
    if len(moving) >= 2 and moving[-1][1] > moving[0][1]:
        steady = (moving[-1][1] - moving[0][1]) / (moving[-1][0] - moving[0][0])
    return {"wall_s": clock.wall, "per_s": len(inputs.items) / clock.wall, "steady_per_s": steady,
            "peak_rss_mb": rss.peak_kb / 1024, "csv": written["csv"], "n": written["n"]}


def _embed(loaded, items: list[str]) -> dict:
    import torch

    from tl_ui.engine.probe.features import embed_sets

    with Clock() as clock:
        (features,) = embed_sets(loaded, [items], batch_size=8, device=torch.device("cpu"), max_length=128,
                                 window=None, on_progress=lambda *a: None)
    assert len(features) == len(items)
    return {"wall_s": clock.wall, "per_s": len(items) / clock.wall}


def _check(run_dir: Path, csv_path: str, items: list[str], k: int, seed: int) -> dict:
    """The table against `predict_with_set` one input at a time, on k inputs drawn at random."""
    from tl_ui.engine import Predictor

    predictor = Predictor.load(run_dir)
    with open(csv_path, newline="", encoding="utf-8") as handle:
        rows = {row["item"]: row for row in csv.DictReader(handle)}
    worst, same_set = 0.0, 0
    picked = random.Random(seed).sample(range(len(items)), min(k, len(items)))
    for i in picked:
        alone = predictor.predict_with_set([items[i]])[0]
        row = rows[Path(items[i]).name]
        worst = max(worst, max(abs(float(row[f"p_{c}"]) - p) for c, p in alone["probabilities"].items()))
        same_set += row["prediction_set"] == "; ".join(alone["prediction_set"] or [])
    return {"n_checked": len(picked), "max_abs_difference": worst, "same_prediction_set": same_set,
            "within_tolerance": worst <= TOLERANCE and same_set == len(picked), "tolerance": TOLERANCE}


def run(cfg: dict) -> dict:
    from bench.data import load, sample_dataset
    from tl_ui.data.unlabelled import load_inputs
    from tl_ui.engine.models.fast_path import cpu_has_native_bf16, enabled
    from tl_ui.jobs.inference import InferenceCaps, InferencePool

    root = Path(tempfile.mkdtemp(prefix="tlbench-batch-"))
    try:
        sample = sample_dataset("image")
        run_dir = _train(root, sample, cfg["train_n"], cfg["seed"])
        folder = _images(root / "inputs", sample, cfg["n_images"])
        inputs = load_inputs(folder, root / "read")
        items = list(inputs.items)
        loaded = load("image", sample.classes)   # the shelf model, fast path as the engine sets it up
        _embed(loaded, items[:16])                # warm-up
        pool = InferencePool(InferenceCaps(), root / "runs")
        scoring, embedding = [], []
        try:
            for order in alternating(cfg["rounds"], "embed", "score"):
                for side in order:
                    if side == "embed":
                        embedding.append(_embed(loaded, items))
                        log(f"batch scoring: fast-path embeddings {embedding[-1]['per_s']:.1f} img/s")
                    else:
                        out_dir = run_dir / "scores" / f"bench-{len(scoring)}"
                        scoring.append(_score(pool, run_dir, inputs, out_dir))
                        log(f"batch scoring: {scoring[-1]['per_s']:.1f} img/s whole request, steady "
                            f"{scoring[-1]['steady_per_s'] or 0:.1f} img/s, peak RSS {scoring[-1]['peak_rss_mb']:.0f} MB")
        finally:
            pool.close()
        check = _check(run_dir, scoring[-1]["csv"], items, cfg["check_sample"], cfg["seed"])
        embed_rate = summary([e["per_s"] for e in embedding], 1)
        whole = summary([s["per_s"] for s in scoring], 1)
        steady = summary([s["steady_per_s"] for s in scoring if s["steady_per_s"]], 1)
        ratio_whole = summary([s["per_s"] / e["per_s"] for s, e in zip(scoring, embedding)], 2)
        ratio_steady = summary([s["steady_per_s"] / e["per_s"] for s, e in zip(scoring, embedding)
                                if s["steady_per_s"]], 2)
        peak = max(s["peak_rss_mb"] for s in scoring)
        out = {"settings": dict(cfg), "n_images": len(items), "fast_path": enabled(), "native_bf16": cpu_has_native_bf16(),
               "embedding_per_s": embed_rate, "scoring_per_s_whole_request": whole, "scoring_per_s_steady": steady,
               "ratio_whole_request": ratio_whole, "ratio_steady": ratio_steady,
               "scoring_wall_s": summary([s["wall_s"] for s in scoring], 1),
               "worker_peak_rss_mb": rnd(peak, 0), "check": check,
               "targets": {"ratio": TARGET_RATIO, "ratio_met_steady": (ratio_steady.get("median") or 0) >= TARGET_RATIO,
                           "peak_rss_mb": TARGET_RSS_MB, "peak_rss_met": peak < TARGET_RSS_MB,
                           "csv_equals_predict": check["within_tolerance"]}}
        log(f"batch scoring: ratio steady {ratio_steady.get('median')}, whole {ratio_whole.get('median')}; "
            f"peak RSS {peak:.0f} MB; check {check}")
        return out
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=0, help="rounds per side (default: the mode's)")
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full"
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    cfg = {**PROFILE[mode], **({"rounds": args.rounds} if args.rounds > 0 else {})}
    machine = machine_info()   # before the run: its load average is the one at the start
    result = run(cfg)
    command = ("python -m bench.sections.batch_scoring" + (" --quick" if args.quick else "")
               + (f" --rounds {args.rounds}" if args.rounds > 0 else ""))
    write_json(RESULTS[mode], {"mode": mode, "command": command, "started": started, "machine": machine,
                               "load_avg_after": load_avg(), **git_state(), **result})
    log(f"wrote {RESULTS[mode]}")
    return 0 if result["check"]["within_tolerance"] else 1


if __name__ == "__main__":
    for key, value in (("HF_HUB_OFFLINE", "1"), ("GRADIO_ANALYTICS_ENABLED", "False"), ("HF_HUB_DISABLE_TELEMETRY", "1")):
        os.environ.setdefault(key, value)
    sys.exit(main())
