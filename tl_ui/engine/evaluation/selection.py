"""Which try of an `auto` search wins, by how much, and the sentence that says so — on the choose
("validation") examples only (torch-free).

Each finished try brings its predictions on the same choose examples. The best validation accuracy
leads; every try whose paired difference from the leader has an interval that holds 0 is
indistinguishable from it, and among those the cheapest is kept: the one with the smallest planning estimate
of its run's seconds (tl_ui/engine/planning/estimate.py), not its measured time, in which the first try also
pays for loading the model and computing the embeddings that every later probe and refit reads back. The margin is the
winner's validation accuracy minus the runner-up's (the best other try) on the same examples, with a
paired bootstrap interval (tl_ui/trust/intervals.py). Nothing here can see a test example: the function
takes only the choose targets and the tries' choose predictions.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from tl_ui.trust.intervals import paired_bootstrap_accuracy_diff
from tl_ui.trust.proportions import DEFAULT_LEVEL, wilson_interval


@dataclass
class Tried:
    """One finished try: its name for sentences ('the probe', 'LoRA (rank 16, ...)'), its predicted classes
    on the choose examples, and its cost (the planning estimate of a run's seconds)."""
    name: str
    predictions: np.ndarray
    cost_s: float
    seconds: float = 0.0            # measured (the budget's bookkeeping; not used to choose)


@dataclass
class Selection:
    winner: int                     # index into the tries
    runner_up: Optional[int]
    margin: Optional[float]         # winner minus runner-up validation accuracy
    margin_ci: Optional[list[float]]
    within_noise: bool
    cheaper_kept: bool              # a cheaper try was kept over a higher-scoring one (within noise)
    sentence: str


def val_score(predictions, targets) -> tuple[float, list[float]]:
    """Validation accuracy and its Wilson interval."""
    predictions, targets = np.asarray(predictions).reshape(-1), np.asarray(targets).reshape(-1)
    n = len(targets)
    right = int((predictions == targets).sum())
    low, high = wilson_interval(right, n, DEFAULT_LEVEL) if n else (0.0, 1.0)
    return (round(right / n, 4) if n else 0.0), [round(float(low), 4), round(float(high), 4)]


def _points(x: float) -> str:
    return f"{100 * x:+.1f}".replace("-", "−")


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def select(tried: Sequence[Tried], targets, seed: int = 0, level: float = DEFAULT_LEVEL,
           budget_words: str = "the time budget") -> Selection:
    """The winner among `tried` (at least one) on the choose examples `targets`."""
    if not tried:
        raise ValueError("no finished try to choose from")
    targets = np.asarray(targets).reshape(-1)
    n = len(targets)
    scores = [val_score(t.predictions, targets)[0] for t in tried]
    if len(tried) == 1:
        return Selection(0, None, None, None, False, False,
                         f"Only {tried[0].name} finished within {budget_words}, so nothing was compared; it was "
                         f"kept (validation accuracy {scores[0]:.1%} on your {n} validation examples).")
    # the leader: the best score; ties go to the cheaper try
    order = sorted(range(len(tried)), key=lambda i: (-scores[i], tried[i].cost_s))
    leader = order[0]
    diffs = {i: paired_bootstrap_accuracy_diff(targets, tried[leader].predictions, tried[i].predictions,
                                               level=level, seed=seed) for i in order[1:]}
    close = [leader] + [i for i in order[1:] if diffs[i]["ci"][0] <= 0 <= diffs[i]["ci"][1]]
    winner = min(close, key=lambda i: (tried[i].cost_s, -scores[i]))
    others = [i for i in order if i != winner]
    runner_up = others[0]
    paired = paired_bootstrap_accuracy_diff(targets, tried[winner].predictions, tried[runner_up].predictions,
                                            level=level, seed=seed)
    margin, ci = float(paired["difference"]), [round(float(x), 4) for x in paired["ci"]]
    within = ci[0] <= 0 <= ci[1]
    w, r = tried[winner].name, tried[runner_up].name
    interval = f"{level:.0%} interval {_points(ci[0])} to {_points(ci[1])} points"
    if within and winner != leader:
        sentence = (f"{_cap(w)} and {r} are indistinguishable on your {n} validation examples ({r} scored "
                    f"{_points(-margin)} points; {interval}); {w} was kept because it is cheaper.")
    elif within:
        sentence = (f"{_cap(w)} and {r} are indistinguishable on your {n} validation examples ({w} scored "
                    f"{_points(margin)} points; {interval}); {w} was kept: it scored at least as well"
                    + (" and is also cheaper." if tried[winner].cost_s <= tried[runner_up].cost_s else "."))
    else:
        sentence = (f"{_cap(w)} scored {_points(margin)} points more than {r} on your {n} validation examples "
                    f"({interval}): more than noise; {w} was kept.")
    return Selection(winner, runner_up, round(margin, 4), ci, within, winner != leader, sentence)
