"""Baselines a test computes before it trusts an accuracy: a score is only evidence that the model learned
something when it beats what a model that learned nothing would get on the same examples."""
from __future__ import annotations


def majority_share(metrics: dict) -> float:
    """The accuracy of always answering the most common class of the report examples (from `per_class`'s
    supports in metrics.json)."""
    supports = [int(row["support"]) for row in metrics["per_class"].values()]
    return max(supports) / sum(supports)


def assert_beats_the_majority_class(metrics: dict) -> None:
    """The accuracy's 95% interval lies wholly above the majority-class baseline: a head that learned nothing
    (or a random one) scores about that baseline and cannot pass, whatever the luck of a few examples."""
    baseline = majority_share(metrics)
    low, high = metrics["accuracy_ci"]
    assert low > baseline, (f"accuracy {metrics['accuracy']:.3f} (95% interval {low:.3f}–{high:.3f}) does not beat "
                            f"always answering the most common class ({baseline:.3f})")
