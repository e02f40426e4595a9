"""A large batch split across Ray tasks (issue 34, item 5; TL_EXECUTOR=ray): the inputs are cut into parts in
their order, each part is scored by `score_to_csv` in a Ray task of its own (a Ray worker process loads the
run's exported model, as the inference worker does; never the web process), and one last task joins the parts
into predictions.csv (+ .xlsx) in the run's scores/<id>/ folder. Each row is the same as the single worker's
(`Predictor.predict_with_set` on that input). The runs folder must be the same path on every node (shared
storage), as for Ray training (jobs/executors/ray_tasks.py). Progress counts the parts done; Stop cancels the
tasks and keeps nothing. No torch here: the web process imports this.
"""
from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Callable, Optional

from tl_ui.jobs.inference.protocol import Code, InferenceError

SPLIT_AT = 1000        # inputs from which a batch is split across Ray tasks (below: the single worker)
PART_SIZE = 500        # inputs per Ray task (at least two tasks when split)
PART_CPUS = 1          # each task's CPUs: parts run side by side, one per core

_remote: dict = {}


def _score_part(run_dir: str, items: list, names: list, out_csv: str, level, max_image_pixels: int) -> int:
    from tl_ui.data.images import pixel_limit
    from tl_ui.engine.inference.batch import score_to_csv
    from tl_ui.engine.inference.predict import Predictor

    with pixel_limit(int(max_image_pixels)):
        written = score_to_csv(Predictor.load(run_dir), items, names, out_csv, level=level, xlsx=False)
    return int(written["n_flagged"])


def _join(parts: list[str], out_csv: str) -> Optional[str]:
    """The parts' rows in order under one header; the .xlsx beside it (None without openpyxl)."""
    import os

    from tl_ui.engine.inference.batch import csv_to_xlsx

    target = Path(out_csv)
    partial = target.with_name(f".{target.name}.partial")
    with open(partial, "w", encoding="utf-8", newline="") as out:
        for number, part in enumerate(parts):
            with open(part, encoding="utf-8", newline="") as handle:
                header = handle.readline()
                if number == 0:
                    out.write(header)
                shutil.copyfileobj(handle, out)
    os.replace(partial, target)
    for part in parts:
        Path(part).unlink(missing_ok=True)
    return csv_to_xlsx(target)


def _task(name: str, fn, **options):
    if name not in _remote:
        import ray

        _remote[name] = ray.remote(max_retries=0, **options)(fn)
    return _remote[name]


def use_ray(settings, n_inputs: int) -> bool:
    """Whether this batch goes to Ray: the Ray executor is on, Ray is running here, and the batch is large."""
    if getattr(settings, "executor", "") != "ray" or n_inputs < SPLIT_AT:
        return False
    try:
        import ray
    except ImportError:
        return False
    return ray.is_initialized()


def score_batch_in_ray(run_dir: str | Path, inputs: dict, out_dir: str | Path, *, level=None,
                       max_image_pixels: int, part_size: int = PART_SIZE,
                       on_progress: Callable[[int, int, str], None] = lambda done, total, message: None,
                       should_stop: Callable[[], bool] = lambda: False, poll_s: float = 0.5) -> dict:
    """{"n", "n_flagged", "csv", "xlsx", "folder", "parts"}; InferenceError (CANCELLED on Stop, USER with the
    task's sentence when an input cannot be read). `out_dir` is removed when no table comes."""
    import ray

    items, names = list(inputs["items"]), list(inputs["names"])
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    n_parts = max(1, math.ceil(len(items) / part_size))
    size = math.ceil(len(items) / n_parts)
    score = _task("score", _score_part, num_cpus=PART_CPUS)
    refs, paths = [], []
    for number in range(n_parts):
        rows = slice(number * size, (number + 1) * size)
        path = folder / f".part-{number:04d}.csv"
        paths.append(str(path))
        refs.append(score.options(name=f"tl-score-{folder.name}-{number}").remote(
            str(run_dir), items[rows], names[rows], str(path), level, int(max_image_pixels)))
    try:
        on_progress(0, len(items), f"Scoring {len(items)} inputs in {n_parts} Ray tasks")
        pending, flagged = list(refs), 0
        while pending:
            if should_stop():
                raise InferenceError(Code.CANCELLED, "Stopped.")
            ready, pending = ray.wait(pending, num_returns=len(pending), timeout=poll_s)
            for ref in ready:
                try:
                    flagged += ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    cause = getattr(exc, "cause", None) or exc
                    if isinstance(cause, ValueError):   # PredictError: which input, in plain words
                        raise InferenceError(Code.USER, str(cause)) from None
                    raise InferenceError(Code.CRASHED, "A Ray task scoring part of the batch failed. Try again, "
                                                       "or score fewer inputs at a time.") from None
            done = sum(min(size, len(items) - i * size) for i, ref in enumerate(refs) if ref not in pending)
            on_progress(done, len(items), f"Scoring: {done} of {len(items)}")
        from tl_ui.core.runfolder import SCORES_CSV

        xlsx = ray.get(_task("join", _join, num_cpus=PART_CPUS).remote(paths, str(folder / SCORES_CSV)))
    except BaseException:
        for ref in refs:
            try:
                ray.cancel(ref, force=True)
            except Exception:   # already finished
                pass
        shutil.rmtree(folder, ignore_errors=True)   # a stopped or failed batch keeps no half table
        raise
    return {"n": len(items), "n_flagged": int(flagged), "csv": str(folder / SCORES_CSV), "xlsx": xlsx,
            "folder": str(folder), "parts": n_parts}
