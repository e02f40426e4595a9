"""Which unlabelled item to label next (issue 41): the model asks for what it learns most from.

Plain numbers in, plain data out. The pool's frozen embeddings (one shelf model, through the owner's
embedding cache: `embed_pool`) are ranked by

* **uncertainty**: a linear probe (the app's own solver, tl_ui/engine/probe/solver.py) fitted on the
  items labelled so far; an item's uncertainty is 1 - the margin between its two likeliest classes;
* **diversity**: k-center greedy in the embeddings' cosine geometry: each pick is scored by its
  distance to the nearest item already labelled or picked, so twenty near-duplicates are not asked
  one after another (a duplicate of a pick drops to distance ~0).

Each pick maximises `uncertainty ** w * (distance / d0) ** (1 - w)` (w = UNCERTAINTY_WEIGHT; d0: the
largest such distance before the first pick, so the scale stays fixed and the scores come out best
first, never rising). A product, not a sum: a copy of an item just picked has distance ~0 and so a
score ~0 however uncertain it is (with a sum, ten copies of one torn item were asked in a row). Until every class has `MIN_PER_CLASS` labels the probe does not
guess and the ranking is by diversity alone (the first pick, with nothing labelled, is the item
nearest the pool's centre: a typical one); each suggestion's `reason` says which.

The learning curve is the cross-validated accuracy of a linear probe on the first n labels, for a
few n, each with its interval (tl_ui/trust/intervals.cv_probe_estimate: a corrected t interval never
narrower than the Wilson interval of n examples); `stop_sentence` says when more labels stopped
helping within that noise.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np

MIN_PER_CLASS = 2             # labels of every class before the probe guesses
UNCERTAINTY_WEIGHT = 0.5      # the exponents of uncertainty and diversity in the score
TORN_MARGIN = 0.3             # a margin below this reads "torn between A and B"
CURVE_POINTS = 6              # at most this many points on the learning curve
CURVE_REPEATS = 2             # repeats of the k-fold cross-validation at each point
WIDE_INTERVAL = 0.10          # no "stopped helping" while the last point's interval is wider than +-this
_CHUNK = 2048


def _unit_rows(features: np.ndarray) -> np.ndarray:
    x = np.asarray(features, dtype=np.float32)
    x = x - x.mean(axis=0, keepdims=True)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def _min_distance(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Each row's Euclidean distance to its nearest centre (unit rows: a monotone cosine distance)."""
    out = np.full(len(x), np.inf, dtype=np.float32)
    for start in range(0, len(centres), _CHUNK):
        c = centres[start:start + _CHUNK]
        sq = np.maximum(2.0 - 2.0 * (x @ c.T), 0.0)
        out = np.minimum(out, np.sqrt(sq.min(axis=1)))
    return out


def margins(probabilities: np.ndarray) -> np.ndarray:
    """Top-1 minus top-2 probability of each row (0: torn, 1: certain)."""
    p = np.sort(np.asarray(probabilities, dtype=np.float64), axis=1)
    return p[:, -1] - (p[:, -2] if p.shape[1] > 1 else 0.0)


