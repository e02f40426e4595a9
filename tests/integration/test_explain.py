"""Explanations of real trained runs: Grad-CAM maps and per-word attributions, their shapes, the CLI,
and the randomisation sanity check (Adebayo et al. 2018): the trained model's map and the same
architecture's map with random weights must differ (Spearman rank correlation < 0.5)."""
from __future__ import annotations

import csv
import io
import json
import os
import statistics
import zipfile

import numpy as np
import pytest
from PIL import Image
from scipy.stats import spearmanr

from tl_ui.cli.main import main as cli
from tl_ui.core.config import RunConfig
from tl_ui.data import sample_dataset_path
from tl_ui.engine import Predictor, train_run
from tl_ui.engine.inference.explain import explain, explain_image, explain_text

os.environ["HF_HUB_OFFLINE"] = "1"
DIGITS, REVIEWS = sample_dataset_path("image"), sample_dataset_path("text")


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("explain") / "digits"
    config = RunConfig(data_path=str(DIGITS), model_id="efficientnet_lite0", strategy="linear_probe",
                       image_size=96, max_examples=60, epochs=5)
    assert train_run(config, run_dir).status == "finished"
    return run_dir


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("explain") / "reviews"
    config = RunConfig(data_path=str(REVIEWS), model_id="minilm_l6", strategy="linear_probe", max_examples=60,
                       epochs=5)
    assert train_run(config, run_dir).status == "finished"
    return run_dir


def digit_images(n: int) -> list[Image.Image]:
    with zipfile.ZipFile(DIGITS) as z:
        names = sorted(x for x in z.namelist() if x.endswith(".png"))[::37][:n]
        return [Image.open(io.BytesIO(z.read(name))).convert("RGB") for name in names]


def reviews(n: int) -> list[str]:
    with open(REVIEWS, encoding="utf-8") as f:
        texts = [row["text"] for row in csv.DictReader(f)]
    return sorted(texts, key=len, reverse=True)[:n]   # the longest: enough words to rank


def with_random_weights(predictor: Predictor) -> Predictor:
    """The same architecture and preprocessing, freshly initialised weights."""
    import torch

    from tl_ui.engine.models.sentence import SentenceClassifier

    model = type(predictor.model)(predictor.model.config) if predictor.modality == "text" and not isinstance(
        predictor.model, SentenceClassifier) else None
    if isinstance(predictor.model, SentenceClassifier):   # the text probe: encoder, pooling, head
        trained = predictor.model
        model = SentenceClassifier(type(trained.encoder)(trained.encoder.config),
                                   torch.nn.Linear(*trained.classifier.weight.shape[::-1]), trained.pooling,
                                   trained.normalize)
    elif model is None:
        import timm

        model = timm.create_model(predictor.model.pretrained_cfg["architecture"],
                                  num_classes=len(predictor.classes), pretrained=False)
    torch.manual_seed(0)
    return Predictor(model, predictor.classes, predictor.modality, transform=predictor.transform,
                     tokenizer=predictor.tokenizer, max_length=predictor.max_length)


def test_image_map_has_the_input_size_and_an_overlay(image_run):
    predictor = Predictor.load(image_run)
    result = explain(predictor, digit_images(1)[0])
    assert result["kind"] == "image" and result["class"] == result["predicted"] in predictor.classes
    assert result["heatmap"].shape == (96, 96)
    assert 0.0 <= result["heatmap"].min() and result["heatmap"].max() <= 1.0 and result["heatmap"].max() > 0.5
    assert result["overlay"].size == (96, 96) and result["overlay"].mode == "RGB"
    other = next(c for c in predictor.classes if c != result["class"])
    assert explain_image(predictor, digit_images(1)[0], other)["class"] == other


def test_image_maps_depend_on_the_trained_weights(image_run):
    trained = Predictor.load(image_run)
    random = with_random_weights(trained)
    rhos = []
    for image in digit_images(4):
        a = explain_image(trained, image)
        b = explain_image(random, image, a["class"])   # the same class on both sides
        rhos.append(spearmanr(a["heatmap"].ravel(), b["heatmap"].ravel())[0])
    # A constant map (nan correlation) under random weights counts as 0: it does not follow the trained one.
    assert statistics.median(np.nan_to_num(rhos)) < 0.5, rhos


def test_text_words_cover_the_text_and_integrate_completely(text_run):
    predictor = Predictor.load(text_run)
    text = reviews(1)[0]
    result = explain_text(predictor, text)
    assert [w["text"] for w in result["words"]] == [text[w["start"]:w["end"]] for w in result["words"]]
    assert "".join(w["text"] for w in result["words"]) == "".join(text.split())[:sum(len(w["text"]) for w in
                                                                                    result["words"])]
    assert max(abs(w["weight"]) for w in result["words"]) == pytest.approx(1.0)
    assert result["completeness_gap"] < 0.01   # integrated gradients' own check
    # Two classes: what pushes towards one pushes away from the other, word for word.
    other = next(c for c in predictor.classes if c != result["class"])
    flipped = explain_text(predictor, text, other)
    assert [w["weight"] for w in flipped["words"]] == pytest.approx([-w["weight"] for w in result["words"]], abs=1e-3)
    assert "<script" not in explain_text(predictor, "<script>alert(1)</script> great")["html"]


