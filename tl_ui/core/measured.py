"""Figures the pages quote, as measured by the benchmarks (`python bench/run.py --only claims`, then
`python bench/report.py`, which writes measured_figures.json beside this file). No torch here."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Optional

FIGURES_PATH = Path(__file__).with_name("measured_figures.json")


@lru_cache(maxsize=1)
def _load(path: str) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load_measured_figures() -> dict:
    """The measured figures ({} when the file is missing or unreadable)."""
    return _load(str(FIGURES_PATH))


def _pct(fig: dict) -> Optional[str]:
    try:
        return f"{round(100 * float(fig['mean']))}% ± {round(100 * float(fig['sd']))}%"
    except (KeyError, TypeError, ValueError):
        return None


def text_strategy_claim() -> Optional[str]:
    """e.g. "on the sample reviews LoRA scored 61% ± 9% and a linear probe 56% ± 9% (3 seeds;
    docs/benchmarks.md); on the same splits LoRA minus probe was +5 ± 14 points, which 3 seeds cannot
    tell from chance", or None when there is nothing measured to quote."""
    figures = load_measured_figures()
    text = figures.get("text_sample") or {}
    lora, probe = text.get("lora") or {}, text.get("linear_probe") or {}
    a, b = _pct(lora), _pct(probe)
    if not a or not b:
        return None
    seeds = min(int(lora.get("seeds") or 0), int(probe.get("seeds") or 0))
    claim = (f"on the sample reviews LoRA scored {a} and a linear probe {b} "
             f"({seeds} seed{'s' if seeds != 1 else ''}; docs/benchmarks.md)")
    return claim + _paired_difference(figures.get("text_lora_minus_probe") or {})


def _paired_difference(diff: dict) -> str:
    """What the paired difference says: whether its 95% t-interval over seeds excludes zero."""
    try:
        mean, sd, n = float(diff["mean"]), float(diff["sd"]), int(diff["n"])
    except (KeyError, TypeError, ValueError):
        return ""
    if n < 2:
        return ""
    from scipy.stats import t

    half_width = t.ppf(0.975, n - 1) * sd / n ** 0.5
    verdict = (f"which {n} seeds cannot tell from chance" if abs(mean) <= half_width
               else f"a difference beyond the spread of {n} seeds")
    return f"; on the same splits LoRA minus probe was {100 * mean:+.0f} ± {100 * sd:.0f} points, {verdict}"

