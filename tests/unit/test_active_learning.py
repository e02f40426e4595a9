"""The suggestion engine (issue 41) on synthetic embeddings: no model, no worker."""
from __future__ import annotations

import numpy as np
import pytest

from tl_ui.engine.advisor import active


def blobs(seed: int = 0, per: int = 30, dims: int = 16, spread: float = 0.3):
    """Three well-separated clusters 'a', 'b', 'c' and their names."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, dims)) * 3
    x = np.concatenate([c + spread * rng.normal(size=(per, dims)) for c in centres]).astype(np.float32)
    y = np.repeat(np.array(["a", "b", "c"]), per)
    names = [f"img{i:03d}.png" for i in range(len(x))]
    return x, y, names


def test_diversity_alone_covers_every_cluster_before_repeating_one():
    x, y, names = blobs()
    picks = active.suggest(x, names, {}, ["a", "b", "c"], n=3)
    chosen = {y[names.index(p["item"])] for p in picks}
    assert chosen == {"a", "b", "c"}                      # k-center: one from each cluster first
    assert all(p["guess"] is None for p in picks)
    assert "Nothing is labelled yet" in picks[0]["reason"]
    scores = [p["score"] for p in picks]
    assert scores == sorted(scores, reverse=True)


def test_near_duplicates_are_not_asked_twice():
    x, y, names = blobs()
    # ten exact copies of one item, made the most uncertain of all by placing them between two clusters
    middle = (x[y == "a"].mean(0) + x[y == "b"].mean(0)) / 2
    dupes = np.repeat(middle[None], 10, axis=0)
    x2 = np.concatenate([x, dupes])
    names2 = names + [f"dup{i}.png" for i in range(10)]
    labelled = {names[i]: y[i] for i in (0, 1, 30, 31, 60, 61)}
    picks = active.suggest(x2, names2, labelled, ["a", "b", "c"], n=8)
    duplicates = [p for p in picks if p["item"].startswith("dup")]
    assert len(duplicates) == 1, [p["item"] for p in picks]
    assert picks[0]["item"].startswith("dup")            # the torn one first
    assert "torn between" in picks[0]["reason"] and picks[0]["guess"] in {"a", "b"}


def test_labelled_and_set_aside_items_are_never_suggested_and_guesses_come_with_two_per_class():
    x, y, names = blobs()
    labelled = {names[i]: y[i] for i in (0, 1, 30, 60)}          # only 'a' has two labels
    labelled[names[5]] = ""                                      # "not sure": set aside
    picks = active.suggest(x, names, labelled, ["a", "b", "c"], n=len(names))
    items = [p["item"] for p in picks]
    assert not set(items) & set(labelled)
    assert len(items) == len(names) - len(labelled)
    assert all(p["guess"] is None for p in picks)
    assert "two classes have 2 labels each (only 'a' has 2)" in picks[0]["reason"]
    labelled[names[31]] = "b"                                    # 'a' and 'b' ready: guesses among them
    picks = active.suggest(x, names, labelled, ["a", "b", "c"], n=len(names))
    assert {p["guess"] for p in picks} <= {"a", "b"} and all("cannot guess 'c' yet" in p["reason"] for p in picks)
    labelled[names[61]] = "c"
    picks = active.suggest(x, names, labelled, ["a", "b", "c"], n=len(names))
    truth = {n: y[i] for i, n in enumerate(names)}
    right = np.mean([p["guess"] == truth[p["item"]] for p in picks])
    majority = max(np.mean(y == c) for c in "abc")
    assert right > majority + 0.3, right                # clear clusters: the probe's guesses beat the majority class


def test_uncertainty_outranks_a_confident_item():
    x, y, names = blobs(spread=0.2)
    labelled = {names[i]: y[i] for i in (0, 1, 2, 30, 31, 32, 60, 61, 62)}
    middle = (x[y == "a"].mean(0) + x[y == "b"].mean(0)) / 2
    x2 = np.concatenate([x, middle[None]])
    picks = active.suggest(x2, names + ["between.png"], labelled, ["a", "b", "c"], n=1)
    assert picks[0]["item"] == "between.png"


def test_margins_and_greedy_scores():
    assert active.margins(np.array([[0.5, 0.5], [0.9, 0.1]])).tolist() == pytest.approx([0.0, 0.8])
    x, _, _ = blobs()
    picks = active.greedy_pick(x, [0], range(1, len(x)), 10)
    assert len({i for i, _, _ in picks}) == 10 and 0 not in {i for i, _, _ in picks}
    assert [s for _, s, _ in picks] == sorted([s for _, s, _ in picks], reverse=True)


def test_learning_curve_has_intervals_no_narrower_than_n_allows_and_says_when_to_stop():
    from tl_ui.trust.floors import at_least_wilson

    x, y, _ = blobs(per=40)
    order = np.random.default_rng(1).permutation(len(x))
    curve = active.learning_curve(x[order], list(y[order]), points=4)
    points = curve["points"]
    assert len(points) >= 3 and points[-1]["n"] == len(x)
    for p in points:
        assert p["n_scored"] <= p["n"] and p["classes"] >= 2
        low, high = p["accuracy_ci"]
        assert low <= p["accuracy"] <= high
        wilson = at_least_wilson((p["accuracy"], p["accuracy"]), round(p["accuracy"] * p["n_scored"]), p["n_scored"],
                                 0.95)[0]
        assert low <= wilson[0] + 1e-4 and high >= wilson[1] - 1e-4
    assert "stopped helping within noise" in curve["sentence"]     # separable clusters: flat at ~1.0


def test_stop_sentence_when_still_rising():
    rising = [{"n": 10, "accuracy": 0.4, "accuracy_ci": [0.35, 0.45]},
              {"n": 20, "accuracy": 0.6, "accuracy_ci": [0.55, 0.65]},
              {"n": 40, "accuracy": 0.8, "accuracy_ci": [0.75, 0.85]}]
    assert active.stop_sentence(rising).startswith("More labels still help")
    wide = [{**p, "accuracy": 0.5, "accuracy_ci": [0.1, 0.9]} for p in rising]
    assert "too wide" in active.stop_sentence(wide)
    assert active.stop_sentence([]).startswith("The learning curve starts")
    assert active.curve_sizes(["a", "b", "a"]) == []
    assert active.curve_sizes(["a", "b", "a", "b"]) == [4]
    assert active.curve_sizes(["a", "b", "c", "a", "b"]) == [5]        # 'c' (one label) is left out of the score
