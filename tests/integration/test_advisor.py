"""The model advisor (issue 12): its scores, its JSON contract, and that the run after it reuses its
embeddings (no second forward pass over the same data with the same model)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tl_ui.core.config import RunConfig
from tl_ui.data import sample_dataset_path, stratified_subset
from tl_ui.engine.advisor.transferability import knn_cv_accuracy, logme
from tests.helpers.forward_counting import count_forward_examples

os.environ["HF_HUB_OFFLINE"] = "1"
REPO = Path(__file__).resolve().parents[2]


def _logme_reference(f, y):
    """LogME as its authors' first published code computes it (d x d eigen-decomposition), for comparison."""
    f = f.astype(np.float64)
    fh, f = f, f.T
    d, n = f.shape
    v, s, vh = np.linalg.svd(f @ fh, full_matrices=True)
    evidences = []
    for c in np.unique(y):
        y_ = (y == c).astype(np.float64)
        alpha = beta = 1.0
        lam, tmp, eps = 1.0, vh @ (f @ y_), 1e-5
        for _ in range(11):
            gamma = (s / (s + lam)).sum()
            m = v @ (tmp * beta / (alpha + beta * s))
            alpha_de = (m * m).sum()
            alpha = gamma / (alpha_de + eps)
            beta_de = ((y_ - fh @ m) ** 2).sum()
            beta = (n - gamma) / (beta_de + eps)
            if abs(alpha / beta - lam) / lam < 0.01:
                break
            lam = alpha / beta
        evidences.append((d / 2 * np.log(alpha) + n / 2 * np.log(beta) - 0.5 * np.sum(np.log(alpha + beta * s))
                          - beta / 2 * (beta_de + eps) - alpha / 2 * (alpha_de + eps) - n / 2 * np.log(2 * np.pi)) / n)
    return float(np.mean(evidences))


def test_logme_matches_the_published_algorithm_and_knn_prefers_informative_features():
    rng = np.random.default_rng(0)
    for n, d in ((60, 20), (30, 80)):   # more examples than features, and fewer
        y = rng.integers(0, 3, n)
        f = rng.normal(size=(n, d)) + y[:, None] * 0.5
        assert logme(f, y) == pytest.approx(_logme_reference(f, y), rel=1e-8)
    y = np.repeat(np.arange(3), 20)
    informative = rng.normal(size=(60, 16)) + np.eye(3)[y] @ rng.normal(size=(3, 16)) * 3
    noise = rng.normal(size=(60, 16))
    assert logme(informative, y) > logme(noise, y) + 0.5
    good, bad = knn_cv_accuracy(informative, y), knn_cv_accuracy(noise, y)
    assert good["accuracy"] > 0.9 and bad["accuracy"] < 0.6
    low, high = bad["accuracy_ci"]
    assert low <= bad["accuracy"] <= high and high - low > 0.05
    with pytest.raises(ValueError, match="two or more examples"):
        knn_cv_accuracy(informative[:4], np.array([0, 0, 1, 2]))


@pytest.fixture(scope="module")
def digits30(digits):
    return stratified_subset(digits, 30, 0)


def test_advisor_button_ranks_every_offline_model_in_a_worker_and_the_next_run_reuses_its_embeddings(
        digits30, tmp_path, monkeypatch):
    """The Data step's button, through the service and its worker process: a table of every offline
    image model, the best preselected; the linear probe that follows reads every embedding back."""
    from tl_ui.core.catalog import list_models
    from tl_ui.engine import train_run
    from tl_ui.service.lab import Lab
    from tl_ui.core.settings import Settings
    from tl_ui.ui.handlers import Handlers
    from tl_ui.ui.state import SessionState

    class Request:
        cookies, username, session_hash, client = {}, None, "page-advisor", None

    lab = Lab(Settings(runs_dir=tmp_path / "runs"))
    try:
        owner, _ = lab.bind_page(Request(), None)   # the page's load binds its session to an owner
        shown = Handlers(lab).advise(SessionState(dataset=digits30), "header", 32, Request())
        cache = lab._embedding_cache(owner)
    finally:
        lab.close()
    table = shown["advisor_table"]["value"]
    offline = {e.display_name: e.id for e in list_models("image") if e.offline}
    assert set(table["Model"]) == set(offline) and len(table) >= 3
    accuracies = [float(cell.split("%")[0]) for cell in table["kNN accuracy (95% interval)"]]
    assert accuracies == sorted(accuracies, reverse=True)
    best = offline[table["Model"][0]]
    assert shown["model_choice"] == best and "What the numbers mean" in shown["advisor_note"]
    assert "you can still pick another" in shown["advisor_note"]
    # the map of the data, in the best model's embeddings (tl_ui/engine/advisor/data_map.py), with its words
    points = shown["data_map_plot"]["value"]
    assert len(points) == len(digits30) and shown["data_map_plot"]["visible"]
    assert "Map of your data" in shown["data_map_note"] and table["Model"][0] in shown["data_map_note"]
    listed = shown["label_problems_table"]["value"]
    assert (listed is None or len(listed) == 0) == (not shown["label_problems_table"]["visible"])
    assert (points["class"] == "possible label problem").sum() >= (0 if listed is None else len(listed))

    # The user keeps the advisor's choice: its linear probe reuses the advisor's embeddings for the
    # examples it trains on. Where the CPU has native bf16 the advisor embeds on that fast path, and the
    # examples that choose and report are embedded once more in full precision (so the run's numbers are
    # exactly the exported model's); elsewhere the run goes through the model zero times.
    from tl_ui.engine.models.fast_path import describe

    seen = count_forward_examples(monkeypatch)
    config = RunConfig(model_id=best, strategy="linear_probe", image_size=32, epochs=2)
    result = train_run(config, tmp_path / "run", dataset=digits30, embedding_cache=cache)
    assert result.status == "finished", result.message
    held_out = len(digits30) - result.metrics["n_train"]
    expected = held_out if describe("image")["bf16_inference"] else 0
    assert seen["examples"] == expected, "the run went through the model again instead of reusing the advisor's embeddings"


def test_advise_cli_prints_the_json_contract_best_first(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "tl_ui", "advise", "--data", str(sample_dataset_path("image")), "--json",
         "--models", "efficientnet_lite0,efficientnet_lite1", "--image-size", "32", "--max-examples", "24"],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = json.loads(out.stdout)
    assert [r["model_id"] for r in rows] and {r["model_id"] for r in rows} == {"efficientnet_lite0",
                                                                                "efficientnet_lite1"}
    for row in rows:
        assert list(row)[:5] == ["model_id", "knn_accuracy", "knn_accuracy_ci", "logme", "seconds"]
        assert isinstance(row["knn_accuracy"], float) and len(row["knn_accuracy_ci"]) == 2
    assert rows[0]["knn_accuracy"] >= rows[1]["knn_accuracy"]
    bad = subprocess.run([sys.executable, "-m", "tl_ui", "advise", "--data", str(tmp_path / "none.zip")],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    assert bad.returncode == 2 and "error:" in bad.stderr
