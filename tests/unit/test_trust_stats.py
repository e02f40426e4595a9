"""Tests for tl_ui.trust: intervals, calibration, conformal sets, per-group metrics and wording."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest
from scipy.special import log_softmax
from sklearn.metrics import f1_score

from tl_ui.trust import (DEFAULT_LEVEL, accuracy_sentence, bootstrap_macro_f1_ci, conformal_threshold,
                         cv_probe_estimate, expected_calibration_error, fit_temperature, group_metrics,
                         interval_sentence, min_calibration_size, paired_bootstrap_accuracy_diff,
                         prediction_sets, reliability_bins, set_coverage_and_size, set_sentence, softmax,
                         wilson_interval)
from tl_ui.trust.intervals import macro_f1_rows


def noisy_predictions(n=500, n_classes=5, right=0.75, seed=1):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, n_classes, n)
    y_pred = np.where(rng.random(n) < right, y_true, rng.integers(0, n_classes, n))
    return y_true, y_pred


def sample_from(probs, rng):
    """One class per row, drawn from that row's probabilities."""
    cumulative = probs.cumsum(axis=1)
    draws = rng.random((len(probs), 1))
    return np.minimum((draws > cumulative).sum(axis=1), probs.shape[1] - 1)


# ---------------------------------------------------------------- intervals

def test_intervals_are_95_percent_unless_asked():
    assert wilson_interval(7, 20) == wilson_interval(7, 20, level=0.95)
    narrower = wilson_interval(7, 20, level=0.9)
    assert wilson_interval(7, 20)[0] < narrower[0] and narrower[1] < wilson_interval(7, 20)[1]


def test_wilson_interval_known_values():
    low, high = wilson_interval(40, 40)
    assert (round(low, 3), round(high, 3)) == (0.912, 1.0)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and 0.2 < high < 0.35
    assert isinstance(low, float) and isinstance(high, float)


def test_vectorised_macro_f1_matches_sklearn():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 5, 300)
    preds = rng.integers(-1, 7, size=(40, 300))  # includes labels outside range(n_classes)
    preds[:10] = np.where(rng.random((10, 300)) < 0.8, y_true, preds[:10])
    expected = [f1_score(y_true, p, labels=range(6), average="macro", zero_division=0) for p in preds]
    np.testing.assert_allclose(macro_f1_rows(y_true, preds, 6), expected, atol=1e-12)


def test_the_curves_quick_scores_equal_sklearns_accuracy_and_macro_f1():
    """engine.evaluate.quick_scores counts instead of calling scikit-learn every epoch: the same
    numbers, also with labels only predicted or only true, and for string labels."""
    from sklearn.metrics import accuracy_score

    from tl_ui.engine.evaluation.evaluate import quick_scores

    rng = np.random.default_rng(3)
    cases = [(rng.integers(0, k, n), rng.integers(0, k + extra, n)) for k, n, extra in
             [(2, 5, 0), (3, 40, 1), (10, 200, 0), (7, 13, 2), (1, 4, 1)]]
    cases += [(np.array([0, 0, 1]), np.array([2, 2, 2])), (np.array(["a", "b", "b"]), np.array(["b", "b", "c"]))]
    for targets, predicted in cases:
        accuracy, macro_f1 = quick_scores(targets, predicted)
        assert accuracy == pytest.approx(accuracy_score(targets, predicted), abs=1e-12)
        assert macro_f1 == pytest.approx(f1_score(targets, predicted, average="macro", zero_division=0), abs=1e-12)


def test_bootstrap_macro_f1_ci_is_seeded_and_contains_estimate():
    y_true, y_pred = noisy_predictions()
    first = bootstrap_macro_f1_ci(y_true, y_pred, n_classes=5, seed=0)
    assert first == bootstrap_macro_f1_ci(list(y_true), list(y_pred), n_classes=5, seed=0)
    assert first != bootstrap_macro_f1_ci(y_true, y_pred, n_classes=5, seed=1)
    point = f1_score(y_true, y_pred, labels=range(5), average="macro", zero_division=0)
    assert first[0] < point < first[1]
    assert 0.03 < first[1] - first[0] < 0.2
    assert bootstrap_macro_f1_ci([], [], n_classes=3) == (0.0, 1.0)


