"""The data map (tl_ui/engine/advisor/data_map.py): a 2-D layout of the embeddings and the examples whose
neighbours mostly carry another label."""
from __future__ import annotations

import numpy as np

from tl_ui.engine.advisor.data_map import data_map, label_problems


def _clusters(seed=0, per_class=30, dims=64):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 6, size=(3, dims))
    features = np.concatenate([c + rng.normal(0, 1, size=(per_class, dims)) for c in centres])
    labels = [name for name in ("cat", "dog", "owl") for _ in range(per_class)]
    return features, labels


def test_flipped_labels_are_listed_with_what_their_neighbours_say():
    features, labels = _clusters()
    flipped = {3: "dog", 40: "owl", 75: "cat"}
    for i, wrong in flipped.items():
        labels[i] = wrong
    problems = label_problems(features, labels)
    found = {p["index"]: p for p in problems}
    assert set(flipped) <= set(found)
    assert [found[i]["neighbours_say"] for i in sorted(flipped)] == ["cat", "dog", "owl"]
    assert len(problems) == len(flipped)          # clean examples in clean clusters are not listed


def test_the_map_has_a_point_per_example_and_marks_the_suspects():
    features, labels = _clusters(per_class=12)
    labels[0] = "owl"
    items = [f"img_{i}.png" for i in range(len(labels))]
    result = data_map(features, labels, items)
    assert len(result["points"]) == len(labels) and "t-SNE" in result["method"]
    xy = np.array([[p["x"], p["y"]] for p in result["points"]])
    assert np.isfinite(xy).all() and xy.std(axis=0).min() > 0
    assert [p["item"] for p in result["problems"]] == ["img_0.png"] and result["points"][0]["suspect"]
    assert sum(p["suspect"] for p in result["points"]) == result["n_problems"] == 1
    # a tiny dataset still gets a map (PCA alone)
    tiny = data_map(features[:6], labels[:6], items[:6])
    assert len(tiny["points"]) == 6 and tiny["method"].startswith("PCA")


def test_the_page_shows_the_map_and_the_list_for_texts_as_for_images():
    from tl_ui.ui import data_map_view

    features, labels = _clusters(per_class=12)
    labels[5] = "owl"
    texts = [f"review number {i}, which says something about the film" for i in range(len(labels))]
    result = data_map(features, labels, texts)
    shown = data_map_view.outcome(result, "MiniLM-L6", "text", thumbnails=[])
    assert shown["data_map_plot"]["visible"] and len(shown["data_map_plot"]["value"]) == len(labels)
    problems = shown["label_problems_table"]["value"]
    assert shown["label_problems_table"]["visible"] and list(problems["labelled"]) == ["owl"]
    assert problems["its nearest neighbours say"][0] == "cat" and not shown["label_problems_gallery"]["visible"]
    assert "1 example looks like another class" in shown["data_map_note"]
    images = data_map_view.outcome(result, "EfficientNet-Lite0", "image", thumbnails=[("x.png", "labelled owl")])
    assert images["label_problems_gallery"]["visible"]
