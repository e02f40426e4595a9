"""The baseline of the inference load section (bench/sections/inference_load.py): the same runs' models
loaded directly with `Predictor.load` in a process of its own, as an outside user would. It gives
(a) every answer the app must give (to find lost or crossed answers) and (b) on request, the time of
one direct `predict_with_set` call (the very work a try-it answer does) and one plain
`Predictor.predict` call on a kept model, so that the section can time them in turns with the app's
try-it answers (A/B interleaved: a busy neighbour slows both sides alike). JSON lines:

    stdin  {"runs": [{"run_dir", "items": [...]}]}      ->  stdout {"answers": [[{class: p}, ...] per run]}
    stdin  {"run": index, "item": ...}                  ->  stdout {"with_set_ms": ..., "predict_ms": ...}
    stdin  {"threads_ab": index, "item": ..., "blocks": 4, "per_block": 10}
                                                        ->  stdout {"1": [ms, ...], "2": [ms, ...]}

It computes with `torch_threads` threads (the first line's; the inference worker's own setting), except
in "threads_ab", which times blocks of answers with one thread and with two, in turns.
"""
from __future__ import annotations

import json
import sys
import time


def main() -> None:
    import torch

    from tl_ui.engine.inference.predict import Predictor

    job = json.loads(sys.stdin.readline())
    threads = int(job.get("torch_threads") or torch.get_num_threads())
    torch.set_num_threads(threads)
    predictors, answers = [], []
    for run in job["runs"]:
        predictor = Predictor.load(run["run_dir"])
        predictors.append(predictor)
        answers.append([predictor.predict_with_set([item])[0]["probabilities"] for item in run["items"]])
    print(json.dumps({"answers": answers}), flush=True)
    for line in sys.stdin:
        ask = json.loads(line)
        if "threads_ab" in ask:
            print(json.dumps(threads_ab(predictors[int(ask["threads_ab"])], ask["item"], int(ask.get("blocks", 4)),
                                        int(ask.get("per_block", 10)))), flush=True)
            torch.set_num_threads(threads)
            continue
        predictor, item = predictors[int(ask["run"])], ask["item"]
        start = time.perf_counter()
        predictor.predict_with_set([item])
        with_set = (time.perf_counter() - start) * 1000
        start = time.perf_counter()
        predictor.predict([item])
        print(json.dumps({"with_set_ms": with_set, "predict_ms": (time.perf_counter() - start) * 1000}), flush=True)


def threads_ab(predictor, item, blocks: int, per_block: int) -> dict:
    """Blocks of `per_block` answers with 1 and 2 torch threads, in turns (1 2 2 1 ...), each after a warm-up."""
    import torch

    out: dict = {"1": [], "2": []}
    for block in range(blocks):
        for n in ((1, 2) if block % 2 == 0 else (2, 1)):
            torch.set_num_threads(n)
            predictor.predict_with_set([item])
            for _ in range(per_block):
                start = time.perf_counter()
                predictor.predict_with_set([item])
                out[str(n)].append((time.perf_counter() - start) * 1000)
    return out


if __name__ == "__main__":
    main()
