""""Unlike your training data": how far an input's features lie from the training examples' features.

Images: the features are what the model's final classifier layer reads (the input of
`feature_module`, the vectors the linear probe trains on; for fine-tuned runs those of the final
model). Texts: the mean of the encoder's last hidden states over the real tokens (the sentence
embedding of sentence-transformers), because BERT's pooler output, which the classifier reads,
hardly tells other kinds of text from film reviews (AUROC 0.70 against 0.98 on the benchmark). The score
is the distance to the k-th nearest training example after scaling every vector to length 1 (Sun et
al. 2022, "Out-of-distribution detection with deep nearest neighbors"). The threshold is the 99th
percentile of held-out scores (the validation examples', and each training example's distance to
the other training examples: leave one out), so about 1 ordinary input in 100 is flagged. Mahalanobis distance on a Ledoit-Wolf covariance was measured beside it and separated
worse on our benchmark data (docs/benchmarks.md, "Unlike the training data"); it stays here for
that benchmark (`method="mahalanobis"`).

The reference travels with the export as `familiarity.safetensors` beside the model: tensors plus
string metadata, no pickle. `Predictor` reads it; a model folder without it still predicts, with
the flag None.
"""
from __future__ import annotations

import json
import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np
import torch

log = logging.getLogger(__name__)

FILE = "familiarity.safetensors"
METHODS = ("knn", "mahalanobis")
DEFAULT_METHOD = "knn"
K_NEAREST = 5
PERCENTILE = 99.0
MAX_REFERENCE = 5000      # training examples kept in the reference (a random subset beyond this)
MIN_HELDOUT = 10          # fewer validation examples than this: leave-one-out training scores join them

CAUTION = ("This input looks unlike the examples the model learned from: treat its answer with caution "
           "(the model answers anyway, and may be confidently wrong).")
FAMILIAR = "This input resembles the examples the model learned from."


@dataclass
class FamiliarityReference:
    method: str
    threshold: float
    feature_module: str                   # the module whose input are the features (the final classifier)
    tensors: dict = field(repr=False)     # knn: {"reference"}; mahalanobis: {"mean", "precision"}
    k: int = K_NEAREST
    info: dict = field(default_factory=dict)   # n_reference, n_heldout, heldout flag rate... (JSON)
    feature: str = "head_input"           # or "sentence_mean": mean of the encoder module's token outputs

    # -- scores ----------------------------------------------------------------------------------
    def scores(self, features: torch.Tensor | np.ndarray) -> np.ndarray:
        """One distance per row of `features`; larger is less like the training examples."""
        x = torch.as_tensor(np.asarray(features), dtype=torch.float32)
        if x.ndim == 1:
            x = x[None]
        if self.method == "knn":
            return _kth_distance(_unit(x), self.tensors["reference"].float(), self.k)
        centred = x - self.tensors["mean"].float()
        squared = ((centred @ self.tensors["precision"].float()) * centred).sum(1)
        return squared.clamp_min(0).sqrt().numpy()

    def judge(self, features) -> list[dict]:
        """For each row: the keys a prediction carries (see `answer_keys`)."""
        return [answer_keys(self, float(s)) for s in self.scores(features)]

    # -- file ------------------------------------------------------------------------------------
    def save(self, folder: Path) -> Path:
        from safetensors.torch import save_file

        path = Path(folder) / FILE
        meta = {"method": self.method, "threshold": repr(float(self.threshold)), "k": str(self.k),
                "feature_module": self.feature_module, "feature": self.feature, "info": json.dumps(self.info)}
        save_file({k: v.contiguous() for k, v in self.tensors.items()}, str(path), metadata=meta)
        return path

    @classmethod
    def load(cls, folder: Path) -> Optional["FamiliarityReference"]:
        """The reference beside a model, or None (older exports have none)."""
        from safetensors import safe_open

        path = Path(folder) / FILE
        if not path.is_file():
            return None
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            tensors = {name: fh.get_tensor(name) for name in fh.keys()}
        if meta.get("method") not in METHODS:
            raise ValueError(f"{path.name}: unknown method {meta.get('method')!r}")
        return cls(meta["method"], float(meta["threshold"]), meta["feature_module"], tensors,
                   int(meta.get("k", K_NEAREST)), json.loads(meta.get("info") or "{}"),
                   meta.get("feature", "head_input"))


def answer_keys(reference: Optional[FamiliarityReference], score: Optional[float]) -> dict:
    """What a prediction carries: flag (None without a reference), score, threshold, plain sentence."""
    if reference is None or score is None:
        return {"unlike_training_data": None, "unlike_training_data_score": None,
                "unlike_training_data_threshold": None, "unlike_training_data_sentence": None}
    flagged = bool(score > reference.threshold)
    return {"unlike_training_data": flagged, "unlike_training_data_score": round(score, 4),
            "unlike_training_data_threshold": round(reference.threshold, 4),
            "unlike_training_data_sentence": CAUTION if flagged else FAMILIAR}


