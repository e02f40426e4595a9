"""The text strategy the benchmark's table shows best for a number of examples (issue 13), from
measured_figures.json (key "text_default", written by bench/report.py from
`python -m bench.sections.text_small_n`). No torch here."""
from __future__ import annotations

import math
from typing import Optional

from tl_ui.core.measured import load_measured_figures


STRATEGY_WORDS = {"linear_probe": "The linear probe", "setfit": "SetFit", "lora": "LoRA", "full": "Full fine-tuning"}
METHOD_WORDS = {"sklearn": "scikit-learn's logistic regression", "probe": "the linear probe", "setfit": "SetFit",
                "lora": "LoRA", "full": "full fine-tuning"}


def text_default(n_examples: Optional[int]) -> Optional[dict]:
    """The text strategy the benchmark's table (bench/sections/text_small_n.py) shows best for this
    many labelled examples: the row of the nearest measured size (on a log scale), when that is within a
    factor of 2 or it is the smallest size.
    {"strategy", "size", "sentence"}; None when unmeasured there or no count is known."""
    table = (load_measured_figures().get("text_default") or {}).get("by_size") or {}
    if not n_examples or not table:
        return None
    try:
        sizes = sorted(int(k) for k in table)
    except ValueError:
        return None
    size = min(sizes, key=lambda s: abs(math.log(n_examples / s)))
    # Beyond a factor of 2 the row says little, except below the smallest size: fewer examples favour
    # the cheapest strategy no less.
    if n_examples > size * 2 or (n_examples < size / 2 and size != sizes[0]):
        return None
    row = table[str(size)]
    others = ", ".join(f"{METHOD_WORDS.get(m, m)} {round(100 * a)}%" for m, a in sorted(row.get("all", {}).items(),
                                                                                        key=lambda kv: -kv[1])
                       if m != row["method"])
    scores = row.get("all", {})
    best_method = max(scores, key=scores.get) if scores else row["method"]
    if scores.get(best_method, 0.0) > row["accuracy"]:   # a cheaper strategy within the benchmark's tie
        why = (f"with {size} labelled examples in the benchmark it came within a point of the best "
               f"({METHOD_WORDS.get(best_method, best_method)}) and costs less")
    else:
        why = f"it was best with {size} labelled examples in the benchmark"
    sentence = (f"{STRATEGY_WORDS.get(row['strategy'], row['strategy'])} is preselected for your "
                f"{n_examples:,} texts: {why} ({round(100 * row['accuracy'])}% held-out accuracy{_margin(row)}; "
                f"{others}; docs/benchmarks.md, “Text with 16 to 300 examples”).")
    return {"strategy": row["strategy"], "size": size, "sentence": sentence}


def _margin(row: dict) -> str:
    """", give or take N points on M test texts": the 95% Wilson interval's half-width (the benchmark's
    scores come from a few hundred test texts, so their differences of a point or two are not settled)."""
    n = int(row.get("n_test") or 0)
    if not n:
        return ""
    from tl_ui.trust import wilson_interval

    low, high = wilson_interval(round(row["accuracy"] * n), n)
    return f", give or take {round(100 * (high - low) / 2)} points on its {n:,} test texts"
