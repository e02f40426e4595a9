"""Stratified train/validation splits and subsets: every class keeps its share."""
from __future__ import annotations

from collections import defaultdict

import numpy as np
from sklearn.model_selection import train_test_split

from .dataset import LabelledDataset


def stratified_split(dataset: LabelledDataset, val_fraction: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train_idx, val_idx), sorted int64 arrays; same seed, same split.

    Every class with at least 2 examples appears in both parts; a class with a single example
    goes to training.
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    if dataset.multilabel:   # several labels per example: iterative stratification
        from .multilabel import iterative_split

        return iterative_split(dataset.targets, val_fraction, seed)
    targets = dataset.targets
    counts = np.bincount(targets)
    indices = np.arange(len(targets))
    if len(targets) and counts.min() >= 2:
        try:
            train, val = train_test_split(indices, test_size=val_fraction, stratify=targets,
                                          random_state=seed)
        except ValueError:
            pass  # too few examples for sklearn to stratify: split by hand below
        else:
            if _every_class_in_both(targets, train, val):
                return np.sort(train).astype(np.int64), np.sort(val).astype(np.int64)
    return _split_per_class(targets, val_fraction, seed)


def stratified_subset(dataset: LabelledDataset, n: int, seed: int) -> LabelledDataset:
    """About `n` examples with the class proportions kept and at least 1 per class.

    When `n` is smaller than the number of classes the result has one example per class.
    """
    if n >= len(dataset):
        return dataset.subset(range(len(dataset)))
    if dataset.multilabel:
        from .multilabel import multilabel_subset

        return multilabel_subset(dataset, n, seed)
    by_class = _indices_by_class(dataset.targets)
    counts = {c: len(idx) for c, idx in by_class.items()}
    total = sum(counts.values())
    # Largest-remainder allocation on top of one guaranteed example per class.
    spare = max(n - len(counts), 0)
    share = {c: spare * counts[c] / total for c in counts}
    take = {c: min(counts[c], 1 + int(share[c])) for c in counts}
    order = sorted(counts, key=lambda c: (-(share[c] - int(share[c])), c))
    left = max(n, len(counts)) - sum(take.values())
    while left > 0:
        grew = False
        for c in order:
            if left and take[c] < counts[c]:
                take[c] += 1
                left -= 1
                grew = True
        if not grew:
            break
    rng = np.random.default_rng(seed)
    chosen = [i for c in sorted(by_class) for i in rng.permutation(by_class[c])[: take[c]]]
    return dataset.subset(sorted(chosen))


def _split_per_class(targets: np.ndarray, val_fraction: float, seed: int):
    rng = np.random.default_rng(seed)
    train, val = [], []
    for _, idx in sorted(_indices_by_class(targets).items()):
        idx = rng.permutation(idx)
        if len(idx) < 2:
            train.extend(idx)
            continue
        n_val = min(max(int(round(len(idx) * val_fraction)), 1), len(idx) - 1)
        val.extend(idx[:n_val])
        train.extend(idx[n_val:])
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(val, dtype=np.int64))


def _every_class_in_both(targets: np.ndarray, train: np.ndarray, val: np.ndarray) -> bool:
    classes = set(np.unique(targets).tolist())
    return classes <= set(targets[train].tolist()) and classes <= set(targets[val].tolist())


def _indices_by_class(targets: np.ndarray) -> dict[int, list[int]]:
    by_class: dict[int, list[int]] = defaultdict(list)
    for i, t in enumerate(targets.tolist()):
        by_class[t].append(i)
    return dict(by_class)
