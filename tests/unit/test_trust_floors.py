"""Issue 32: no interval narrower than its n allows, and calibration that cannot sharpen beyond the data.

Unit tests (no training): the statistics of tl_ui.trust and the metrics.json that
tl_ui.engine.evaluation.report.build_metrics writes from given logits."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tl_ui import trust
from tl_ui.engine.evaluation.report import build_metrics, calibrate
from tl_ui.engine.advisor.transferability import knn_cv_accuracy
from tl_ui.trust.calibration import _unbounded_temperature, ece_interval, temperature_fit
from tl_ui.trust.floors import at_least_as_share, at_least_wilson, paired_floor
from tl_ui.trust.intervals import corrected_t_interval
from tl_ui.trust.multilabel import multilabel_scores

CLASSES = ["a", "b"]


def separable_logits(n: int, margin: float = 6.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two classes, every example far on its own side: an easy, all-right data set."""
    rng = np.random.default_rng(seed)
    targets = np.arange(n) % 2
    gap = margin + rng.random(n)
    logits = np.zeros((n, 2))
    logits[np.arange(n), targets] = gap
    return logits, targets


def intervals_of(metrics: dict) -> dict[str, tuple[list, int]]:
    """Every interval of a single-label metrics.json with the n it was measured on."""
    n = metrics["n_val"]
    found = {"accuracy_ci": (metrics["accuracy_ci"], n), "macro_f1_ci": (metrics["macro_f1_ci"], n),
             "calibration.ece_after_ci": (metrics["calibration"]["ece_after_ci"], n),
             "calibration.ece_before_ci": (metrics["calibration"]["ece_before_ci"], n)}
    for name, row in metrics["per_class"].items():
        found[f"{name}.precision_ci"] = (row["precision_ci"], row["support"])
        found[f"{name}.recall_ci"] = (row["recall_ci"], row["support"])
    if metrics["conformal"].get("coverage_ci"):
        found["conformal.coverage_ci"] = (metrics["conformal"]["coverage_ci"], n)
    for group, row in (metrics.get("groups") or {}).get("by_group", {}).items():
        found[f"groups.{group}.accuracy_ci"] = (row["accuracy_ci"], row["n"])
    return found


@pytest.mark.parametrize("n", [16, 40, 80])
def test_all_right_every_interval_has_width_and_reaches_below_wilson(n):
    logits, targets = separable_logits(n)
    choose_logits, choose_targets = separable_logits(32, seed=1)
    fitted = calibrate(choose_logits, choose_targets)
    metrics = build_metrics(logits, targets, CLASSES, [f"x{i}" for i in range(n)], fitted, set_level=0.9, seed=0,
                            groups=["north" if i % 3 else "south" for i in range(n)], group_column="site")
    assert metrics["accuracy"] == 1.0 and metrics["macro_f1"] == 1.0
    wilson_low = trust.wilson_interval(n, n)[0]
    for name, (ci, count) in intervals_of(metrics).items():
        assert ci[1] - ci[0] > 0, f"{name} has no width: {ci}"
        if name.endswith(("accuracy_ci", "macro_f1_ci", "recall_ci", "precision_ci")):
            assert ci[0] <= trust.wilson_interval(count, count)[0], name
    assert metrics["macro_f1_ci"][0] <= wilson_low
    assert metrics["floored_intervals"] == ["macro_f1_ci"]   # resampling alone said 100%-100%
    assert f"as low as {int(100 * wilson_low)}%" in metrics["accuracy_sentence"]
    assert f"with {n} examples that still allows a true macro-F1 as low as" in metrics["macro_f1_sentence"]
    json.dumps(metrics)


def test_none_right_has_width_and_says_how_high_it_could_be():
    logits, targets = separable_logits(40)
    metrics = build_metrics(logits, 1 - targets, CLASSES, [f"x{i}" for i in range(40)], calibrate(*separable_logits(32)),
                            set_level=0.9, seed=0)
    assert metrics["accuracy"] == 0.0 and metrics["macro_f1"] == 0.0
    high = trust.wilson_interval(0, 40)[1]
    assert metrics["accuracy_ci"] == [0.0, high]
    assert metrics["macro_f1_ci"][1] >= high and "macro_f1_ci" in metrics["floored_intervals"]
    assert "as high as 9%" in metrics["accuracy_sentence"] and "as high as 9%" in metrics["macro_f1_sentence"]


def test_a_wide_bootstrap_is_kept_and_not_recorded_as_floored():
    rng = np.random.default_rng(2)
    targets = rng.integers(0, 3, 200)
    logits = rng.normal(size=(200, 3))
    logits[np.arange(200), targets] += 1.0   # about 60% right: the bootstrap interval is informative
    metrics = build_metrics(logits, targets, ["a", "b", "c"], [str(i) for i in range(200)],
                            calibrate(logits, targets), set_level=0.9, seed=0)
    assert metrics["floored_intervals"] == [] and "macro_f1_sentence" not in metrics
    assert metrics["macro_f1_ci"] == list(trust.bootstrap_macro_f1_ci(
        targets, logits.argmax(1), 3, seed=0))