def test_bootstrap_macro_f1_ci_is_fast():
    y_true, y_pred = noisy_predictions(n=500)
    start = time.perf_counter()
    bootstrap_macro_f1_ci(y_true, y_pred, n_classes=5, n_resamples=2000)
    assert time.perf_counter() - start < 1.0


def test_paired_bootstrap_identical_and_better_model():
    y_true, y_pred = noisy_predictions(n=300, right=0.6)
    same = paired_bootstrap_accuracy_diff(y_true, y_pred, y_pred.copy())
    # no example differs: resampling says [0, 0]; 300 examples still allow a difference of ±1.3 points
    unseen = wilson_interval(0, 300)[1]
    assert same == {"difference": 0.0, "ci": [-unseen, unseen], "n": 300, "floored": True}
    better = np.where(np.random.default_rng(5).random(300) < 0.9, y_true, y_pred)
    result = paired_bootstrap_accuracy_diff(y_true, better, y_pred)
    assert result["difference"] > 0.1 and result["ci"][0] > 0
    assert result["ci"][0] <= result["difference"] <= result["ci"][1]
    json.dumps(result)


def separable_features(n_per_class=40, n_classes=3, dims=8, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=6.0, size=(n_classes, dims))
    targets = np.repeat(np.arange(n_classes), n_per_class)
    return centres[targets] + rng.normal(size=(len(targets), dims)), targets


def test_cv_probe_estimate_separable_and_reproducible():
    features, targets = separable_features()
    result = cv_probe_estimate(features, targets, n_classes=3, seed=0)
    assert result["folds"] == 5 and result["repeats"] == 3
    assert result["accuracy"] > 0.9 and result["macro_f1"] > 0.9
    for key in ("accuracy", "macro_f1"):
        low, high = result[f"{key}_ci"]
        assert 0.0 <= low <= result[key] <= high <= 1.0
    assert "Nadeau-Bengio" in result["method"]
    assert result == cv_probe_estimate(features, targets, n_classes=3, seed=0)
    json.dumps(result)


def test_cv_probe_estimate_shrinks_folds_and_widens_on_noise():
    rng = np.random.default_rng(3)
    features = rng.normal(size=(33, 4))
    targets = np.array([0] * 15 + [1] * 15 + [2] * 3)  # smallest class has 3 examples
    result = cv_probe_estimate(features, targets, n_classes=3, folds=5, repeats=2)
    assert result["folds"] == 3
    low, high = result["accuracy_ci"]
    assert high - low > 0.1  # pure noise features: wide, honest interval
    with pytest.raises(ValueError):
        cv_probe_estimate(features[:5], np.zeros(5, dtype=int), n_classes=2)


# ---------------------------------------------------------------- calibration

def overconfident_logits(n=6000, n_classes=5, factor=3.0, seed=0):
    rng = np.random.default_rng(seed)
    true_logits = rng.normal(scale=1.5, size=(n, n_classes))
    targets = sample_from(softmax(true_logits), rng)
    return true_logits * factor, targets


def test_softmax_stable_and_normalised():
    probs = softmax(np.array([[1000.0, 0.0, -np.inf], [1.0, 2.0, 3.0]]))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert np.all(np.isfinite(probs)) and probs[0, 0] == pytest.approx(1.0)
    np.testing.assert_allclose(softmax([[2.0, 4.0]], temperature=2.0), softmax([[1.0, 2.0]]))


def test_fit_temperature_recovers_overconfidence():
    logits, targets = overconfident_logits()
    temperature = fit_temperature(logits, targets)
    assert temperature == pytest.approx(3.0, rel=0.1)
    before = expected_calibration_error(softmax(logits), targets)
    after = expected_calibration_error(softmax(logits, temperature), targets)
    assert after < before
    assert fit_temperature(np.empty((0, 5)), np.empty(0, dtype=int)) == 1.0


