"""How many weights each strategy trains on a model, counted where models live (never in the web process).

A model's counts for every setting follow from a few numbers. For one strategy (and, for partial
unfreezing, one number of retrained layer groups) both counts are linear in the number of classes K
(the new head has `in_features * K + K` weights; LoRA keeps the head in `modules_to_save`, a trained
copy beside the original, so its total grows twice as fast) and, for LoRA, in the rank r (each adapted
layer adds `r * (in + out)` weights). So each count is stored as `[constant, per_class, per_rank]`:

    count = constant + per_class * max(K, 2) + per_rank * r

measured from a few builds (K = 2 and 3; LoRA also at a second rank; one more build at 5 classes and rank
12 must fit the lines, else the model is refused) on PyTorch's `meta` device, which allocates nothing: a
Hub model of any size is counted in a second. tests/unit/test_shelf_facts.py checks the
formula against real CPU builds at other class numbers, ranks and group numbers.

* `python -m tl_ui.engine.planning.shelf_facts --write` regenerates `tl_ui/engine/planning/shelf_facts.json` for the offline
  shelf (package data; the Strategy step reads it);
* `model_facts` counts one model: tl_ui/jobs/shelf_facts_worker.py runs it in a worker process for a Hub
  model (tl_ui/service/shelf_facts.py asks once, then caches).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Optional

FACTS_VERSION = 1                 # bump when the layout below or what is counted changes
SHIPPED_PATH = Path(__file__).with_name("shelf_facts.json")
REFERENCE_CLASSES = (2, 3)
REFERENCE_RANKS = (4, 8)
CHECK_CLASSES, CHECK_RANK = 5, 12        # one more build, off the reference points, must fit the lines


def counts_from_facts(facts: dict, strategy: str, num_classes: int, unfreeze_groups: int, lora_rank: int) -> dict:
    """{"trainable", "total", "share"} for one setting, from one model's facts (pure arithmetic, no torch)."""
    counts = facts["counts"]
    if strategy == "partial":
        groups = min(max(int(unfreeze_groups), 1), int(facts["layer_groups"]))   # more than there are: all of them
        line = counts["partial"][str(groups)]
    else:
        line = counts[strategy]
    k, r = max(int(num_classes), 2), int(lora_rank) if strategy == "lora" else 0
    trainable, total = (int(c[0] + c[1] * k + c[2] * r) for c in (line["trainable"], line["total"]))
    return {"trainable": trainable, "total": total, "share": trainable / max(total, 1)}


