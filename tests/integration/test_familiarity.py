""""Unlike your training data" (tl_ui.engine.inference.familiarity): a real tiny run per modality, its flags on
inputs of another kind and on unseen inputs of the training kind, the reference file's round trip
through the export, and an older export without the file."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tl_ui.core.config import RunConfig
from tl_ui.data import LabelledDataset, load_dataset, sample_dataset_path, stratified_subset
from tl_ui.engine import Predictor, train_run
from tl_ui.engine.inference.familiarity import FILE, FamiliarityReference, recording

from tests.helpers.data_factories import dicom_test_file

FLAG_KEYS = {"unlike_training_data", "unlike_training_data_score", "unlike_training_data_threshold",
             "unlike_training_data_sentence"}


def _scenes(folder, n: int) -> list[str]:
    """Small colour pictures of shapes: images of another kind than handwritten digits."""
    rng = np.random.default_rng(7)
    paths = []
    for i in range(n):
        image = Image.new("RGB", (64, 64), tuple(int(c) for c in rng.integers(0, 256, 3)))
        draw = ImageDraw.Draw(image)
        for _ in range(3):
            x, y = rng.integers(0, 48, 2)
            w, h = rng.integers(10, 30, 2)
            shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
            shape([int(x), int(y), int(x + w), int(y + h)], fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
        paths.append(str(folder / f"scene_{i}.png"))
        image.save(paths[-1])
    return paths


def _unseen(dataset: LabelledDataset, used: LabelledDataset, n: int) -> list:
    seen = set(map(str, used.items))
    return [x for x in dataset.items if str(x) not in seen][:n]


@pytest.fixture(scope="module")
def digit_run(tmp_path_factory):
    digits = load_dataset(str(sample_dataset_path("image")), tmp_path_factory.mktemp("digits"))
    used = stratified_subset(digits, 80, seed=1)
    config = RunConfig(model_id="efficientnet_lite0", strategy="linear_probe", image_size=64, epochs=3, seed=1)
    result = train_run(config, tmp_path_factory.mktemp("run") / "run", dataset=used)
    assert result.status == "finished", result.message
    return result, digits, used, tmp_path_factory.mktemp("other")


def test_image_flag_separates_other_kinds_from_unseen_digits(digit_run):
    result, digits, used, other_dir = digit_run
    predictor = Predictor.load(result.run_dir)
    other = _scenes(other_dir, 8) + [str(dicom_test_file("CT_small.dcm")), str(dicom_test_file("MR_small.dcm"))]
    in_kind = predictor.predict_with_set(_unseen(digits, used, 40))
    out_kind = predictor.predict_with_set(other)
    assert all(FLAG_KEYS <= set(a) for a in in_kind + out_kind)
    assert np.mean([a["unlike_training_data"] for a in out_kind]) >= 0.9
    assert np.mean([a["unlike_training_data"] for a in in_kind]) <= 0.15
    assert "caution" in out_kind[0]["unlike_training_data_sentence"]
    # the engine measured the flag on its own test examples too (metrics.json), with an interval
    record = result.metrics["familiarity"]
    low, high = record["test_flag_rate_ci"]
    assert record["method"] == "knn" and low <= record["test_flag_rate"] <= high
    # the reference's threshold is the 99th percentile of held-out distances: few of the test digits are flagged
    assert record["test_flag_rate"] <= 0.15 and high < 0.5


def test_reference_round_trips_and_an_older_export_still_predicts(digit_run, tmp_path):
    result, digits, used, _ = digit_run
    model_dir = result.run_dir / "model"
    reference = FamiliarityReference.load(model_dir)
    assert reference.threshold == pytest.approx(result.metrics["familiarity"]["threshold"], abs=1e-4)
    predictor = Predictor.load(result.run_dir)
    items = _unseen(digits, used, 4)
    with recording() as rows:
        answers = predictor.predict_with_set(items)
    features = np.concatenate([r.numpy() for r in rows])
    assert features.shape == (4, reference.tensors["reference"].shape[1])
    # the scores `predict` reports are the saved reference's scores of what the classifier layer reads
    np.testing.assert_allclose([a["unlike_training_data_score"] for a in answers], reference.scores(features),
                               atol=1e-3)
    older = tmp_path / "older"
    shutil.copytree(model_dir, older)
    (older / FILE).unlink()
    old_answers = Predictor.load(older).predict_with_set(items)
    assert all(a["unlike_training_data"] is None for a in old_answers)
    assert [a["probabilities"] for a in old_answers] == [a["probabilities"] for a in answers]


def test_text_flag_separates_other_kinds_from_unseen_reviews(tmp_path):
    reviews = load_dataset(str(sample_dataset_path("text")), tmp_path / "reviews")
    used = stratified_subset(reviews, 80, seed=1)
    config = RunConfig(model_id="minilm_l6", strategy="linear_probe", max_length=48, epochs=3, seed=1)
    result = train_run(config, tmp_path / "run", dataset=used)
    assert result.status == "finished", result.message
    other = [
        "Permission is hereby granted, free of charge, to any person obtaining a copy of this software.",
        "The above copyright notice shall be included in all copies or substantial portions of the Software.",
        "Each sample is a 8x8 image of a digit and the target is an integer between zero and nine.",
        "The dataset contains 506 rows with 13 numeric attributes describing census tracts.",
        "Preheat the oven to 180 degrees and butter a round cake tin before adding the flour.",
        "Take two tablets by mouth every eight hours with water, not exceeding six in one day.",
        "The train to Lyon leaves from platform four at ten past nine on weekdays.",
        "Install the package with pip and set the environment variable before starting the server.",
        "Photosynthesis converts light energy into chemical energy stored in glucose molecules.",
        "The invoice total includes value added tax at the standard rate of twenty percent.",
    ]
    predictor = Predictor.load(result.run_dir)
    in_kind = predictor.predict_with_set(_unseen(reviews, used, 40))
    out_kind = predictor.predict_with_set(other)
    assert np.mean([a["unlike_training_data"] for a in out_kind]) >= 0.8
    assert np.mean([a["unlike_training_data"] for a in in_kind]) <= 0.15
    # texts of mixed lengths in one call (the fast path runs them by length): every answer, flag and
    # score included, is the one that text gets alone
    mixed = [other[0], "ok", _unseen(reviews, used, 1)[0], other[4]]
    together = predictor.predict_with_set(mixed)
    alone = [predictor.predict_with_set([text])[0] for text in mixed]
    for a, b in zip(together, alone):
        assert a["unlike_training_data"] == b["unlike_training_data"]
        assert a["prediction_set"] == b["prediction_set"]
        assert max(abs(a["probabilities"][c] - b["probabilities"][c]) for c in a["probabilities"]) < 1e-4


def test_try_it_says_it_in_words():
    from tl_ui.engine.inference.familiarity import answer_keys
    from tl_ui.ui import results_view

    reference = FamiliarityReference("knn", 0.8, "classifier", {})
    flagged = {"set_sentence": "just: cat", **answer_keys(reference, 1.2)}
    shown = results_view.set_md(flagged)
    assert shown.startswith("**Prediction set:** just: cat") and "Warning: unlike the training data" in shown
    assert "treat its answer with caution" in shown
    assert "Familiar input" in results_view.set_md(answer_keys(reference, 0.5))
    assert results_view.set_md(answer_keys(None, None)) == ""   # an older run: nothing said