def test_text_attributions_depend_on_the_trained_weights(text_run):
    trained = Predictor.load(text_run)
    random = with_random_weights(trained)
    rhos = []
    for text in reviews(3):
        a = explain_text(trained, text, steps=16)
        b = explain_text(random, text, a["class"], steps=16)   # the same class on both sides
        rhos.append(spearmanr([w["weight"] for w in a["words"]], [w["weight"] for w in b["words"]])[0])
    # A constant map (nan correlation) under random weights counts as 0: it does not follow the trained one.
    assert statistics.median(np.nan_to_num(rhos)) < 0.5, rhos


def test_explain_cli_writes_an_overlay_or_word_weights(image_run, text_run, tmp_path, capsys):
    image_path = tmp_path / "digit.png"
    digit_images(1)[0].save(image_path)
    assert cli(["explain", "--run", str(image_run), str(image_path), "--out", str(tmp_path / "map.png")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert Image.open(summary["out"]).size == (96, 96)

    assert cli(["explain", "--run", str(text_run), "A warm and funny film", "--out", str(tmp_path / "w.json")]) == 0
    words = json.loads((tmp_path / "w.json").read_text())["words"]
    assert [w["text"] for w in words] == ["A", "warm", "and", "funny", "film"]
    assert cli(["explain", "--run", str(text_run), "fine", "--out", str(tmp_path / "w.html")]) == 0
    assert "tl-explanation" in (tmp_path / "w.html").read_text()

    capsys.readouterr()
    assert cli(["explain", "--run", str(text_run), "fine", "--out", str(tmp_path / "w.png")]) == 2
    assert cli(["explain", "--run", str(text_run), "fine", "--out", str(tmp_path / "x.json"), "--class", "nope"]) == 2
    assert cli(["explain", "--run", str(image_run), str(tmp_path / "missing.png"), "--out", str(tmp_path / "m.png")]) == 2
    errors = capsys.readouterr().err
    assert "--out must end in .html or .json" in errors and "'nope' is not one of" in errors
    assert "No such image file" in errors


def test_the_service_explains_a_try_it_text_and_leaves_the_kept_model_alone(tmp_path):
    """Through the service (the page's try-it "Why this answer?"): a text run's word weights, plain
    messages for missing input, and predictions unchanged by an explanation of the same run."""
    from tl_ui.service.errors import UserError
    from tl_ui.service.lab import Lab
    from tl_ui.service.owners import Owner
    from tl_ui.core.settings import Settings
    from tl_ui.ui.results_view import why_md

    lab = Lab(Settings(runs_dir=tmp_path / "runs"))
    owner = Owner("user", "explainer")
    try:
        sample = lab.load_sample(owner, "text")
        job = lab.start_run(owner, sample.dataset, sample.data_path, "minilm_l6",
                            {"strategy": "linear_probe", "max_examples": 40, "epochs": 3})
        assert lab.runner.wait(job.id, timeout=300).state == "finished"
        text = "A warm, funny and wonderfully acted film."
        before = lab.predict(owner, job.id, text=text)
        why = lab.explain(owner, job.id, text=text)
        assert why["kind"] == "text" and [w["text"] for w in why["words"]][:2] == ["A", "warm"]
        assert "tl-explanation" in why["html"] and why["class"] in ("fresh", "rotten")
        assert why_md(why).startswith(f"**Why “{why['class']}”?** Blue words")
        assert lab.predict(owner, job.id, text=text) == before
        with pytest.raises(UserError, match="Type some text first"):
            lab.explain(owner, job.id, text="  ")
    finally:
        lab.close()


def test_the_most_confident_mistakes_are_drawn_with_what_the_model_looked_at(image_run, tmp_path):
    """Results' "Show what the model looked at": Grad-CAM overlays of the run's own mistake previews,
    in the owner's private folder; texts are refused with a pointer to the try-it box."""
    import shutil

    from tl_ui.service.errors import UserError

    from tl_ui.service.lab import Lab
    from tl_ui.service.mistakes import MAX_OVERLAYS, mistake_overlays
    from tl_ui.service.owners import Owner
    from tl_ui.core.settings import Settings

    lab = Lab(Settings(runs_dir=tmp_path / "runs"))
    owner = Owner("user", "looker")
    try:
        run = lab.workspace.new_run(owner)
        shutil.copytree(image_run, run.path)
        mistakes = [m for m in json.loads((run.path / "metrics.json").read_text())["mistakes"] if m.get("file")]
        assert mistakes, "the fixture run made no mistakes to draw"
        overlays = mistake_overlays(lab, owner, run.id)
        assert [o["mistake"] for o in overlays] == mistakes[:MAX_OVERLAYS]
        for overlay in overlays:
            assert str(lab.private.owner_root(owner)) in overlay["path"]
            with Image.open(overlay["path"]) as picture:
                assert picture.size == (96, 96) and picture.mode == "RGB"
        with pytest.raises(UserError):
            mistake_overlays(lab, Owner("user", "someone-else"), run.id)
    finally:
        lab.close()
