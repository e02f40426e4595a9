"""Checks on labels and items shared by every loader: errors a user must fix, warnings to read."""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Literal, Sequence

from .dataset import DataError
from .limits import Limits
from .wording import plural, quoted_list, row_list

FEW_PER_CLASS = 5          # fewer examples than this in a class: warn
IMBALANCE_RATIO = 5.0      # largest / smallest class above this: warn
LONG_TEXT_CHARS = 2000     # texts longer than this will be truncated by the tokenizer


@dataclass
class Origin:
    """Where the examples came from, so messages can point at folders or spreadsheet rows."""
    name: str                                  # base name of the upload: 'scans.zip', 'notes.csv'
    kind: Literal["zip", "folder", "table"]
    label_column: str = ""                     # tables only
    rows: Sequence[int] | None = None          # tables only: spreadsheet row of each example


def check_classes(labels: Sequence[str], origin: Origin, limits: Limits) -> None:
    """At least two classes, each with at least `limits.min_per_class` examples."""
    counts = Counter(labels)
    if not counts:
        what = "rows of data" if origin.kind == "table" else "images"
        raise DataError(f"'{origin.name}' contains no {what}. Add examples, then upload it again.")
    if len(counts) > limits.max_classes:
        raise DataError(
            f"'{origin.name}' has {len(counts):,} different labels; this Transfer Lab accepts at most "
            f"{limits.max_classes} (setting TL_MAX_CLASSES). Check that the right column holds the labels "
            f"{'(' + repr(origin.label_column) + ')' if origin.label_column else ''}, or merge rare labels.")
    if len(counts) == 1:
        (only,) = counts
        if origin.kind == "table":
            raise DataError(
                f"Every row of '{origin.name}' has the same label ('{only}' in column "
                f"'{origin.label_column}'). Add rows with at least one other label: the model "
                "needs two or more labels to choose between."
            )
        raise DataError(
            f"The {origin.kind} '{origin.name}' has only one class folder ('{only}'). Add at least "
            "one more folder of images, one folder per label."
        )
    small = sorted((name for name, n in counts.items() if n < limits.min_per_class),
                   key=lambda name: (counts[name], name))
    if not small:
        return
    need = (f"Each label needs at least {limits.min_per_class} examples (20 or more is better) "
            "so that some can be held back to check the model.")
    if origin.kind == "table":
        first = small[0]
        rows = [r for r, label in zip(origin.rows or [], labels) if label == first]
        where = f" (row {row_list(rows)})" if rows else ""
        others = f" So do {quoted_list(small[1:])}." if len(small) > 1 else ""
        raise DataError(
            f"The label '{first}' (column '{origin.label_column}' in '{origin.name}') appears in "
            f"only {plural(counts[first], 'row')}{where}.{others} {need} Add more rows with "
            "that label, or correct or delete the row."
        )
    if len(small) == 1:
        raise DataError(
            f"The class folder '{small[0]}' in '{origin.name}' has only "
            f"{plural(counts[small[0]], 'image')}. {need} Add images to that folder or remove it."
        )
    listing = ", ".join(f"'{name}' ({counts[name]})" for name in small[:5])
    raise DataError(
        f"These class folders in '{origin.name}' have too few images: {listing}. {need} "
        "Add images to them or remove them."
    )


def class_warnings(labels: Sequence[str]) -> list[str]:
    counts = Counter(labels)
    out = []
    few = sorted((name for name, n in counts.items() if n < FEW_PER_CLASS),
                 key=lambda name: (counts[name], name))
    if few:
        detail = ", ".join(f"'{name}' has {counts[name]}" for name in few[:5])
        out.append(
            f"Few examples: {detail}. With fewer than {FEW_PER_CLASS} examples per label the "
            "results will be unreliable; 20 or more per label is better."
        )
    if len(counts) >= 2:
        (big, n_big), (tiny, n_tiny) = counts.most_common()[0], counts.most_common()[-1]
        if n_big / n_tiny > IMBALANCE_RATIO:
            out.append(
                f"The labels are unbalanced: '{big}' has {n_big} examples but '{tiny}' only "
                f"{n_tiny} ({n_big / n_tiny:.0f} times fewer). The model may favour '{big}'; add "
                f"more '{tiny}' examples or turn on class weighting."
            )
    return out


def duplicate_warning(keys: Sequence[object], labels: Sequence[str], shown: Sequence[str],
                      noun: str) -> list[str]:
    """Warn about items whose key (text or file hash) repeats. `shown` names each item."""
    groups: dict[object, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        groups[key].append(i)
    repeated = [idx for idx in groups.values() if len(idx) > 1]
    if not repeated:
        return []
    extra = sum(len(idx) - 1 for idx in repeated)
    example = " and ".join(shown[i] for i in repeated[0][:2])
    conflicting = sum(1 for idx in repeated if len({labels[i] for i in idx}) > 1)
    clash = (f" {plural(conflicting, 'of them has', 'of them have')} different labels on "
             "the copies, which confuses the model." if conflicting else "")
    return [
        f"{plural(extra, noun)} {'is an exact copy' if extra == 1 else 'are exact copies'} of "
        f"another (e.g. {example}). Copies can land in both the training and the checking part "
        f"and make the scores look better than they are; consider removing them.{clash}"
    ]


def long_text_warning(texts: Sequence[str], shown: Sequence[str]) -> list[str]:
    long = [i for i, text in enumerate(texts) if len(text) > LONG_TEXT_CHARS]
    if not long:
        return []
    return [
        f"{plural(len(long), 'text is', 'texts are')} longer than {LONG_TEXT_CHARS:,} characters "
        f"(e.g. {shown[long[0]]}); the model reads only the beginning of each text, so the rest "
        "will be cut off."
    ]


def check_total_pixels(total: int, source: str, limits: Limits) -> None:
    """All images of a dataset are decoded into memory: bound their pixels together."""
    if total > limits.max_dataset_pixels:
        raise DataError(
            f"The images of '{source}' hold {total / 1e6:,.0f} million pixels together; this Transfer Lab "
            f"reads at most {limits.max_dataset_pixels / 1e6:,.0f} million per dataset (setting "
            "TL_MAX_DATASET_MEGAPIXELS). Use fewer images, or smaller ones (the models look at 224-512 px).")