# -- fitting (engine, at the end of training) ------------------------------------------------------

def fit_reference(train: torch.Tensor, heldout: torch.Tensor, *, feature_module: str,
                  method: str = DEFAULT_METHOD, seed: int = 0, k: int = K_NEAREST,
                  feature: str = "head_input") -> FamiliarityReference:
    """A reference from the training examples' features; the threshold from the held-out ones'."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; one of {METHODS}")
    train = torch.as_tensor(np.asarray(train), dtype=torch.float32)
    heldout = torch.as_tensor(np.asarray(heldout), dtype=torch.float32).reshape(-1, train.shape[1])
    if len(train) < 2:
        raise ValueError("at least two training examples are needed")
    if len(train) > MAX_REFERENCE:
        keep = np.random.default_rng(seed).choice(len(train), MAX_REFERENCE, replace=False)
        train = train[np.sort(keep)]
    k = max(1, min(k, len(train) - 1))
    if method == "knn":
        # float16 keeps the file small (1280 features x 5000 examples: 12 MB); scores use the same copy
        tensors = {"reference": _unit(train).half()}
    else:
        from sklearn.covariance import LedoitWolf

        fitted = LedoitWolf().fit(train.numpy().astype(np.float64))
        tensors = {"mean": torch.as_tensor(fitted.location_, dtype=torch.float32),
                   "precision": torch.as_tensor(fitted.precision_, dtype=torch.float32)}
    reference = FamiliarityReference(method, 0.0, feature_module, tensors, k, feature=feature)
    scores = reference.scores(heldout) if len(heldout) else np.zeros(0)
    if method == "knn" or len(scores) < MIN_HELDOUT:
        # k-NN: each training example's distance to the others is a held-out distance too (leave one
        # out); with them the 99th percentile rests on hundreds of scores, not a few dozen
        scores = np.concatenate([scores, _leave_one_out_scores(reference, train)])
    reference.threshold = float(np.percentile(scores, PERCENTILE))
    reference.info = {"n_reference": int(len(train)), "n_threshold": int(len(scores)), "percentile": PERCENTILE}
    return reference


def heldout_record(reference: FamiliarityReference, report_features) -> dict:
    """metrics.json's `familiarity`: how often ordinary test examples are flagged (they should rarely be)."""
    from tl_ui.trust import wilson_interval

    scores = reference.scores(report_features) if len(report_features) else np.zeros(0)
    n, flagged = int(len(scores)), int((scores > reference.threshold).sum())
    record = {"method": reference.method, "k": reference.k, "threshold": round(reference.threshold, 4),
              **reference.info, "n_test": n}
    if n:
        rate = flagged / n
        record.update(test_flag_rate=round(rate, 4), test_flag_rate_ci=list(wilson_interval(flagged, n)),
                      sentence=f"{flagged} of {n} test examples ({rate:.0%}) were flagged as unlike the training "
                               "data; ordinary inputs like them are rarely flagged, so a flag is worth a second look.")
    return record


def reference_for_run(loaded, sets: Sequence[Sequence], features: Optional[Sequence[torch.Tensor]], *,
                      batch_size: int, device, max_length: int, window, seed: int,
                      should_stop=lambda: False) -> tuple[FamiliarityReference, dict]:
    """(reference, metrics record) for a finished run. `features`: the probe's (train, choose, report)
    embeddings, reused as they are; None (fine-tuned runs): one pass of the final model over the sets."""
    encoder = _encoder(loaded.model) if loaded.modality == "text" else None
    if encoder is not None:
        features = [_sentence_means(loaded, encoder, items, batch_size, device, max_length) for items in sets]
        module_name = next(name for name, m in loaded.model.named_modules() if m is encoder)
    elif features is None:
        from tl_ui.engine.probe.features import embed_sets

        features = embed_sets(loaded, sets, batch_size=batch_size, device=device, max_length=max_length,
                              window=window, should_stop=should_stop, on_progress=lambda *a: None,
                              full_precision=True)   # as the Predictor computes them
    reference = fit_reference(features[0], features[1], seed=seed,
                              feature_module=module_name if encoder is not None else loaded.head_names[-1],
                              feature="sentence_mean" if encoder is not None else "head_input")
    return reference, heldout_record(reference, features[2])


# -- reading the features at prediction time -------------------------------------------------------

_TAP = threading.local()   # per thread: one model may serve several try-it requests at once


def _record_input(_module, args) -> None:
    rows = getattr(_TAP, "rows", None)
    if rows is not None:
        rows.append(args[0].detach().float().cpu())


