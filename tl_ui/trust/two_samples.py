"""Two independent samples: a model's accuracy on its own test examples and on another site's data.

The difference internal − external of two proportions from different examples (not paired: the
two sets share no example) gets **Newcombe's hybrid score interval** (Newcombe 1998, method 10):
it is built from the two Wilson intervals, so it is never narrower than the counts allow (at 40 of
40 against 30 of 40 it still has width), it stays inside [−1, 1], and it is what statsmodels calls
`confint_proportions_2indep(method="newcomb")`. Used for accuracy and for any other share
(recall, coverage) of two independent sets.
"""
from __future__ import annotations

from statsmodels.stats.proportion import confint_proportions_2indep

from .proportions import DEFAULT_LEVEL

DIFFERENCE_METHOD = ("Newcombe's hybrid score interval for a difference of two independent proportions "
                     "(Newcombe 1998, method 10; from the two Wilson intervals)")


def newcombe_difference(k1: int, n1: int, k2: int, n2: int, level: float = DEFAULT_LEVEL) -> tuple[float, list[float]]:
    """(k1/n1 − k2/n2, [low, high]) with Newcombe's interval; ([-1, 1] wide) when a sample is empty."""
    if n1 <= 0 or n2 <= 0:
        return 0.0, [-1.0, 1.0]
    low, high = confint_proportions_2indep(int(k1), int(n1), int(k2), int(n2), method="newcomb",
                                           compare="diff", alpha=1.0 - level)
    difference = k1 / n1 - k2 / n2
    # rounded outwards: the shown interval never looks tighter than the computed one
    return round(difference, 4), [max(-1.0, _floor4(low)), min(1.0, _ceil4(high))]


def difference_sentence(difference: float, ci, what: str = "accuracy") -> str:
    """E.g. 'Accuracy is 25 points lower on the new data than on the run's own test examples (probably between
    11 and 41 points lower).' The range is rounded outwards: it never looks tighter than the interval."""
    import math

    low, high = float(ci[0]) * 100, float(ci[1]) * 100
    points = abs(difference) * 100
    lead = f"{what[:1].upper()}{what[1:]}"
    if low > 0:
        return (f"{lead} is {points:.0f} points lower on the new data than on the run's own test examples "
                f"(probably between {math.floor(low)} and {math.ceil(high)} points lower).")
    if high < 0:
        return (f"{lead} is {points:.0f} points higher on the new data than on the run's own test examples "
                f"(probably between {math.floor(-high)} and {math.ceil(-low)} points higher).")
    return (f"The data cannot tell whether {what} differs between the run's own test examples and the new data: "
            f"it could be anywhere from {math.ceil(-low)} points higher to {math.ceil(high)} points lower on the new "
            "data.")


def _floor4(x: float) -> float:
    import math
    return math.floor(float(x) * 10_000) / 10_000


def _ceil4(x: float) -> float:
    import math
    return math.ceil(float(x) * 10_000) / 10_000
