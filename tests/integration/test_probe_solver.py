"""The linear probe's full-batch head (tl_ui/engine/probe/solver.py) on real shelf-model embeddings."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from tl_ui.core.catalog import get_model
from tl_ui.core.config import RunConfig
from tl_ui.data import sample_dataset_path, stratified_subset
from tl_ui.engine import train_run
from tl_ui.contracts.events import event_from_dict
from tl_ui.engine.probe.features import embed_sets
from tl_ui.engine.models.build import load_model
from tl_ui.engine.probe.solver import fit_head, standardise

os.environ["HF_HUB_OFFLINE"] = "1"
DIGITS = str(sample_dataset_path("image"))


@pytest.fixture(scope="module")
def embedded(digits):
    """Real EfficientNet-Lite0 embeddings (64 px) of 90 sample digits: (features, targets)."""
    subset = stratified_subset(digits, 90, 0)
    loaded = load_model(get_model("efficientnet_lite0"), subset.classes, image_size=64)
    (features,) = embed_sets(loaded, [subset.items], batch_size=16, device=torch.device("cpu"), max_length=32,
                             window=None, on_progress=lambda *a: None)
    order = np.random.default_rng(0).permutation(len(subset))   # classes mixed: any slice holds most of them
    return features.numpy()[order], np.asarray(subset.targets)[order], len(subset.classes)


def test_head_matches_scikit_learn_on_the_same_standardised_features(embedded):
    """Same objective as LogisticRegression(C = 1 / (l2 * n)) on the same standardised features; the
    standardisation is folded into the returned layer, which reads raw features."""
    from sklearn.linear_model import LogisticRegression

    x, y, k = embedded
    train, watch = slice(0, 70), slice(70, 90)
    chosen = fit_head(x[train], y[train], k, choose_x=x[watch], choose_y=y[watch])
    assert chosen.cv is not None and chosen.l2 in chosen.cv["grid"] and chosen.iterations >= 2
    assert chosen.cv["chosen"] == chosen.l2 and len(chosen.cv["loss"]) == len(chosen.cv["grid"])
    fitted = fit_head(x[train], y[train], k, choose_x=x[watch], choose_y=y[watch], l2=0.01)
    assert fitted.cv is None and fitted.l2 == 0.01
    mean, std = standardise(x[train])
    reference = LogisticRegression(C=1.0 / (fitted.l2 * 70), max_iter=5000, tol=1e-8).fit(
        (x[train] - mean) / std, y[train])
    ours = torch.from_numpy(x @ fitted.weight.T + fitted.bias).softmax(-1).numpy()
    theirs = reference.predict_proba((x - mean) / std)
    np.testing.assert_allclose(ours, theirs, atol=0.02)
    assert (ours.argmax(1) == theirs.argmax(1)).mean() >= 0.97


def test_regularisation_is_chosen_on_the_training_examples_only(embedded):
    """The watched (validation) examples feed the live curve only: other watched examples, even with
    wrong labels, give the same head."""
    x, y, k = embedded
    seen = []
    first = fit_head(x[:60], y[:60], k, choose_x=x[60:75], choose_y=y[60:75], on_iteration=seen.append)
    shuffled = np.random.default_rng(0).permutation(y[75:90])
    second = fit_head(x[:60], y[:60], k, choose_x=x[75:90], choose_y=shuffled)
    assert first.l2 == second.l2 and first.cv == second.cv
    np.testing.assert_array_equal(first.weight, second.weight)
    assert [it.iteration for it in seen] == list(range(1, first.iterations + 1))
    # each curve point is a count of the 15 watched examples, and the last one is the head's own accuracy there
    assert all(np.isfinite(it.val_loss) and abs(it.val_accuracy * 15 - round(it.val_accuracy * 15)) < 1e-4 for it in seen)
    assert seen[-1].val_accuracy == pytest.approx(float(((x[60:75] @ first.weight.T + first.bias).argmax(1) == y[60:75]).mean()))
    assert seen[-1].train_loss < seen[0].train_loss


def test_constant_features_and_tiny_classes(embedded):
    """No feature is divided by less than the median spread (a constant one: no division by zero, and a
    unit that barely fired is not blown up); a class with one example means no inner folds:
    scikit-learn's default strength, C = 1."""
    x, y, k = embedded
    x = x.copy()
    x[:, 0] = 3.0
    x[:, 1] = 0.0
    x[0, 1] = 1e-4                                   # fired once, faintly
    mean, std = standardise(x)
    raw = x.std(axis=0)
    assert mean[0] == pytest.approx(3.0) and std[0] >= 1.0
    assert std.min() >= np.median(raw[raw > 0]) * 0.99 and std[1] > 100 * raw[1]
    keep = np.r_[np.flatnonzero(y != 0), np.flatnonzero(y == 0)[:1]]
    fitted = fit_head(x[keep], y[keep], k, choose_x=x[:5], choose_y=y[:5])
    assert fitted.cv is None and fitted.l2 == pytest.approx(1.0 / len(keep))
    assert np.isfinite(fitted.weight).all() and np.isfinite(fitted.bias).all()


def test_probe_run_reports_solver_iterations(tmp_path, digits):
    config = RunConfig(data_path=DIGITS, model_id="efficientnet_lite0", strategy="linear_probe", image_size=64,
                       max_examples=60)   # the full-batch head is the default
    result = train_run(config, tmp_path / "run", dataset=digits)
    assert result.status == "finished", result.message
    events = [event_from_dict(json.loads(line)) for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    assert events[0].unit == "iteration"
    curve = [e for e in events if e.kind == "epoch"]
    assert [e.epoch for e in curve] == list(range(1, len(curve) + 1))
    assert [e.is_best for e in curve] == [False] * (len(curve) - 1) + [True]
    fit = result.metrics["probe_fit"]
    assert fit["iterations"] == len(curve) == result.metrics["best_epoch"]
    assert fit["inner_cv"]["chosen"] == fit["l2"]
