"""Comparing runs scored on the same held-out examples: the pretrained run against its
from-scratch companion, or any two runs of a user (paired bootstrap on the same examples)."""
from __future__ import annotations

import csv
import logging
from typing import Optional

from tl_ui.core.runfolder import FINISHED, RunFolder

log = logging.getLogger(__name__)


def reported_predictions(run: RunFolder) -> Optional[tuple[list[str], list[str], list[str]]]:
    """(items, true labels, predicted labels) of the examples the run reports on, in order."""
    try:
        with open(run.predictions_csv, encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError:
        return None
    return [r["item"] for r in rows], [r["true"] for r in rows], [r["predicted"] for r in rows]


def paired_difference(run_a: RunFolder, run_b: RunFolder, seed: int = 0) -> Optional[dict]:
    """Accuracy of A minus accuracy of B with its paired bootstrap interval, when both runs were
    scored on exactly the same examples; None otherwise."""
    from tl_ui.trust import paired_bootstrap_accuracy_diff

    a, b = reported_predictions(run_a), reported_predictions(run_b)
    if not a or not b or a[0] != b[0] or a[1] != b[1]:
        return None
    classes = sorted(set(a[1]) | set(a[2]) | set(b[2]))
    index = {c: i for i, c in enumerate(classes)}
    truth = [index[c] for c in a[1]]
    result = paired_bootstrap_accuracy_diff(truth, [index[c] for c in a[2]], [index[c] for c in b[2]], seed=seed)
    # `floored`: the interval was widened to what the discordant counts allow (trust/floors.py)
    return {"accuracy": result["difference"], "ci": result["ci"], "n": result["n"], "floored": result["floored"]}


def link_scratch_run(main: RunFolder, scratch: RunFolder) -> None:
    """Record in the main run's metrics.json what pretraining bought: `scratch_run` and
    `pretraining_gain` (pretrained minus scratch accuracy on the same examples, with its interval)."""
    if main.state() != FINISHED or scratch.state() != FINISHED or main.metrics() is None:
        if main.metrics() is not None:
            main.update_metrics(scratch_run=scratch.id, pretraining_gain=None)
        return
    gain = paired_difference(main, scratch)
    scratch_metrics = scratch.read_metrics()
    main.update_metrics(scratch_run=scratch.id, pretraining_gain=gain,
                        scratch_accuracy=scratch_metrics.accuracy if scratch_metrics else None,
                        scratch_accuracy_ci=scratch_metrics.accuracy_ci if scratch_metrics else None)
    log.info("run %s: pretraining gain recorded against %s", main.id, scratch.id)
