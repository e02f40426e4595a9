"""The validated dataset every loader returns and the engine consumes."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal, Optional

import numpy as np

Modality = Literal["image", "text"]


class DataError(ValueError):
    """Input a user must fix. The message names the file/row and says what to do; never a traceback."""


@dataclass
class LabelledDataset:
    modality: Modality
    items: list[str]            # image: absolute paths inside the upload's working folder; text: the texts
    labels: list[str]           # one label name per item
    source: str = ""            # what the user gave us (file name), for summaries and model cards
    warnings: list[str] = field(default_factory=list)
    groups: Optional[list[str]] = None   # one group name per item (site, scanner, ...) when chosen
    group_column: Optional[str] = None
    # multi-label data (tl_ui/data/multilabel.py): each item's labels (possibly none), the label names
    # in order, and how they were read; `labels` then holds each item's labels joined for display
    label_sets: Optional[list[tuple[str, ...]]] = None
    label_names: Optional[list[str]] = None
    label_source: Optional[dict] = None

    @property
    def multilabel(self) -> bool:
        return self.label_sets is not None

    @property
    def classes(self) -> list[str]:
        """Sorted class names; the index of a name is its class id everywhere (head, export, metrics)."""
        if self.multilabel:
            return list(self.label_names or [])
        return sorted(set(self.labels))

    @property
    def targets(self) -> np.ndarray:
        """Class ids (n,); multi-label: a 0/1 matrix (n, labels) of float32."""
        index = {name: i for i, name in enumerate(self.classes)}
        if self.multilabel:
            matrix = np.zeros((len(self.items), len(index)), dtype=np.float32)
            for row, names in enumerate(self.label_sets):
                matrix[row, [index[n] for n in names]] = 1.0
            return matrix
        return np.array([index[label] for label in self.labels], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.items)

    def class_counts(self) -> dict[str, int]:
        counts = Counter(name for names in self.label_sets for name in names) if self.multilabel \
            else Counter(self.labels)
        return {name: counts[name] for name in self.classes}

    def summary(self) -> dict:
        return {
            "modality": self.modality,
            "source": self.source,
            "n_examples": len(self),
            "n_classes": len(self.classes),
            "classes": self.class_counts(),
            "warnings": list(self.warnings),
            **({"multilabel": _multilabel_summary(self)} if self.multilabel else {}),
        }

    def subset(self, indices) -> "LabelledDataset":
        indices = [int(i) for i in indices]
        return LabelledDataset(
            self.modality, [self.items[i] for i in indices], [self.labels[i] for i in indices],
            self.source, list(self.warnings),
            groups=None if self.groups is None else [self.groups[i] for i in indices],
            group_column=self.group_column,
            label_sets=None if self.label_sets is None else [self.label_sets[i] for i in indices],
            label_names=self.label_names, label_source=self.label_source,
        )


def _multilabel_summary(dataset: "LabelledDataset", top: int = 15) -> dict:
    """Per-label counts, how many labels a row has, and which labels occur together."""
    matrix = dataset.targets
    names = dataset.classes
    together = (matrix.T @ matrix).astype(int)
    pairs = sorted(((int(together[i, j]), names[i], names[j]) for i in range(len(names))
                    for j in range(i + 1, len(names)) if together[i, j] > 0), key=lambda t: (-t[0], t[1], t[2]))
    per_row = matrix.sum(axis=1)
    n_none = int((per_row == 0).sum())
    sentence = (f"{len(dataset)} examples carry {len(names)} labels, {per_row.mean():.2f} per example on average; "
                f"{int((per_row > 1).sum())} have more than one"
                + (f" and {n_none} {'has' if n_none == 1 else 'have'} none (\"none of these\")." if n_none else "."))
    return {"labels": {n: int(c) for n, c in zip(names, matrix.sum(axis=0))},
            "source": dict(dataset.label_source or {}),
            "n_none": n_none, "labels_per_example": round(float(per_row.mean()), 3),
            "max_labels_per_example": int(per_row.max()) if len(per_row) else 0,
            "co_occurrence": [{"labels": [a, b], "n": n} for n, a, b in pairs[:top]],
            "co_occurrence_matrix": together.tolist(), "sentence": sentence}
