"""The confidence level every interval here uses by default, and the Wilson interval of a proportion:
the interval the counts allow, which every resampled interval is checked against (floors.py)."""
from __future__ import annotations

from statsmodels.stats.proportion import proportion_confint

DEFAULT_LEVEL = 0.95


def wilson_interval(successes: int, n: int, level: float = DEFAULT_LEVEL) -> tuple[float, float]:
    """Wilson score interval for a proportion (well behaved at 0/n and n/n, unlike the normal one)."""
    if n <= 0:
        return 0.0, 1.0
    low, high = proportion_confint(int(successes), int(n), alpha=1.0 - level, method="wilson")
    return round(float(max(low, 0.0)), 4), round(float(min(high, 1.0)), 4)