def test_fit_temperature_accepts_log_probabilities():
    logits, targets = overconfident_logits()
    log_probs = log_softmax(logits, axis=1)
    assert fit_temperature(log_probs, targets) == pytest.approx(fit_temperature(logits, targets), rel=1e-3)
    log_probs[0, (targets[0] + 1) % 5] = -np.inf  # a zero probability somewhere must not break it
    assert np.isfinite(fit_temperature(log_probs, targets))


def test_ece_and_reliability_bins():
    probs = np.tile([0.8, 0.2], (10, 1))
    targets = np.array([0] * 8 + [1] * 2)  # right 8 of 10 at confidence 0.8: perfectly calibrated
    assert expected_calibration_error(probs, targets) == pytest.approx(0.0, abs=1e-12)
    assert reliability_bins(probs, targets, n_bins=10) == [
        {"low": 0.7, "high": 0.8, "confidence": 0.8, "accuracy": 0.8, "count": 10}]
    wrong = np.array([1] * 10)
    assert expected_calibration_error(probs, wrong) == pytest.approx(0.8)
    bins = reliability_bins(np.array([[0.95, 0.05], [0.55, 0.45]]), np.array([0, 1]))
    assert [b["count"] for b in bins] == [1, 1] and bins[0]["low"] < bins[1]["low"]


# ---------------------------------------------------------------- conformal

def test_min_calibration_size():
    assert min_calibration_size(0.9) == 9
    assert min_calibration_size(0.8) == 4
    assert min_calibration_size(0.95) == 19


def test_conformal_threshold_needs_enough_examples():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4), size=8)
    targets = rng.integers(0, 4, 8)
    assert conformal_threshold(probs, targets, level=0.9) is None
    probs9, targets9 = rng.dirichlet(np.ones(4), size=9), rng.integers(0, 4, 9)
    qhat = conformal_threshold(probs9, targets9, level=0.9)
    # n = 9, level 0.9: rank ceil(10 * 0.9) = 9, i.e. the largest score.
    assert qhat == pytest.approx((1 - probs9[np.arange(9), targets9]).max())


@pytest.mark.parametrize("level", [0.8, 0.9, 0.95])
def test_conformal_coverage_over_random_splits(level):
    rng = np.random.default_rng(7)
    n, n_classes, n_cal = 1500, 5, 300
    true_logits = rng.normal(scale=2.0, size=(n, n_classes))
    targets = sample_from(softmax(true_logits), rng)
    probs = softmax(true_logits + rng.normal(scale=1.0, size=true_logits.shape))  # an imperfect model
    coverages, sizes = [], []
    for _ in range(200):
        order = rng.permutation(n)
        cal, test = order[:n_cal], order[n_cal:]
        qhat = conformal_threshold(probs[cal], targets[cal], level=level)
        coverage, size = set_coverage_and_size(probs[test], targets[test], qhat)
        coverages.append(coverage)
        sizes.append(size)
    assert abs(np.mean(coverages) - level) < 0.03
    assert 1.0 <= np.mean(sizes) < n_classes


def test_prediction_sets_never_empty():
    probs = np.array([[0.7, 0.2, 0.1], [0.4, 0.35, 0.25], [0.34, 0.33, 0.33]])
    assert prediction_sets(probs, qhat=0.0) == [[0], [0], [0]]
    assert prediction_sets(probs, qhat=0.5) == [[0], [0], [0]]  # rows 2 and 3 fall back to the argmax
    assert prediction_sets(probs, qhat=0.7) == [[0], [0, 1], [0, 1, 2]]
    assert prediction_sets(probs[0], qhat=0.9) == [[0, 1, 2]]
    assert set_coverage_and_size(probs, [0, 1, 2], qhat=0.0) == (pytest.approx(1 / 3, abs=1e-4), 1.0)
    assert set_coverage_and_size(probs, [0, 1, 2], qhat=1.0) == (1.0, 3.0)


