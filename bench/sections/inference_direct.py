"""The baseline of the inference load section (bench/sections/inference_load.py): the same runs' models
loaded directly with `Predictor.load` in a process of their own, as an outside user would, giving
(a) every answer the app must give (to find lost or crossed answers) and (b) the time of a direct
`predict_with_set` call (the very work a try-it answer does) and of a plain `Predictor.predict` call on
a kept model, for the ratio. Reads its job as JSON on stdin, prints one JSON line:

    {"runs": [{"run_dir", "items": [...]}], "timed": [index, ...], "rounds": 20}
    -> {"answers": [[{class: p}, ...] per run], "timings": {index: {"with_set_ms": [...], "predict_ms": [...]}}}
"""
from __future__ import annotations

import json
import sys
import time


def main() -> None:
    job = json.load(sys.stdin)
    from tl_ui.engine.predict import Predictor

    answers, timings = [], {}
    for index, run in enumerate(job["runs"]):
        predictor = Predictor.load(run["run_dir"])
        items = list(run["items"])
        answers.append([predictor.predict_with_set([item])[0]["probabilities"] for item in items])
        if index in job.get("timed", []):
            with_set, plain = [], []
            for round_ in range(int(job.get("rounds", 20))):
                item = items[round_ % len(items)]
                start = time.perf_counter()
                predictor.predict_with_set([item])
                with_set.append((time.perf_counter() - start) * 1000)
                start = time.perf_counter()
                predictor.predict([item])
                plain.append((time.perf_counter() - start) * 1000)
            timings[str(index)] = {"with_set_ms": with_set, "predict_ms": plain}
    print(json.dumps({"answers": answers, "timings": timings}), flush=True)


if __name__ == "__main__":
    main()
