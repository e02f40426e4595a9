"""Tests for issue 33's statistics: ROC / PR curves and areas with intervals (tl_ui.trust.roc), the
operating point chosen on validation and reported on test (tl_ui.trust.operating_point) and the decision
curve (tl_ui.trust.decision_curve). Unit tests: no training, simulated scores from known distributions."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

from tl_ui.trust.decision_curve import decision_curve, decision_curve_sentence, net_benefit, treat_all, useful_range
from tl_ui.trust.proportions import wilson_interval
from tl_ui.trust.operating_point import (at_prevalence, bayes_npv, bayes_ppv, choose_threshold, examples_needed,
                                         multilabel_operating_points, operating_point_metrics,
                                         operating_point_sentence, parse_rule, report_at_threshold)
from tl_ui.trust.roc import (MAX_CURVE_POINTS, _average_precision_rows, _observed_counts, _score_groups,
                             auroc_interval, binary_roc, curves, delong_auroc, newcombe_interval, roc_block,
                             separable_bound, stratified_bootstrap, thin_curve)


def binormal(n_pos, n_neg, delta, rng):
    """Scores of positives ~ N(delta, 1), negatives ~ N(0, 1): true AUROC = Phi(delta / sqrt 2)."""
    scores = np.concatenate([rng.normal(delta, 1.0, n_pos), rng.normal(0.0, 1.0, n_neg)])
    truth = np.concatenate([np.ones(n_pos, bool), np.zeros(n_neg, bool)])
    return scores, truth


def calibrated(scores, delta, prevalence):
    """The true posterior probability of the positive class for binormal scores (calibrated by construction)."""
    return 1.0 / (1.0 + np.exp(-(delta * scores - delta ** 2 / 2 + np.log(prevalence / (1 - prevalence)))))


def two_class_set(n, prevalence, delta, rng):
    y = (rng.random(n) < prevalence).astype(np.int64)
    p = calibrated(rng.normal(delta * y, 1.0), delta, prevalence)
    return np.column_stack([1 - p, p]), y


def delong_by_pairs(scores, truth):
    """DeLong et al. (1988) straight from the definition: the m x n table of pair comparisons."""
    x, y = scores[truth], scores[~truth]
    psi = (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return psi.mean(), v10.var(ddof=1) / len(x) + v01.var(ddof=1) / len(y)


# ---------------------------------------------------------------- AUROC and DeLong

def test_delong_by_hand():
    # positives 0.9, 0.8, 0.4; negatives 0.7, 0.4. V10 = (1, 1, 1/4), V01 = (2/3, 5/6):
    # AUROC 3/4; variance 0.1875/3 + (1/72)/2 = 5/72
    auc, variance = delong_auroc([0.9, 0.8, 0.4, 0.7, 0.4], [1, 1, 1, 0, 0])
    assert auc == pytest.approx(0.75)
    assert variance == pytest.approx(5 / 72)


def test_delong_matches_the_pair_definition_and_sklearn_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(5, 80))
        truth = rng.random(n) < 0.4
        truth[:2] = [True, False]
        scores = np.round(rng.normal(truth * 0.8, 1.0), 1)          # rounded: many ties
        auc, variance = delong_auroc(scores, truth)
        ref_auc, ref_var = delong_by_pairs(scores, truth)
        assert auc == pytest.approx(ref_auc, abs=1e-12)
        assert variance == pytest.approx(ref_var, rel=1e-9)
        assert auc == pytest.approx(roc_auc_score(truth, scores), abs=1e-12)


def test_hanley_mcneil_published_auroc():
    # Hanley & McNeil (1982), Radiology 143:29, Table 1: CT ratings 1-5 of 58 normal and 51 abnormal
    # patients; the published area is 0.893.
    scores = np.concatenate([np.repeat([1, 2, 3, 4, 5], [3, 2, 2, 11, 33]), np.repeat([1, 2, 3, 4, 5], [33, 6, 6, 11, 2])])
    truth = np.arange(len(scores)) < 51
    area = auroc_interval(scores, truth)
    assert area["auroc"] == pytest.approx(0.8932, abs=1e-4)
    low, high = area["auroc_ci"]
    assert low < 0.8932 < high and 0.05 < high - low < 0.2


def test_delong_variance_matches_the_spread_of_auroc_over_many_data_sets():
    # Large-sample reference: 400 data sets of 150 + 150 binormal scores (true AUROC Phi(1/sqrt2) = 0.760).
    rng = np.random.default_rng(1)
    delta, true = 1.0, norm.cdf(1.0 / np.sqrt(2))
    aucs, variances = [], []
    for _ in range(400):
        auc, variance = delong_auroc(*binormal(150, 150, delta, rng))
        aucs.append(auc)
        variances.append(variance)
    assert np.mean(aucs) == pytest.approx(true, abs=0.004)
    assert np.mean(variances) == pytest.approx(np.var(aucs, ddof=1), rel=0.15)


@pytest.mark.parametrize("n, delta", [(30, 1.5), (25, 3.0)])
def test_auroc_interval_covers_the_true_auroc(n, delta):
    """Issue 33's 'done when': on 200 simulated two-class sets (scores from two known normals) the 95%
    interval covers the true AUROC Phi(delta / sqrt 2) at least 93% of the time. The second case (true
    AUROC 0.983, 25 + 25 examples) is where the plain DeLong interval A +- 1.96 SE fails."""
    rng = np.random.default_rng(2)
    true = norm.cdf(delta / np.sqrt(2))
    covered, plain_covered, widths = 0, 0, []
    for _ in range(200):
        scores, truth = binormal(n, n, delta, rng)
        low, high = auroc_interval(scores, truth)["auroc_ci"]
        covered += low <= true <= high
        widths.append(high - low)
        auc, variance = delong_auroc(scores, truth)
        plain_covered += abs(auc - true) <= 1.96 * np.sqrt(variance)
    assert covered / 200 >= 0.93
    assert min(widths) > 0
    if delta == 3.0:
        assert plain_covered / 200 < 0.85       # what the logit scale and the separation bound repair


@pytest.mark.parametrize("n", [5, 20, 100, 1000, 4999])
def test_separable_data_never_gets_a_zero_width_interval(n):
    scores = np.concatenate([np.linspace(0.6, 1.0, n), np.linspace(0.0, 0.4, n)])
    truth = np.arange(2 * n) < n
    block = binary_roc(scores, truth, n_resamples=500)
    assert block["auroc"] == 1.0 and block["auprc"] == 1.0
    for key in ("auroc_ci", "auprc_ci"):
        low, high = block[key]
        assert high == 1.0 and low < 1.0, (key, block[key])
    assert "Newcombe" in block["method"]
    # the bound behaves like 1 - z^2 (1 + N*/2) / (m n): 0.90 for 20 + 20
    if n == 20:
        assert 0.85 < block["auroc_ci"][0] < 0.93


def test_one_misordered_pair_is_never_more_certain_than_none():
    n = 30
    scores = np.concatenate([np.linspace(0.6, 1.0, n), np.linspace(0.0, 0.4, n)])
    truth = np.arange(2 * n) < n
    perfect = auroc_interval(scores, truth)["auroc_ci"]
    scores[0], scores[n] = 0.39, 0.41     # the top positive now sits just below the top negative
    almost = auroc_interval(scores, truth)["auroc_ci"]
    assert almost[0] <= perfect[0]


def test_tied_scores_and_single_examples_get_real_intervals():
    tied = auroc_interval(np.full(40, 0.3), np.arange(40) < 15)
    assert tied["auroc"] == 0.5 and tied["auroc_ci"][1] - tied["auroc_ci"][0] > 0.2
    one = auroc_interval([0.9, 0.1, 0.2, 0.3], [1, 0, 0, 0])
    assert one["auroc"] == 1.0 and one["auroc_ci"][0] < 0.6
    boot = stratified_bootstrap(np.full(40, 0.3), np.arange(40) < 15, n_resamples=300)
    assert boot["auprc"] == pytest.approx(15 / 40, abs=1e-4)
    assert boot["auprc_ci"][1] - boot["auprc_ci"][0] > 0.1


def test_newcombe_interval_contains_the_estimate_and_is_symmetric():
    low, high = newcombe_interval(0.8, 40, 60)
    assert low < 0.8 < high
    mirror = newcombe_interval(0.2, 40, 60)
    assert mirror[0] == pytest.approx(1 - high, abs=1e-8) and mirror[1] == pytest.approx(1 - low, abs=1e-8)
    assert separable_bound(20, 20) == pytest.approx(newcombe_interval(1.0, 20, 20)[0])


# ---------------------------------------------------------------- AUPRC, curves, bands: sklearn is the reference

def test_average_precision_of_the_grouped_counts_is_sklearns():
    rng = np.random.default_rng(3)
    for _ in range(10):
        scores, truth = binormal(int(rng.integers(3, 40)), int(rng.integers(3, 60)), 1.0, rng)
        scores = np.round(scores, 1)
        pos_groups, neg_groups, groups = _score_groups(scores, truth)
        pos, neg = _observed_counts(pos_groups, neg_groups, groups)
        ours = _average_precision_rows(pos, np.cumsum(pos, axis=1), np.cumsum(neg, axis=1), int(truth.sum()))[0]
        assert ours == pytest.approx(average_precision_score(truth, scores), abs=1e-12)


def test_auprc_interval_is_seeded_and_contains_the_estimate():
    rng = np.random.default_rng(4)
    scores, truth = binormal(40, 60, 1.2, rng)
    first = stratified_bootstrap(scores, truth, seed=7)
    again = stratified_bootstrap(scores, truth, seed=7)
    assert first == again
    low, high = first["auprc_ci"]
    assert low < first["auprc"] < high
    assert first["auprc"] == pytest.approx(average_precision_score(truth, scores), abs=1e-4)
    assert "2000 resamples" in first["auprc_method"]


def binormal_auprc(delta, prevalence):
    """The true AUPRC of binormal scores: the integral of precision over recall."""
    from scipy import integrate

    def precision_times_density(t):
        tpr, fpr = norm.sf(t - delta), norm.sf(t)
        return prevalence * tpr / (prevalence * tpr + (1 - prevalence) * fpr) * norm.pdf(t - delta)

    return integrate.quad(precision_times_density, -12, delta + 12, limit=200)[0]


def test_auprc_interval_covers_the_true_auprc():
    # 40 positives and 160 negatives, true AUROC 0.90: the plain percentile interval covered ~90% here
    rng = np.random.default_rng(17)
    delta = np.sqrt(2) * norm.ppf(0.9)
    true = binormal_auprc(delta, 0.2)
    covered = []
    for r in range(150):
        low, high = stratified_bootstrap(*binormal(40, 160, delta, rng), n_resamples=500, seed=r)["auprc_ci"]
        covered.append(low <= true <= high)
    assert np.mean(covered) >= 0.92


def test_curves_are_sklearns_points():
    rng = np.random.default_rng(5)
    scores, truth = binormal(30, 50, 1.0, rng)
    out = curves(scores, truth)
    fpr, tpr, thresholds = roc_curve(truth, scores, drop_intermediate=False)
    assert len(fpr) <= MAX_CURVE_POINTS
    np.testing.assert_allclose(out["curve"]["fpr"], fpr, atol=1e-4)
    np.testing.assert_allclose(out["curve"]["tpr"], tpr, atol=1e-4)
    assert out["curve"]["thresholds"][0] is None
    np.testing.assert_allclose(out["curve"]["thresholds"][1:], thresholds[1:], atol=1e-6)
    precision, recall, pr_thresholds = precision_recall_curve(truth, scores)
    np.testing.assert_allclose(out["pr_curve"]["precision"], precision, atol=1e-4)
    np.testing.assert_allclose(out["pr_curve"]["recall"], recall, atol=1e-4)
    assert out["pr_curve"]["thresholds"][-1] is None
    json.dumps(out, allow_nan=False)


def test_thinned_curve_keeps_its_shape_its_ends_and_the_operating_point():
    rng = np.random.default_rng(6)
    scores, truth = binormal(3000, 3000, 1.2, rng)
    keep = 0.4321
    out = curves(scores, truth, keep_thresholds=[keep])
    fpr, tpr, thresholds = roc_curve(truth, scores, drop_intermediate=False)
    thin = out["curve"]
    assert 50 < len(thin["fpr"]) <= MAX_CURVE_POINTS and len(out["pr_curve"]["recall"]) <= MAX_CURVE_POINTS
    assert (thin["fpr"][0], thin["tpr"][0], thin["fpr"][-1], thin["tpr"][-1]) == (0.0, 0.0, 1.0, 1.0)
    # the operating point (flag score >= keep) is one of the kept points
    flagged = scores >= keep
    point = (round(float(flagged[~truth].mean()), 4), round(float(flagged[truth].mean()), 4))
    assert point in set(zip(thin["fpr"], thin["tpr"]))
    # shape: the full curve's TPR at every FPR is within 0.02 of the thinned polyline's
    between = np.interp(fpr, thin["fpr"], thin["tpr"])
    assert np.max(np.abs(between - tpr)) < 0.02


def test_thin_curve_short_curves_untouched_and_limits():
    x = np.linspace(0, 1, 50)
    assert list(thin_curve(x, x ** 2)) == list(range(50))
    x = np.linspace(0, 1, 1000)
    kept = thin_curve(x, np.sqrt(x), keep=[123, 456], max_points=40)
    assert len(kept) <= 40 and {0, 123, 456, 999} <= set(kept.tolist())


def test_bootstrap_bands_hold_the_curve_and_widen_with_fewer_examples():
    rng = np.random.default_rng(7)
    small = stratified_bootstrap(*binormal(20, 20, 1.5, rng), n_resamples=800)
    large = stratified_bootstrap(*binormal(400, 400, 1.5, rng), n_resamples=800)
    for band in (small["roc_band"], large["roc_band"]):
        assert len(band["fpr"]) <= MAX_CURVE_POINTS
        assert all(lo <= t <= hi for lo, t, hi in zip(band["tpr_low"], band["tpr"], band["tpr_high"]))
    for band in (small["pr_band"], large["pr_band"]):
        assert all(lo <= p <= hi for lo, p, hi in zip(band["precision_low"], band["precision"], band["precision_high"]))
    width = lambda b: np.mean(np.subtract(b["tpr_high"], b["tpr_low"]))
    assert width(small["roc_band"]) > 2 * width(large["roc_band"])


# ---------------------------------------------------------------- the operating point

def test_examples_needed_follows_the_smallest_miss_rate():
    assert examples_needed(0.95) == 20 and examples_needed(0.90) == 10 and examples_needed(0.99) == 100
    assert examples_needed(0.8) == 5


def test_sensitivity_rule_picks_the_strictest_threshold_that_meets_the_target():
    rng = np.random.default_rng(8)
    scores, truth = binormal(200, 200, 1.5, rng)
    choice = choose_threshold(scores, truth, "sensitivity", 0.9)
    flagged = scores >= choice["threshold"]
    assert flagged[truth].mean() >= 0.9
    # one step stricter (the next positive's score above the threshold) falls below the target
    next_score = np.min(scores[scores > choice["threshold"]])
    assert (scores[truth] >= np.nextafter(next_score, np.inf)).mean() < 0.9
    assert choice["note"] is None and choice["chosen_on"] == "validation" and choice["n_chosen"] == 400
    spec = choose_threshold(scores, truth, "specificity", 0.8)
    assert (scores[~truth] < spec["threshold"]).mean() >= 0.8
    assert (scores[~truth] < np.max(scores[scores < spec["threshold"]])).mean() < 0.8


def test_youden_rule_maximises_j():
    rng = np.random.default_rng(9)
    scores, truth = binormal(80, 120, 1.2, rng)
    choice = choose_threshold(scores, truth, "youden")
    j = lambda t: (scores[truth] >= t).mean() + (scores[~truth] < t).mean() - 1
    assert j(choice["threshold"]) == pytest.approx(max(j(t) for t in np.unique(scores)), abs=1e-12)


def test_threshold_is_chosen_on_choose_and_reported_on_report_only():
    """Choose and report sets built to differ: the threshold depends only on the choose set, every
    reported number only on the report set."""
    rng = np.random.default_rng(10)
    choose_scores, choose_truth = binormal(60, 60, 2.0, rng)
    report_scores, report_truth = binormal(35, 45, 0.7, rng)      # a harder test set
    choose_probs = np.column_stack([1 - _prob(choose_scores), _prob(choose_scores)])

    def run(report_scores, report_truth):
        report_probs = np.column_stack([1 - _prob(report_scores), _prob(report_scores)])
        return operating_point_metrics(choose_probs, choose_truth.astype(int), report_probs, report_truth.astype(int),
                                       ["no", "yes"], "yes", "sensitivity", 0.95)["operating_point"]

    block = run(report_scores, report_truth)
    # the threshold is the choose set's: the same whatever the report set, and the one choose_threshold gives
    assert run(*binormal(10, 90, 3.0, rng))["threshold"] == block["threshold"]
    assert block["threshold"] == choose_threshold(_prob(choose_scores), choose_truth, "sensitivity", 0.95)["threshold"]
    # every number is the report set's, recomputed by hand
    flagged = _prob(report_scores) >= block["threshold"]
    tp, fp = int((flagged & report_truth).sum()), int((flagged & ~report_truth).sum())
    fn, tn = int((~flagged & report_truth).sum()), int((~flagged & ~report_truth).sum())
    assert (block["tp"], block["fp"], block["fn"], block["tn"]) == (tp, fp, fn, tn)
    assert block["n_reported"] == 80 and block["n_chosen"] == 120
    assert block["chosen_on"] == "validation" and block["reported_on"] == "test"
    assert block["sensitivity"] == round(tp / 35, 4) and block["sensitivity_ci"] == list(wilson_interval(tp, 35))
    assert block["specificity"] == round(tn / 45, 4) and block["ppv"] == round(tp / (tp + fp), 4)
    # on the choose set the target is met; on this harder report set it is not, and the report says so
    assert block["sensitivity_on_choose"] >= 0.95 and block["sensitivity"] < 0.95
    assert block["prevalence"] == round(35 / 80, 4)


def _prob(scores):
    return 1.0 / (1.0 + np.exp(-np.asarray(scores, dtype=np.float64)))


def test_done_when_sensitivity_095_chosen_on_one_half_reported_on_the_other():
    rng = np.random.default_rng(11)
    probs, targets = two_class_set(400, 0.5, 2.0, rng)
    half = np.arange(400) < 200
    out = operating_point_metrics(probs[half], targets[half], probs[~half], targets[~half], ["healthy", "diseased"],
                                  "diseased", *parse_rule("sensitivity:0.95"))
    op = out["operating_point"]
    assert op["n_chosen"] == 200 and op["n_reported"] == 200
    assert op["tp"] + op["fn"] == int(targets[~half].sum())
    assert op["note"] is None
    assert op["sensitivity_ci"][0] < op["sensitivity"] <= op["sensitivity_ci"][1]
    # the curves are the report half's, with the operating point on them
    assert out["roc"]["n_positive"] + out["roc"]["n_negative"] == 200
    assert (round(op["fp"] / (op["fp"] + op["tn"]), 4), op["sensitivity"]) in set(
        zip(out["roc"]["curve"]["fpr"], out["roc"]["curve"]["tpr"]))
    json.dumps(out, allow_nan=False)


def test_small_choose_set_says_so_and_still_gives_a_threshold():
    rng = np.random.default_rng(12)
    scores, truth = binormal(12, 40, 1.5, rng)
    choice = choose_threshold(scores, truth, "sensitivity", 0.95)
    assert "12 positive validation examples" in choice["note"] and "at least 20" in choice["note"]
    assert choice["fallback"] == "catch every positive"
    assert choice["threshold"] <= scores[truth].min() and (scores >= choice["threshold"])[truth].all()
    enough = choose_threshold(*binormal(20, 40, 1.5, rng), "sensitivity", 0.95)
    assert enough["note"] is None and enough["fallback"] is None
    spec = choose_threshold(*binormal(40, 7, 1.5, rng), "specificity", 0.9)
    assert "7 negative validation examples" in spec["note"] and "at least 10" in spec["note"]
    none = choose_threshold(scores[~truth], truth[~truth], "sensitivity", 0.9)
    assert none["threshold"] == 0.5 and none["fallback"] == "fixed 0.5" and "no positive" in none["note"]
    few = choose_threshold(*binormal(3, 30, 1.5, rng), "youden")
    assert "only 3 positive" in few["note"]


def test_fixed_threshold_is_not_chosen_on_anything():
    choice = choose_threshold([0.2, 0.8], [0, 1], "threshold", 0.3)
    assert choice["threshold"] == 0.3 and choice["chosen_on"] == "fixed" and choice["n_chosen"] == 0


def test_parse_rule_and_its_messages():
    assert parse_rule("sensitivity:0.95") == ("sensitivity", 0.95)
    assert parse_rule(" Specificity:0.9 ") == ("specificity", 0.9)
    assert parse_rule("youden") == ("youden", None)
    assert parse_rule("threshold:0.3") == ("threshold", 0.3)
    for bad, words in [("sensitivity:95", "e.g. 0.95"), ("recall:0.9", "unknown"), ("sensitivity", "needs a value"),
                       ("threshold:1.5", "between 0 and 1"), ("youden:0.5", "takes no value")]:
        with pytest.raises(ValueError, match=words):
            parse_rule(bad)


def test_report_at_threshold_counts_and_undefined_shares():
    out = report_at_threshold([0.9, 0.8, 0.3, 0.6, 0.1, 0.2], [1, 1, 1, 0, 0, 0], 0.5)
    assert (out["tp"], out["fp"], out["fn"], out["tn"]) == (2, 1, 1, 2)
    assert out["sensitivity"] == round(2 / 3, 4) and out["ppv"] == round(2 / 3, 4)
    nothing = report_at_threshold([0.1, 0.2], [1, 0], 0.9)
    assert nothing["ppv"] is None and nothing["ppv_ci"] == [0.0, 1.0]


# ---------------------------------------------------------------- PPV and NPV at a typed prevalence

def test_ppv_npv_at_prevalence_follow_bayes_rule():
    tp, fp, fn, tn = 45, 12, 5, 88
    sens, spec = 45 / 50, 88 / 100
    out = at_prevalence(tp, fp, fn, tn, 0.02)
    assert out["ppv"] == pytest.approx(sens * 0.02 / (sens * 0.02 + (1 - spec) * 0.98), abs=1e-4)
    assert out["npv"] == pytest.approx(spec * 0.98 / (spec * 0.98 + (1 - sens) * 0.02), abs=1e-4)
    assert out["ppv_ci"][0] < out["ppv"] < out["ppv_ci"][1] and out["npv_ci"][0] < out["npv"] < out["npv_ci"][1]
    # at the test set's own prevalence Bayes' rule gives back the counted PPV and NPV
    own = at_prevalence(tp, fp, fn, tn, 50 / 150)
    assert own["ppv"] == pytest.approx(tp / (tp + fp), abs=1e-4) and own["npv"] == pytest.approx(tn / (tn + fn), abs=1e-4)
    with pytest.raises(ValueError, match="between 0 and 1"):
        at_prevalence(tp, fp, fn, tn, 5)
    assert at_prevalence(0, 3, 0, 7, 0.1)["ppv"] is None


def test_ppv_interval_at_prevalence_covers_the_true_ppv():
    rng = np.random.default_rng(13)
    sens, spec, prevalence = 0.85, 0.9, 0.05
    true = bayes_ppv(sens, spec, prevalence)
    tps, tns = rng.binomial(40, sens, 400), rng.binomial(60, spec, 400)
    covered = [lo <= true <= hi for lo, hi in
               (at_prevalence(int(a), 60 - int(b), 40 - int(a), int(b), prevalence)["ppv_ci"] for a, b in zip(tps, tns))]
    assert np.mean(covered) >= 0.95
    assert bayes_npv(sens, spec, prevalence) > 0.99


# ---------------------------------------------------------------- the decision curve

def test_net_benefit_of_treat_all_and_of_the_model():
    rng = np.random.default_rng(14)
    probs, targets = two_class_set(300, 0.3, 1.5, rng)
    curve = decision_curve(probs[:, 1], targets == 1, n_resamples=400)
    prevalence = targets.mean()
    pt = np.asarray(curve["thresholds"])
    assert len(pt) <= MAX_CURVE_POINTS and pt[0] == 0.01 and pt[-1] == 0.99
    np.testing.assert_allclose(curve["treat_all"], prevalence - (1 - prevalence) * pt / (1 - pt), atol=1e-4)
    # by hand at 20%
    flagged = probs[:, 1] >= 0.2
    tp, fp = (flagged & (targets == 1)).sum(), (flagged & (targets == 0)).sum()
    i = int(np.argmin(np.abs(pt - 0.2)))
    assert curve["net_benefit"][i] == pytest.approx((tp - fp * 0.25) / 300, abs=1e-4)
    # flagging everyone is treat-all: the model at a threshold below every probability equals it
    assert net_benefit(np.full(10, 0.5), np.arange(10) < 3, [0.1])[0] == pytest.approx(treat_all(0.3, [0.1])[0])
    assert all(lo <= nb <= hi for lo, nb, hi in zip(curve["net_benefit_low"], curve["net_benefit"], curve["net_benefit_high"]))
    # a calibrated, informative model beats both reference strategies somewhere
    first, last = useful_range(curve)[0]
    assert first < 0.3 < last
    assert "test examples" in decision_curve_sentence(curve, "disease")


# ---------------------------------------------------------------- blocks, K > 2, multi-label, sentences

def test_no_positive_class_gives_one_vs_rest_and_no_operating_point():
    rng = np.random.default_rng(15)
    targets = rng.integers(0, 3, 90)
    logits = rng.normal(size=(90, 3)) + 2.0 * np.eye(3)[targets]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    out = operating_point_metrics(probs[:45], targets[:45], probs[45:], targets[45:], ["a", "b", "c"])
    assert out["operating_point"] is None and out["decision_curve"] is None
    assert out["roc"]["positive_class"] is None and set(out["roc"]["one_vs_rest"]) == {"a", "b", "c"}
    for k, name in enumerate("abc"):
        block = out["roc"]["one_vs_rest"][name]
        assert block["auroc"] == pytest.approx(roc_auc_score(targets[45:] == k, probs[45:, k]), abs=1e-4)
    named = operating_point_metrics(probs[:45], targets[:45], probs[45:], targets[45:], ["a", "b", "c"], "b",
                                    "specificity", 0.9, prevalence=0.1)
    assert named["roc"]["positive_class"] == "b" and "one_vs_rest" in named["roc"]
    assert named["operating_point"]["at_prevalence"]["prevalence"] == 0.1
    assert "examples of the other classes" in named["operating_point"]["sentence"]
    two = roc_block(probs[:, :2] / probs[:, :2].sum(1, keepdims=True), (targets[:] == 1).astype(int), ["x", "y"], "y")
    assert "one_vs_rest" not in two
    with pytest.raises(ValueError, match="not one of the classes"):
        roc_block(probs, targets, ["a", "b", "c"], "d")


def test_a_class_absent_from_the_test_set_is_said_plainly():
    block = binary_roc(np.linspace(0, 1, 10), np.zeros(10, bool), positive_name="tumour")
    assert block["auroc"] is None and block["auroc_ci"] == [0.0, 1.0]
    assert "no example of tumour" in block["note"]


def test_sentence_in_plain_words():
    assert operating_point_sentence(19, 9, 1, 22, "diseased", "healthy") == (
        "At this threshold the model finds 19 of 20 diseased examples in the test set; it would also flag "
        "9 of 31 healthy ones.")
    assert "has no diseased examples" in operating_point_sentence(0, 2, 0, 8, "diseased", "healthy")


def test_multilabel_per_label_at_its_own_threshold():
    rng = np.random.default_rng(16)
    y = (rng.random((120, 3)) < [0.3, 0.5, 0.1]).astype(float)
    probs = _prob(rng.normal(2.0 * y - 1.0, 1.0))
    out = multilabel_operating_points(probs, y, ["cat", "dog", "bird"], [0.4, 0.5, 0.6], ["best F1"] * 3,
                                      n_resamples=300)
    for j, name in enumerate(["cat", "dog", "bird"]):
        op = out[name]["operating_point"]
        expected = report_at_threshold(probs[:, j], y[:, j] > 0.5, [0.4, 0.5, 0.6][j])
        assert all(op[k] == expected[k] for k in ("tp", "fp", "fn", "tn", "sensitivity", "specificity"))
        assert out[name]["roc"]["auroc"] == pytest.approx(roc_auc_score(y[:, j], probs[:, j]), abs=1e-4)
        assert f"labelled {name}" in op["sentence"]
    json.dumps(out, allow_nan=False)
