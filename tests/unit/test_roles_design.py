"""The evaluation design the engine uses for each data size is the one the benchmark table
recommends (bench/sections/roles.py writes `recommended` into bench/roles-results.json)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tl_ui.data import LabelledDataset
from tl_ui.engine.evaluation.roles import DEFAULT_DESIGN, split_roles

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "roles-results.json"


def test_the_default_design_is_the_benchmark_recommendation():
    recommended = json.loads(RESULTS.read_text())["roles"]["recommended"]
    assert recommended, "the roles benchmark has recorded no recommendation"
    for n, design in recommended.items():
        labels = [f"c{i % 4}" for i in range(int(n))]
        dataset = LabelledDataset("text", [f"example {i}" for i in range(int(n))], labels)
        roles = split_roles(dataset, 0.2, seed=0)
        assert roles.design == design == DEFAULT_DESIGN, n


def test_roles_are_disjoint_and_cover_every_example():
    labels = [f"c{i % 3}" for i in range(50)]
    dataset = LabelledDataset("text", [f"t{i}" for i in range(50)], labels)
    roles = split_roles(dataset, 0.2, seed=3)
    parts = [set(roles.train.tolist()), set(roles.choose.tolist()), set(roles.report.tolist())]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert set().union(*parts) == set(range(50))
    assert all(len(np.unique(np.array(labels)[list(p)])) == 3 for p in parts)   # every class in every role


def test_too_few_examples_for_three_roles_get_a_plain_message(tmp_path):
    from tl_ui.data import DataError, load_dataset, sample_dataset_path, stratified_subset
    from tl_ui.engine.evaluation.roles import split_roles

    tiny = stratified_subset(load_dataset(str(sample_dataset_path("image")), tmp_path), 20, 0)   # 2 per class
    with pytest.raises(DataError, match=r"20 examples in 10 classes are too few .* at least 3 per class"):
        split_roles(tiny, 0.2, 0)
