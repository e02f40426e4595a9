"""The verbs an inference worker answers (runs in the worker; torch). Each takes the request's `args`
and a `Request` (its progress and its cancel flag) and returns plain JSON data.

* `load`: keep a run's model loaded (Results shows the run: the first try-it answer does not wait for it)
* `predict`: `Predictor.predict_with_set` for a list of inputs (try-it, `/predict`; batch scoring's unit)
* `explain`: Grad-CAM overlay (a PNG, base64) for an image, word weights for a text
* `mistake_maps`: the overlays of a run's most confident mistakes, with progress, stoppable between maps
* `advise`: the model advisor's ranking and data map (a long request: progress, stoppable)
* `validate`: a finished run on another site's labelled data (long): validation.json + its predictions in the
  run's validation/<id>/ folder (tl_ui/engine/inference/validation.py)
* `score_batch`: unlabelled inputs through a finished run (long): predictions.csv (+ .xlsx) in the run's
  scores/<id>/ folder (tl_ui/engine/inference/batch.py)
* `export_onnx`: a finished run's model as ONNX (fp32, int8 with `int8`) with predict_onnx.py and onnx_report.json
  in the run's exports/onnx/ folder (long; tl_ui/engine/inference/onnx_package.py); `space`: also a Gradio Space
  folder in exports/space/ (issue 39)
* `recalibrate`: a finished run refitted on half of a new site's labelled data, reported on the other half (long):
  a new, linked run folder sharing the parent's weights (tl_ui/engine/inference/recalibration.py)
* `suggest`: which unlabelled items of a pool to label next, and the learning curve of the labels so far
  (tl_ui/engine/advisor/active.py; the pool's embeddings through the owner's embedding cache)
* `stats`: what the worker holds (kept models, loads, memory), for tests, benchmarks and logs
"""
from __future__ import annotations

import base64
import io
import os
import shutil
import threading
from dataclasses import dataclass
from typing import Callable

from tl_ui.jobs.inference.kept import KeptModels
from tl_ui.jobs.inference.protocol import Code, InferenceError


@dataclass
class Request:
    id: str
    cancelled: threading.Event
    progress: Callable[[int, int, str], None]

    def check(self) -> None:
        if self.cancelled.is_set():
            raise InferenceError(Code.CANCELLED, "Stopped.")