def _record_sentence_mean(_module, args, kwargs, output) -> None:
    rows = getattr(_TAP, "rows", None)
    if rows is None:
        return
    hidden = output[0]
    mask = kwargs.get("attention_mask", args[1] if len(args) > 1 else None)
    mask = torch.ones(hidden.shape[:2]) if mask is None else mask
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    rows.append(((hidden * weights).sum(1) / weights.sum(1).clamp_min(1)).detach().float().cpu())


def _hook(module: torch.nn.Module, feature: str):
    if feature == "sentence_mean":
        return module.register_forward_hook(_record_sentence_mean, with_kwargs=True)
    return module.register_forward_pre_hook(_record_input)


def attach(model: torch.nn.Module, folder: Path) -> Optional[FamiliarityReference]:
    """Load the reference beside an exported model and hook the model's feature module (the hook
    records only inside `recording()`). None when there is no reference or it does not fit the model."""
    try:
        reference = FamiliarityReference.load(folder)
    except (OSError, ValueError, json.JSONDecodeError) as exc:
        log.warning("ignoring %s in %s: %s", FILE, folder, exc)
        return None
    if reference is None:
        return None
    module = dict(model.named_modules()).get(reference.feature_module)
    if module is None:
        module = _encoder(model) if reference.feature == "sentence_mean" else _last_linear(model, reference)
    if module is None:
        log.warning("ignoring %s in %s: the model has no module %r", FILE, folder, reference.feature_module)
        return None
    _hook(module, reference.feature)
    return reference


@contextmanager
def recording() -> Iterator[list]:
    """Collect, on this thread, the features of every forward pass made inside the block (an enclosing
    block gets them too)."""
    previous = getattr(_TAP, "rows", None)
    _TAP.rows = rows = []
    try:
        yield rows
    finally:
        _TAP.rows = previous
        if previous is not None:
            previous.extend(rows)


def judge_recorded(reference: Optional[FamiliarityReference], rows: list, n: int) -> list[dict]:
    """The answer keys for `n` inputs from what `recording()` collected (None flags without a reference)."""
    if reference is None or not rows:
        return [answer_keys(None, None) for _ in range(n)]
    features = torch.cat(rows)
    if len(features) != n:   # not one feature row per input: say nothing rather than something wrong
        log.warning("familiarity: %d feature rows for %d inputs", len(features), n)
        return [answer_keys(None, None) for _ in range(n)]
    return reference.judge(features)


# -- helpers ---------------------------------------------------------------------------------------

def _encoder(model: torch.nn.Module) -> Optional[torch.nn.Module]:
    """A transformers classifier's encoder (`bert`, ...), whose token outputs give the sentence mean."""
    base = getattr(model, "base_model", None)
    return base if isinstance(base, torch.nn.Module) and base is not model else None


@torch.no_grad()
def _sentence_means(loaded, encoder, items, batch_size: int, device, max_length: int) -> torch.Tensor:
    from tl_ui.engine.models.inputs import forward_logits, make_dataset, make_loader

    if not len(items):
        return torch.zeros(0, loaded.model.config.hidden_size)
    model = loaded.model.to(device)
    was_training = model.training
    model.eval()
    handle = _hook(encoder, "sentence_mean")
    try:
        with recording() as rows:
            for batch in make_loader(loaded, make_dataset(loaded, items, None, max_length=max_length), batch_size,
                                     shuffle=False):
                forward_logits(model, {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()})
    finally:
        handle.remove()
        model.train(was_training)
    return torch.cat(rows)


def _last_linear(model: torch.nn.Module, reference: FamiliarityReference) -> Optional[torch.nn.Module]:
    """The classifier layer when the export names it differently than the training model did: the
    last linear layer that reads vectors of the reference's width."""
    width = (reference.tensors.get("reference") if reference.method == "knn" else reference.tensors["mean"]).shape[-1]
    found = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.in_features == width]
    return found[-1] if found else None


def _unit(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(x.float(), dim=1)


def _kth_distance(x_unit: torch.Tensor, reference_unit: torch.Tensor, k: int, skip_self: bool = False) -> np.ndarray:
    out = []
    for start in range(0, len(x_unit), 1024):   # bounded memory: 1024 x n_reference distances at a time
        d = torch.cdist(x_unit[start:start + 1024], reference_unit)
        kth = min(k + int(skip_self), d.shape[1])
        out.append(d.topk(kth, dim=1, largest=False).values[:, kth - 1])
    return torch.cat(out).numpy() if out else np.zeros(0)


def _leave_one_out_scores(reference: FamiliarityReference, train: torch.Tensor) -> np.ndarray:
    """Each training example's score against the others (a stand-in when validation examples are few)."""
    if reference.method == "knn":
        return _kth_distance(reference.tensors["reference"].float(), reference.tensors["reference"].float(),
                             reference.k, skip_self=True)
    return reference.scores(train)   # Mahalanobis: in-sample (slightly optimistic, no refit per example)