# ---------------------------------------------------------------- groups

def test_group_metrics_finds_the_harder_group():
    y_true, y_pred, groups = [], [], []
    for name, n, n_right in [("site A", 200, 190), ("site B", 200, 100), ("site C", 12, 10)]:
        truth = [i % 2 for i in range(n)]
        guess = [t if i < n_right else 1 - t for i, t in enumerate(truth)]
        y_true += truth
        y_pred += guess
        groups += [name] * n
    result = group_metrics(y_true, y_pred, groups, classes=["normal", "pneumonia"])
    json.dumps(result)
    by_group = result["by_group"]
    assert by_group["site A"]["accuracy"] == 0.95 and by_group["site B"]["accuracy"] == 0.5
    assert by_group["site B"]["n"] == 200 and not by_group["site B"]["few_examples"]
    assert by_group["site C"]["few_examples"]
    assert result["max_gap"]["between"] == ["site A", "site B"]
    assert result["max_gap"]["accuracy"] == pytest.approx(0.45)
    low, high = by_group["site B"]["accuracy_ci"]
    assert low < 0.5 < high
    recall = by_group["site A"]["recall"]["pneumonia"]
    assert recall["n"] == 100 and recall["ci"][0] <= recall["value"] <= recall["ci"][1]
    assert 0 < by_group["site B"]["macro_f1"] <= 0.5
    assert result["warnings"] == [
        "Group 'site C' has only 12 held-out examples: its numbers are very uncertain."]


def test_group_metrics_class_missing_in_a_group():
    result = group_metrics([0, 0, 1], [0, 1, 1], ["a", "a", "b"], classes=["x", "y"], min_n=1)
    assert result["by_group"]["b"]["recall"]["x"] == {"value": None, "ci": [0.0, 1.0], "n": 0}
    assert result["warnings"] == []


# ---------------------------------------------------------------- wording

def test_accuracy_sentence():
    ci = wilson_interval(40, 40)
    assert accuracy_sentence(40, 40, ci) == ("Right on all 40 held-out examples; with 40 examples that still "
                                             "allows a true accuracy as low as 91%.")
    assert accuracy_sentence(0, 10, wilson_interval(0, 10)) == (
        "Wrong on all 10 held-out examples; with 10 examples that still allows a true accuracy as high as 28%.")
    assert accuracy_sentence(38, 40, wilson_interval(38, 40)) == (
        "Right on 38 of 40 held-out examples. With this few examples the true accuracy is probably between "
        "83% and 99%.")
    assert accuracy_sentence(180, 200, (0.851, 0.9353), noun="test images") == (
        "Right on 180 of 200 test images. The true accuracy is probably between 85% and 94%.")


def test_interval_sentence():
    assert interval_sentence("Macro-F1", 0.8312, (0.7089, 0.9204)) == "Macro-F1 0.83 (95% interval 0.71–0.92)."
    assert interval_sentence("Accuracy", 0.5, [0.4, 0.6], level=0.9) == "Accuracy 0.50 (90% interval 0.40–0.60)."


def test_set_sentence():
    assert set_sentence(["pneumonia"], 0.9) == (
        "pneumonia — at the 90% level the model is confident in this one class.")
    assert set_sentence(["pneumonia", "normal"], 0.9) == (
        "one of: pneumonia, normal — the model is not sure between these 2; "
        "the right class is among them 9 times in 10.")
    assert set_sentence(["a", "b", "c"], 0.95).endswith("these 3; the right class is among them 19 times in 20.")


# ---------------------------------------------------------------- packaging

def test_trust_does_not_import_torch_or_gradio():
    code = "import sys, tl_ui.trust; print(sorted({'torch', 'gradio'} & set(sys.modules)))"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert output.stdout.strip() == "[]"