def _png(image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def load(models: KeptModels, args: dict, request: Request) -> dict:
    kept = models.get(args["run_dir"])
    return {"modality": kept.predictor.modality, "bytes": kept.bytes}


def predict(models: KeptModels, args: dict, request: Request) -> dict:
    kept = models.get(args["run_dir"])
    with kept.lock:
        request.check()
        answers = kept.predictor.predict_with_set(list(args["items"]), args.get("level"))
    return {"answers": answers}


def _explain_one(predictor, item, target):
    from tl_ui.engine.inference.explain import explain   # grad-cam / captum: the 'explain' extra

    why = explain(predictor, item, target)
    why.pop("heatmap", None)
    if why.get("overlay") is not None:
        why["overlay_png"] = _png(why.pop("overlay"))
    return why


def explain(models: KeptModels, args: dict, request: Request) -> dict:
    kept = models.get(args["run_dir"])
    with kept.lock:
        request.check()
        return _explain_one(kept.predictor, args["item"], args.get("target"))


def mistake_maps(models: KeptModels, args: dict, request: Request) -> dict:
    """args["items"]: [{"file": an image inside the run folder, "target": the class it wrongly chose}]."""
    kept = models.get(args["run_dir"])
    run_dir = models.resolve(args["run_dir"])
    maps = []
    items = list(args.get("items") or [])
    for number, entry in enumerate(items, 1):
        request.check()
        request.progress(number, len(items), "Drawing what the model looked at")
        path = (run_dir / entry["file"]).resolve()
        if not path.is_relative_to(run_dir):
            raise InferenceError(Code.REFUSED, "A mistake preview lies outside its run folder; it is not read.")
        with kept.lock:
            why = _explain_one(kept.predictor, str(path), entry.get("target"))
        maps.append({"overlay_png": why.get("overlay_png"), "class": why["class"]})
    return {"maps": maps}


def advise(models: KeptModels, args: dict, request: Request) -> dict:
    from tl_ui.core.config import RunConfig
    from tl_ui.data import LabelledDataset
    from tl_ui.engine.advisor.ranking import advise as rank
    from tl_ui.jobs.advisor_worker import best_model_map

    dataset = LabelledDataset(**args["dataset"])
    config = RunConfig.from_dict(args["config"]) if args.get("config") else None
    kept: dict = {}
    try:
        rows = rank(dataset, base_config=config, max_examples=int(args.get("max_examples") or 0),
                    cache=args.get("embedding_cache"), keep=kept, on_progress=request.progress,
                    should_stop=request.cancelled.is_set)
    except ValueError as exc:   # a dataset the advisor cannot rank (the message says why)
        raise InferenceError(Code.USER, str(exc)) from None
    request.check()
    return {"rows": rows, "map": best_model_map(rows, kept, config.seed if config else 0)}


def _pixel_limit(args: dict):
    from tl_ui.data.images import pixel_limit
    from tl_ui.data.limits import Limits

    return pixel_limit(int(args.get("max_image_pixels") or Limits().max_image_pixels))


def validate(models: KeptModels, args: dict, request: Request) -> dict:
    from tl_ui.data import LabelledDataset
    from tl_ui.engine.inference.batch import Stopped
    from tl_ui.engine.inference.validation import validate_run

    from tl_ui.core.runfolder import RunFolder

    kept = models.get(args["run_dir"])
    run = RunFolder(models.resolve(args["run_dir"]))
    folder = _output_folder(args, run.validations_dir)
    dataset = LabelledDataset(**args["dataset"])
    try:
        with kept.lock, _pixel_limit(args):
            report = validate_run(run.path, dataset, data_sha256=str(args.get("data_sha256") or ""), out_dir=folder,
                                  predictor=kept.predictor, on_progress=request.progress,
                                  should_stop=request.cancelled.is_set)
    except BaseException as exc:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)   # a stopped or failed check keeps nothing
        if isinstance(exc, Stopped):
            raise InferenceError(Code.CANCELLED, "Stopped.") from None
        raise
    return report


def _output_folder(args: dict, parent):
    """The folder the service named for this request's files (it removes it if the request never answers), checked
    to lie in the run's `parent` folder; None: a new one is made there."""
    from pathlib import Path

    if not args.get("out_dir"):
        return None
    folder = Path(args["out_dir"]).resolve()
    if folder.parent != Path(parent).resolve():
        raise InferenceError(Code.REFUSED, "This output folder is not inside the run's folder; nothing is written.")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def score_batch(models: KeptModels, args: dict, request: Request) -> dict:
    from tl_ui.core.runfolder import SCORES_CSV, RunFolder
    from tl_ui.engine.inference.batch import Stopped, score_to_csv

    kept = models.get(args["run_dir"])
    run = RunFolder(models.resolve(args["run_dir"]))
    inputs = args["inputs"]
    if inputs.get("modality") != kept.predictor.modality:
        raise InferenceError(Code.USER, f"This run's model reads {kept.predictor.modality}s, but the inputs are "
                                        f"{inputs.get('modality')}s. Upload inputs of the kind it was trained on.")
    folder = _output_folder(args, run.scores_dir) or run.new_scores_folder()
    try:
        with kept.lock, _pixel_limit(args):
            written = score_to_csv(kept.predictor, inputs["items"], inputs["names"], folder / SCORES_CSV,
                                   level=args.get("level"), on_progress=request.progress,
                                   should_stop=request.cancelled.is_set)
    except BaseException as exc:
        shutil.rmtree(folder, ignore_errors=True)   # a stopped or failed batch keeps no half table
        if isinstance(exc, Stopped):
            raise InferenceError(Code.CANCELLED, "Stopped.") from None
        raise
    return {**written, "folder": str(folder)}