def shipped_facts() -> dict:
    """The offline shelf's facts as shipped ({} when the file is missing or of another version)."""
    try:
        data = json.loads(SHIPPED_PATH.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data.get("models", {}) if data.get("version") == FACTS_VERSION else {}


def model_facts(entry, *, device: str = "meta", max_params_m: Optional[float] = None) -> dict:
    """{"model", "load_name", "modality", "layer_groups", "counts"} for one shelf entry (see the module doc)."""
    import torch

    from tl_ui.core.config import STRATEGIES, TEXT_ONLY_STRATEGIES, RunConfig
    from tl_ui.engine.models.build import load_model
    from tl_ui.engine.training.strategies import plan

    strategies = [s for s in STRATEGIES if entry.modality == "text" or s not in TEXT_ONLY_STRATEGIES]
    plain = [s for s in strategies if s not in ("partial", "lora")]

    def build(k: int):
        with torch.device(device):
            return load_model(entry, [str(i) for i in range(k)], random_init=True, max_params_m=max_params_m)

    def counted(loaded, strategy: str, **setting) -> tuple[int, int]:
        with torch.device(device):
            p = plan(loaded, RunConfig(model_id=entry.id, strategy=strategy, **setting))
        return p.trainable_params, p.total_params

    at: dict[int, dict] = {}
    groups = 0
    for k in REFERENCE_CLASSES:
        loaded = build(k)
        groups = len(loaded.layer_groups)
        at[k] = {s: counted(loaded, s) for s in plain}
        at[k].update({f"partial:{g}": counted(loaded, "partial", unfreeze_groups=g) for g in range(1, groups + 1)})
        at[k][f"lora:{REFERENCE_RANKS[0]}"] = counted(loaded, "lora", lora_rank=REFERENCE_RANKS[0])  # wraps: last
    k0, k1 = REFERENCE_CLASSES
    r0, r1 = REFERENCE_RANKS
    second_rank = counted(build(k0), "lora", lora_rank=r1)

    def line(key: str, per_rank: tuple[int, int] = (0, 0)) -> dict:
        out = {}
        for i, name in enumerate(("trainable", "total")):
            per_class = _exact((at[k1][key][i] - at[k0][key][i]) / (k1 - k0))
            constant = at[k0][key][i] - per_class * k0 - per_rank[i] * (r0 if key.startswith("lora") else 0)
            out[name] = [constant, per_class, per_rank[i]]
        return out

    lora_key = f"lora:{r0}"
    per_rank = tuple(_exact((second_rank[i] - at[k0][lora_key][i]) / (r1 - r0)) for i in range(2))
    counts = {s: line(s) for s in plain}
    counts["partial"] = {str(g): line(f"partial:{g}") for g in range(1, groups + 1)}
    counts["lora"] = line(lora_key, per_rank)
    facts = {"model": entry.id, "load_name": entry.load_name, "modality": entry.modality, "layer_groups": groups,
             "counts": counts}
    # a check build off the reference points (a Hub model's head could be unusual): the lines must hold there
    loaded = build(CHECK_CLASSES)
    for strategy, setting in [*((s, {}) for s in plain), ("partial", {"unfreeze_groups": 1}),
                              ("lora", {"lora_rank": CHECK_RANK})]:   # LoRA wraps the model: last
        expected = counts_from_facts(facts, strategy, CHECK_CLASSES, setting.get("unfreeze_groups", 1),
                                     setting.get("lora_rank", r0))
        if (expected["trainable"], expected["total"]) != counted(loaded, strategy, **setting):
            raise ValueError(f"{entry.id}: the {strategy} counts are not linear in the classes and the rank")
    return facts


def _exact(value: float) -> int:
    if value != int(value):
        raise ValueError(f"a count that should be linear is not (slope {value})")
    return int(value)


def shelf_facts(entries=None, **kwargs) -> dict:
    """The facts file for the offline shelf (every packaged entry installed here)."""
    import peft
    import timm
    import torch
    import transformers

    from tl_ui.core.catalog import list_models

    entries = entries if entries is not None else [e for e in list_models() if e.source == "packaged"]
    return {"version": FACTS_VERSION,
            "how": "python -m tl_ui.engine.planning.shelf_facts --write (counts on the meta device; see its docstring)",
            "libraries": {"torch": torch.__version__.split("+")[0], "timm": timm.__version__,
                          "transformers": transformers.__version__, "peft": peft.__version__},
            "models": {e.id: model_facts(e, **kwargs) for e in entries}}


def dump(facts: dict) -> str:
    """The facts as JSON with each [constant, per_class, per_rank] on one line (readable diffs)."""
    text = json.dumps(facts, indent=1)
    return re.sub(r"\[\s+(-?\d+),\s+(-?\d+),\s+(-?\d+)\s+\]", r"[\1, \2, \3]", text) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Parameter counts of the shelf's models under every strategy.")
    parser.add_argument("--write", action="store_true", help=f"regenerate {SHIPPED_PATH.name} for the offline shelf")
    args = parser.parse_args(argv)
    if args.write:
        facts = shelf_facts()
        SHIPPED_PATH.write_text(dump(facts), encoding="utf-8")
        print(f"wrote {SHIPPED_PATH} ({', '.join(facts['models'])})")
        return 0
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
