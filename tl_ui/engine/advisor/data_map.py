"""A map of a dataset before training: its examples' frozen embeddings laid out in 2-D, and the
examples whose nearest neighbours mostly carry another label (possible label problems).

Plain numbers in, plain data out (numpy and scikit-learn, no torch): the advisor's worker calls it on
the embeddings it has already computed, so the map costs no forward pass of its own.

* Layout: standardise, PCA to at most 50 dimensions (what t-SNE's authors recommend before it), then
  t-SNE to 2-D (scikit-learn, fixed seed); with fewer than 10 examples, PCA's first two components.
* Possible label problems: for every example, its k nearest neighbours (cosine, in the PCA space,
  itself excluded); when at least `share` of them carry one other label, the example is listed with
  that label as what its neighbours say. This is a pointer for a person to look at, not a verdict:
  a rare subtype of a class, or an example near a class border, is listed too.
"""
from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np

DEFAULT_K = 5
DEFAULT_SHARE = 0.8          # 4 of 5 neighbours agree on another label
MAX_LISTED = 30              # the page lists at most this many, most certain first


def layout_2d(features: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """(2-D coordinates, the PCA features the neighbours are found in, how the layout was made)."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    x = np.asarray(features, dtype=np.float64)
    n = len(x)
    x = StandardScaler().fit_transform(x)
    n_components = max(1, min(50, n - 1, x.shape[1]))
    reduced = PCA(n_components=n_components, random_state=seed).fit_transform(x)
    if n < 10 or n_components < 2:
        coords = np.zeros((n, 2))
        coords[:, :min(2, n_components)] = reduced[:, :2]
        return coords, reduced, "PCA (first two components)"
    from sklearn.manifold import TSNE

    perplexity = float(min(30.0, max(2.0, (n - 1) / 3)))
    coords = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(reduced)
    return coords, reduced, f"PCA to {n_components} dimensions, then t-SNE (perplexity {perplexity:g})"


def label_problems(features: np.ndarray, labels: Sequence[str], *, k: int = DEFAULT_K,
                   share: float = DEFAULT_SHARE) -> list[dict]:
    """Examples whose k nearest neighbours mostly carry one other label, most certain first:
    [{"index", "label", "neighbours_say", "share"}]."""
    from sklearn.neighbors import NearestNeighbors

    labels = list(labels)
    n = len(labels)
    k = min(k, n - 1)
    if k < 1:
        return []
    index = NearestNeighbors(n_neighbors=k + 1, metric="cosine").fit(features)
    _, neighbours = index.kneighbors(features)
    out = []
    for i, row in enumerate(neighbours):
        others = [labels[j] for j in row if j != i][:k]
        said, count = Counter(others).most_common(1)[0]
        if said != labels[i] and count / k >= share:
            out.append({"index": i, "label": labels[i], "neighbours_say": said, "share": round(count / k, 2)})
    return sorted(out, key=lambda p: (-p["share"], p["index"]))


def data_map(features: np.ndarray, labels: Sequence[str], items: Sequence[str], *, seed: int = 0,
             k: int = DEFAULT_K, share: float = DEFAULT_SHARE) -> dict:
    """{"points": [{"x", "y", "label", "item", "suspect"}], "problems": [... + "item"] (at most
    MAX_LISTED), "n_problems", "method", "k", "share"}."""
    coords, reduced, method = layout_2d(features, seed)
    problems = label_problems(reduced, labels, k=k, share=share)
    suspects = {p["index"] for p in problems}
    points = [{"x": round(float(x), 4), "y": round(float(y), 4), "label": str(label), "item": str(item),
               "suspect": i in suspects}
              for i, ((x, y), label, item) in enumerate(zip(coords, labels, items))]
    listed = [{**p, "item": str(items[p["index"]])} for p in problems[:MAX_LISTED]]
    return {"points": points, "problems": listed, "n_problems": len(problems), "method": method, "k": k,
            "share": share}