def greedy_pick(features: np.ndarray, labelled: Sequence[int], candidates: Sequence[int], n: int,
                uncertainty: Optional[np.ndarray] = None,
                weight: float = UNCERTAINTY_WEIGHT) -> list[tuple[int, float, float]]:
    """Pick `n` of `candidates` (indices into `features`), best first: [(index, score, distance share)].
    `uncertainty` (one per row of `features`, in [0, 1]; None: diversity alone)."""
    candidates = np.asarray(list(candidates), dtype=np.int64)
    n = min(int(n), len(candidates))
    if n <= 0:
        return []
    x = _unit_rows(features)
    xc = x[candidates]
    labelled = list(labelled)
    picks: list[tuple[int, float, float]] = []
    if labelled:
        distance = _min_distance(xc, x[labelled])
    else:   # nothing labelled: begin with the most typical item (nearest the centre), then k-center
        first = int(np.argmin(np.linalg.norm(xc - xc.mean(axis=0), axis=1)))
        picks.append((int(candidates[first]), 1.0, 1.0))
        distance = _min_distance(xc, xc[[first]])
    scale = float(distance.max()) if len(distance) and distance.max() > 0 else 1.0
    unc = (np.ones(len(candidates)) if uncertainty is None
           else np.clip(np.asarray(uncertainty, dtype=np.float64)[candidates], 0.0, 1.0))
    w = 0.0 if uncertainty is None else float(weight)
    taken = np.zeros(len(candidates), dtype=bool)
    if picks:
        taken[first] = True
    while len(picks) < n:
        share = distance / scale
        score = unc ** w * share ** (1.0 - w)
        score[taken] = -np.inf
        best = int(np.argmax(score))
        picks.append((int(candidates[best]), float(score[best]), float(share[best])))
        taken[best] = True
        distance = np.minimum(distance, _min_distance(xc, xc[[best]]))
    return picks


def class_counts(labels: Sequence[str], classes: Sequence[str]) -> dict[str, int]:
    counts = {c: 0 for c in classes}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    return counts


def guessable(labels: Sequence[str], classes: Sequence[str]) -> list[str]:
    """The classes the probe can guess: those with MIN_PER_CLASS labels (none until two classes have them)."""
    counts = class_counts(labels, classes)
    ready = [c for c in classes if counts.get(c, 0) >= MIN_PER_CLASS]
    return ready if len(ready) >= 2 else []


def fit_probe(features: np.ndarray, labels: Sequence[str], classes: Sequence[str], seed: int = 0):
    """The probe on the labelled rows: a function rows -> class probabilities (columns: `classes`)."""
    from tl_ui.engine.probe.solver import APP_OPTIONS, fit_head

    index = {c: i for i, c in enumerate(classes)}
    y = np.asarray([index[label] for label in labels], dtype=np.int64)
    x = np.asarray(features, dtype=np.float32)
    fit = fit_head(x, y, len(classes), choose_x=x[:0], choose_y=y[:0], seed=seed, **APP_OPTIONS)

    def probabilities(rows: np.ndarray) -> np.ndarray:
        logits = np.asarray(rows, dtype=np.float64) @ fit.weight.T.astype(np.float64) + fit.bias
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    return probabilities


def suggest(features: np.ndarray, names: Sequence[str], labelled: dict[str, str], classes: Sequence[str],
            n: int, *, seed: int = 0, weight: float = UNCERTAINTY_WEIGHT) -> list[dict]:
    """The `n` unlabelled items to label next, best first: [{item, score, reason, guess}].
    `names`: one per row of `features`; `labelled`: {name: class} (an empty class: set aside as
    "not sure": never asked again, never trained on); `classes`: every class (the labels' too)."""
    names = list(names)
    classes = list(dict.fromkeys([*classes, *(v for v in labelled.values() if v)]))
    position = {name: i for i, name in enumerate(names)}
    done = [(position[k], v) for k, v in labelled.items() if k in position]
    trained = [(i, v) for i, v in done if v]
    asked = {i for i, _ in done}
    candidates = [i for i in range(len(names)) if i not in asked]
    labels = [v for _, v in trained]
    x = np.asarray(features, dtype=np.float32)
    probabilities = None
    ready = guessable(labels, classes)
    uncertainty = None
    if ready:
        rows = [(i, v) for i, v in trained if v in ready]
        probabilities = fit_probe(x[[i for i, _ in rows]], [v for _, v in rows], ready, seed)(x)
        uncertainty = 1.0 - margins(probabilities)
    picks = greedy_pick(x, [i for i, _ in trained], candidates, n, uncertainty, weight)
    counts = class_counts(labels, classes)
    waiting = [c for c in classes if c not in ready]
    tail = "" if not waiting or not ready else (
        f"; it cannot guess {_listed(waiting)} yet (fewer than {MIN_PER_CLASS} labels)")
    out = []
    for index, score, share in picks:
        if probabilities is None:
            guess, reason = None, _diversity_reason(counts, bool(trained))
        else:
            order = np.argsort(-probabilities[index])
            top, second = ready[order[0]], ready[order[1]]
            p1, p2 = float(probabilities[index, order[0]]), float(probabilities[index, order[1]])
            guess = top
            if p1 - p2 < TORN_MARGIN:
                reason = f"The model is torn between {said(top)} and {said(second)} ({p1:.0%} against {p2:.0%})"
            elif share > 1 - (p1 - p2):
                reason = (f"The model guesses {said(top)} ({p1:.0%}), but this item is unlike the items labelled "
                          "so far")
            else:
                reason = (f"The model is unsure: its guess, {said(top)}, has {p1:.0%} and {said(second)} comes next "
                          f"with {p2:.0%}")
            reason += tail + "."
        out.append({"item": names[index], "score": round(score, 4), "reason": reason, "guess": guess})
    return out


