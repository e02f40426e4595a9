"""One plain sentence per estimate, for readers who are not statisticians."""
from __future__ import annotations

import math
from fractions import Fraction

from .intervals import DEFAULT_LEVEL

# Below this many examples the sentence says outright that the range is wide because data is scarce.
_FEW_EXAMPLES = 200


def _percent_range(ci) -> tuple[int, int]:
    # Round outwards so the stated range never looks tighter than the interval.
    low, high = float(ci[0]) * 100, float(ci[1]) * 100
    return math.floor(round(low, 6)), math.ceil(round(high, 6))


def _level_percent(level: float) -> str:
    return f"{round(level * 100, 2):g}%"


def accuracy_sentence(correct: int, n: int, ci: tuple[float, float], noun: str = "held-out examples") -> str:
    """E.g. 'Right on 40 of 40 held-out examples. With this few examples the true accuracy is ...'."""
    if n <= 0:
        return f"There are no {noun}, so the accuracy cannot be estimated yet."
    low, high = _percent_range(ci)
    lead = "With this few examples the true accuracy" if n < _FEW_EXAMPLES else "The true accuracy"
    return f"Right on {correct} of {n} {noun}. {lead} is probably between {low}% and {high}%."


def interval_sentence(name: str, value: float, ci, level: float = DEFAULT_LEVEL) -> str:
    """E.g. 'Macro-F1 0.83 (95% interval 0.71–0.92).'"""
    return f"{name} {value:.2f} ({_level_percent(level)} interval {float(ci[0]):.2f}–{float(ci[1]):.2f})."


def _times_in(level: float) -> str:
    share = Fraction(level).limit_denominator(100)  # 0.9 -> 9/10, 0.95 -> 19/20
    times = "time" if share.numerator == 1 else "times"
    return f"{share.numerator} {times} in {share.denominator}"


def set_sentence(class_names: list[str], level: float) -> str:
    """Describe a conformal prediction set: one confident class, or the few it hesitates between."""
    if not class_names:
        return "The model could not suggest any class."
    if len(class_names) == 1:
        return f"{class_names[0]} — at the {_level_percent(level)} level the model is confident in this one class."
    return (f"one of: {', '.join(class_names)} — the model is not sure between these {len(class_names)}; "
            f"the right class is among them {_times_in(level)}.")
