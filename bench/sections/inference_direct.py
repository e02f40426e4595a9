"""The baseline of the inference load section (bench/sections/inference_load.py): the same runs' models
loaded directly with `Predictor.load` in a process of its own, as an outside user would. It gives
(a) every answer the app must give (to find lost or crossed answers) and (b) on request, the time of
one direct `predict_with_set` call (the very work a try-it answer does) and one plain
`Predictor.predict` call on a kept model, so that the section can time them in turns with the app's
try-it answers (A/B interleaved: a busy neighbour slows both sides alike). JSON lines:

    stdin  {"runs": [{"run_dir", "items": [...]}]}      ->  stdout {"answers": [[{class: p}, ...] per run]}
    stdin  {"run": index, "item": ...}                  ->  stdout {"with_set_ms": ..., "predict_ms": ...}
"""
from __future__ import annotations

import json
import sys
import time


def main() -> None:
    from tl_ui.engine.predict import Predictor

    job = json.loads(sys.stdin.readline())
    predictors, answers = [], []
    for run in job["runs"]:
        predictor = Predictor.load(run["run_dir"])
        predictors.append(predictor)
        answers.append([predictor.predict_with_set([item])[0]["probabilities"] for item in run["items"]])
    print(json.dumps({"answers": answers}), flush=True)
    for line in sys.stdin:
        ask = json.loads(line)
        predictor, item = predictors[int(ask["run"])], ask["item"]
        start = time.perf_counter()
        predictor.predict_with_set([item])
        with_set = (time.perf_counter() - start) * 1000
        start = time.perf_counter()
        predictor.predict([item])
        print(json.dumps({"with_set_ms": with_set, "predict_ms": (time.perf_counter() - start) * 1000}), flush=True)


if __name__ == "__main__":
    main()