def said(name: str) -> str:
    """A class as a sentence names it: 'class 8' for a class named by a number ('guesses 8 (72%)' reads as a count)."""
    try:
        float(name)
    except ValueError:
        return str(name)
    return f"class {name}"


def _listed(classes: Sequence[str], most: int = 3) -> str:
    names = [said(c) if said(c) != c else f"'{c}'" for c in classes[:most]]
    more = len(classes) - most
    if more > 0:
        return ", ".join(names) + f" and {more} more"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _diversity_reason(counts: dict[str, int], any_labelled: bool) -> str:
    if not any_labelled:
        return ("Nothing is labelled yet: this is a typical item of the pool, and the next ones are chosen to "
                "be unlike it and each other.")
    have = sorted(c for c, k in counts.items() if k >= MIN_PER_CLASS)
    state = (f"only {said(have[0]) if said(have[0]) != have[0] else repr(have[0])} has" if have else "no class has yet")
    return (f"The model guesses once two classes have {MIN_PER_CLASS} labels each ({state} {MIN_PER_CLASS}); until "
            "then each item is chosen to be unlike the items labelled so far.")


# -- the learning curve ---------------------------------------------------------------------------------
def _scored(labels: Sequence[str]) -> list[int]:
    """The rows a curve point is measured on: those of classes with MIN_PER_CLASS labels or more (a class
    with one label cannot be cross-validated); [] unless two classes qualify."""
    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    ready = {c for c, k in counts.items() if k >= MIN_PER_CLASS}
    return [i for i, label in enumerate(labels) if label in ready] if len(ready) >= 2 else []


def curve_sizes(labels: Sequence[str], points: int = CURVE_POINTS) -> list[int]:
    """The numbers of labels (the first n, in the order given) the curve is measured at: from the first n
    where two classes have two labels each, spaced geometrically up to all of them."""
    labels = list(labels)
    first = next((n for n in range(1, len(labels) + 1) if _scored(labels[:n])), None)
    if first is None:
        return []
    total = len(labels)
    sizes = np.unique(np.round(np.geomspace(first, total, min(points, total - first + 1))).astype(int))
    return [int(s) for s in sizes]


def learning_curve(features: np.ndarray, labels: Sequence[str], *, seed: int = 0,
                   points: int = CURVE_POINTS, repeats: int = CURVE_REPEATS,
                   should_stop: Callable[[], bool] = lambda: False) -> dict:
    """{"points": [{"n", "n_scored", "classes", "accuracy", "accuracy_ci", "folds"}], "sentence", "method"}:
    the probe's cross-validated accuracy on the first n labels (rows of `features` in labelling order),
    among the classes that have two labels or more by then (`n_scored` rows of `classes` classes)."""
    from tl_ui.trust.intervals import cv_probe_estimate

    labels = list(labels)
    x = np.asarray(features, dtype=np.float64)
    out = []
    for size in curve_sizes(labels, points):
        if should_stop():
            break
        rows = _scored(labels[:size])
        names = sorted({labels[i] for i in rows})
        y = np.asarray([names.index(labels[i]) for i in rows], dtype=np.int64)
        estimate = cv_probe_estimate(x[rows], y, len(names), folds=5, repeats=repeats, seed=seed)
        out.append({"n": size, "n_scored": len(rows), "classes": len(names), "accuracy": estimate["accuracy"],
                    "accuracy_ci": list(estimate["accuracy_ci"]), "folds": estimate["folds"]})
    return {"points": out, "sentence": stop_sentence(out),
            "method": ("cross-validated accuracy of a linear probe on the first n labels, among the classes with "
                       f"2 labels or more (stratified k-fold, {repeats} repeats); 95% interval: corrected t, at "
                       "least the Wilson interval of the examples scored")}


