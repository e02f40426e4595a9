"""Multi-label data: a case can carry several labels at once (issue 15).

Two table forms are read:

* one label column whose cells hold several labels separated by `;` or `|` (detected, or chosen
  with `label_separator`; "none" forces single-label);
* several 0/1 columns, one per label (`label_columns="billing,outage,refund"`).

A row with no label at all is kept as a "none of these" example (every label absent) and said so.
The split is the iterative stratification of Sechidis, Tsoumakas & Vlahavas (2011, "On the
stratification of multi-label data"): the rarest label is placed first, each of its examples in
the part that still wants most of that label.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from .dataset import DataError, LabelledDataset
from .limits import Limits
from .wording import plural, quoted_list, row_list, short

SEPARATORS = (";", "|")
NO_SEPARATOR = "none"           # label_separator value that forces one label per row
NONE_SHOWN = "(none of these)"  # how a row without labels is shown
FEW_PER_LABEL = 5
MIN_PER_LABEL = 2               # fewer occurrences than this is an error (the split needs one to test on)
_TRUE = {"1", "1.0", "true", "yes", "y", "x"}
_FALSE = {"0", "0.0", "false", "no", "n", ""}


@dataclass
class Labels:
    """What the label column(s) of a table say, row by row."""
    sets: list[tuple[str, ...]]
    names: list[str]
    source: dict                      # {"form": "separator", "separator": ";", "column": ...} or 0/1 columns
    warnings: list[str] = field(default_factory=list)

    def shown(self) -> list[str]:
        return [";".join(s) if s else NONE_SHOWN for s in self.sets]


def split_cell(value: str, separator: str) -> tuple[str, ...]:
    """'billing; outage|' -> ('billing', 'outage'): stripped, empty parts and repeats dropped, in order."""
    parts = [re.sub(r"^(-?\d+)\.0+$", r"\1", p.strip()) for p in value.split(separator)]
    return tuple(dict.fromkeys(p for p in parts if p))


def detect_separator(values: Sequence[str]) -> Optional[str]:
    """The separator that splits the most cells into two or more labels; None when none does."""
    best, best_n = None, 0
    for sep in SEPARATORS:
        n = sum(1 for v in values if len(split_cell(v, sep)) > 1)
        if n > best_n:
            best, best_n = sep, n
    return best


def read_label_column(table_name: str, values: Sequence[str], rows: Sequence[int], column: str,
                      chosen: Optional[str], limits: Limits) -> tuple[Optional[Labels], list[str]]:
    """(Labels, []) when the column holds several labels per row; (None, notes) for single-label data.

    `chosen`: None or "auto" (detect), "none" (single-label), or the separator itself."""
    chosen = (chosen or "").strip().lower()
    chosen = {"": None, "auto": None, "semicolon": ";", "pipe": "|"}.get(chosen, chosen)
    if chosen == NO_SEPARATOR:
        return None, []
    if chosen is not None and chosen not in SEPARATORS:
        raise DataError(f"The label separator '{short(chosen)}' is not one Transfer Lab reads. Choose ';', '|', "
                        "'auto' (detected) or 'none' (one label per row).")
    separator = chosen or detect_separator(values)
    if separator is None:
        return None, []
    sets = [split_cell(v, separator) for v in values]
    if all(len(s) <= 1 for s in sets):
        return None, [f"Splitting the labels of column '{column}' at '{separator}' gives one label per row "
                      "everywhere, so this is single-label data and was read as such."]
    labels = Labels(sets, sorted({n for s in sets for n in s}),
                    {"form": "separator", "separator": separator, "column": column})
    labels.warnings = check_label_sets(labels, table_name, rows, f"column '{column}'", limits)
    if chosen is None:
        labels.warnings.insert(0, (
            f"Column '{column}' holds several labels per row separated by '{separator}', so each row may have "
            f"several of the {len(labels.names)} labels (multi-label). If '{separator}' is part of your label "
            "names, choose the separator 'none'."))
    return labels, []


def read_zero_one_columns(table_name: str, frame, columns: Sequence[str], rows: Sequence[int],
                          limits: Limits) -> Labels:
    """Labels from several 0/1 columns, one per label (the column name is the label)."""
    if len(columns) < 2:
        raise DataError(f"Multi-label columns need at least two 0/1 columns, one per label (got "
                        f"{quoted_list(columns)} in '{table_name}'). For a single label column, choose it as "
                        "the label column instead.")
    flags = []
    for column in columns:
        values = [str(v).strip().lower() for v in frame[column].tolist()]
        bad = [(r, v) for r, v in zip(rows, values) if v not in _TRUE | _FALSE]
        if bad:
            raise DataError(
                f"Column '{column}' of '{table_name}' should hold 0 or 1 in every row (1: the row has the label "
                f"'{column}'), but {'row' if len(bad) == 1 else 'rows'} {row_list([r for r, _ in bad])} "
                f"{'holds' if len(bad) == 1 else 'hold'} '{short(bad[0][1])}'. Write 0 or 1 there, or leave that "
                "column out of the label columns.")
        flags.append([v in _TRUE for v in values])
    sets = [tuple(c for c, f in zip(columns, row) if f) for row in zip(*flags)]
    labels = Labels(sets, list(columns), {"form": "columns", "columns": list(columns)})
    labels.warnings = check_label_sets(labels, table_name, rows, "the label columns", limits)
    return labels


def check_label_sets(labels: Labels, table_name: str, rows: Sequence[int], where: str, limits: Limits) -> list[str]:
    """Errors a user must fix (raised) and warnings to read (returned)."""
    counts = Counter({name: 0 for name in labels.names})
    counts.update(n for s in labels.sets for n in s)
    n = len(labels.sets)
    if not any(counts.values()):
        raise DataError(f"No row of '{table_name}' has a label in {where}. Give each row the labels it has.")
    if len(counts) > limits.max_classes:
        raise DataError(f"'{table_name}' has {len(counts):,} different labels in {where}; this Transfer Lab accepts "
                        f"at most {limits.max_classes} (setting TL_MAX_CLASSES). Merge rare labels.")
    if sum(1 for c in counts.values() if c) < 2:
        only = next(name for name, c in counts.items() if c)
        raise DataError(
            f"Only one label ('{only}') occurs in {where} of '{table_name}'. Multi-label data needs at least two "
            f"labels; to learn whether a row has '{only}' or not, give every row one label ('{only}' or "
            f"'not {only}') in a single label column.")
    need = max(MIN_PER_LABEL, 2)
    rare = sorted((name for name in counts if counts[name] < need), key=lambda x: (counts[x], x))
    if rare:
        first = rare[0]
        where_rows = [r for r, s in zip(rows, labels.sets) if first in s]
        others = f" So do {quoted_list(rare[1:])}." if len(rare) > 1 else ""
        seen = f"occurs in only {plural(counts[first], 'row')} ({_rows(where_rows)})" if where_rows else "never occurs"
        raise DataError(
            f"The label '{first}' ({where} in '{table_name}') {seen}.{others} Each label needs at least {need} rows (20 or more is better) so "
            "that one can be held back to check the model. Add rows with that label, or remove it.")
    always = sorted(name for name in counts if counts[name] == n)
    if always:
        raise DataError(
            f"The label '{always[0]}' ({where} in '{table_name}') is on every row, so there is nothing to tell "
            "apart for it. Remove that label, or add rows without it.")
    warnings = []
    missing = [r for r, s in zip(rows, labels.sets) if not s]
    if missing:
        warnings.append(
            f"{plural(len(missing), 'row has', 'rows have')} no label ({_rows(missing)}): "
            f"{'it is kept as a' if len(missing) == 1 else 'they are kept as'} \"none of these\" "
            f"example{'' if len(missing) == 1 else 's'}, which teach the "
            "model that a case can have none of the labels. If a label is missing there, add it.")
    few = sorted((name for name in counts if counts[name] < FEW_PER_LABEL), key=lambda x: (counts[x], x))
    if few:
        detail = ", ".join(f"'{name}' has {counts[name]}" for name in few[:5])
        warnings.append(f"Few examples: {detail}. With fewer than {FEW_PER_LABEL} rows per label its numbers will "
                        "be unreliable and its threshold stays at 0.5; 20 or more per label is better.")
    return warnings


def _rows(rows: Sequence[int]) -> str:
    return f"{'row' if len(rows) == 1 else 'rows'} {row_list(rows)}"


# -- splits --------------------------------------------------------------------------------------

def iterative_split(targets: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(first, second) sorted indices, `second` about `fraction` of the rows, label proportions kept
    (Sechidis et al. 2011). Then two repairs: `first` (training) holds every label, and `second` every
    label that occurs at least twice."""
    y = np.asarray(targets) > 0.5
    n, k = y.shape
    rng = np.random.default_rng(seed)
    ratios = np.array([1.0 - fraction, fraction])
    wanted = ratios * n                                   # rows each part still wants
    wanted_label = np.outer(ratios, y.sum(axis=0)).astype(float)   # (2, k): label l each part still wants
    part = np.full(n, -1)
    left = np.ones(n, dtype=bool)
    while True:
        remaining = y[left].sum(axis=0)
        if remaining.sum() == 0:
            break
        candidates = np.flatnonzero(remaining == remaining[remaining > 0].min())
        label = int(rng.choice(candidates))
        for row in rng.permutation(np.flatnonzero(left & y[:, label])):
            scores = wanted_label[:, label]
            best = np.flatnonzero(scores == scores.max())
            if len(best) > 1:
                best = best[wanted[best] == wanted[best].max()]
            chosen = int(rng.choice(best))
            part[row], left[row] = chosen, False
            wanted[chosen] -= 1
            wanted_label[chosen, y[row]] -= 1
    for row in rng.permutation(np.flatnonzero(left)):     # rows without labels: where rows are wanted most
        chosen = int(np.argmax(wanted))
        part[row] = chosen
        wanted[chosen] -= 1
    _repair(y, part)
    return np.sort(np.flatnonzero(part == 0)).astype(np.int64), np.sort(np.flatnonzero(part == 1)).astype(np.int64)