def test_cross_validation_where_every_fold_scores_one():
    rng = np.random.default_rng(0)
    features = np.concatenate([rng.normal(-6, 1, (40, 5)), rng.normal(6, 1, (40, 5))])
    targets = np.repeat([0, 1], 40)
    cv = trust.cv_probe_estimate(features, targets, n_classes=2, seed=0)
    assert cv["accuracy"] == 1.0 and cv["macro_f1"] == 1.0 and cv["n"] == 80
    wilson_low = trust.wilson_interval(80, 80)[0]
    for key in ("accuracy_ci", "macro_f1_ci"):
        low, high = cv[key]
        assert high == 1.0 and 0 < high - low and low <= wilson_low, key
    assert cv["floored_intervals"] == ["accuracy_ci", "macro_f1_ci"]
    # the Nadeau-Bengio interval alone collapses on equal fold scores; with n it does not
    assert corrected_t_interval(np.ones(15), 0.25) == (1.0, 1.0)
    assert corrected_t_interval(np.ones(15), 0.25, n_examples=80) == (wilson_low, 1.0)
    knn = knn_cv_accuracy(features, targets)   # the advisor's ranking score, the same rule
    assert knn["accuracy"] == 1.0 and knn["accuracy_ci"][0] <= wilson_low


def test_cross_validation_sentence_says_why():
    from tl_ui.ui.evidence import cv_sentence

    cv = {"folds": 5, "repeats": 3, "n": 80, "accuracy": 1.0, "accuracy_ci": [0.9542, 1.0],
          "floored_intervals": ["accuracy_ci"]}
    text = cv_sentence(cv)
    assert "was right on every example of every split; with 80 examples that still allows a true accuracy as " \
           "low as 95%." in text
    widened_in_the_middle = {**cv, "accuracy": 0.9, "accuracy_ci": [0.8, 0.95]}
    text = cv_sentence(widened_in_the_middle)
    assert "probably between 80% and 95%" in text and "That range is as wide as 80 examples require (80%–95%)" in text