def export_onnx(models: KeptModels, args: dict, request: Request) -> dict:
    from tl_ui.core.runfolder import RunFolder
    from tl_ui.engine.export.onnx_export import OnnxExportError
    from tl_ui.engine.inference.onnx_package import build_space, export_run_onnx

    run = RunFolder(models.resolve(args["run_dir"]))
    if not run.has_model:
        raise InferenceError(Code.USER, "This run has no finished model to export. Pick a run that finished.")

    def progress(done: int, total: int, message: str) -> None:
        request.check()
        request.progress(done, total, message)

    try:
        if args.get("space"):
            build_space(run.path, run.space_dir, on_progress=progress)
            return {"folder": str(run.space_dir)}
        report = export_run_onnx(run.path, run.onnx_dir, int8=bool(args.get("int8")), on_progress=progress)
    except OnnxExportError as exc:
        raise InferenceError(Code.USER, str(exc)) from None
    return {"folder": str(run.onnx_dir), "report": report}


def recalibrate(models: KeptModels, args: dict, request: Request) -> dict:
    from pathlib import Path

    from tl_ui.data import LabelledDataset
    from tl_ui.engine.inference.batch import Stopped
    from tl_ui.engine.inference.recalibration import recalibrate_run

    kept = models.get(args["run_dir"])
    parent = models.resolve(args["run_dir"])
    new_dir = Path(args["new_run_dir"]).resolve()
    if new_dir.parent != parent.parent or new_dir == parent:
        raise InferenceError(Code.REFUSED, "The new version's folder is not beside its run; nothing is written.")
    dataset = LabelledDataset(**args["dataset"])
    try:
        with kept.lock, _pixel_limit(args):
            return recalibrate_run(parent, dataset, new_dir, site=str(args.get("site") or ""),
                                   data_sha256=str(args.get("data_sha256") or ""), seed=int(args.get("seed") or 0),
                                   predictor=kept.predictor, on_progress=request.progress,
                                   should_stop=request.cancelled.is_set)
    except Stopped:
        raise InferenceError(Code.CANCELLED, "Stopped.") from None


def suggest(models: KeptModels, args: dict, request: Request) -> dict:
    """args: pool {modality, items, names}, labelled [[name, label], ...] in labelling order (label "": not
    sure), classes, n, model_id, embedding_cache, curve (bool), max_image_pixels."""
    import time

    import numpy as np

    from tl_ui.core.catalog import ModelUnavailable
    from tl_ui.engine.advisor.active import embed_pool, learning_curve
    from tl_ui.engine.advisor.active import suggest as rank
    from tl_ui.engine.probe.features import Stopped

    started = time.perf_counter()
    pool = args["pool"]
    labelled = {str(name): str(label) for name, label in args.get("labelled") or []}
    classes = [str(c) for c in args.get("classes") or []]
    try:
        with _pixel_limit(args):
            features, model_id = embed_pool(pool["items"], pool["modality"], model_id=args.get("model_id"),
                                            cache=args.get("embedding_cache"), classes=classes or ["a", "b"],
                                            on_progress=request.progress, should_stop=request.cancelled.is_set)
    except Stopped:
        raise InferenceError(Code.CANCELLED, "Stopped.") from None
    except ModelUnavailable as exc:
        raise InferenceError(Code.USER, str(exc)) from None
    embedded = time.perf_counter() - started
    request.check()
    suggestions = rank(features, pool["names"], labelled, classes, int(args.get("n") or 10),
                       seed=int(args.get("seed") or 0))
    curve = None
    if args.get("curve"):
        position = {name: i for i, name in enumerate(pool["names"])}
        given = [(position[k], v) for k, v in labelled.items() if v and k in position]
        curve = learning_curve(features[[i for i, _ in given]] if given else np.zeros((0, features.shape[1])),
                               [v for _, v in given], should_stop=request.cancelled.is_set)
    return {"suggestions": suggestions, "curve": curve, "model_id": model_id, "n_pool": len(pool["names"]),
            "seconds": {"embeddings": round(embedded, 2), "total": round(time.perf_counter() - started, 2)}}


def stats(models: KeptModels, args: dict, request: Request) -> dict:
    from tl_ui.jobs.caps import proc_status_kb

    return {"pid": os.getpid(), "rss_mb": round(proc_status_kb("VmRSS") / 1024, 1),
            "peak_rss_mb": round(proc_status_kb("VmHWM") / 1024, 1), **models.describe()}


VERBS = {"load": load, "predict": predict, "explain": explain, "mistake_maps": mistake_maps, "advise": advise,
         "validate": validate, "score_batch": score_batch, "recalibrate": recalibrate, "export_onnx": export_onnx,
         "suggest": suggest, "stats": stats}