def _repair(y: np.ndarray, part: np.ndarray) -> None:
    counts = y.sum(axis=0)
    for label in np.argsort(counts, kind="stable"):
        for target, need in ((0, 1), (1, 2)):
            here = y[part == target, label].sum()
            if counts[label] < need or here > 0:
                continue
            donors = np.flatnonzero((part != target) & y[:, label])
            if target == 1:   # keep at least one of each of the donor's labels in training
                keep = [d for d in donors if all(y[part == 0, m].sum() > 1 for m in np.flatnonzero(y[d]))]
                donors = np.array(keep or donors[:0], dtype=int)
            if len(donors):
                part[donors[np.argmin(y[donors].sum(axis=1))]] = target


def multilabel_subset(dataset: LabelledDataset, n: int, seed: int) -> LabelledDataset:
    """About `n` examples with the label proportions kept (the iterative split's smaller part)."""
    _, keep = iterative_split(dataset.targets, min(max(n / len(dataset), 1e-6), 1 - 1e-6), seed)
    return dataset.subset(keep)


def label_options(dataset) -> dict:
    """RunConfig options that read `dataset`'s labels the same way again ({} for single-label data)."""
    source = getattr(dataset, "label_source", None) or {}
    if source.get("form") == "columns":
        return {"label_columns": ",".join(source["columns"])}
    if source.get("form") == "separator":
        return {"label_separator": source["separator"]}
    return {}


def folder_copies_note(images: Sequence[tuple]) -> list[str]:
    """Class folders give each image one label: say so when the same file (name and size) lies in
    several class folders, as people do to give an image two labels. `images`: (path, shown, label)."""
    import hashlib

    by_name: dict[tuple, list] = {}
    for path, _, label in images:
        by_name.setdefault((path.name.lower(), path.stat().st_size), []).append((path, label))
    where: dict[tuple, set] = {}
    for (name, _), found in by_name.items():
        if len({label for _, label in found}) < 2:
            continue
        for path, label in found:   # same name and size: the same file only if the bytes are the same
            where.setdefault((name, hashlib.sha1(path.read_bytes()).hexdigest()), set()).add(label)
    copies = [k for k, labels in where.items() if len(labels) > 1]
    if not copies:
        return []
    first = copies[0]
    return [f"{plural(len(copies), 'file lies', 'files lie')} in more than one class folder (e.g. '{first[0]}' in "
            f"{quoted_list(sorted(where[first]))}). A zip of class folders gives each image one label, so these "
            "copies count as separate examples with different labels. To give an image several labels, upload a "
            "CSV of image paths with a labels column (e.g. 'effusion;cardiomegaly') instead."]
