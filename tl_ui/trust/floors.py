"""No interval narrower than its n allows (issue 32).

Resampled intervals collapse on easy data: when all 80 test examples are right, every bootstrap
resample scores 100% and every cross-validation fold scores 100%, so the percentile bootstrap and
the Nadeau–Bengio interval both say "100%–100%". The counts still bound what the data can show:
a model that is right only 95.4% of the time still gets all 80 right about one time in 40. This module
widens such intervals to what the counts allow, in one place, and says that it did.

The floor is the **Wilson score interval** on the pooled counts (k right of n examples). Wilson,
not Clopper–Pearson: it is the interval the app already shows for accuracy (so a floored macro-F1
or cross-validated accuracy is never narrower than the test accuracy one line above it), its
coverage is close to the nominal level for small n (Brown, Cai & DasGupta 2001 recommend it, or
Jeffreys', for n up to 40), and at k = n it is nearly the exact interval anyway (80 of 80: Wilson's
lower end 95.4%, Clopper–Pearson's 95.5%). Clopper–Pearson guarantees at least the nominal coverage by being
wider than needed almost everywhere else.

The rules (docs/contracts.md, "floored_intervals"):

* **A share of n examples** (accuracy, cross-validated accuracy, precision, recall, coverage):
  the interval always contains the Wilson interval of its k of n (`at_least_wilson`).
* **A score that is not a share** (macro-F1, micro-F1, Hamming loss, mean average precision):
  where its resampled interval cannot be trusted, i.e. it has no width, or the score or one end of
  the interval sits at the end of the scale (0 or 1), where a percentile bootstrap has nowhere to
  go, it is widened to at least the Wilson interval of the score taken as a share of the n
  examples, Wilson(round(score * n), n) (`at_least_as_share`). At a score of 1 this is exactly
  the accuracy's interval: a macro-F1 of 1 means every example was right, so macro-F1 can be no
  surer than accuracy. Elsewhere it is a simple, documented floor on the width, not an exact
  interval: the resampled interval is kept whenever it is the wider one.
* **A paired difference** of two accuracies on the same examples: when no example went one of the
  two ways (A right where B was wrong, or the reverse), resampling cannot show that way at all;
  the interval is widened to at least [L+ − U−, U+ − L−], the Wilson intervals of the two shares
  of discordant examples (`paired_floor`).
"""
from __future__ import annotations

from typing import Optional, Sequence

from .proportions import wilson_interval


def _hull(ci: Sequence[float], floor: Sequence[float]) -> tuple[list[float], bool]:
    low, high = float(ci[0]), float(ci[1])
    new_low, new_high = min(low, float(floor[0])), max(high, float(floor[1]))
    new = [round(max(new_low, -1.0), 4), round(min(new_high, 1.0), 4)]
    return new, (new[0] < round(low, 4) or new[1] > round(high, 4))


def at_least_wilson(ci: Sequence[float], successes: int, n: int, level: float) -> tuple[list[float], bool]:
    """(interval, floored): `ci` widened to contain Wilson(successes, n). For shares of n examples."""
    if n <= 0:
        return [float(ci[0]), float(ci[1])], False
    return _hull(ci, wilson_interval(int(successes), int(n), level))


def needs_floor(value: float, ci: Sequence[float]) -> bool:
    """A resampled interval that cannot be trusted: no width, or the score or an end at 0 or 1."""
    low, high = float(ci[0]), float(ci[1])
    at_end = lambda x: x <= 1e-9 or x >= 1 - 1e-9   # noqa: E731
    return high - low <= 1e-9 or at_end(float(value)) or at_end(low) or at_end(high)


def at_least_as_share(value: float, ci: Sequence[float], n: int, level: float) -> tuple[list[float], bool]:
    """(interval, floored) for a score in [0, 1] that is not a share of examples: widened, where
    `needs_floor`, to at least Wilson(round(value * n), n)."""
    if n <= 0 or not needs_floor(value, ci):
        return [float(ci[0]), float(ci[1])], False
    return _hull(ci, wilson_interval(int(round(float(value) * n)), int(n), level))


def paired_floor(ci: Sequence[float], a_only: int, b_only: int, n: int, level: float) -> tuple[list[float], bool]:
    """(interval, floored) of accuracy(A) − accuracy(B) on n paired examples, `a_only` right only
    for A and `b_only` right only for B: widened when either count is 0 (see the module's rules)."""
    if n <= 0 or (a_only > 0 and b_only > 0):
        return [float(ci[0]), float(ci[1])], False
    a_low, a_high = wilson_interval(a_only, n, level)
    b_low, b_high = wilson_interval(b_only, n, level)
    return _hull(ci, (a_low - b_high, a_high - b_low))


class FloorLog:
    """Collects the names of the intervals a block widened: its `floored_intervals` field."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def keep(self, name: str, result: tuple[list[float], bool]) -> list[float]:
        interval, floored = result
        if floored:
            self.names.append(name)
        return interval

    def field(self) -> list[str]:
        return list(self.names)


def floored(block: Optional[dict], name: str) -> bool:
    """Whether metrics.json's `block` records `name` (e.g. "macro_f1_ci") as widened to its floor."""
    return bool(block) and name in (block.get("floored_intervals") or [])
