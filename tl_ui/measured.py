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
    """e.g. "on the sample reviews LoRA scored 69% ± 5% and a linear probe 64% ± 3% (3 seeds;
    docs/benchmarks.md)", or None when there is nothing measured to quote."""
    text = load_measured_figures().get("text_sample") or {}
    lora, probe = text.get("lora") or {}, text.get("linear_probe") or {}
    a, b = _pct(lora), _pct(probe)
    if not a or not b:
        return None
    seeds = min(int(lora.get("seeds") or 0), int(probe.get("seeds") or 0))
    return (f"on the sample reviews LoRA scored {a} and a linear probe {b} "
            f"({seeds} seed{'s' if seeds != 1 else ''}; docs/benchmarks.md)")
