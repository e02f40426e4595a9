"""The text strategy the benchmark's table shows best for a number of examples (issue 13), from
measured_figures.json (key "text_default", written by bench/report.py from
`python -m bench.sections.text_small_n`). No torch here."""
from __future__ import annotations

import math
from typing import Optional

from tl_ui.measured import load_measured_figures


STRATEGY_WORDS = {"linear_probe": "The linear probe", "setfit": "SetFit", "lora": "LoRA", "full": "Full fine-tuning"}
METHOD_WORDS = {"sklearn": "scikit-learn's logistic regression", "probe": "the linear probe", "setfit": "SetFit",
                "lora": "LoRA", "full": "full fine-tuning"}


def text_default(n_examples: Optional[int]) -> Optional[dict]:
    """The text strategy the benchmark's table (bench/sections/text_small_n.py) shows best for this
    many labelled examples: the row of the nearest measured size, when that is within a factor of 2.
    {"strategy", "size", "sentence"}; None when unmeasured there or no count is known."""
    table = (load_measured_figures().get("text_default") or {}).get("by_size") or {}
    if not n_examples or not table:
        return None
    try:
        sizes = sorted(int(k) for k in table)
    except ValueError:
        return None
    size = min(sizes, key=lambda s: abs(math.log(n_examples / s)))
    if not size / 2 <= n_examples <= size * 2:
        return None
    row = table[str(size)]
    others = ", ".join(f"{METHOD_WORDS.get(m, m)} {round(100 * a)}%" for m, a in sorted(row.get("all", {}).items(),
                                                                                        key=lambda kv: -kv[1])
                       if m != row["method"])
    sentence = (f"{STRATEGY_WORDS.get(row['strategy'], row['strategy'])} is preselected for your "
                f"{n_examples:,} texts: it was best with {size} labelled examples in the benchmark "
                f"({round(100 * row['accuracy'])}% held-out accuracy; {others}; docs/benchmarks.md, "
                f"“Text with 16 to 300 examples”).")
    return {"strategy": row["strategy"], "size": size, "sentence": sentence}