def stop_sentence(points: Sequence[dict]) -> str:
    """One plain sentence: still rising, or stopped helping within noise (the last two steps each
    gained less than the half-width of the newer point's interval, and that interval is at most
    +-WIDE_INTERVAL: with a wide interval every step is "within noise", which says nothing)."""
    if not points:
        return "The learning curve starts once two classes have two labels each."
    last = points[-1]
    low, high = last["accuracy_ci"]
    said = (f"with {last['n']} labels the cross-validated accuracy is {last['accuracy']:.2f} "
            f"(95% interval {low:.2f}–{high:.2f})")
    if len(points) < 3:
        return f"Too early to tell whether more labels help: {said}."
    if (high - low) / 2 > WIDE_INTERVAL:
        return (f"Too early to tell whether more labels help: {said}, an interval too wide to see the curve level "
                "off.")
    steps = [(points[i], points[i - 1]) for i in (-1, -2)]
    flat = all(new["accuracy"] - old["accuracy"] <= (new["accuracy_ci"][1] - new["accuracy_ci"][0]) / 2
               for new, old in steps)
    before = points[-3]
    if flat:
        return (f"More labels have stopped helping within noise: {said}, against {before['accuracy']:.2f} with "
                f"{before['n']}. Label more only to narrow the interval.")
    return f"More labels still help: {said}, up from {before['accuracy']:.2f} with {before['n']}."


# -- the embeddings (in a worker: torch) ----------------------------------------------------------------
def embed_pool(items: Sequence[str], modality: str, *, model_id: Optional[str] = None, cache=None,
               base_config=None, classes: Sequence[str] = ("a", "b"),
               on_progress: Callable[[int, int, str], None] = lambda done, total, message: None,
               should_stop: Callable[[], bool] = lambda: False) -> tuple[np.ndarray, str]:
    """(rows x width embeddings of `items`, the model id): the shelf model's frozen features, with the
    very settings (and cache key) a linear-probe run of the same model uses, so they are shared."""
    import torch

    from tl_ui.core.catalog import DEFAULT_MODEL, get_model
    from tl_ui.core.config import RunConfig
    from tl_ui.engine.advisor.ranking import run_config_for
    from tl_ui.engine.models.build import load_model
    from tl_ui.engine.probe.embedding_cache import bind_for_run
    from tl_ui.engine.probe.features import embed_sets

    base = base_config or RunConfig.from_options({"strategy": "linear_probe"}, modality=modality)
    entry = get_model(model_id or DEFAULT_MODEL[modality], modality)
    if entry.modality != modality:
        raise ValueError(f"The model {entry.id} reads {entry.modality}s, but the pool holds {modality}s. "
                         "Choose a model of the pool's kind.")
    config = run_config_for(entry, base)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    window = None if config.dicom_window in (None, "header") else config.dicom_window
    loaded = load_model(entry, list(classes), image_size=config.image_size,
                        max_params_m=config.limits.get("max_model_params_m"))
    bound = bind_for_run(cache, loaded, config, window, device.type)
    features = embed_sets(loaded, [list(items)], batch_size=int(config.batch_size), device=device,
                          max_length=config.max_length, window=window, on_progress=on_progress,
                          should_stop=should_stop, cache=bound)[0].numpy()
    return features, entry.id