def test_floor_rules_on_any_count():
    for n in (1, 5, 16, 40, 80, 333, 9999):
        for k in sorted({0, 1, n // 2, n - 1, n}):
            if not 0 <= k <= n:
                continue
            share = k / n
            low_w, high_w = trust.wilson_interval(k, n)
            # a share of n: always at least Wilson, even from an interval of no width
            ci, _ = at_least_wilson([share, share], k, n, 0.95)
            assert ci[0] <= low_w and ci[1] >= high_w and ci[1] - ci[0] > 0
            # a score that is not a share (macro-F1, ...): widened where the bootstrap collapsed
            ci, floored = at_least_as_share(share, [share, share], n, 0.95)
            assert floored and ci[1] - ci[0] > 0 and ci[0] <= low_w


def test_paired_difference_floor():
    unseen = trust.wilson_interval(0, 80)[1]
    assert paired_floor([0.0, 0.0], 0, 0, 80, 0.95) == ([-unseen, unseen], True)
    ci, floored = paired_floor([0.0, 0.0875], 3, 0, 80, 0.95)   # only A was ever right alone
    assert floored and ci[0] < 0 < ci[1]
    assert paired_floor([-0.05, 0.1], 5, 3, 80, 0.95) == ([-0.05, 0.1], False)   # both ways seen: kept


def test_multilabel_all_right_has_width():
    rng = np.random.default_rng(0)
    y = rng.random((40, 3)) < 0.4
    probs = np.where(y, 0.95, 0.05)
    block = multilabel_scores(probs, y, ["p", "q", "r"], [0.5] * 3)
    wilson_low = trust.wilson_interval(40, 40)[0]
    for key in ("micro_f1", "macro_f1", "subset_accuracy", "mean_average_precision"):
        low, high = block[f"{key}_ci"]
        assert block[key] == 1.0 and high - low > 0 and low <= wilson_low, key
    low, high = block["hamming_loss_ci"]
    assert block["hamming_loss"] == 0.0 and low == 0.0 and high >= trust.wilson_interval(0, 40)[1]
    assert set(block["floored_intervals"]) == {"micro_f1_ci", "macro_f1_ci", "hamming_loss_ci",
                                               "mean_average_precision_ci"}
    assert "still allows a true micro-F1 as low as 91%" in block["sentences"]["micro_f1"]
    assert "still allows a true Hamming loss as high as 9%" in block["sentences"]["hamming_loss"]


# ---------------------------------------------------------------- calibration that cannot sharpen

def test_separable_validation_keeps_temperature_one():
    logits, targets = separable_logits(32, margin=1.0)     # small margins, all right
    assert _unbounded_temperature(logits, targets) < 0.1    # what the plain fit did (faces: T = 0.07)
    fit = temperature_fit(logits, targets)
    assert fit["temperature"] == 1.0 and fit["fit"] == "kept at 1"
    assert "all 32 validation examples were right" in fit["note"]
    between = trust.softmax(np.array([[0.3, 0.0]]), fit["temperature"])[0]   # an input between the classes
    assert 0.05 < between[0] < 0.95


def test_sharpening_stops_where_the_validation_accuracy_does():
    logits, targets = separable_logits(32, margin=1.0)
    logits[0] = [0.0, 0.4] if targets[0] == 0 else [0.4, 0.0]   # one mistake, made without much confidence
    optimum = _unbounded_temperature(logits, targets)
    fit = temperature_fit(logits, targets)
    assert optimum < fit["temperature"] < 1.0 and fit["fit"] == "limited"
    cap = (31 + 1) / (32 + 2)
    mean_confidence = trust.softmax(logits, fit["temperature"]).max(axis=1).mean()
    assert mean_confidence == pytest.approx(cap, abs=1e-4) and fit["confidence_cap"] == round(cap, 4)
    assert "Limited to T" in fit["note"]
    between = trust.softmax(np.array([[0.3, 0.0]]), fit["temperature"])[0]
    assert 0.01 < between[0] < 0.99


def test_no_sharpening_when_the_model_is_already_as_sure_as_its_accuracy():
    logits, targets = separable_logits(32, margin=4.0)
    for i in range(4):   # four mistakes, each a near tie
        logits[i] = [0.0, 0.05] if targets[i] == 0 else [0.05, 0.0]
    fit = temperature_fit(logits, targets)
    assert fit["nll_optimum"] < 1.0 and fit["temperature"] == 1.0 and fit["fit"] == "kept at 1"
    assert trust.softmax(logits).max(axis=1).mean() > fit["confidence_cap"] == round(29 / 34, 4)
    assert "at T = 1 the model is already at least that sure" in fit["note"]


def test_overconfident_models_are_still_softened():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(scale=1.5, size=(3000, 4))
    cumulative = trust.softmax(true_logits).cumsum(axis=1)
    targets = np.minimum((rng.random((3000, 1)) > cumulative).sum(axis=1), 3)
    fit = temperature_fit(true_logits * 3, targets)
    assert fit["fit"] == "fitted" and fit["temperature"] == pytest.approx(3.0, rel=0.1)


def test_calibration_record_in_metrics():
    fitted = calibrate(*separable_logits(32, margin=1.0))
    assert fitted["fit"] == "kept at 1" and fitted["temperature"] == 1.0
    logits, targets = separable_logits(40)
    calibration = build_metrics(logits, targets, CLASSES, [str(i) for i in range(40)], fitted, set_level=0.9,
                                seed=0)["calibration"]
    assert calibration["fit"] == "kept at 1" and calibration["temperature_note"].startswith("Kept at 1")
    low, high = calibration["ece_after_ci"]
    assert low <= calibration["ece_after"] <= high and high > 0.08   # 40 of 40 right cannot rule out 9 points
    assert "With 40 examples, a calibration error anywhere from 0 to" in calibration["ece_sentence"]


def test_ece_interval_narrows_with_many_well_calibrated_examples():
    rng = np.random.default_rng(1)
    confidence = rng.uniform(0.5, 1.0, 20000)
    right = rng.random(20000) < confidence
    probs = np.stack([confidence, 1 - confidence], axis=1)
    targets = np.where(right, 0, 1)
    low, high = ece_interval(probs, targets)
    assert low <= trust.expected_calibration_error(probs, targets) <= high < 0.03


def test_model_card_says_why_and_how_the_temperature_was_chosen():
    from tl_ui.engine.export.card import _trust_lines

    logits, targets = separable_logits(40)
    metrics = build_metrics(logits, targets, CLASSES, [str(i) for i in range(40)],
                            calibrate(*separable_logits(32, margin=1.0)), set_level=0.9, seed=0)
    metrics["cross_validation"] = {"folds": 5, "repeats": 3, "n": 80, "accuracy": 1.0, "accuracy_ci": [0.9542, 1.0],
                                   "floored_intervals": ["accuracy_ci"]}
    lines = _trust_lines(metrics)
    assert "1.000 [0.954, 1.000] — Every split was right on every example; with 80 examples" in lines
    assert "the model's own (temperature 1). Kept at 1: all 32 validation examples were right" in lines
    assert "0.002 [0.000, 0.086] after (in brackets: what the test examples cannot rule out)" in lines
